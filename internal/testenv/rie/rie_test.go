package rie

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dsync-export/dsync-export/internal/testenv/proc"
)

// echoOutput mirrors testdata/echo's Output.
type echoOutput struct {
	Message       string `json:"message"`
	Invocation    int64  `json:"invocation"`
	PID           int    `json:"pid"`
	RemainingMS   int64  `json:"remaining_ms"`
	RequestID     string `json:"request_id"`
	FunctionName  string `json:"function_name"`
	EchoVar       string `json:"echo_var"`
	LambdaRuntime bool   `json:"lambda_runtime"`
}

var (
	buildOnce          sync.Once
	emulatorPath, echo string
	buildErr           error
)

// binaries builds the emulator (cached in <module>/bin) and the echo function
// once per test binary.
func binaries(t *testing.T) (emulator, bootstrap string) {
	t.Helper()
	buildOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		emulatorPath, echo, buildErr = BuildEcho(ctx)
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return emulatorPath, echo
}

func TestMain(m *testing.M) {
	code := m.Run()
	if echo != "" {
		os.RemoveAll(filepath.Dir(echo))
	}
	os.Exit(code)
}

func startEcho(t *testing.T, timeoutSeconds int) *Emulator {
	t.Helper()
	emu, boot := binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e, err := Start(ctx, emu, boot, []string{
		"AWS_LAMBDA_FUNCTION_TIMEOUT=" + fmt.Sprint(timeoutSeconds),
		"AWS_LAMBDA_FUNCTION_NAME=echo-test",
		"ECHO_VAR=hello from the test",
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("emulator output:\n%s", e.Logs())
		}
	})
	return e
}

func invokeEcho(t *testing.T, e *Emulator, payload string) echoOutput {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := e.Invoke(ctx, []byte(payload))
	if err != nil {
		t.Fatalf("Invoke(%s): %v", payload, err)
	}
	var out echoOutput
	if err := json.Unmarshal(resp.Payload, &out); err != nil {
		t.Fatalf("Invoke(%s) payload %q: %v", payload, resp.Payload, err)
	}
	return out
}

func TestEmulatorWarmInvocationsAndError(t *testing.T) {
	t.Parallel()
	e := startEcho(t, 30)
	if !strings.HasPrefix(e.URL, "http://127.0.0.1:") {
		t.Errorf("URL = %q, want a 127.0.0.1 address", e.URL)
	}

	first := invokeEcho(t, e, `{"message":"cold"}`)
	second := invokeEcho(t, e, `{"message":"warm ünïcode"}`)

	for i, got := range []echoOutput{first, second} {
		// The deadline comes from AWS_LAMBDA_FUNCTION_TIMEOUT=30.
		if got.RemainingMS <= 25_000 || got.RemainingMS > 30_000 {
			t.Errorf("invocation %d: remaining %d ms, want (25000, 30000]", i+1, got.RemainingMS)
		}
		if got.RequestID == "" {
			t.Errorf("invocation %d: no request ID in the Lambda context", i+1)
		}
	}
	ignore := func(o echoOutput) echoOutput { o.RemainingMS, o.RequestID = 0, ""; return o }
	want := []echoOutput{
		{Message: "cold", Invocation: 1, PID: first.PID, FunctionName: "echo-test", EchoVar: "hello from the test", LambdaRuntime: true},
		{Message: "warm ünïcode", Invocation: 2, PID: first.PID, FunctionName: "echo-test", EchoVar: "hello from the test", LambdaRuntime: true},
	}
	if diff := cmp.Diff(want, []echoOutput{ignore(first), ignore(second)}); diff != "" {
		t.Errorf("warm invocations (-want +got):\n%s", diff)
	}
	if first.RequestID == second.RequestID {
		t.Errorf("both invocations have request ID %q", first.RequestID)
	}

	// A handler error is a *FunctionError with the runtime's error object.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := e.Invoke(ctx, []byte(`{"message":"boom","fail":true}`))
	var fe *FunctionError
	if !errors.As(err, &fe) {
		t.Fatalf("Invoke(fail) error = %v, want a *FunctionError", err)
	}
	if want := (FunctionError{Message: "echo: failing as asked: boom", Type: "errorString"}); fe.Message != want.Message || fe.Type != want.Type {
		t.Errorf("FunctionError = %+v, want %+v", *fe, want)
	}
	if fe.Timedout() {
		t.Error("a handler error reports Timedout")
	}
	if resp == nil || resp.StatusCode != 200 || !strings.Contains(string(resp.Payload), `"errorMessage"`) {
		t.Errorf("Response = %+v, want status 200 with the error object", resp)
	}

	// An event the handler cannot decode fails the same way.
	_, err = e.Invoke(ctx, []byte(`not json`))
	if !errors.As(err, &fe) || fe.Type != "SyntaxError" {
		t.Errorf("Invoke(not json) error = %v, want a SyntaxError FunctionError", err)
	}

	// The function survives its errors: still the same warm process.
	after := invokeEcho(t, e, `{"message":"still warm"}`)
	if after.PID != first.PID || after.Invocation != 4 {
		t.Errorf("after the errors: pid %d invocation %d, want pid %d invocation 4 (the undecodable event never reached the handler)", after.PID, after.Invocation, first.PID)
	}
	if !strings.Contains(e.Logs(), "REPORT RequestId: "+first.RequestID) {
		t.Errorf("Logs lack the REPORT line of %s:\n%s", first.RequestID, e.Logs())
	}
}

func TestEmulatorTimeout(t *testing.T) {
	t.Parallel()
	e := startEcho(t, 1)
	before := invokeEcho(t, e, `{"message":"quick"}`)
	if before.RemainingMS > 1000 || before.RemainingMS <= 0 {
		t.Errorf("remaining %d ms, want (0, 1000]", before.RemainingMS)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	_, err := e.Invoke(ctx, []byte(`{"message":"slow","sleep":"20s"}`))
	var fe *FunctionError
	if !errors.As(err, &fe) || !fe.Timedout() {
		t.Fatalf("Invoke(sleep past the deadline) error = %v, want a timeout FunctionError", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("the timeout took %v, want about 1 s", took)
	}

	// As in Lambda, the next invocation gets a fresh runtime process.
	after := invokeEcho(t, e, `{"message":"again"}`)
	if after.Message != "again" || after.Invocation != 1 || after.PID == before.PID {
		t.Errorf("after the timeout: %+v, want a new process (pid != %d) at invocation 1", after, before.PID)
	}
}

func TestCloseStopsEmulatorAndFunction(t *testing.T) {
	t.Parallel()
	e := startEcho(t, 30)
	out := invokeEcho(t, e, `{"message":"hi"}`)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := e.Invoke(ctx, []byte(`{}`)); err == nil {
		t.Error("Invoke after Close succeeded")
	}
	// The bootstrap was in the emulator's process group: it is gone too.
	deadline := time.Now().Add(5 * time.Second)
	for proc.Alive(out.PID) {
		if time.Now().After(deadline) {
			t.Fatalf("bootstrap pid %d still runs after Close", out.PID)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestStartErrors(t *testing.T) {
	t.Parallel()
	emu, boot := binaries(t)
	ctx := context.Background()
	notExec := filepath.Join(t.TempDir(), "bootstrap")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, emulator, bootstrap, want string
	}{
		{"missing emulator", filepath.Join(t.TempDir(), "nope"), boot, "BuildEmulator"},
		{"missing bootstrap", emu, filepath.Join(t.TempDir(), "nope"), "BuildBootstrap"},
		{"bootstrap not executable", emu, notExec, "not an executable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := Start(ctx, tc.emulator, tc.bootstrap, nil)
			if err == nil {
				e.Close()
				t.Fatal("Start succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

func TestBuildBootstrapError(t *testing.T) {
	t.Parallel()
	_, err := BuildBootstrap(context.Background(), "./internal/testenv/rie/testdata/does-not-exist", t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "rie: go build ./internal/testenv/rie/testdata/does-not-exist failed") {
		t.Errorf("error = %v, want a go build failure naming the package", err)
	}
}

func TestParseFunctionError(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		body string
		want *FunctionError
	}{
		{`{"errorMessage":"bad","errorType":"errorString"}`, &FunctionError{Message: "bad", Type: "errorString"}},
		{`{"errorMessage":"p","errorType":"runtime.Error","stackTrace":[{"path":"x.go","line":1,"label":"f"}]}`,
			&FunctionError{Message: "p", Type: "runtime.Error", StackTrace: []json.RawMessage{json.RawMessage(`{"path":"x.go","line":1,"label":"f"}`)}}},
		{"Task timed out after 900.00 seconds", &FunctionError{Message: "Task timed out after 900.00 seconds", Type: ErrorTypeTimeout}},
		{`{"errorMessage":"a result that happens to have this key","rows":3}`, nil},
		{`{"snapshot_date":"2026-11-28"}`, nil},
		{`"a string result"`, nil},
		{`null`, nil},
		{``, nil},
	} {
		if diff := cmp.Diff(tc.want, parseFunctionError([]byte(tc.body))); diff != "" {
			t.Errorf("parseFunctionError(%s) (-want +got):\n%s", tc.body, diff)
		}
	}
}
