package sfn

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dsync-export/dsync-export/internal/testenv/rie"
)

func TestMain(m *testing.M) {
	// Install the interpreter once, before the parallel tests.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	err := EnsureInstalled(ctx)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	cleanupEcho()
	os.Exit(code)
}

// testWriter sends the runner's stderr to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func zero() *time.Duration { d := time.Duration(0); return &d }

func run(t *testing.T, def string, input string, invoke Invoker) *Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := Run(ctx, Options{Definition: []byte(def), Input: []byte(input), Invoke: invoke, RetryInterval: zero(), Stderr: testWriter{t}})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestDefinition(t *testing.T) {
	t.Parallel()
	arn := "arn:aws:lambda:us-east-1:123456789012:function:work"
	def, err := Definition("testdata/template.yaml", "WorkStateMachine", map[string]string{"FnArn": arn})
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		States struct {
			Items struct {
				MaxConcurrency json.RawMessage
				ItemSelector   map[string]json.RawMessage
				ItemProcessor  struct {
					States struct {
						Work struct{ Parameters map[string]string }
					}
				}
			}
		}
	}
	if err := json.Unmarshal(def, &got); err != nil {
		t.Fatalf("definition %s: %v", def, err)
	}
	items := got.States.Items
	if string(items.MaxConcurrency) != "2" || string(items.ItemSelector["retry"]) != "true" {
		t.Errorf("MaxConcurrency %s, ItemSelector.retry %s: want the number 2 and the boolean true", items.MaxConcurrency, items.ItemSelector["retry"])
	}
	if fn := items.ItemProcessor.States.Work.Parameters["FunctionName"]; fn != arn {
		t.Errorf("FunctionName = %q, want %q", fn, arn)
	}

	// The definition runs.
	res := run(t, string(def), `{"items":["x","y","z"]}`, func(ctx context.Context, state string, payload json.RawMessage) (json.RawMessage, error) {
		return payload, nil
	})
	if want := `[{"item":"x","retry":true},{"item":"y","retry":true},{"item":"z","retry":true}]`; res.Failed() || string(res.Output) != want {
		t.Errorf("output %s (error %s: %s), want %s", res.Output, res.ErrorName, res.ErrorCause, want)
	}
	for _, inv := range res.Invocations {
		if inv.State != "Work" || inv.Function != arn {
			t.Errorf("invocation %+v: want state Work of function %s", inv, arn)
		}
	}

	for _, tc := range []struct {
		id   string
		subs map[string]string
		want string
	}{
		{"WorkStateMachine", nil, "unresolved substitution ${FnArn} (at $.States.Items.ItemProcessor.States.Work.Parameters.FunctionName)"},
		{"WorkStateMachine", map[string]string{"FnARN": arn}, "${FnArn}"},
		{"Nope", nil, "no resource Nope"},
		{"WorkFunction", nil, "not AWS::Serverless::StateMachine"},
	} {
		if _, err := Definition("testdata/template.yaml", tc.id, tc.subs); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Definition(%s, %v) error %v, want one containing %q", tc.id, tc.subs, err, tc.want)
		}
	}
	if _, err := Definition("testdata/missing.yaml", "WorkStateMachine", nil); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("Definition of a missing template: %v, want an error naming it", err)
	}
}

// exportDefinition follows the step protocol's shape: Plan, a Map of units
// looping over chunks, Commit, and Abort then Failed on errors. %s is the
// Map's ProcessorConfig line.
const exportDefinition = `{
  "StartAt": "Plan",
  "States": {
    "Plan": {
      "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
      "Parameters": {"FunctionName": "export", "Payload": {"step": "plan", "trigger.$": "$"}},
      "ResultSelector": {"snapshot_date.$": "$.Payload.snapshot_date", "run_id.$": "$.Payload.run_id", "units.$": "$.Payload.units", "workers.$": "$.Payload.workers"},
      "ResultPath": "$.plan",
      "Retry": [{"ErrorEquals": ["Test.Flaky"], "IntervalSeconds": 30, "MaxAttempts": 3, "BackoffRate": 2}],
      "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Failed"}],
      "Next": "Units"
    },
    "Units": {
      "Type": "Map", "ItemsPath": "$.plan.units", "MaxConcurrencyPath": "$.plan.workers", "Label": "Units",
      "ItemSelector": {"step": "unit", "snapshot_date.$": "$.plan.snapshot_date", "run_id.$": "$.plan.run_id", "unit.$": "$$.Map.Item.Value"},
      "ItemProcessor": {
        %s
        "StartAt": "Chunk",
        "States": {
          "Chunk": {
            "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "export", "Payload.$": "$"},
            "ResultSelector": {"done.$": "$.Payload.done"}, "ResultPath": "$.chunk",
            "Retry": [{"ErrorEquals": ["Test.Flaky"], "IntervalSeconds": 30, "MaxAttempts": 3, "BackoffRate": 2}],
            "Next": "UnitDone?"
          },
          "UnitDone?": {"Type": "Choice", "Choices": [{"Variable": "$.chunk.done", "BooleanEquals": true, "Next": "UnitFinished"}], "Default": "Chunk"},
          "UnitFinished": {"Type": "Succeed"}
        }
      },
      "ResultPath": null,
      "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Abort"}],
      "Next": "Commit"
    },
    "Commit": {
      "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
      "Parameters": {"FunctionName": "export", "Payload": {"step": "commit", "snapshot_date.$": "$.plan.snapshot_date", "run_id.$": "$.plan.run_id"}},
      "OutputPath": "$.Payload",
      "Retry": [{"ErrorEquals": ["Lambda.ServiceException"], "IntervalSeconds": 30, "MaxAttempts": 2, "BackoffRate": 2}],
      "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Abort"}],
      "End": true
    },
    "Abort": {
      "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
      "Parameters": {"FunctionName": "export", "Payload": {"step": "abort", "run_id.$": "$.plan.run_id", "error.$": "$.error"}},
      "ResultPath": "$.abort",
      "Next": "Failed"
    },
    "Failed": {"Type": "Fail", "ErrorPath": "$.error.Error", "CausePath": "$.error.Cause"}
  }
}`

const distributed = `"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},`

// fakeExport serves exportDefinition's steps from Go.
type fakeExport struct {
	units        []string
	workers      int
	chunksPerRun int                                       // a unit is done after this many chunks
	planFlakes   int                                       // the first planFlakes plans fail with Test.Flaky
	chunkFault   func(unit string, call int) (error, bool) // an error for the unit's call-th chunk (1-based)
	chunkSleep   func(unit string) time.Duration
	commitErr    error

	mu          sync.Mutex
	plans       int
	chunks      map[string]int // calls per unit
	succeeded   map[string]int // successful calls per unit
	inflight    int
	maxInflight int
}

func (f *fakeExport) invoke(ctx context.Context, state string, payload json.RawMessage) (json.RawMessage, error) {
	var in struct{ Step, Unit string }
	if err := json.Unmarshal(payload, &in); err != nil {
		return nil, err
	}
	switch in.Step {
	case "plan":
		f.mu.Lock()
		f.plans++
		n := f.plans
		f.mu.Unlock()
		if n <= f.planFlakes {
			return nil, &rie.FunctionError{Type: "Test.Flaky", Message: fmt.Sprintf("plan flake %d", n)}
		}
		return json.Marshal(map[string]any{"step": "plan", "snapshot_date": "2026-12-06", "run_id": "r1", "units": f.units, "workers": f.workers, "directories": 1})
	case "unit":
		f.mu.Lock()
		if f.chunks == nil {
			f.chunks = map[string]int{}
		}
		f.chunks[in.Unit]++
		call := f.chunks[in.Unit]
		if f.succeeded == nil {
			f.succeeded = map[string]int{}
		}
		f.inflight++
		f.maxInflight = max(f.maxInflight, f.inflight)
		f.mu.Unlock()
		d := 30 * time.Millisecond
		if f.chunkSleep != nil {
			d = f.chunkSleep(in.Unit)
		}
		time.Sleep(d)
		f.mu.Lock()
		f.inflight--
		f.mu.Unlock()
		if f.chunkFault != nil {
			if err, ok := f.chunkFault(in.Unit, call); ok {
				return nil, err
			}
		}
		f.mu.Lock()
		f.succeeded[in.Unit]++
		n := f.succeeded[in.Unit]
		f.mu.Unlock()
		return json.Marshal(map[string]any{"step": "unit", "unit": in.Unit, "chunk": n, "done": n >= f.chunksPerRun})
	case "commit":
		if f.commitErr != nil {
			return nil, f.commitErr
		}
		return json.RawMessage(`{"snapshot_date":"2026-12-06","run_id":"r1","rows":42}`), nil
	case "abort":
		return json.RawMessage(`{"step":"abort","deleted":3}`), nil
	}
	return nil, fmt.Errorf("unexpected payload %s", payload)
}

// count returns how many invocations of state had errorType ("" for successes).
func count(invs []Invocation, state, errorType string) int {
	n := 0
	for _, inv := range invs {
		if inv.State == state && inv.ErrorType == errorType {
			n++
		}
	}
	return n
}

func TestRunLoopsRetriesAndConcurrency(t *testing.T) {
	t.Parallel()
	f := &fakeExport{
		units: []string{"0000", "0001", "0002", "0003", "0004"}, workers: 2, chunksPerRun: 3, planFlakes: 1,
		chunkFault: func(unit string, call int) (error, bool) {
			if unit == "0001" && call == 2 {
				return &rie.FunctionError{Type: "Test.Flaky", Message: "chunk flake"}, true
			}
			return nil, false
		},
	}
	start := time.Now()
	res := run(t, fmt.Sprintf(exportDefinition, distributed), `{"scheduled_time":"2026-12-06T02:00:00Z"}`, f.invoke)
	took := time.Since(start)

	if res.Failed() || string(res.Output) != `{"snapshot_date":"2026-12-06","run_id":"r1","rows":42}` {
		t.Fatalf("execution: output %s, error %s: %s; want Commit's output", res.Output, res.ErrorName, res.ErrorCause)
	}
	// Every unit loops until done (3 chunks); 0001 retried its second once.
	want := map[string]int{"0000": 3, "0001": 4, "0002": 3, "0003": 3, "0004": 3}
	if diff := cmp.Diff(want, f.chunks); diff != "" {
		t.Errorf("chunk calls per unit (-want +got):\n%s", diff)
	}
	if f.maxInflight != 2 {
		t.Errorf("at most %d chunks ran at once, want MaxConcurrencyPath's 2", f.maxInflight)
	}
	for state, want := range map[[2]string]int{
		{"Plan", "Test.Flaky"}: 1, {"Plan", ""}: 1, {"Chunk", "Test.Flaky"}: 1, {"Chunk", ""}: 15, {"Commit", ""}: 1, {"Abort", ""}: 0,
	} {
		if got := count(res.Invocations, state[0], state[1]); got != want {
			t.Errorf("%d invocations of %s with error %q, want %d", got, state[0], state[1], want)
		}
	}
	// Retry waits 30 s, 60 s, … without RetryInterval.
	if took > 20*time.Second {
		t.Errorf("the run took %v: the retry interval override did not apply", took)
	}
	// The plan got the execution's input, the chunks the ItemSelector's payload.
	if got := string(res.Invocations[0].Payload); got != `{"step":"plan","trigger":{"scheduled_time":"2026-12-06T02:00:00Z"}}` {
		t.Errorf("plan payload %s", got)
	}
	// The first chunk of a unit gets the ItemSelector's object; the next ones
	// also the previous chunk's result, which the Choice loop keeps at
	// ResultPath $.chunk.
	units := map[string]int{}
	for _, inv := range res.Invocations {
		if inv.State != "Chunk" {
			continue
		}
		var p map[string]any
		if err := json.Unmarshal(inv.Payload, &p); err != nil {
			t.Fatal(err)
		}
		unit, _ := p["unit"].(string)
		units[unit]++
		want := map[string]any{"step": "unit", "snapshot_date": "2026-12-06", "run_id": "r1", "unit": unit}
		if units[unit] > 1 {
			want["chunk"] = map[string]any{"done": false}
		}
		if !cmp.Equal(want, p) || inv.Function != "export" {
			t.Errorf("chunk %d of unit %s: payload %s of function %q, want %v of export", units[unit], unit, inv.Payload, inv.Function, want)
		}
	}
	if len(units) != 5 {
		t.Errorf("chunks ran for units %v, want 5 units", units)
	}
	for i := 1; i < len(res.Invocations); i++ {
		if res.Invocations[i].Start.Before(res.Invocations[i-1].Start) {
			t.Errorf("invocations out of start order at %d", i)
		}
	}
}

func TestRunFailures(t *testing.T) {
	t.Parallel()
	superseded := func(unit string, call int) (error, bool) {
		if unit == "0002" {
			return &rie.FunctionError{Type: "Export.Superseded", Message: "run r2 took over"}, true
		}
		return nil, false
	}
	for _, tc := range []struct {
		name, processor   string
		f                 *fakeExport
		wantName, wantMsg string
		abort             bool
		chunkErrors       int
		commits           int
	}{
		{
			// AWS fails a Distributed Map with the threshold error, whatever the iteration's.
			name: "distributed map", processor: distributed,
			f:        &fakeExport{units: []string{"0000", "0001", "0002"}, workers: 1, chunksPerRun: 2, chunkFault: superseded},
			wantName: "States.ExceedToleratedFailureThreshold", wantMsg: "The specified tolerated failure threshold was exceeded",
			abort: true, chunkErrors: 1,
		},
		{
			name: "inline map", processor: "",
			f:        &fakeExport{units: []string{"0000", "0001", "0002"}, workers: 1, chunksPerRun: 2, chunkFault: superseded},
			wantName: "Export.Superseded", wantMsg: "run r2 took over",
			abort: true, chunkErrors: 1,
		},
		{
			// A Go error is a Lambda service error, retried as Commit's Retry says.
			name: "service exception", processor: distributed,
			f:        &fakeExport{units: []string{"0000"}, workers: 1, chunksPerRun: 1, commitErr: errors.New("connection refused")},
			wantName: "Lambda.ServiceException", wantMsg: "connection refused",
			abort: true, commits: 3,
		},
		{
			// Plan retries Test.Flaky at most 3 times, then the Catch goes to Failed.
			name: "retries exhausted", processor: distributed,
			f:        &fakeExport{units: []string{"0000"}, workers: 1, chunksPerRun: 1, planFlakes: 10},
			wantName: "Test.Flaky", wantMsg: "plan flake 4",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := run(t, fmt.Sprintf(exportDefinition, tc.processor), `{}`, tc.f.invoke)
			if res.ErrorName != tc.wantName || res.ErrorCause != tc.wantMsg || res.Output != nil {
				t.Errorf("execution ended with %q: %q (output %s), want %q: %q", res.ErrorName, res.ErrorCause, res.Output, tc.wantName, tc.wantMsg)
			}
			if !res.Failed() {
				t.Error("Failed() = false")
			}
			if got := count(res.Invocations, "Chunk", "Export.Superseded"); got != tc.chunkErrors {
				t.Errorf("%d superseded chunks, want %d", got, tc.chunkErrors)
			}
			if got := count(res.Invocations, "Commit", ErrorServiceException); got != tc.commits {
				t.Errorf("%d failed commits, want %d", got, tc.commits)
			}
			var aborts []Invocation
			for _, inv := range res.Invocations {
				if inv.State == "Abort" {
					aborts = append(aborts, inv)
				}
			}
			if !tc.abort {
				if len(aborts) != 0 {
					t.Errorf("Abort ran: %+v", aborts)
				}
				return
			}
			if len(aborts) != 1 {
				t.Fatalf("Abort ran %d times, want once", len(aborts))
			}
			// Abort gets the caught error.
			want := fmt.Sprintf(`{"step":"abort","run_id":"r1","error":{"Error":%q,"Cause":%q}}`, tc.wantName, tc.wantMsg)
			if got := string(aborts[0].Payload); got != want {
				t.Errorf("abort payload %s, want %s", got, want)
			}
		})
	}
}

// TestRunStoppedIterationsDoNotRetry: when an iteration fails the Map, the
// others are stopped; a chunk of theirs that fails after that is not retried
// (as in AWS), and Run returns after it.
func TestRunStoppedIterationsDoNotRetry(t *testing.T) {
	t.Parallel()
	f := &fakeExport{
		units: []string{"0000", "0001"}, workers: 2, chunksPerRun: 5,
		chunkSleep: func(unit string) time.Duration {
			if unit == "0001" {
				return 500 * time.Millisecond
			}
			return 0
		},
		chunkFault: func(unit string, call int) (error, bool) {
			switch unit {
			case "0000":
				return &rie.FunctionError{Type: "Export.Superseded", Message: "taken over"}, true
			default:
				return &rie.FunctionError{Type: "Test.Flaky", Message: "late flake"}, true
			}
		},
	}
	res := run(t, fmt.Sprintf(exportDefinition, distributed), `{}`, f.invoke)
	if res.ErrorName != "States.ExceedToleratedFailureThreshold" {
		t.Errorf("error %s: %s, want States.ExceedToleratedFailureThreshold", res.ErrorName, res.ErrorCause)
	}
	if diff := cmp.Diff(map[string]int{"0000": 1, "0001": 1}, f.chunks); diff != "" {
		t.Errorf("chunk calls per unit (-want +got):\n%s", diff)
	}
	if got := count(res.Invocations, "Chunk", "Test.Flaky"); got != 1 {
		t.Errorf("%d flaky chunks recorded, want 1: Run must wait for the stopped iteration's invocation", got)
	}
}

func TestRunTaskTimeoutAndDebug(t *testing.T) {
	t.Parallel()
	def := `{"StartAt": "Slow", "States": {"Slow": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
		"Parameters": {"FunctionName": "f", "Payload": {"n": 1}}, "TimeoutSeconds": 1, "End": true}}}`
	var stderr bytes.Buffer
	var mu sync.Mutex
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := Run(ctx, Options{
		Definition: []byte(def), Debug: true, Stderr: &lockedWriter{mu: &mu, w: &stderr},
		Invoke: func(ctx context.Context, state string, payload json.RawMessage) (json.RawMessage, error) {
			time.Sleep(1500 * time.Millisecond)
			return json.RawMessage(`"late"`), nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.ErrorName != "States.Timeout" {
		t.Errorf("error %q: %q, want States.Timeout", res.ErrorName, res.ErrorCause)
	}
	if len(res.Invocations) != 1 || string(res.Invocations[0].Output) != `"late"` || string(res.Invocations[0].Payload) != `{"n":1}` {
		t.Errorf("invocations %+v, want the one late invocation", res.Invocations)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, want := range []string{"sfn: invoke Slow", "StateFailed Slow States.Timeout"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("debug output lacks %q:\n%s", want, stderr.String())
		}
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestRunHarnessErrors(t *testing.T) {
	t.Parallel()
	echo := func(ctx context.Context, state string, payload json.RawMessage) (json.RawMessage, error) {
		return payload, nil
	}
	task := `{"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": %q, "Parameters": {"FunctionName": "f", "Payload": {}}, "End": true}}}`
	for _, tc := range []struct {
		name string
		opts Options
		want string
	}{
		{"no invoker", Options{Definition: []byte(`{}`)}, "Options.Invoke is nil"},
		{"bad json", Options{Definition: []byte(`{`), Invoke: echo}, "Definition is not valid JSON"},
		{"bad input", Options{Definition: []byte(`{}`), Input: []byte(`nope`), Invoke: echo}, "Input is not valid JSON"},
		{"invalid definition", Options{Definition: []byte(`{"StartAt": "Nope", "States": {}}`), Invoke: echo}, "State machine definition is invalid"},
		{"other resource", Options{Definition: []byte(fmt.Sprintf(task, "arn:aws:lambda:us-east-1:123456789012:function:f")), Invoke: echo},
			`Task state "T": Resource "arn:aws:lambda:us-east-1:123456789012:function:f" is not emulated`},
		{"result not json", Options{Definition: []byte(fmt.Sprintf(task, "arn:aws:states:::lambda:invoke")), Invoke: func(context.Context, string, json.RawMessage) (json.RawMessage, error) {
			return json.RawMessage(`{oops`), nil
		}}, "the Invoker's result for state T is not JSON"},
		{"item reader", Options{Definition: []byte(`{"StartAt": "M", "States": {"M": {"Type": "Map", "ItemReader": {"Resource": "arn:aws:states:::s3:getObject", "Parameters": {"Bucket": "b", "Key": "k"}},
			"ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}, "StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}, "End": true}}}`), Invoke: echo},
			`Map state "M": ItemReader is not supported`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res, err := Run(context.Background(), tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Run: %+v, %v; want an error containing %q", res, err, tc.want)
			}
		})
	}
}

func TestRunCancel(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	started := make(chan struct{})
	returned := make(chan error, 1)
	def := `{"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Parameters": {"FunctionName": "f", "Payload": {}}, "End": true}}}`
	done := make(chan error, 1)
	go func() {
		_, err := Run(ctx, Options{Definition: []byte(def), Invoke: func(ctx context.Context, state string, payload json.RawMessage) (json.RawMessage, error) {
			close(started)
			<-ctx.Done()
			returned <- ctx.Err()
			return nil, ctx.Err()
		}})
		done <- err
	}()
	select {
	case <-started:
	case <-time.After(20 * time.Second):
		t.Fatal("the invocation did not start")
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Run after cancel: %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	select {
	case <-returned:
	default:
		t.Error("Run returned before the Invoker saw the cancellation")
	}
}

// TestRunSDKIntegrationAndExecutionContext: a Task of an AWS SDK integration
// is served by the Invoker with its effective parameters, its result is the
// Invoker's answer as is (not wrapped in Payload), its error is caught under
// the Invoker's type; the context object carries Execution.Id (as given),
// Name and StartTime; StateRetryIntervals reaches the named state.
func TestRunSDKIntegrationAndExecutionContext(t *testing.T) {
	t.Parallel()
	def := `{
	  "StartAt": "Get",
	  "States": {
	    "Get": {
	      "Type": "Task", "Resource": "arn:aws:states:::aws-sdk:s3:getObject",
	      "Parameters": {"Bucket": "b", "Key.$": "States.Format('p/{}.json', $.name)"},
	      "ResultSelector": {"body.$": "States.StringToJson($.Body)"},
	      "ResultPath": "$.got",
	      "Retry": [{"ErrorEquals": ["Test.Flaky"], "IntervalSeconds": 30, "MaxAttempts": 1}],
	      "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.err", "Next": "Ctx"}],
	      "Next": "Ctx"
	    },
	    "Ctx": {"Type": "Pass", "Parameters": {"id.$": "$$.Execution.Id", "name.$": "$$.Execution.Name", "start.$": "$$.Execution.StartTime", "got.$": "$.got", "err.$": "$.err"}, "End": true}
	  }
	}`
	var calls atomic.Int64
	invoke := func(ctx context.Context, state string, payload json.RawMessage) (json.RawMessage, error) {
		n := calls.Add(1)
		if state != "Get" || string(payload) != `{"Bucket":"b","Key":"p/x.json"}` {
			return nil, fmt.Errorf("state %s payload %s", state, payload)
		}
		if n == 1 {
			return nil, &rie.FunctionError{Type: "Test.Flaky", Message: "once"}
		}
		return json.RawMessage(`{"Body":"{\"a\":1}","ContentType":"application/json"}`), nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	id := "arn:aws:states:us-east-1:123456789012:execution:sm:my-execution"
	start := time.Now()
	res, err := Run(ctx, Options{Definition: []byte(def), Input: []byte(`{"name":"x","err":null,"got":null}`), Invoke: invoke, ExecutionID: id,
		StateRetryIntervals: map[string]time.Duration{"Get": 10 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	if time.Since(start) > 20*time.Second {
		t.Errorf("the run took %s: the 30 s retry interval was not overridden for Get", time.Since(start))
	}
	var out struct {
		ID, Name, Start string
		Got             struct{ Body map[string]int }
		Err             any
	}
	if err := json.Unmarshal(res.Output, &out); err != nil || res.Failed() {
		t.Fatalf("output %s (%v), error %s %s", res.Output, err, res.ErrorName, res.ErrorCause)
	}
	if out.ID != id || out.Name != "my-execution" || out.Start == "" || out.Got.Body["a"] != 1 || out.Err != nil {
		t.Errorf("output %s: want the execution's id and name, a start time and the parsed Body", res.Output)
	}
	if calls.Load() != 2 {
		t.Errorf("%d calls, want 2 (one retry)", calls.Load())
	}
}
