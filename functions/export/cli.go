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

	"github.com/dsync-export/dsync-export/pkg/export"
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
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	demo := fs.Bool("demo", false, "export the built-in WorkOS fake's demo dataset into a local folder (no WorkOS account needed)")
	date := fs.String("snapshot-date", "", "snapshot date YYYY-MM-DD (default: today in UTC; at most a day from today unless --force)")
	force := fs.Bool("force", false, "accept a --snapshot-date more than a day from today (the data is still today's)")
	dest := fs.String("destination", "", "override EXPORT_DESTINATION (s3://bucket/prefix or a folder; --demo: a folder, default out)")
	inputFile := fs.String("input", "", "a JSON event file to use as the input (as in events/)")
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
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "export: unexpected argument %q: see --help\n", fs.Arg(0))
		return 2
	}
	env := map[string]string{}
	lookup := func(k string) string {
		if v, ok := env[k]; ok {
			return v
		}
		return getenv(k)
	}
	if *dest != "" {
		env["EXPORT_DESTINATION"] = *dest
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if *demo {
		closeDemo, err := startDemo(lookup, env, stderr)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 2
		}
		defer closeDemo()
	}
	var disp *display // made from the config's log level
	h, err := newHandler(ctx, lookup, func(c config) *slog.Logger {
		disp = newDisplay(stderr, c.LogLevel, c.LogLevelSet)
		return disp.log
	}, io.Discard)
	if err != nil {
		fmt.Fprintln(stderr, err)
		if errors.Is(err, errConfig) && !*demo {
			fmt.Fprintln(stderr, "hint: run with --demo (or `make run`) to export the built-in fake's demo dataset without a WorkOS account; --help lists every variable")
		}
		return 2
	}
	h.demo = *demo
	h.watch = disp.watch
	var in export.Input
	if *inputFile != "" {
		b, err := os.ReadFile(*inputFile)
		if err != nil {
			fmt.Fprintln(stderr, "export:", err)
			return 2
		}
		if in, err = export.DecodeInput(b); err != nil {
			fmt.Fprintf(stderr, "export: %s: %v\n", *inputFile, err)
			return 2
		}
	}
	if *date != "" {
		in.SnapshotDate = *date
	}
	in.Force = in.Force || *force
	out, err := h.Handle(ctx, in)
	disp.close()
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	b, _ := json.MarshalIndent(out, "", "  ")
	fmt.Fprintf(stdout, "%s\n", b)
	printNextSteps(stdout, h.cfg.Destination, out)
	return 0
}

// triggerMeaning explains the output's trigger field.
var triggerMeaning = map[string]string{
	export.TriggerNow:         "no date was given, so this is today's snapshot (UTC)",
	export.TriggerManual:      "the date came from the input's snapshot_date",
	export.TriggerEventBridge: "the date came from the EventBridge scheduled event's time",
	export.TriggerScheduler:   "the date came from the EventBridge Scheduler's scheduled_time",
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
