package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/lambda/messages"

	"github.com/dsync-export/dsync-export/pkg/export"
	"github.com/dsync-export/dsync-export/pkg/schema"
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

// TestStepsThroughTheHandler drives a run as the state machine does, with
// the events' JSON decoded as Lambda decodes it: plan, each unit until done,
// commit; then checks the error types that the state machine's Retry and
// Catch match.
func TestStepsThroughTheHandler(t *testing.T) {
	c := startCloud(t, "sk_test_handler")
	c.env["EXPORT_WORKERS"] = "2"
	h, err := newHandler(context.Background(), c.getenv, discardLog, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	h.now = testNow
	ctx := context.Background()
	invoke := func(payload string) (any, error) {
		t.Helper()
		ev, err := decodeEvent(t, []byte(payload))
		if err != nil {
			t.Fatalf("decode %s: %v", payload, err)
		}
		return h.Invoke(ctx, ev)
	}
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
	} {
		if got := errorType(c.err); got != c.want {
			t.Errorf("errorType(%v) = %s, want %s", c.err, got, c.want)
		}
	}
}
