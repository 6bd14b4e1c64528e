// Command export is the dsync-export Lambda function: each invocation writes
// one Parquet snapshot of WorkOS Directory Sync to S3.
//
// In Lambda (AWS_LAMBDA_RUNTIME_API set) it serves invocations. Anywhere else
// the same binary runs one export and prints its summary:
//
//	export --demo                      # built-in WorkOS fake -> ./out
//	WORKOS_API_KEY=sk_... EXPORT_DESTINATION=s3://bucket/prefix export
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
	"runtime/debug"
	"strconv"
	"syscall"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/dsync-export/dsync-export/internal/testenv/workostest"
	"github.com/dsync-export/dsync-export/pkg/export"
	"github.com/dsync-export/dsync-export/pkg/objstore"
	"github.com/dsync-export/dsync-export/pkg/secret"
)

func main() {
	if os.Getenv("AWS_LAMBDA_RUNTIME_API") != "" {
		setMemoryLimit(os.Getenv)
		h, err := newHandler(context.Background(), os.Getenv, os.Stdout, true)
		if err != nil {
			// Fails the init phase: the message lands in the function's log.
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		lambda.Start(h.Handle)
		return
	}
	os.Exit(runLocal(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// newHandler builds the handler from the environment: config, sink, key source.
func newHandler(ctx context.Context, getenv func(string) string, stdout io.Writer, requireKey bool) (*handler, error) {
	cfg, err := loadConfig(getenv, requireKey)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errConfig, err)
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	dst, err := objstore.Open(ctx, cfg.Destination, objstore.Options{PathStyle: cfg.PathStyle, PartSize: s3PartSize, Concurrency: s3Concurrency})
	if err != nil {
		return nil, fmt.Errorf("export: EXPORT_DESTINATION %s: %w", cfg.Destination, err)
	}
	var keys secret.Source
	keysFrom := "the WORKOS_API_KEY variable"
	if cfg.SecretID != "" {
		awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
		if err != nil {
			return nil, fmt.Errorf("export: load AWS configuration: %w", err)
		}
		keys = secret.NewLoader(secretsmanager.NewFromConfig(awsCfg), cfg.SecretID, cfg.SecretField)
		keysFrom = fmt.Sprintf("Secrets Manager secret %q (WORKOS_API_KEY_SECRET_ID)", cfg.SecretID)
	} else {
		keys = secret.Static(cfg.APIKey)
	}
	return &handler{cfg: cfg, sink: dst, keys: keys, keysFrom: keysFrom, log: log, metrics: stdout, now: time.Now}, nil
}

// demoDataset is the built-in fake's dataset for --demo: a few directories and
// a few thousand users.
var demoDataset = workostest.Config{Seed: 1, Directories: 4, UsersPerDirectory: 1200, GroupsPerDirectory: 12}

// runLocal runs one export outside Lambda and prints the summary.
func runLocal(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	demo := fs.Bool("demo", false, "export the built-in WorkOS fake's demo dataset (no WorkOS account needed)")
	date := fs.String("snapshot-date", "", "snapshot date YYYY-MM-DD (default: today in UTC)")
	dest := fs.String("destination", "", "override EXPORT_DESTINATION (s3://bucket/prefix or a folder)")
	inputFile := fs.String("input", "", "a JSON event file to use as the input (as in events/)")
	if err := fs.Parse(args); err != nil {
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
	if lookup("EXPORT_DESTINATION") == "" && *demo {
		env["EXPORT_DESTINATION"] = "out"
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if *demo {
		fake, err := workostest.New(demoDataset)
		if err != nil {
			fmt.Fprintln(stderr, "export: start the WorkOS fake:", err)
			return 1
		}
		defer fake.Close()
		base, err := fake.Start("127.0.0.1:0")
		if err != nil {
			fmt.Fprintln(stderr, "export: start the WorkOS fake:", err)
			return 1
		}
		env["WORKOS_BASE_URL"] = base
		env["WORKOS_API_KEY"] = "sk_test_default"
		env["WORKOS_API_KEY_SECRET_ID"] = ""
		env["WORKOS_RATE_LIMIT_DIRECTORY_USERS"] = "0" // the demo fake does not enforce limits
		env["WORKOS_RATE_LIMIT_GLOBAL"] = "0"
		fmt.Fprintf(stderr, "demo: built-in WorkOS fake at %s with %d directories x %d users\n", base, demoDataset.Directories, demoDataset.UsersPerDirectory)
	}
	h, err := newHandler(ctx, lookup, io.Discard, true)
	if err != nil {
		fmt.Fprintln(stderr, err)
		if errors.Is(err, errConfig) && !*demo {
			fmt.Fprintln(stderr, "hint: run with --demo (or `make run`) to export the built-in fake's demo dataset without a WorkOS account")
		}
		return 2
	}
	in := export.Input{SnapshotDate: *date}
	if *inputFile != "" {
		b, err := os.ReadFile(*inputFile)
		if err != nil {
			fmt.Fprintln(stderr, "export:", err)
			return 2
		}
		if err := json.Unmarshal(b, &in); err != nil {
			fmt.Fprintf(stderr, "export: %s is not a valid input event: %v\n", *inputFile, err)
			return 2
		}
		if *date != "" {
			in.SnapshotDate = *date
		}
	}
	out, err := h.Handle(ctx, in)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	b, _ := json.MarshalIndent(out, "", "  ")
	fmt.Fprintf(stdout, "%s\n", b)
	printNextSteps(stdout, h.cfg.Destination, out)
	return 0
}

func printNextSteps(w io.Writer, dest string, out Output) {
	fmt.Fprintf(w, "\nSnapshot %s committed to %s (manifest %s).\n", out.SnapshotDate, out.Destination, out.ManifestKey)
	fmt.Fprintf(w, "Try it with DuckDB (or any Parquet reader):\n")
	fmt.Fprintf(w, "  duckdb -c \"SELECT state, count(*) FROM '%s/directory_users/dt=%s/*.parquet' GROUP BY state\"\n", dest, out.SnapshotDate)
	fmt.Fprintf(w, "  duckdb -c \"SELECT g.name, count(*) AS members FROM '%[1]s/directory_group_memberships/dt=%[2]s/*.parquet' m JOIN '%[1]s/directory_groups/dt=%[2]s/*.parquet' g ON g.id = m.group_id GROUP BY g.name ORDER BY members DESC LIMIT 10\"\n", dest, out.SnapshotDate)
	fmt.Fprintf(w, "In Athena (tables from template.yaml or `make athena-ddl`):\n")
	fmt.Fprintf(w, "  SELECT directory_id, count(*) FROM directory_users WHERE dt = '%s' AND state = 'active' GROUP BY directory_id;\n", out.SnapshotDate)
}

// setMemoryLimit gives the Go runtime a soft memory limit of 80% of the
// function's memory (AWS_LAMBDA_FUNCTION_MEMORY_SIZE, MB) unless GOMEMLIMIT is
// set, so the garbage collector works harder before Lambda would kill the
// process for exceeding its memory.
func setMemoryLimit(getenv func(string) string) int64 {
	if getenv("GOMEMLIMIT") != "" {
		return -1
	}
	mb, err := strconv.ParseInt(getenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"), 10, 64)
	if err != nil || mb <= 0 {
		return -1
	}
	limit := mb << 20 * 8 / 10
	debug.SetMemoryLimit(limit)
	return limit
}

// S3 upload settings. Up to four tables stream at once and each open upload
// holds about PartSize x (Concurrency + 2) bytes, so the smallest part size S3
// allows and one part in flight keep a 1M-user export to S3 at 117 MiB peak RSS
// (measured against versitygw; see README, Benchmarks).
const (
	s3PartSize    = 5 << 20
	s3Concurrency = 1
)
