package export

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dsync-export/dsync-export/pkg/objstore"
	"github.com/dsync-export/dsync-export/pkg/schema"
	"github.com/dsync-export/dsync-export/pkg/snapshot"
)

// abortEvents returns the directory_events files of the aborted run, which
// its commit may have written before it failed (its plan names their
// dates). When a later run owns the date (superseded), they and the plan
// stay (keepPlan): that run may have taken the files over (a rerun of a
// committed date), and its commit, or whoever takes the run's chain link
// over, deletes them, found through this plan.
func (r *run) abortEvents(ctx context.Context, superseded bool) (keys []string, keepPlan bool, err error) {
	var p Plan
	if err := getJSON(ctx, r.ex.Store, snapshot.PlanKey(r.snap.Date, r.snap.RunID), &p); err != nil || p.Events == nil {
		return nil, false, nil
	}
	if superseded && len(p.Events.Dates) > 0 && !p.Events.Carried && !p.Events.Unchanged {
		r.log.Info("a later run owns the date: the failed run's events files and plan stay for its commit", "snapshot_date", r.snap.Date, "run_id", r.snap.RunID)
		return nil, true, nil
	}
	keys, err = eventFilesOf(ctx, r.ex.Store, r.snap.RunID, p.Events.Dates)
	if err != nil {
		return nil, false, fmt.Errorf("export: list the failed run's events files: %w", err)
	}
	return keys, false, nil
}

// Failure is why a run failed: an error type and a message.
type Failure struct {
	Error string `json:"error"`
	Cause string `json:"cause"`
}

// RecordFailure stores why a chunk of unit failed, so that the run's abort
// can report it (Step Functions passes a Distributed Map's failure on as a
// generic error). A later chunk of the unit that succeeds removes it. Best
// effort: the caller logs the error.
func (ex *Exporter) RecordFailure(ctx context.Context, date, runID, unit string, f Failure) error {
	return ex.recordFailure(ctx, date, runID, unit, f, false)
}

// RecordUnitFailed stores a unit's final error, after the state machine
// gave up on it: the unit's record, as RecordFailure, and, if no unit
// failed for good before, the run's first failure (snapshot.RunFailureKey),
// which the state machine reads when the abort cannot run. A run with that
// record can no longer commit, so it blocks no other date.
func (ex *Exporter) RecordUnitFailed(ctx context.Context, date, runID, unit string, f Failure) error {
	return ex.recordFailure(ctx, date, runID, unit, f, true)
}

func (ex *Exporter) recordFailure(ctx context.Context, date, runID, unit string, f Failure, final bool) error {
	if _, err := snapshot.ParseDate(date); err != nil || !snapshot.ValidRunID(runID) {
		return fmt.Errorf("export: no failure recorded for run %q of %q: not a run", runID, date)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := putJSON(ctx, ex.Store, snapshot.FailureKey(date, runID, unit), f); err != nil {
		return err
	}
	if !final {
		return nil
	}
	if err := putJSONIfAbsent(ctx, ex.Store, snapshot.RunFailureKey(date, runID), f); err != nil && !errors.Is(err, objstore.ErrExist) {
		return fmt.Errorf("export: record the run's first failure: %w", err)
	}
	return nil
}

// AbortResult is what Abort did and found.
type AbortResult struct {
	// Deleted counts the objects removed.
	Deleted int
	// Superseded is set when a later run owns the date: it wraps
	// ErrSuperseded and names that run.
	Superseded error
	// Failures are the failures the run's units recorded, by unit.
	Failures []Failure
	// First is the run's first recorded failure, if any.
	First *Failure
	// Committed is set when the run's manifest is the date's: nothing was
	// aborted.
	Committed bool
}

// Abort removes a failed run's files: its parts in the date's partitions and
// its plan, checkpoints and failure records, after reading those records.
// It first writes the run's aborted marker, which the run's chunks still in
// flight find before their checkpoint: they delete their own parts. It
// leaves the lease and every other run's files alone, and does nothing for
// a run whose manifest is the date's (a commit whose answer was lost).
func (ex *Exporter) Abort(ctx context.Context, date, runID string) (*AbortResult, error) {
	r, err := ex.newRun(date, runID)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 60*time.Second)
	defer cancel()
	res := &AbortResult{}
	if m, err := ex.committedManifest(ctx, date, runID); err != nil {
		return nil, err // never delete what a manifest may list
	} else if m != nil {
		res.Committed = true
		return res, nil
	}
	if err := r.checkLease(ctx); errors.Is(err, ErrSuperseded) {
		res.Superseded = err
	}
	// The marker first: a chunk still in flight checks it before its
	// checkpoint and deletes its own parts. It stays until a later commit of
	// the date removes the run's prefix.
	aborted := snapshot.AbortedKey(date, runID)
	if err := putJSON(ctx, ex.Store, aborted, map[string]any{"run_id": runID, "aborted_at": time.Now().UTC()}); err != nil {
		return nil, fmt.Errorf("export: mark run %s aborted: %w", runID, err)
	}
	r.clearInFlight(ctx)
	var own []string
	for _, t := range schema.Tables() {
		objs, err := ex.Store.List(ctx, snapshot.PartitionPrefix(t.Name, date))
		if err != nil {
			return nil, fmt.Errorf("export: list the failed run's files: %w", err)
		}
		for _, o := range objs {
			if snapshot.RunOfKey(o.Key) == runID {
				own = append(own, o.Key)
			}
		}
	}
	eventFiles, keepPlan, err := r.abortEvents(ctx, res.Superseded != nil)
	if err != nil {
		return nil, err
	}
	own = append(own, eventFiles...)
	objs, err := ex.Store.List(ctx, snapshot.RunPrefix(date, runID))
	if err != nil {
		return nil, fmt.Errorf("export: list the failed run's plan: %w", err)
	}
	for _, o := range objs {
		if o.Key == aborted || (keepPlan && o.Key == snapshot.PlanKey(date, runID)) {
			continue
		}
		if strings.HasSuffix(o.Key, ".failure.json") {
			var f Failure
			if err := getJSON(ctx, ex.Store, o.Key, &f); err == nil {
				res.Failures = append(res.Failures, f)
			}
		}
		if o.Key == snapshot.RunFailureKey(date, runID) {
			var f Failure
			if err := getJSON(ctx, ex.Store, o.Key, &f); err == nil {
				res.First = &f
			}
		}
		own = append(own, o.Key)
	}
	if len(own) == 0 {
		return res, nil
	}
	if err := ex.Store.Delete(ctx, own); err != nil {
		return nil, fmt.Errorf("export: delete the failed run's %d objects: %w", len(own), err)
	}
	res.Deleted = len(own)
	ex.logger().Info("failed run's files deleted", "snapshot_date", date, "run_id", runID, "count", len(own))
	return res, nil
}
