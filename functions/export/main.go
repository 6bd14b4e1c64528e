// Command export is the dsync-export Lambda function. An invocation either
// writes one whole Parquet snapshot of WorkOS Directory Sync to S3, or runs
// one step (plan, unit chunk, commit, abort) of the export state machine's
// execution (steps.go), which resumes an export across invocations.
//
// In Lambda (AWS_LAMBDA_RUNTIME_API set) it serves invocations. Anywhere else
// the same binary runs one export and prints its summary (see cli.go):
//
//	export --demo                      # built-in WorkOS fake -> ./out (not in the Lambda build)
//	WORKOS_API_KEY=sk_... EXPORT_DESTINATION=s3://bucket/prefix export
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"strconv"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/dsync-export/dsync-export/pkg/lambdafn"
	"github.com/dsync-export/dsync-export/pkg/objstore"
	"github.com/dsync-export/dsync-export/pkg/secret"
)

func main() {
	lambdafn.Main(func() (func(context.Context, Event) (any, error), error) {
		setMemoryLimit(os.Getenv)
		h, err := newHandler(context.Background(), os.Getenv, func(config) *slog.Logger { return lambdafn.NewLambdaLogger() }, os.Stdout)
		if err != nil {
			return nil, err
		}
		return h.Invoke, nil
	}, func(args []string) int { return runLocal(args, os.Getenv, os.Stdout, os.Stderr) })
}

// newHandler builds the handler from the environment: config, object store,
// key source. newLog makes its logger from the config (a local run takes the
// level from it); metrics receives the EMF lines.
func newHandler(ctx context.Context, getenv func(string) string, newLog func(config) *slog.Logger, metrics io.Writer) (*handler, error) {
	cfg, err := loadConfig(getenv)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errConfig, err)
	}
	log := newLog(cfg)
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
	return &handler{cfg: cfg, sink: dst, keys: keys, keysFrom: keysFrom, log: log, metrics: metrics, now: time.Now}, nil
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
