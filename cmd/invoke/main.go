// Command invoke runs one of the Lambda functions locally, the way
// `sam local invoke` does but without Docker: it builds the function's
// bootstrap for this machine, starts it under the AWS Lambda Runtime Interface
// Emulator (bound to 127.0.0.1), sends it one event and prints the response.
//
// Usage:
//
//	go run ./cmd/invoke --function export --event events/scheduled.json --env events/env.json
//	go run ./cmd/invoke --function verify --event events/verify-manual.json --env events/env.json
//
// The function gets the environment template.yaml declares for it (values
// from parameter defaults), overridden by env.json's section for its logical
// ID (ExportFunction, VerifyFunction), plus AWS_* (credentials, region) and
// HOME from this process. Its deadline is the template's Timeout. The
// response goes to stdout; the function's logs go to stderr. The exit status
// is 1 when the function fails (handler error or timeout), 2 when it could not
// be run.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/dsync-export/dsync-export/internal/samtemplate"
	"github.com/dsync-export/dsync-export/internal/testenv/proc"
	"github.com/dsync-export/dsync-export/internal/testenv/rie"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Environ())
	stop()
	os.Exit(code)
}

// functions maps the --function names to template logical IDs and packages.
var functions = map[string]struct{ logicalID, pkg string }{
	"export": {"ExportFunction", "./functions/export"},
	"verify": {"VerifyFunction", "./functions/verify"},
}

// run is main without the process: it returns the exit status.
func run(ctx context.Context, args []string, stdin *os.File, stdout, stderr io.Writer, host []string) int {
	// The emulator's output and ours interleave on stderr.
	stderr = &syncWriter{w: stderr}
	fs := flag.NewFlagSet("invoke", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		function  = fs.String("function", "", "function to run: export or verify (or a template logical ID)")
		eventPath = fs.String("event", "", "event JSON file, - for stdin (see events/)")
		envPath   = fs.String("env", "", "env.json with variables per function logical ID, as for sam local invoke --env-vars")
		tmplPath  = fs.String("template", "", "SAM template (default: template.yaml at the module root)")
		pkg       = fs.String("package", "", "main package to build (default: ./functions/<function>)")
		out       = fs.String("out", "", "folder for the built bootstrap (default: bin/invoke/<LogicalId> at the module root)")
		timeout   = fs.Int("timeout", 0, "function timeout in seconds (default: the template's Timeout)")
		logLevel  = fs.String("rie-log-level", "error", "log level of the emulator itself (debug, info, warn, error)")
		today     = fs.Bool("today", true, "move every YYYY-MM-DD date in the event to today (UTC): the export refuses a manual date other than today and a scheduled time more than a day old, and the sample events are dated 2026-11-28")
	)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: go run ./cmd/invoke --function export|verify --event FILE [--env events/env.json]\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0 // -h asked for the usage, which was printed
		}
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintln(stderr, err)
		return 2
	}
	if *function == "" || *eventPath == "" || fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	logicalID, defaultPkg := *function, ""
	if f, ok := functions[*function]; ok {
		logicalID, defaultPkg = f.logicalID, f.pkg
	}
	if *pkg == "" {
		if defaultPkg == "" {
			return fail(fmt.Errorf("invoke: --function %q: use export or verify, or give --package with a logical ID", *function))
		}
		*pkg = defaultPkg
	}

	root, err := proc.ModuleRoot()
	if err != nil {
		return fail(fmt.Errorf("invoke: %w", err))
	}
	if *tmplPath == "" {
		*tmplPath = filepath.Join(root, "template.yaml")
	}
	if *out == "" {
		*out = filepath.Join(root, "bin", "invoke", logicalID)
	}
	tmpl, err := samtemplate.Load(*tmplPath)
	if err != nil {
		return fail(fmt.Errorf("invoke: %w", err))
	}
	fn, err := tmpl.Function(logicalID)
	if err != nil {
		return fail(fmt.Errorf("invoke: %w", err))
	}
	var file envFile
	if *envPath != "" {
		if file, err = readEnvFile(*envPath); err != nil {
			return fail(err)
		}
		all, err := tmpl.Functions()
		if err != nil {
			return fail(fmt.Errorf("invoke: %w", err))
		}
		if err := checkSections(file, all); err != nil {
			return fail(err)
		}
	}
	env, err := functionEnv(fn, file, host, *timeout)
	if err != nil {
		return fail(err)
	}
	event, err := readEvent(*eventPath, stdin)
	if err != nil {
		return fail(err)
	}
	if *today {
		event = moveDatesTo(event, time.Now().UTC())
	}

	emulator, err := rie.BuildEmulator(ctx, filepath.Join(root, "bin"))
	if err != nil {
		return fail(err)
	}
	bootstrap, err := rie.BuildBootstrap(ctx, *pkg, *out)
	if err != nil {
		return fail(err)
	}
	fmt.Fprintf(stderr, "invoke: %s (%s) under the Lambda Runtime Interface Emulator; timeout %ss, memory %d MB\n",
		logicalID, *pkg, envValue(env, "AWS_LAMBDA_FUNCTION_TIMEOUT"), fn.MemorySize)

	emu, err := rie.Start(ctx, emulator, bootstrap, env, rie.WithOutput(stderr), rie.WithLogLevel(*logLevel))
	if err != nil {
		return fail(err)
	}
	defer emu.Close()
	resp, err := emu.Invoke(ctx, event)
	if resp != nil {
		stdout.Write(resp.Payload)
		if !strings.HasSuffix(string(resp.Payload), "\n") {
			fmt.Fprintln(stdout)
		}
	}
	var fe *rie.FunctionError
	switch {
	case errors.As(err, &fe):
		fmt.Fprintf(stderr, "invoke: %s failed: %s: %s\n", logicalID, fe.Type, fe.Message)
		return 1
	case err != nil:
		return fail(err)
	}
	return 0
}

func envValue(env []string, name string) string {
	for _, kv := range env {
		if k, v, _ := strings.Cut(kv, "="); k == name {
			return v
		}
	}
	return ""
}

// syncWriter serialises writes to w.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

var dateRE = regexp.MustCompile(`\b\d{4}-\d{2}-\d{2}`)

// moveDatesTo replaces every YYYY-MM-DD date in an event with now's date, so
// a sample event describes today: the scheduled event's time keeps its time
// of day, and a manifest's key gets today's dt.
func moveDatesTo(event []byte, now time.Time) []byte {
	return dateRE.ReplaceAll(event, []byte(now.Format("2006-01-02")))
}
