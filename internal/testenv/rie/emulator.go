package rie

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dsync-export/dsync-export/internal/testenv/proc"
)

// InvokePath is the emulator's invocation endpoint.
const InvokePath = "/2015-03-31/functions/function/invocations"

// ErrorTypeTimeout is the FunctionError type of an invocation that ran past
// its deadline (AWS Lambda reports "Sandbox.Timedout" too).
const ErrorTypeTimeout = "Sandbox.Timedout"

// maxPayload bounds a response body read from the emulator. Lambda's own limit
// for a synchronous response is 6 MB.
const maxPayload = 16 << 20

// logTail is how much emulator and function output Logs keeps.
const logTail = 256 << 10

// Emulator is a running Runtime Interface Emulator with one bootstrap.
type Emulator struct {
	// URL is the emulator's base URL, http://127.0.0.1:<port>.
	URL string

	proc   *proc.Process
	logs   *proc.TailBuffer
	output *gateWriter
	client *http.Client

	closeOnce sync.Once
	closeErr  error
}

// Option configures Start.
type Option func(*options)

type options struct {
	output       io.Writer
	logLevel     string
	startTimeout time.Duration
}

// WithOutput copies the emulator's and the function's stdout and stderr (the
// function's logs, START/END/REPORT lines) to w as they are written. They are
// kept for Logs either way.
func WithOutput(w io.Writer) Option {
	return func(o *options) { o.output = w }
}

// WithLogLevel sets the emulator's own log level (debug, info, warn, error;
// default error, as sam local uses). It does not change the function's
// LOG_LEVEL.
func WithLogLevel(level string) Option {
	return func(o *options) { o.logLevel = level }
}

// WithStartTimeout bounds how long Start waits for the emulator to listen
// (default 10 s).
func WithStartTimeout(d time.Duration) Option {
	return func(o *options) { o.startTimeout = d }
}

// Start runs the emulator at emulatorPath with the Lambda bootstrap at
// bootstrapPath, and waits until it accepts invocations. The bootstrap itself
// starts on the first invocation, like a cold start.
//
// env is the complete environment of the emulator, which passes it on to the
// function: nothing of the current process is inherited. Set
// AWS_LAMBDA_FUNCTION_TIMEOUT (seconds) there for the function's deadline.
// The working directory is the bootstrap's folder, as /var/task is in Lambda.
//
// ctx bounds the start only; Close stops the emulator.
func Start(ctx context.Context, emulatorPath, bootstrapPath string, env []string, opts ...Option) (*Emulator, error) {
	o := options{logLevel: "error", startTimeout: 10 * time.Second}
	for _, opt := range opts {
		opt(&o)
	}
	for _, p := range []string{emulatorPath, bootstrapPath} {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("rie: %w (build it with BuildEmulator or BuildBootstrap)", err)
		}
		if fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
			return nil, fmt.Errorf("rie: %s is not an executable file", p)
		}
	}
	boot, err := filepath.Abs(bootstrapPath)
	if err != nil {
		return nil, fmt.Errorf("rie: %w", err)
	}

	// Free ports are picked by binding :0 and releasing them, so another
	// process may take one first; the emulator then exits, and we retry.
	var lastErr error
	for range 3 {
		e, err := start(ctx, emulatorPath, boot, env, o)
		if err == nil {
			return e, nil
		}
		lastErr = err
		if ctx.Err() != nil || !errors.Is(err, errExitedEarly) {
			break
		}
	}
	return nil, lastErr
}

var errExitedEarly = errors.New("rie: emulator exited while starting")

func start(ctx context.Context, emulatorPath, boot string, env []string, o options) (*Emulator, error) {
	ports, err := proc.FreePorts(2)
	if err != nil {
		return nil, fmt.Errorf("rie: %w", err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(ports[0])
	apiAddr := "127.0.0.1:" + strconv.Itoa(ports[1])

	logs := proc.NewTailBuffer(logTail)
	var out io.Writer = logs
	gated := &gateWriter{w: o.output}
	if o.output != nil {
		out = io.MultiWriter(logs, gated)
	}
	cmd := exec.Command(emulatorPath,
		"--log-level", o.logLevel,
		"--runtime-interface-emulator-address", addr,
		"--runtime-api-address", apiAddr,
		boot,
	)
	cmd.Dir = filepath.Dir(boot)
	cmd.Env = append([]string(nil), env...)
	cmd.Stdout = out
	cmd.Stderr = out
	p, err := proc.Start(cmd)
	if err != nil {
		return nil, fmt.Errorf("rie: %w", err)
	}
	e := &Emulator{
		URL:    "http://" + addr,
		proc:   p,
		logs:   logs,
		output: gated,
		client: &http.Client{},
	}
	err = p.WaitReady(ctx, o.startTimeout, proc.DialOK(addr))
	switch {
	case err == nil:
		return e, nil
	case errors.Is(err, proc.ErrExited):
		return nil, fmt.Errorf("%w (%v): %s", errExitedEarly, p.ExitErr(), strings.TrimSpace(logs.String()))
	case ctx.Err() != nil:
		e.Close()
		return nil, fmt.Errorf("rie: waiting for the emulator: %w", ctx.Err())
	default:
		e.Close()
		return nil, fmt.Errorf("rie: emulator not listening on %s after %v: %s", addr, o.startTimeout, strings.TrimSpace(logs.String()))
	}
}

// Response is the emulator's answer to one invocation.
type Response struct {
	// StatusCode is the HTTP status of the emulator's answer. The emulator
	// answers 200 for handler errors and timeouts too.
	StatusCode int
	// Payload is the function's response body: its JSON result, the error
	// object of a failed handler, or the emulator's timeout message.
	Payload []byte
}

// FunctionError is a failed invocation: the handler returned an error or
// panicked (Type is the error's Go type name, e.g. "errorString"), the event
// did not decode (e.g. "SyntaxError"), or the function ran past its deadline
// (Type is ErrorTypeTimeout).
type FunctionError struct {
	Message    string            `json:"errorMessage"`
	Type       string            `json:"errorType"`
	StackTrace []json.RawMessage `json:"stackTrace,omitempty"`
}

// Error returns the message with its type, as the Lambda console shows it.
func (e *FunctionError) Error() string {
	return fmt.Sprintf("rie: function error %s: %s", e.Type, e.Message)
}

// Timedout reports whether the function ran past its deadline.
func (e *FunctionError) Timedout() bool { return e.Type == ErrorTypeTimeout }

// Invoke sends payload to the function and waits for its answer. A failed
// invocation returns the Response together with a *FunctionError, including
// a runtime that died mid-invocation (Type Runtime.ExitError, which the
// emulator answers with HTTP 502); other errors mean the emulator could not
// be reached or answered with another HTTP error.
func (e *Emulator) Invoke(ctx context.Context, payload []byte) (*Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.URL+InvokePath, bytes.NewReader(payload))
	if err != nil {
		return nil, fmt.Errorf("rie: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("rie: invoke: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxPayload+1))
	if err != nil {
		return nil, fmt.Errorf("rie: read the response: %w", err)
	}
	if len(body) > maxPayload {
		return nil, fmt.Errorf("rie: response larger than %d bytes (Lambda allows 6 MB)", maxPayload)
	}
	r := &Response{StatusCode: resp.StatusCode, Payload: body}
	fe := parseFunctionError(body)
	switch {
	case resp.StatusCode == http.StatusOK && fe != nil:
		return r, fe
	case resp.StatusCode == http.StatusOK:
		return r, nil
	case resp.StatusCode == http.StatusBadGateway && fe != nil:
		// The runtime died mid-invocation (Runtime.ExitError): Lambda answers
		// 200 with X-Amz-Function-Error: Unhandled, the emulator 502.
		return r, fe
	default:
		return r, fmt.Errorf("rie: emulator answered HTTP %d: %s", resp.StatusCode, snippet(body))
	}
}

// parseFunctionError recognises the two failure bodies of the emulator: the
// runtime's error object and the timeout message. The emulator sends no
// X-Amz-Function-Error header, so an error object is a JSON object with an
// errorMessage and no keys beyond errorMessage, errorType and stackTrace; a
// handler result of exactly that shape is indistinguishable from an error.
func parseFunctionError(body []byte) *FunctionError {
	text := strings.TrimSpace(string(body))
	if strings.HasPrefix(text, "Task timed out after ") {
		return &FunctionError{Type: ErrorTypeTimeout, Message: text}
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(body, &fields) != nil {
		return nil
	}
	if _, ok := fields["errorMessage"]; !ok {
		return nil
	}
	for k := range fields {
		switch k {
		case "errorMessage", "errorType", "stackTrace":
		default:
			return nil
		}
	}
	var fe FunctionError
	if json.Unmarshal(body, &fe) != nil {
		return nil
	}
	return &fe
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 512 {
		s = s[:512] + "…"
	}
	return s
}

// Logs returns the last 256 KiB of the emulator's and the function's output.
func (e *Emulator) Logs() string { return e.logs.String() }

// Close stops the emulator and the function (the whole process group) and
// waits for them to exit. It may be called more than once.
func (e *Emulator) Close() error {
	e.closeOnce.Do(func() {
		// Let the output already written (the END and REPORT lines precede
		// the response) reach the caller; what the dying processes print then
		// (the runtime's "failed to get the next invoke") is noise.
		e.logs.WaitQuiet(100*time.Millisecond, time.Second)
		e.output.close()
		// Kill the group even when the emulator exited on its own: the
		// bootstrap it started may still run.
		if err := e.proc.Stop(0, 10*time.Second); err != nil {
			e.closeErr = fmt.Errorf("rie: stop the emulator: %w", err)
		}
	})
	return e.closeErr
}

// gateWriter forwards to w until closed, then discards.
type gateWriter struct {
	mu     sync.Mutex
	w      io.Writer
	closed bool
}

func (g *gateWriter) Write(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.closed && g.w != nil {
		g.w.Write(p) // a failing log sink must not stall the emulator's pipes
	}
	return len(p), nil
}

func (g *gateWriter) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}
