package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"

	"github.com/dsync-export/dsync-export/pkg/schema"
)

const usageHead = `Usage: export [flags]

Runs one dsync-export snapshot outside Lambda and prints its summary. The
export reads its settings from the environment variables below; the flags
override a few of them for one run. Inside Lambda the same binary serves
invocations instead (AWS_LAMBDA_RUNTIME_API is set there).

Examples:
  make run                                         # the demo: built-in WorkOS fake -> ./out
  go run ./functions/export --demo --destination demo-out
  WORKOS_API_KEY=sk_... EXPORT_DESTINATION=s3://bucket/prefix go run ./functions/export

Flags:
`

// runLocal runs one export outside Lambda and prints the summary. It returns
// the process exit status: 0 committed, 1 failed, 2 bad usage or config.
func runLocal(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	f, code := parseLocalFlags(args, stdout, stderr)
	if code >= 0 {
		return code
	}
	env := map[string]string{}
	lookup := func(k string) string {
		if v, ok := env[k]; ok {
			return v
		}
		return getenv(k)
	}
	if f.dest != "" {
		env["EXPORT_DESTINATION"] = f.dest
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if f.days != 0 && (!f.demo || f.days < 1 || f.days > maxDemoDays) {
		fmt.Fprintf(stderr, "export: --demo-days %d: give 1 to %d days, with --demo\n", f.days, maxDemoDays)
		return 2
	}
	var dm demoFake
	if f.demo {
		var err error
		if dm, err = startDemo(lookup, env, stderr, f.days); err != nil {
			fmt.Fprintln(stderr, err)
			return 2
		}
		defer dm.stop()
	}
	h, disp, code := newLocalHandler(ctx, lookup, f.demo, dm, stderr)
	if code >= 0 {
		return code
	}
	in, err := localInput(f)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	return exportLocal(ctx, h, disp, dm, in, f.days, stdout, stderr)
}

// localFlags are runLocal's flags.
type localFlags struct {
	demo, force           bool
	date, dest, inputFile string
	days                  int
}

// parseLocalFlags parses runLocal's arguments. A status of 0 or more is the
// exit status to stop with (help, bad usage); -1 goes on with the flags.
func parseLocalFlags(args []string, stdout, stderr io.Writer) (localFlags, int) {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	demo := fs.Bool("demo", false, "export the built-in WorkOS fake's demo dataset into a local folder (no WorkOS account needed)")
	date := fs.String("snapshot-date", "", "snapshot date YYYY-MM-DD (default: today in UTC; another date needs --force)")
	force := fs.Bool("force", false, "accept a --snapshot-date other than today (the data is still today's)")
	dest := fs.String("destination", "", "override EXPORT_DESTINATION (s3://bucket/prefix or a folder; --demo: a folder, default out)")
	inputFile := fs.String("input", "", "a JSON event file to use as the input (as in events/)")
	days := fs.Int("demo-days", 0, "with --demo: simulate this many days of 1% churn after a first full snapshot, one snapshot a day ending today, each built from the previous one plus the fake's events (1-60)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usageHead)
		fs.PrintDefaults()
		printEnvHelp(fs.Output())
	}
	if slices.ContainsFunc(args, func(a string) bool { return a == "-h" || a == "-help" || a == "--help" || a == "-?" }) {
		fs.SetOutput(stdout) // help was asked for: it is the output, and the exit status is 0
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return localFlags{}, 0
		}
		return localFlags{}, 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "export: unexpected argument %q: see --help\n", fs.Arg(0))
		return localFlags{}, 2
	}
	return localFlags{demo: *demo, force: *force, date: *date, dest: *dest, inputFile: *inputFile, days: *days}, -1
}

// newLocalHandler makes the export's handler with a display on stderr, whose
// log level comes from the config. A status of 0 or more is the exit status
// to stop with (a bad config); -1 goes on with the handler.
func newLocalHandler(ctx context.Context, lookup func(string) string, demo bool, dm demoFake, stderr io.Writer) (*handler, *display, int) {
	var disp *display // made from the config's log level
	h, err := newHandler(ctx, lookup, func(c config) *slog.Logger {
		disp = newDisplay(stderr, c.LogLevel, c.LogLevelSet)
		return disp.log
	}, io.Discard)
	if err != nil {
		fmt.Fprintln(stderr, err)
		if errors.Is(err, errConfig) && !demo {
			fmt.Fprintln(stderr, "hint: run with --demo (or `make run`) to export the built-in fake's demo dataset without a WorkOS account; --help lists every variable")
		}
		return nil, nil, 2
	}
	h.demo = demo
	h.watch = disp.watch
	if dm.now != nil {
		h.now = dm.now // the export reads events on the fake's clock
	}
	return h, disp, -1
}

// localInput is the run's input: the --input file's, if given, with
// --snapshot-date and --force on top.
func localInput(f localFlags) (Input, error) {
	var in Input
	if f.inputFile != "" {
		b, err := os.ReadFile(f.inputFile)
		if err != nil {
			return Input{}, fmt.Errorf("export: %w", err)
		}
		if in, err = DecodeInput(b); err != nil {
			return Input{}, fmt.Errorf("export: %s: %w", f.inputFile, err)
		}
	}
	if f.date != "" {
		in.SnapshotDate = f.date
	}
	in.Force = in.Force || f.force
	return in, nil
}

// exportLocal runs the export (or --demo-days' month of them), closes the
// display and prints the output and the next steps. It returns the exit
// status: 0 committed, 1 failed, 2 a configuration error (a refused destination).
func exportLocal(ctx context.Context, h *handler, disp *display, dm demoFake, in Input, days int, stdout, stderr io.Writer) int {
	var out Output
	var err error
	if days > 0 {
		out, err = demoMonth(ctx, h, dm, days, stderr)
	} else {
		out, err = h.Handle(ctx, in)
	}
	disp.close()
	if err != nil {
		fmt.Fprintln(stderr, err)
		if errors.Is(err, errConfig) {
			return 2 // a refused destination
		}
		return 1
	}
	b, _ := json.MarshalIndent(out, "", "  ")
	fmt.Fprintf(stdout, "%s\n", b)
	printNextSteps(stdout, h.cfg.Destination, out)
	return 0
}

// maxDemoDays bounds --demo-days: the Events API keeps 30 days, and two
// months show a retention fallback at most once.
const maxDemoDays = 60

// demoFake is the built-in fake of --demo: stop closes it; nextDay moves its
// clock one day on at 1% churn and returns the events that made; now is its
// clock, which the export's event cursor follows.
type demoFake struct {
	stop    func()
	nextDay func() int
	now     func() time.Time
}

// demoMonth runs --demo-days: a full snapshot days ago, then one snapshot a
// day to today, each after a simulated day of changes. It prints a line per
// day and returns the last day's output.
func demoMonth(ctx context.Context, h *handler, dm demoFake, days int, w io.Writer) (Output, error) {
	today := time.Now().UTC()
	var out Output
	for k := 0; k <= days; k++ {
		events := 0
		if k > 0 {
			events = dm.nextDay()
		}
		in := Input{SnapshotDate: today.AddDate(0, 0, k-days).Format(schema.PartitionFormat), Force: true}
		var err error
		if out, err = h.Handle(ctx, in); err != nil {
			return Output{}, err
		}
		fmt.Fprintf(w, "demo day %2d %s: %-11s %d of %d directories incremental, %4d WorkOS requests, %5d new events (the fake made %d), %d users\n",
			k, out.SnapshotDate, out.Mode, out.IncrementalDirectories, out.Directories, out.API.Requests, out.Events, events, out.Rows[schema.TableDirectoryUsers])
	}
	return out, nil
}

// triggerMeaning explains the output's trigger field.
var triggerMeaning = map[string]string{
	TriggerNow:         "no date was given, so this is today's snapshot (UTC)",
	TriggerManual:      "the date came from the input's snapshot_date",
	TriggerEventBridge: "the date came from the EventBridge scheduled event's time",
	TriggerScheduler:   "the date came from the EventBridge Scheduler's scheduled_time",
}

func printNextSteps(w io.Writer, dest string, out Output) {
	d := out.SnapshotDate
	kind := "Snapshot"
	if out.Demo {
		kind = "Demo snapshot (the built-in WorkOS fake's data, marked demo in its manifest)"
	}
	fmt.Fprintf(w, "\n%s %s committed to %s (run %s, manifest %s).\n", kind, d, out.Destination, out.RunID, out.ManifestKey)
	fmt.Fprintf(w, "trigger %q: %s.\n", out.Trigger, triggerMeaning[out.Trigger])
	fmt.Fprintf(w, "\nCheck it:\n")
	fmt.Fprintf(w, "  go run ./functions/verify --destination %s --date %s\n", dest, d)
	fmt.Fprintf(w, "Query it with DuckDB (or any Parquet reader):\n")
	fmt.Fprintf(w, "  duckdb -c \"SELECT state, count(*) FROM '%s/directory_users/dt=%s/*.parquet' GROUP BY state\"\n", dest, d)
	fmt.Fprintf(w, "  duckdb -c \"SELECT g.name, count(*) AS members FROM '%[1]s/directory_group_memberships/dt=%[2]s/*.parquet' m JOIN '%[1]s/directory_groups/dt=%[2]s/*.parquet' g ON g.id = m.group_id GROUP BY g.name ORDER BY members DESC LIMIT 10\"\n", dest, d)
	fmt.Fprintf(w, "In Athena (tables from template.yaml or `make athena-ddl`):\n")
	fmt.Fprintf(w, "  SELECT directory_id, count(*) FROM directory_users_latest WHERE state = 'active' GROUP BY directory_id;\n")
}
