package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/aws/aws-lambda-go/lambda/messages"

	"github.com/dsync-export/dsync-export/pkg/export"
	"github.com/dsync-export/dsync-export/pkg/objstore"
	"github.com/dsync-export/dsync-export/pkg/snapshot"
	"github.com/dsync-export/dsync-export/pkg/workos"
)

// The steps of a Step Functions execution (template.yaml, ExportStateMachine).
const (
	StepPlan   = "plan"
	StepUnit   = "unit"
	StepCommit = "commit"
	StepAbort  = "abort"
	// StepFailed records a unit's final error, as the state machine caught
	// it (a crash, a timeout or an out-of-memory exit included), for the
	// abort step and the state machine's failure path.
	StepFailed = "failed"
)

// Event is the function's input: a trigger (see Input), which runs
// the whole export in this invocation, or one step of a state machine
// execution, named by step:
//
//	{"step":"plan","trigger":{"scheduled_time":"…"},"execution":{"id":"arn:…","start_time":"…"}}
//	{"step":"unit","snapshot_date":"2026-12-06","run_id":"…","unit":"0003"}
//	{"step":"commit","snapshot_date":"2026-12-06","run_id":"…"}
//	{"step":"abort","snapshot_date":"2026-12-06","run_id":"…","error":{"Error":"…","Cause":"…"}}
//	{"step":"failed","snapshot_date":"2026-12-06","run_id":"…","unit":"0003","error":{"Error":"…","Cause":"…"}}
type Event struct {
	Input
	Step    string `json:"step,omitempty"`
	Trigger *Input `json:"trigger,omitempty"`
	RunID   string `json:"run_id,omitempty"`
	Unit    string `json:"unit,omitempty"`
	// Error is the error a state machine caught, passed to abort and
	// failed.
	Error *StepError `json:"error,omitempty"`
	// Execution names the state machine execution, passed to plan.
	Execution *Execution `json:"execution,omitempty"`
}

// Execution is the plan step's view of its execution ($$.Execution): every
// invocation of one execution's plan plans the same run (its id comes from
// the execution), and {} means today at the execution's start, so a retried
// plan keeps the date and the run.
type Execution struct {
	ID        string `json:"id"`
	StartTime string `json:"start_time"`
}

// StepError is the error object of a Step Functions Catch.
type StepError struct {
	Error string `json:"Error"`
	Cause string `json:"Cause"`
}

// PlanOutput is the plan step's result: small, whatever the account's size.
type PlanOutput struct {
	Step         string   `json:"step"`
	SnapshotDate string   `json:"snapshot_date"`
	RunID        string   `json:"run_id"`
	Units        []string `json:"units"`
	Workers      int      `json:"workers"`
	Directories  int      `json:"directories"`
}

// UnitOutput is a unit chunk's result; done ends the unit's loop.
type UnitOutput struct {
	Step  string           `json:"step"`
	Unit  string           `json:"unit"`
	Chunk int              `json:"chunk"`
	Done  bool             `json:"done"`
	Files int              `json:"files"`
	Rows  map[string]int64 `json:"rows"`
}

// AbortOutput is the abort step's result: what was deleted, and the error
// the execution fails with. Step Functions reports a Distributed Map's
// failure as States.ExceedToleratedFailureThreshold, so the error is the
// unit's own, as its failed chunk recorded it, or Export.Superseded when a
// later execution owns the date, or else the error the state machine caught.
type AbortOutput struct {
	Step    string `json:"step"`
	Deleted int    `json:"deleted"`
	Error   string `json:"error"`
	Cause   string `json:"cause"`
}

// Error types of the function's failures, as Step Functions sees them (the
// Retry and Catch of template.yaml match these names).
const (
	ErrorSuperseded   = "Export.Superseded"
	ErrorInvalidInput = "Export.InvalidInput"
	ErrorUnauthorized = "Export.Unauthorized"
	ErrorRetryable    = "Export.Retryable"
	ErrorFailed       = "Export.Failed"
	// ErrorBusy: a run of another date is in flight; the state machine
	// retries the plan for hours.
	ErrorBusy = "Export.Busy"
	// ErrorPanic: a bug; the process exits after reporting it, and the
	// state machine retries the step once.
	ErrorPanic = "Export.Panic"
)

// errInput marks a bad event.
var errInput = errors.New("invalid input")

// Invoke serves one Lambda invocation: a step of a state machine execution,
// or (without step) a whole export. Its errors carry the types above.
func (h *handler) Invoke(ctx context.Context, ev Event) (_ any, err error) {
	defer func() {
		if p := recover(); p != nil {
			// A bug. Report it under one name Step Functions can retry,
			// then let the runtime exit: the process may hold broken state.
			h.log.Error("the step panicked; the process exits after this invocation", "step", ev.Step, "snapshot_date", ev.SnapshotDate, "run_id", ev.RunID, "unit", ev.Unit, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			err = messages.InvokeResponse_Error{Type: ErrorPanic, Message: fmt.Sprintf("export: the %s step panicked: %v (a bug in dsync-export: the stack trace is in the function's logs; please report it)", cmp.Or(ev.Step, "export"), p), ShouldExit: true}
		}
	}()
	out, err := h.step(ctx, ev)
	if err != nil {
		return nil, messages.InvokeResponse_Error{Type: errorType(err), Message: err.Error()}
	}
	return out, nil
}

func (h *handler) step(ctx context.Context, ev Event) (any, error) {
	switch ev.Step {
	case "":
		if ev.Trigger != nil || ev.RunID != "" || ev.Unit != "" || ev.Error != nil || ev.Execution != nil {
			return nil, fmt.Errorf("export: %w: trigger, execution, run_id, unit and error belong to a step: add \"step\" (plan, unit, commit or abort), or leave them out to run the whole export", errInput)
		}
		return h.Handle(ctx, ev.Input)
	case StepPlan:
		if !ev.Input.isEmpty() || ev.RunID != "" || ev.Unit != "" || ev.Error != nil {
			return nil, fmt.Errorf("export: %w: the plan step takes only \"trigger\" (the execution's input) and \"execution\"", errInput)
		}
		in := Input{}
		if ev.Trigger != nil {
			in = *ev.Trigger
		}
		return h.plan(ctx, in, ev.Execution)
	case StepUnit, StepCommit, StepAbort, StepFailed:
		rest := ev.Input
		rest.SnapshotDate = ""
		if ev.Trigger != nil || ev.Execution != nil || !rest.isEmpty() {
			return nil, fmt.Errorf("export: %w: the %s step takes only snapshot_date, run_id%s", errInput, ev.Step, map[bool]string{true: " and unit", false: ""}[ev.Step == StepUnit])
		}
		if _, err := snapshot.ParseDate(ev.SnapshotDate); err != nil {
			return nil, fmt.Errorf("export: %w: the %s step's snapshot_date: %w", errInput, ev.Step, err)
		}
		if !snapshot.ValidRunID(ev.RunID) {
			return nil, fmt.Errorf("export: %w: the %s step's run_id %q is not a run id from the plan step", errInput, ev.Step, ev.RunID)
		}
		if unitStep := ev.Step == StepUnit || ev.Step == StepFailed; unitStep != (ev.Unit != "") {
			return nil, fmt.Errorf("export: %w: unit is required by the unit and failed steps and only by them", errInput)
		}
		if (ev.Step == StepFailed) && (ev.Error == nil || ev.Error.Error == "") {
			return nil, fmt.Errorf("export: %w: the failed step takes the caught error as \"error\": {\"Error\":…,\"Cause\":…}", errInput)
		}
		switch ev.Step {
		case StepUnit:
			return h.unit(ctx, ev.SnapshotDate, ev.RunID, ev.Unit)
		case StepFailed:
			return h.failed(ctx, ev.SnapshotDate, ev.RunID, ev.Unit, ev.Error)
		case StepCommit:
			return h.commit(ctx, ev.SnapshotDate, ev.RunID)
		default:
			return h.abort(ctx, ev.SnapshotDate, ev.RunID, ev.Error)
		}
	}
	return nil, fmt.Errorf("export: %w: unknown step %q: want plan, unit, commit or abort (or none, for the whole export)", errInput, ev.Step)
}

// exporter builds the Exporter of one step; workers > 1 gives the client and
// the estimates the worker's share of the global rate.
func (h *handler) exporter(ctx context.Context, cfg export.Config, workers int) (*export.Exporter, error) {
	client, err := h.workosClient(ctx, max(1, workers))
	if err != nil {
		return nil, err
	}
	if cfg.GlobalRate > 0 {
		cfg.GlobalRate /= float64(max(1, workers))
	}
	return &export.Exporter{Client: client, Store: h.sink, Log: h.log, Config: cfg, Watch: h.watch, Now: h.now}, nil
}

func (h *handler) plan(ctx context.Context, in Input, exec *Execution) (any, error) {
	start := h.now()
	var started time.Time
	var runID string
	if exec != nil {
		t, err := workos.ParseTime(exec.StartTime)
		if err != nil || exec.ID == "" {
			return nil, fmt.Errorf("export: %w: the plan step's execution must be {\"id\":\"$$.Execution.Id\",\"start_time\":\"$$.Execution.StartTime\"} (got id %q, start_time %q)", errInput, exec.ID, exec.StartTime)
		}
		started, runID = t, snapshot.ExecutionRunID(t, exec.ID)
	}
	date, trigger, err := in.Resolve(start, started, h.cfg.ProjectionStart)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errInput, err)
	}
	cfg, err := applyInput(&in, h.cfg.Export)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errInput, err)
	}
	if err := h.checkDestination(ctx); err != nil {
		h.log.Error("plan refused: nothing written", "snapshot_date", date, "error", err.Error())
		return nil, err
	}
	ex, err := h.exporter(ctx, cfg, 1)
	if err != nil {
		return nil, err
	}
	var budget time.Duration
	if dl, ok := ctx.Deadline(); ok {
		budget = time.Until(dl) - cfg.DeadlineMargin
	}
	p, err := ex.Plan(ctx, export.Target{Date: date, Time: start, Trigger: trigger, RunID: runID, Demo: h.demo}, export.PlanOptions{Workers: h.cfg.Workers, UnitBudget: budget})
	if err != nil {
		h.log.Error("plan failed", "snapshot_date", date, "error", err.Error())
		return nil, h.keyHint(err)
	}
	return PlanOutput{Step: StepPlan, SnapshotDate: p.SnapshotDate, RunID: p.RunID, Units: p.UnitIDs(), Workers: p.Workers, Directories: len(p.Directories)}, nil
}

func (h *handler) unit(ctx context.Context, date, run, unit string) (any, error) {
	ex, err := h.exporter(ctx, h.cfg.Export, h.cfg.Workers)
	if err != nil {
		return nil, err
	}
	res, err := ex.RunChunk(ctx, date, run, unit)
	if err != nil {
		err = h.keyHint(err)
		h.log.Error("chunk failed; its unit resumes from its last checkpoint", "snapshot_date", date, "run_id", run, "unit", unit, "error", err.Error())
		if !errors.Is(err, export.ErrAborted) && !errors.Is(err, export.ErrSuperseded) && !errors.Is(err, export.ErrChunkTakenOver) {
			// For the abort step: Step Functions passes the unit's own error on
			// as States.ExceedToleratedFailureThreshold.
			if rerr := ex.RecordFailure(ctx, date, run, unit, export.Failure{Error: errorType(err), Cause: err.Error()}); rerr != nil {
				h.log.Warn("the chunk's failure was not recorded for the abort step", "error", rerr.Error())
			}
		}
		return nil, err
	}
	return UnitOutput{Step: StepUnit, Unit: unit, Chunk: res.Chunk, Done: res.Done, Files: res.Files, Rows: res.Checkpoint.Rows()}, nil
}

// failed records the final error of a unit, as the state machine caught
// it: the unit's record (for the abort step) and, if it is the run's first,
// the run's (for the state machine, when the abort step cannot run).
func (h *handler) failed(ctx context.Context, date, run, unit string, caught *StepError) (any, error) {
	// Only the store: no WorkOS client, so no read of the key's secret.
	ex := &export.Exporter{Store: h.sink, Log: h.log, Config: h.cfg.Export, Now: h.now}
	f := export.Failure{Error: caught.Error, Cause: causeMessage(caught.Cause)}
	if err := ex.RecordUnitFailed(ctx, date, run, unit, f); err != nil {
		return nil, err
	}
	h.log.Error("unit failed; the run is aborted", "snapshot_date", date, "run_id", run, "unit", unit, "error", f.Error, "cause", f.Cause)
	return map[string]string{"step": StepFailed, "unit": unit, "error": f.Error}, nil
}

// causeMessage returns the message of a Step Functions Cause: for a Lambda
// function error, a JSON object with errorMessage; otherwise the text.
func causeMessage(cause string) string {
	var fe struct {
		Message string `json:"errorMessage"`
	}
	if json.Unmarshal([]byte(cause), &fe) == nil && fe.Message != "" {
		return fe.Message
	}
	return cause
}

func (h *handler) commit(ctx context.Context, date, run string) (any, error) {
	ex, err := h.exporter(ctx, h.cfg.Export, 1)
	if err != nil {
		return nil, err
	}
	res, err := ex.Commit(ctx, date, run)
	if err != nil {
		h.log.Error("commit failed: no manifest written", "snapshot_date", date, "run_id", run, "error", err.Error())
		h.emit(date, nil, err)
		return nil, err
	}
	// The run's duration is the execution's, from the plan to the commit.
	res.Duration = res.Manifest.FinishedAt.Sub(res.Manifest.StartedAt)
	return h.committed(res, res.Manifest.Trigger), nil
}

func (h *handler) abort(ctx context.Context, date, run string, caught *StepError) (any, error) {
	ex, err := h.exporter(ctx, h.cfg.Export, 1)
	if err != nil {
		return nil, err
	}
	res, err := ex.Abort(ctx, date, run)
	if err != nil {
		return nil, err
	}
	out := AbortOutput{Step: StepAbort, Deleted: res.Deleted, Error: ErrorFailed, Cause: "the execution failed; see the export function's logs"}
	switch {
	case res.Superseded != nil:
		out.Error, out.Cause = ErrorSuperseded, res.Superseded.Error()
	case res.First != nil:
		out.Error, out.Cause = res.First.Error, res.First.Cause
	case len(res.Failures) > 0:
		out.Error, out.Cause = res.Failures[0].Error, res.Failures[0].Cause
	case caught != nil && caught.Error != "":
		out.Error, out.Cause = caught.Error, caught.Cause
	}
	h.log.Error("export failed: the run's files are deleted and the date keeps its previous snapshot",
		"snapshot_date", date, "run_id", run, "deleted", res.Deleted, "error", out.Error, "cause", out.Cause, "committed", res.Committed)
	h.emit(date, nil, errors.New(out.Error))
	return out, nil
}

// keyHint adds where the key comes from to a 401/403, and drops the cached
// key so the next invocation re-reads a rotated secret.
func (h *handler) keyHint(err error) error {
	if workos.IsUnauthorized(err) || workos.IsForbidden(err) {
		h.keys.Invalidate()
		return fmt.Errorf("%w; the key comes from %s: update it with a valid WorkOS secret key that has Directory Sync access", err, h.keysFrom)
	}
	return err
}

// errorType names a failure for Step Functions: only Export.Retryable is
// retried by the state machine.
func errorType(err error) string {
	var api *workos.APIError
	switch {
	case errors.Is(err, export.ErrSuperseded):
		return ErrorSuperseded
	case errors.Is(err, export.ErrBusy):
		return ErrorBusy
	case errors.Is(err, errInput), errors.Is(err, errConfig):
		return ErrorInvalidInput
	case workos.IsUnauthorized(err), workos.IsForbidden(err):
		return ErrorUnauthorized
	case errors.Is(err, export.ErrUnitNotDone), errors.Is(err, export.ErrAborted), errors.Is(err, workos.ErrRepeatedCursor),
		errors.Is(err, export.ErrFullWalkNeeded), errors.Is(err, export.ErrEventsRaced),
		errors.Is(err, workos.ErrEventPayload), errors.Is(err, workos.ErrUnknownEvent), errors.Is(err, workos.ErrInvalidArgument),
		errors.Is(err, objstore.ErrAccessDenied), errors.Is(err, objstore.ErrNoSuchBucket):
		return ErrorFailed
	case errors.As(err, &api) && api.StatusCode >= 400 && api.StatusCode < 500 &&
		api.StatusCode != http.StatusTooManyRequests && api.StatusCode != http.StatusRequestTimeout:
		return ErrorFailed
	}
	return ErrorRetryable
}
