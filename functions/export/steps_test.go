package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda/messages"

	"github.com/dsync-export/dsync-export/pkg/export"
	"github.com/dsync-export/dsync-export/pkg/objstore"
	"github.com/dsync-export/dsync-export/pkg/schema"
	"github.com/dsync-export/dsync-export/pkg/snapshot"
	"github.com/dsync-export/dsync-export/pkg/workos"
)

// decodeEvent decodes b as Lambda does for this function (unknown fields refused).
func decodeEvent(t *testing.T, b []byte) (Event, error) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var ev Event
	err := dec.Decode(&ev)
	return ev, err
}

func errType(err error) string {
	if ie, ok := err.(messages.InvokeResponse_Error); ok {
		return ie.Type
	}
	return "(not an InvokeResponse_Error)"
}

// stepHandler starts a handler on the test cloud (env added to its
// environment) and returns it with a function that invokes it with a JSON
// event, decoded as Lambda decodes it.
func stepHandler(t *testing.T, env map[string]string) (*handler, func(payload string) (any, error)) {
	t.Helper()
	c := startCloud(t, "sk_test_handler")
	for k, v := range env {
		c.env[k] = v
	}
	h, err := newHandler(context.Background(), c.getenv, discardLog, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	h.now = testNow
	return h, func(payload string) (any, error) {
		t.Helper()
		ev, err := decodeEvent(t, []byte(payload))
		if err != nil {
			t.Fatalf("decode %s: %v", payload, err)
		}
		return h.Invoke(context.Background(), ev)
	}
}

// TestStepsThroughTheHandler drives a run as the state machine does, with
// the events' JSON decoded as Lambda decodes it: plan, each unit until done,
// commit; then checks the error types that the state machine's Retry and
// Catch match.
func TestStepsThroughTheHandler(t *testing.T) {
	_, invoke := stepHandler(t, map[string]string{"EXPORT_WORKERS": "2"})
	out, err := invoke(`{"step":"plan","trigger":{"scheduled_time":"2026-11-29T02:00:00Z"}}`)
	if err != nil {
		t.Fatal(err)
	}
	plan := out.(PlanOutput)
	if plan.SnapshotDate != "2026-11-29" || plan.Workers != 2 || len(plan.Units) != 2 || plan.Directories != 2 {
		t.Fatalf("plan output %+v: want 2026-11-29, 2 workers, 2 units, 2 directories", plan)
	}
	for _, u := range plan.Units {
		for i := 0; ; i++ {
			out, err := invoke(`{"step":"unit","snapshot_date":"2026-11-29","run_id":"` + plan.RunID + `","unit":"` + u + `"}`)
			if err != nil {
				t.Fatalf("unit %s: %v", u, err)
			}
			if out.(UnitOutput).Done {
				break
			}
			if i > 10 {
				t.Fatalf("unit %s not done", u)
			}
		}
	}
	out, err = invoke(`{"step":"commit","snapshot_date":"2026-11-29","run_id":"` + plan.RunID + `"}`)
	if err != nil {
		t.Fatal(err)
	}
	sum := out.(Output)
	if sum.RunID != plan.RunID || sum.Trigger != "scheduler" || sum.Rows[schema.TableDirectoryUsers] != 300 {
		t.Errorf("commit output %+v: want run %s, trigger scheduler, 300 users", sum, plan.RunID)
	}

	// A later plan of the date supersedes the committed run's leftover steps.
	later, err := invoke(`{"step":"plan","trigger":{"snapshot_date":"2026-11-29"}}`)
	if err != nil {
		t.Fatal(err)
	}
	_, err = invoke(`{"step":"unit","snapshot_date":"2026-11-29","run_id":"` + plan.RunID + `","unit":"0000"}`)
	if errType(err) != ErrorSuperseded || !strings.Contains(err.Error(), later.(PlanOutput).RunID) {
		t.Errorf("earlier run's chunk: %v (%s), want %s naming the later run", err, errType(err), ErrorSuperseded)
	}
	// Abort reports the real reason: States.ExceedToleratedFailureThreshold
	// is what AWS's Distributed Map says for any failed iteration.
	threshold := `"error":{"Error":"States.ExceedToleratedFailureThreshold","Cause":"The specified tolerated failure threshold was exceeded"}`
	latest, err := invoke(`{"step":"plan","trigger":{"snapshot_date":"2026-11-29"}}`)
	if err != nil {
		t.Fatal(err)
	}
	out, err = invoke(`{"step":"abort","snapshot_date":"2026-11-29","run_id":"` + later.(PlanOutput).RunID + `",` + threshold + `}`)
	if err != nil || out.(AbortOutput).Error != ErrorSuperseded || !strings.Contains(out.(AbortOutput).Cause, latest.(PlanOutput).RunID) || out.(AbortOutput).Deleted == 0 {
		t.Errorf("abort of the superseded run: %+v %v, want its plan deleted and %s naming the later run", out, err, ErrorSuperseded)
	}
	out, err = invoke(`{"step":"abort","snapshot_date":"2026-11-29","run_id":"` + latest.(PlanOutput).RunID + `",` + threshold + `}`)
	if err != nil || out.(AbortOutput).Deleted == 0 || out.(AbortOutput).Error != "States.ExceedToleratedFailureThreshold" {
		t.Errorf("abort: %+v %v, want the plan deleted and the caught error passed on", out, err)
	}
	// The committed run's abort (a commit whose answer was lost) deletes nothing.
	out, err = invoke(`{"step":"abort","snapshot_date":"2026-11-29","run_id":"` + plan.RunID + `",` + threshold + `}`)
	if err != nil || out.(AbortOutput).Deleted != 0 {
		t.Errorf("abort of the committed run: %+v %v, want nothing deleted", out, err)
	}

	for _, bad := range []string{
		`{"step":"unit","snapshot_date":"2026-11-29","run_id":"` + plan.RunID + `"}`,
		`{"step":"unit","snapshot_date":"2026-11-29","run_id":"nope","unit":"0000"}`,
		`{"step":"plan","snapshot_date":"2026-11-29"}`,
		`{"step":"commit","snapshot_date":"2026-11-29","run_id":"` + plan.RunID + `","directory_ids":["directory_x"]}`,
		`{"step":"replan"}`,
		`{"run_id":"` + plan.RunID + `"}`,
		`{"step":"plan","trigger":{"snapshot_date":"2020-01-01"}}`,
	} {
		if _, err := invoke(bad); errType(err) != ErrorInvalidInput {
			t.Errorf("%s: %v (%s), want %s", bad, err, errType(err), ErrorInvalidInput)
		}
	}
	if _, err := decodeEvent(t, []byte(`{"step":"unit","snapshot_date":"2026-11-29","run_id":"x","unit":"0000","chunk":{"done":false}}`)); err == nil {
		t.Error("an unknown field (the loop's chunk result) decoded: the state machine must not pass it")
	}
}

// TestStepEventsDecode: every events/step-*.json decodes strictly.
func TestStepEventsDecode(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "events", "step-*.json"))
	if len(files) < 4 {
		t.Fatalf("found %v, want the plan, unit, commit and abort events", files)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		ev, err := decodeEvent(t, b)
		if err != nil || ev.Step == "" {
			t.Errorf("%s: %v (step %q)", f, err, ev.Step)
		}
	}
}

// TestErrorTypes: only failures a retry can fix are Export.Retryable; the
// incremental mode's refusal and a commit whose events another run took are
// not retried by the state machine.
func TestErrorTypes(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("x: %w", export.ErrSuperseded), ErrorSuperseded},
		{fmt.Errorf("x: %w", export.ErrFullWalkNeeded), ErrorFailed},
		{fmt.Errorf("x: %w", export.ErrEventsRaced), ErrorFailed},
		{fmt.Errorf("x: %w", export.ErrUnitNotDone), ErrorFailed},
		// No retry decodes a malformed event again (issue 18, item 9).
		{fmt.Errorf("x: %w", workos.ErrEventPayload), ErrorFailed},
		{fmt.Errorf("x: %w", workos.ErrUnknownEvent), ErrorFailed},
		{errors.New("connection reset"), ErrorRetryable},
		// Issue 22: a run of another date in flight; the state machine waits.
		{fmt.Errorf("x: %w", export.ErrBusy), ErrorBusy},
	} {
		if got := errorType(c.err); got != c.want {
			t.Errorf("errorType(%v) = %s, want %s", c.err, got, c.want)
		}
	}
}

// panicStore panics on every Put: a bug deep in a step.
type panicStore struct{ objstore.Store }

func (panicStore) Put(context.Context, string, []byte, string) error { panic("boom in Put") }

// TestPanicIsReportedByName (issue 22): a panic in a step reaches Step
// Functions as Export.Panic, which its Retry and Catch name, with the
// runtime told to exit (the process may hold broken state), not as the Go
// type of the panic value.
func TestPanicIsReportedByName(t *testing.T) {
	c := startCloud(t, "sk_test_handler")
	h, err := newHandler(context.Background(), c.getenv, discardLog, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	h.now = testNow
	h.sink = panicStore{h.sink}
	ev, err := decodeEvent(t, []byte(`{"step":"failed","snapshot_date":"2026-11-29","run_id":"20261129T020000.000Z-000000","unit":"0000","error":{"Error":"Runtime.OutOfMemory","Cause":"x"}}`))
	if err != nil {
		t.Fatal(err)
	}
	_, err = h.Invoke(context.Background(), ev)
	var ie messages.InvokeResponse_Error
	if !errors.As(err, &ie) || ie.Type != ErrorPanic || !ie.ShouldExit || !strings.Contains(ie.Message, "boom in Put") || !strings.Contains(ie.Message, "failed step") {
		t.Fatalf("Invoke: %#v, want %s naming the panic and the step, with ShouldExit", err, ErrorPanic)
	}
}

// TestFailedStepRecordsTheUnitsError (issue 22): the failed step records a
// unit's final error as the state machine caught it (a Lambda error's Cause
// is JSON with errorMessage); the first failure of the run is also kept at
// snapshot.RunFailureKey, and abort reports it.
func TestFailedStepRecordsTheUnitsError(t *testing.T) {
	h, invoke := stepHandler(t, nil)
	ctx := context.Background()
	out, err := invoke(`{"step":"plan","trigger":{},"execution":{"id":"arn:aws:states:us-east-1:123456789012:execution:x:e1","start_time":"2026-11-29T01:00:00.000Z"}}`)
	if err != nil {
		t.Fatal(err)
	}
	plan := out.(PlanOutput)
	if want := snapshot.ExecutionRunID(time.Date(2026, 11, 29, 1, 0, 0, 0, time.UTC), "arn:aws:states:us-east-1:123456789012:execution:x:e1"); plan.RunID != want {
		t.Errorf("run id %s, want the execution's %s", plan.RunID, want)
	}
	// The plan retried (its first answer lost): the same run, the same plan.
	again, err := invoke(`{"step":"plan","trigger":{},"execution":{"id":"arn:aws:states:us-east-1:123456789012:execution:x:e1","start_time":"2026-11-29T01:00:00.000Z"}}`)
	if err != nil || again.(PlanOutput).RunID != plan.RunID || !slices.Equal(again.(PlanOutput).Units, plan.Units) {
		t.Fatalf("the retried plan: %+v %v, want run %s again", again, err, plan.RunID)
	}
	oom := `{"Error":"Runtime.OutOfMemory","Cause":"{\"errorMessage\":\"RequestId: 1 Error: Runtime exited with error: signal: killed\",\"errorType\":\"Runtime.OutOfMemory\"}"}`
	if _, err := invoke(`{"step":"failed","snapshot_date":"2026-11-29","run_id":"` + plan.RunID + `","unit":"` + plan.Units[0] + `","error":` + oom + `}`); err != nil {
		t.Fatal(err)
	}
	later := `{"Error":"Export.Retryable","Cause":"later"}`
	if _, err := invoke(`{"step":"failed","snapshot_date":"2026-11-29","run_id":"` + plan.RunID + `","unit":"` + plan.Units[len(plan.Units)-1] + `","error":` + later + `}`); err != nil {
		t.Fatal(err)
	}
	var first export.Failure
	b, err := h.sink.Get(ctx, snapshot.RunFailureKey("2026-11-29", plan.RunID))
	if err != nil || json.Unmarshal(b, &first) != nil || first.Error != "Runtime.OutOfMemory" || first.Cause != "RequestId: 1 Error: Runtime exited with error: signal: killed" {
		t.Fatalf("the run's first failure: %s %v, want the out-of-memory exit with its message", b, err)
	}
	threshold := `"error":{"Error":"States.ExceedToleratedFailureThreshold","Cause":"The specified tolerated failure threshold was exceeded"}`
	out, err = invoke(`{"step":"abort","snapshot_date":"2026-11-29","run_id":"` + plan.RunID + `",` + threshold + `}`)
	if err != nil || out.(AbortOutput).Error != "Runtime.OutOfMemory" {
		t.Errorf("abort: %+v %v, want the run's first failure, Runtime.OutOfMemory", out, err)
	}
	for _, bad := range []string{
		`{"step":"failed","snapshot_date":"2026-11-29","run_id":"` + plan.RunID + `","unit":"0000"}`,
		`{"step":"failed","snapshot_date":"2026-11-29","run_id":"` + plan.RunID + `","error":` + later + `}`,
		`{"step":"plan","trigger":{},"execution":{"id":"","start_time":"2026-11-29T01:00:00Z"}}`,
		`{"step":"plan","trigger":{},"execution":{"id":"x","start_time":"yesterday"}}`,
		`{"step":"commit","snapshot_date":"2026-11-29","run_id":"` + plan.RunID + `","execution":{"id":"x","start_time":"2026-11-29T01:00:00Z"}}`,
	} {
		if _, err := invoke(bad); errType(err) != ErrorInvalidInput {
			t.Errorf("%s: %v (%s), want %s", bad, err, errType(err), ErrorInvalidInput)
		}
	}
}
