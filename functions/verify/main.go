// Command verify is the dsync-export snapshot verifier: it checks that a
// snapshot is complete and correct (see pkg/verify), prints a JSON Lines
// report and the SnapshotValid metric, and fails when the snapshot is bad.
//
// In Lambda (AWS_LAMBDA_RUNTIME_API set) it serves invocations: S3 "Object
// Created" events for manifests, or {"snapshot_date":"YYYY-MM-DD"}. Anywhere
// else the same binary verifies one snapshot and exits 1 when it is invalid:
//
//	verify --destination s3://bucket/prefix --date 2026-11-28
//	EXPORT_DESTINATION=./out verify            # today's snapshot (UTC)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/dsync-export/dsync-export/pkg/lambdafn"
	"github.com/dsync-export/dsync-export/pkg/objstore"
	"github.com/dsync-export/dsync-export/pkg/schema"
	"github.com/dsync-export/dsync-export/pkg/secret"
	"github.com/dsync-export/dsync-export/pkg/snapshot"
	"github.com/dsync-export/dsync-export/pkg/verify"
)

func main() {
	lambdafn.Main(func() (func(context.Context, Input) (*verify.Report, error), error) {
		h, err := newHandler(context.Background(), os.Getenv, os.Stdout, func(config) *slog.Logger { return lambdafn.NewLambdaLogger() })
		if err != nil {
			return nil, err
		}
		return h.Handle, nil
	}, func(args []string) int { return runLocal(args, os.Getenv, os.Stdout, os.Stderr) })
}

// configError marks configuration errors (exit status 2 outside Lambda).
type configError struct{ error }

func (e configError) Unwrap() error { return e.error }

// newHandler builds the handler from the environment: config, sink and, when
// sampling, the WorkOS key source. newLog makes the logger once the
// configuration is read (in Lambda, the LoggingConfig's; locally, LOG_LEVEL's).
func newHandler(ctx context.Context, getenv func(string) string, stdout io.Writer, newLog func(config) *slog.Logger) (*handler, error) {
	cfg, err := loadConfig(getenv)
	if err != nil {
		return nil, configError{err}
	}
	log := newLog(cfg)
	src, err := objstore.Open(ctx, cfg.Destination, objstore.Options{PathStyle: cfg.PathStyle})
	if err != nil {
		return nil, fmt.Errorf("verify: EXPORT_DESTINATION %s: %w", cfg.Destination, err)
	}
	h := &handler{cfg: cfg, src: src, log: log, stdout: stdout, now: time.Now}
	switch {
	case cfg.Sample == 0:
	case cfg.SecretID != "":
		awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
		if err != nil {
			return nil, fmt.Errorf("verify: load AWS configuration: %w", err)
		}
		h.keys = secret.NewLoader(secretsmanager.NewFromConfig(awsCfg), cfg.SecretID, cfg.SecretField)
	default:
		h.keys = secret.Static(cfg.APIKey)
	}
	return h, nil
}

// runLocal verifies one snapshot outside Lambda. It returns the exit status:
// 0 valid, 1 invalid or not verifiable, 2 bad flags or configuration.
func runLocal(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	date := fs.String("date", "", "")
	dest := fs.String("destination", "", "")
	sample := fs.String("sample", "", "")
	fs.Usage = func() {} // flag prints the error; the help goes to stdout below
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(stdout)
			return 0
		}
		fmt.Fprintln(stderr, "verify: run verify --help for the flags and environment variables")
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "verify: unexpected arguments %q: use --date and --destination\n", fs.Args())
		return 2
	}
	env := map[string]string{}
	if *dest != "" {
		env["EXPORT_DESTINATION"] = *dest
	}
	if *sample != "" {
		env["VERIFY_SAMPLE"] = *sample
	}
	lookup := func(k string) string {
		if v, ok := env[k]; ok {
			return v
		}
		return getenv(k)
	}
	if *date == "" {
		*date = time.Now().UTC().Format(schema.PartitionFormat)
	} else if _, err := snapshot.ParseDate(*date); err != nil {
		fmt.Fprintf(stderr, "verify: --date: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	h, err := newHandler(ctx, lookup, stdout, func(c config) *slog.Logger { return lambdafn.NewLocalLogger(stderr, c.LogLevel) })
	if err != nil {
		fmt.Fprintln(stderr, err)
		if errors.As(err, new(configError)) {
			return 2
		}
		return 1
	}
	if _, err := h.Handle(ctx, Input{SnapshotDate: *date}); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}

// usage prints the flags and every environment variable with its default.
func usage(w io.Writer) {
	fmt.Fprint(w, `Usage: verify [--destination DEST] [--date YYYY-MM-DD] [--sample N]

Verifies one dsync-export snapshot: prints a JSON Lines report and the
SnapshotValid metric on stdout; exits 0 when the snapshot is valid, 1 when it
is invalid or could not be verified, 2 on bad flags or configuration.

Flags:
  --destination DEST  the export's destination (default: $EXPORT_DESTINATION)
  --date YYYY-MM-DD   the snapshot to verify (default: today in UTC)
  --sample N          records per table to re-fetch from WorkOS (default: $VERIFY_SAMPLE)
  --help              print this help

Environment (in Lambda, from the function's configuration):
`)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, v := range envVars {
		fmt.Fprintf(tw, "  %s\tdefault %s\t%s\n", v.Name, v.Default, v.Doc)
	}
	_ = tw.Flush()
}
