package sfn

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dsync-export/dsync-export/internal/testenv/proc"
	"github.com/dsync-export/dsync-export/internal/testenv/rie"
)

// ErrorServiceException is the error name under which an Invoker's error
// that is not a *rie.FunctionError reaches the interpreter: the Lambda
// service failed, not the function.
const ErrorServiceException = "Lambda.ServiceException"

// Invoker runs one Lambda invocation for the Task state named state, with the
// payload the state's Parameters built (the lambda:invoke "Payload"), and
// returns the function's result. An error that is or wraps a
// *rie.FunctionError is a function error, reported under its Type (as Lambda
// reports the errorType); any other error is reported as
// Lambda.ServiceException. Run calls it concurrently; ctx ends when the run
// does. A Task of an AWS SDK integration (arn:aws:states:::aws-sdk:…) is
// served by the Invoker too: payload is the Task's effective parameters, the
// result is the API's response, and an error's Type names the API's error
// as Step Functions does (S3.NoSuchKeyException).
type Invoker func(ctx context.Context, state string, payload json.RawMessage) (json.RawMessage, error)

// Options configures Run.
type Options struct {
	// Definition is the state machine's ASL JSON (see Definition).
	Definition []byte
	// Input is the execution's input JSON; nil means {}.
	Input []byte
	// Invoke serves every lambda:invoke Task.
	Invoke Invoker
	// RetryInterval, if set, replaces the wait before every retry of every
	// state with a Retry (IntervalSeconds, BackoffRate, MaxDelaySeconds,
	// JitterStrategy), so tests do not wait for real backoff. MaxAttempts
	// still applies.
	RetryInterval *time.Duration
	// StateRetryIntervals replaces RetryInterval for the states it names.
	StateRetryIntervals map[string]time.Duration
	// Stderr, if set, receives the runner's stderr as it is written: with
	// Debug, every event of the execution (states entered, retried, caught,
	// invocations). It is kept for Run's errors either way.
	Stderr io.Writer
	// Debug logs the execution's events to Stderr (SFN_DEBUG=1 in the
	// environment does the same).
	Debug bool
	// ExecutionID is the execution's $$.Execution.Id (its last ":" field is
	// $$.Execution.Name); "" makes up a new one, as every start in AWS does.
	ExecutionID string
}

// Result is the end of an execution.
type Result struct {
	// Output is the execution's output JSON when it succeeded, nil when it
	// failed.
	Output json.RawMessage
	// ErrorName and ErrorCause are the execution's error when it failed (for
	// a Fail state, its Error/ErrorPath and Cause/CausePath). ErrorName is
	// empty when it succeeded.
	ErrorName, ErrorCause string
	// Invocations are the Lambda invocations in the order they started.
	Invocations []Invocation
}

// Failed reports whether the execution failed.
func (r *Result) Failed() bool { return r.ErrorName != "" }

// Invocation is one call of the Invoker.
type Invocation struct {
	// State is the Task state's name.
	State string
	// Function is the lambda:invoke FunctionName.
	Function string
	// Payload is the function's input.
	Payload json.RawMessage
	// Output is the function's result; nil when it failed.
	Output json.RawMessage
	// ErrorType is the error name reported to the interpreter ("" on
	// success), and ErrorMessage its message.
	ErrorType, ErrorMessage string
	// Start is when the call started, and Duration how long it took.
	Start    time.Time
	Duration time.Duration
}

// maxBody bounds an invocation request or a runner's output: Step Functions
// limits payloads to 256 KiB, Lambda responses to 6 MB.
const maxBody = 16 << 20

// Run executes the state machine once with the local interpreter, serving
// its Lambda invocations with opts.Invoke, and returns how the execution
// ended. A failed execution is a Result with ErrorName set, not an error: Run
// fails only when the harness does (node missing, an invalid or unsupported
// definition, an Invoker result that is not JSON) or when ctx ends, which
// stops the interpreter. Run returns once every invocation has returned,
// including those of Map iterations stopped when another failed.
func Run(ctx context.Context, opts Options) (*Result, error) {
	if opts.Invoke == nil {
		return nil, errors.New("sfn: Options.Invoke is nil")
	}
	if !json.Valid(opts.Definition) {
		return nil, errors.New("sfn: Options.Definition is not valid JSON")
	}
	input := opts.Input
	if input == nil {
		input = []byte(`{}`)
	}
	if !json.Valid(input) {
		return nil, errors.New("sfn: Options.Input is not valid JSON")
	}
	if err := EnsureInstalled(ctx); err != nil {
		return nil, err
	}
	dir, err := NodeDir()
	if err != nil {
		return nil, err
	}

	srv, err := startServer(ctx, opts.Invoke)
	if err != nil {
		return nil, err
	}
	defer srv.stop()

	tmp, err := os.MkdirTemp("", "sfn-run-")
	if err != nil {
		return nil, fmt.Errorf("sfn: %w", err)
	}
	defer os.RemoveAll(tmp)
	var retryMillis *float64
	if opts.RetryInterval != nil {
		ms := float64(*opts.RetryInterval) / float64(time.Millisecond)
		retryMillis = &ms
	}
	stateMillis := map[string]float64{}
	for name, d := range opts.StateRetryIntervals {
		stateMillis[name] = float64(d) / float64(time.Millisecond)
	}
	config, err := json.Marshal(struct {
		Definition          json.RawMessage    `json:"definition"`
		Input               json.RawMessage    `json:"input"`
		InvokeURL           string             `json:"invokeURL"`
		RetryIntervalMillis *float64           `json:"retryIntervalMillis"`
		StateRetryMillis    map[string]float64 `json:"stateRetryIntervalMillis"`
		ExecutionID         string             `json:"executionId,omitempty"`
	}{opts.Definition, input, srv.url, retryMillis, stateMillis, opts.ExecutionID})
	if err != nil {
		return nil, fmt.Errorf("sfn: %w", err)
	}
	configPath := filepath.Join(tmp, "config.json")
	if err := os.WriteFile(configPath, config, 0o600); err != nil {
		return nil, fmt.Errorf("sfn: %w", err)
	}

	cmd := exec.Command("node", filepath.Join(dir, "run.mjs"), configPath)
	cmd.Dir = dir
	cmd.Env = os.Environ()
	if opts.Debug {
		cmd.Env = append(cmd.Env, "SFN_DEBUG=1")
	}
	stdout := &limitedBuffer{max: maxBody}
	stderr := proc.NewTailBuffer(64 << 10)
	cmd.Stdout = stdout
	cmd.Stderr = stderr
	if opts.Stderr != nil {
		cmd.Stderr = io.MultiWriter(stderr, opts.Stderr)
	}
	p, err := proc.Start(cmd)
	if err != nil {
		return nil, fmt.Errorf("sfn: %w", err)
	}
	select {
	case <-p.Exited():
	case <-ctx.Done():
		p.Stop(0, 10*time.Second)
		return nil, fmt.Errorf("sfn: the execution was stopped: %w", ctx.Err())
	}
	if err := p.ExitErr(); err != nil {
		return nil, fmt.Errorf("sfn: node run.mjs failed (%v): %s", err, strings.TrimSpace(stderr.String()))
	}
	if stdout.over {
		return nil, fmt.Errorf("sfn: node run.mjs wrote more than %d bytes", maxBody)
	}
	res, err := parseResult(stdout.buf.Bytes())
	if err != nil {
		return nil, fmt.Errorf("%w; runner stderr: %s", err, strings.TrimSpace(stderr.String()))
	}
	srv.stop()
	res.Invocations = srv.invocations()
	return res, nil
}

// parseResult reads the runner's last stdout line.
func parseResult(out []byte) (*Result, error) {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	last := lines[len(lines)-1]
	var fields map[string]json.RawMessage
	if err := json.Unmarshal([]byte(last), &fields); err != nil {
		return nil, fmt.Errorf("sfn: the runner's last line %q is not a JSON object: %v", last, err)
	}
	if e, ok := fields["error"]; ok {
		var failure struct {
			Name  *string `json:"name"`
			Cause *string `json:"cause"`
		}
		if err := json.Unmarshal(e, &failure); err != nil || failure.Name == nil {
			return nil, fmt.Errorf("sfn: the runner's error %s has no name", e)
		}
		res := &Result{ErrorName: *failure.Name}
		if failure.Cause != nil {
			res.ErrorCause = *failure.Cause
		}
		if res.ErrorName == "" {
			res.ErrorName = "(no error name)"
		}
		return res, nil
	}
	if o, ok := fields["output"]; ok {
		return &Result{Output: o}, nil
	}
	return nil, fmt.Errorf("sfn: the runner's last line %q has neither output nor error", last)
}

// server answers the runner's invocation requests.
type server struct {
	url    string
	http   *http.Server
	invoke Invoker
	done   chan struct{}

	mu   sync.Mutex
	invs []Invocation

	stopOnce sync.Once
}

func startServer(ctx context.Context, invoke Invoker) (*server, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("sfn: listen on 127.0.0.1: %w", err)
	}
	s := &server{url: "http://" + l.Addr().String() + "/invoke", invoke: invoke, done: make(chan struct{})}
	s.http = &http.Server{
		Handler:     s,
		BaseContext: func(net.Listener) context.Context { return ctx },
	}
	go func() {
		s.http.Serve(l)
		close(s.done)
	}()
	return s, nil
}

// stop waits up to 10 s for the invocations in progress (their contexts end
// when the runner is gone), then closes the server.
func (s *server) stop() {
	s.stopOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if s.http.Shutdown(ctx) != nil {
			s.http.Close()
		}
		<-s.done
	})
}

func (s *server) invocations() []Invocation {
	s.mu.Lock()
	defer s.mu.Unlock()
	invs := slices.Clone(s.invs)
	slices.SortStableFunc(invs, func(a, b Invocation) int { return a.Start.Compare(b.Start) })
	return invs
}

// invokeRequest is what run.mjs POSTs.
type invokeRequest struct {
	State    string          `json:"state"`
	Payload  json.RawMessage `json:"payload"`
	Function *string         `json:"function"`
}

type invokeError struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

type invokeResponse struct {
	Payload json.RawMessage `json:"payload,omitempty"`
	Error   *invokeError    `json:"error,omitempty"`
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/invoke" {
		http.Error(w, "sfn: POST /invoke only", http.StatusNotFound)
		return
	}
	var req invokeRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody)).Decode(&req); err != nil || req.State == "" {
		http.Error(w, fmt.Sprintf("sfn: bad invocation request: %v", err), http.StatusBadRequest)
		return
	}
	if len(req.Payload) == 0 {
		req.Payload = json.RawMessage("null")
	}
	inv := Invocation{State: req.State, Payload: req.Payload, Start: time.Now()}
	if req.Function != nil {
		inv.Function = *req.Function
	}
	out, err := s.invoke(r.Context(), req.State, req.Payload)
	inv.Duration = time.Since(inv.Start)

	var resp invokeResponse
	if err != nil {
		resp.Error = &invokeError{Type: ErrorServiceException, Message: err.Error()}
		var fe *rie.FunctionError
		if errors.As(err, &fe) {
			resp.Error = &invokeError{Type: fe.Type, Message: fe.Message}
			if fe.Type == "" {
				resp.Error.Type = "Lambda.Unknown"
			}
		}
		inv.ErrorType, inv.ErrorMessage = resp.Error.Type, resp.Error.Message
	} else {
		if len(out) == 0 {
			out = json.RawMessage("null")
		}
		if !json.Valid(out) {
			s.record(inv)
			http.Error(w, fmt.Sprintf("sfn: the Invoker's result for state %s is not JSON: %.200q", req.State, out), http.StatusInternalServerError)
			return
		}
		resp.Payload, inv.Output = out, out
	}
	s.record(inv)
	body, err := json.Marshal(resp)
	if err != nil {
		http.Error(w, "sfn: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(body)
}

func (s *server) record(inv Invocation) {
	s.mu.Lock()
	s.invs = append(s.invs, inv)
	s.mu.Unlock()
}

// limitedBuffer keeps the first max bytes written to it.
type limitedBuffer struct {
	buf  bytes.Buffer
	max  int
	over bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.buf.Len(); len(p) > room {
		b.buf.Write(p[:max(room, 0)])
		b.over = true
		return len(p), nil
	}
	return b.buf.Write(p)
}
