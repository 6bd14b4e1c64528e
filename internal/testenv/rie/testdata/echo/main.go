// Command echo is a tiny Lambda function used by the internal/testenv/rie tests. It echoes
// its input, counts its invocations (to prove a warm start), reports the time
// left until its deadline, fails when asked to, and can sleep past its
// deadline.
package main

import (
	"context"
	"errors"
	"os"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

// Input is the event the function accepts.
type Input struct {
	Message string `json:"message"`
	Fail    bool   `json:"fail,omitempty"`
	Sleep   string `json:"sleep,omitempty"` // a time.Duration
	// Env names environment variables to report in Output.Env.
	Env []string `json:"env,omitempty"`
}

// Output is what the function returns.
type Output struct {
	Message       string `json:"message"`
	Invocation    int64  `json:"invocation"`
	PID           int    `json:"pid"`
	RemainingMS   int64  `json:"remaining_ms"`
	RequestID     string `json:"request_id"`
	FunctionName  string `json:"function_name"`
	EchoVar       string `json:"echo_var"`
	LambdaRuntime bool   `json:"lambda_runtime"`
	// Env holds the variables named by Input.Env that are set.
	Env map[string]string `json:"env,omitempty"`
}

var invocations atomic.Int64

func handle(ctx context.Context, in Input) (Output, error) {
	n := invocations.Add(1)
	if in.Fail {
		return Output{}, errors.New("echo: failing as asked: " + in.Message)
	}
	if in.Sleep != "" {
		d, err := time.ParseDuration(in.Sleep)
		if err != nil {
			return Output{}, err
		}
		// Ignore ctx on purpose: this models a function that overruns its
		// deadline, which only the runtime's own timeout can stop. (Returning
		// ctx.Err() here would race the emulator's timeout.)
		time.Sleep(d)
	}
	out := Output{
		Message:       in.Message,
		Invocation:    n,
		PID:           os.Getpid(),
		FunctionName:  lambdacontext.FunctionName,
		EchoVar:       os.Getenv("ECHO_VAR"),
		LambdaRuntime: os.Getenv("AWS_LAMBDA_RUNTIME_API") != "",
	}
	for _, name := range in.Env {
		if v, ok := os.LookupEnv(name); ok {
			if out.Env == nil {
				out.Env = map[string]string{}
			}
			out.Env[name] = v
		}
	}
	if dl, ok := ctx.Deadline(); ok {
		out.RemainingMS = time.Until(dl).Milliseconds()
	}
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		out.RequestID = lc.AwsRequestID
	}
	return out, nil
}

func main() {
	lambda.Start(handle)
}
