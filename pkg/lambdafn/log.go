package lambdafn

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

// InLambda reports whether the process runs under a Lambda runtime (or the
// Runtime Interface Emulator): then it serves invocations instead of running
// once from the command line.
func InLambda(getenv func(string) string) bool { return getenv("AWS_LAMBDA_RUNTIME_API") != "" }

// NewLambdaLogger returns the logger of a function in Lambda: JSON or text and
// the level as the function's LoggingConfig sets them (AWS_LAMBDA_LOG_FORMAT,
// AWS_LAMBDA_LOG_LEVEL), with the request id on every line.
func NewLambdaLogger() *slog.Logger { return slog.New(lambdacontext.NewLogHandler()) }

// NewLocalLogger returns the logger of a local run: readable text lines on w
// (the terminal's stderr) at level (LOG_LEVEL).
func NewLocalLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// Main is the main function of both functions. Inside Lambda it builds the
// handler once per cold start (a build error fails the init phase, and its
// message lands in the function's log) and serves invocations, decoding each
// event strictly: a field the input type does not know (an SQS or S3
// notification's "Records", a misspelt "snapshot_dt") fails the invocation
// instead of being dropped. Anywhere else it runs local once with the
// command-line arguments and exits with its status.
func Main[In, Out any](build func() (func(context.Context, In) (Out, error), error), local func(args []string) int) {
	if !InLambda(os.Getenv) {
		os.Exit(local(os.Args[1:]))
	}
	h, err := build()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	lambda.StartWithOptions(h, lambda.WithDisallowUnknownFields(true))
}
