package lambdafn

import (
	"io"
	"log/slog"

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
