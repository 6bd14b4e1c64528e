package export

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/dsync-export/dsync-export/pkg/objstore"
	"github.com/dsync-export/dsync-export/pkg/snapshot"
)

// One date at a time. Runs of two dates that overlap (an execution longer
// than a day) would each pace themselves to the key's whole rate budget,
// and both extend the change log from the same cursor, so the second to
// commit would fail after doing all its work. So a run's plan starts only
// when no run of another date is in flight: it fails with ErrBusy, which
// the state machine retries for hours (Export.Busy), and the run starts
// once the other one has committed or failed. Runs of the same date are
// not exclusive: the later one supersedes the earlier (the date's lease).
//
// A run in flight is one with an in-flight marker (snapshot.ActiveKey),
// created by its plan once the plan is stored and removed by its commit or
// abort, that can still commit: not committed, not aborted, not superseded
// by a later run of its date, with its plan and no unit failed for good
// (snapshot.RunFailureKey), and written to within InFlightStale (a run
// whose execution was stopped by hand stops counting then).

// ErrBusy is wrapped by the error of a plan that found a run of another
// date in flight: nothing was written, and a later attempt can start.
var ErrBusy = errors.New("a run of another date is in flight")

// InFlightStale is how long a run with a marker may go without writing
// anything under its _runs/ prefix and still count as in flight. A chunk
// writes its attempt marker when it starts and its checkpoint when it ends,
// and lasts at most one Lambda invocation (15 minutes).
const InFlightStale = time.Hour

// inFlight is an in-flight marker's content.
type inFlight struct {
	SnapshotDate string    `json:"snapshot_date"`
	RunID        string    `json:"run_id"`
	StartedAt    time.Time `json:"started_at"`
	Trigger      string    `json:"trigger,omitempty"`
}

// otherRun is a run of another date found in flight.
type otherRun struct {
	date, run    string
	lastProgress time.Time
}

// checkOverlap returns an error wrapping ErrBusy when a run of another date
// is in flight. It deletes the markers of runs that no longer are.
func (r *run) checkOverlap(ctx context.Context) error {
	objs, err := r.ex.Store.List(ctx, snapshot.ActiveDir+"/")
	if err != nil {
		return fmt.Errorf("export: list the runs in flight (%s): %w", snapshot.ActiveDir, err)
	}
	var dead []string
	var busy *otherRun
	for _, o := range objs {
		date, run, ok := snapshot.ParseActiveKey(o.Key)
		if !ok || date == r.snap.Date {
			continue // the same date: the later run supersedes the earlier
		}
		last, live, err := r.runLive(ctx, date, run, o.LastModified)
		if err != nil {
			return err
		}
		if !live {
			dead = append(dead, o.Key)
			continue
		}
		if busy == nil || run < busy.run {
			busy = &otherRun{date: date, run: run, lastProgress: last}
		}
	}
	if len(dead) > 0 {
		if err := r.ex.Store.Delete(ctx, dead); err != nil {
			r.log.Warn("the markers of runs no longer in flight were not deleted", "count", len(dead), "error", err.Error())
		}
	}
	if busy != nil {
		return fmt.Errorf("export: %w: run %s of %s (last progress %s) has not finished; one date exports at a time, so that two runs neither share the WorkOS key's rate budget nor extend the change log from the same cursor. The state machine retries this plan (Export.Busy) until that run commits or fails; it stops counting %s after its last progress, or at once when it is aborted. If you know it is dead (a local run killed), delete %s",
			ErrBusy, busy.run, busy.date, busy.lastProgress.UTC().Format(time.RFC3339), InFlightStale, snapshot.ActiveKey(busy.date, busy.run))
	}
	return nil
}

// runLive reports whether run of date can still commit, and when it last
// wrote anything: not committed, aborted or superseded, with a plan, and
// written to within InFlightStale of now (the wall clock: the store's
// times are). marked is its marker's time.
func (r *run) runLive(ctx context.Context, date, runID string, marked time.Time) (time.Time, bool, error) {
	if m, err := r.ex.committedManifest(ctx, date, runID); err != nil {
		return time.Time{}, false, err
	} else if m != nil {
		return time.Time{}, false, nil
	}
	switch l, err := r.other(date, runID).readLease(ctx); {
	case errors.Is(err, objstore.ErrNotExist):
		// No lease yet: its plan is between the marker and the lease.
	case err != nil:
		return time.Time{}, false, fmt.Errorf("export: check the lease on %s: %w", date, err)
	case l.RunID > runID:
		// A later run of its date took the lease: that run has a marker of
		// its own. (An earlier one: this run's plan has not taken it yet.)
		return time.Time{}, false, nil
	}
	// One listing of the run's prefix: its plan, its abort, a unit failed
	// for good, and its last write.
	objs, err := r.ex.Store.List(ctx, snapshot.RunPrefix(date, runID))
	if err != nil {
		return time.Time{}, false, fmt.Errorf("export: list run %s of %s: %w", runID, date, err)
	}
	last, planned := marked, false
	for _, o := range objs {
		switch o.Key {
		case snapshot.PlanKey(date, runID):
			planned = true
		case snapshot.AbortedKey(date, runID), snapshot.RunFailureKey(date, runID):
			// Aborted, or a unit failed for good: the run cannot commit,
			// even if its abort never runs.
			return o.LastModified, false, nil
		}
		if o.LastModified.After(last) {
			last = o.LastModified
		}
	}
	if !planned || time.Since(last) > InFlightStale {
		return last, false, nil
	}
	return last, true, nil
}

// markInFlight creates the run's in-flight marker.
func (r *run) markInFlight(ctx context.Context, start time.Time) error {
	m := inFlight{SnapshotDate: r.snap.Date, RunID: r.snap.RunID, StartedAt: start.UTC(), Trigger: r.snap.Trigger}
	if err := putJSON(ctx, r.ex.Store, snapshot.ActiveKey(r.snap.Date, r.snap.RunID), m); err != nil {
		return fmt.Errorf("export: mark run %s of %s in flight: %w", r.snap.RunID, r.snap.Date, err)
	}
	return nil
}

// clearInFlight removes the run's in-flight marker (best effort: a marker
// left behind stops counting once its run is committed or aborted).
func (r *run) clearInFlight(ctx context.Context) {
	if err := r.ex.Store.Delete(ctx, []string{snapshot.ActiveKey(r.snap.Date, r.snap.RunID)}); err != nil {
		r.log.Warn("the run's in-flight marker was not deleted; it stops counting as the run is over", "error", err.Error())
	}
}

// clearDateInFlight removes the markers of this run and of the earlier runs
// of its date, once it committed: they can no longer commit (an execution
// whose abort never ran leaves its marker).
func (r *run) clearDateInFlight(ctx context.Context) {
	objs, err := r.ex.Store.List(ctx, snapshot.ActiveDir+"/dt="+r.snap.Date+"/")
	if err != nil {
		r.log.Warn("the date's in-flight markers were not listed", "error", err.Error())
		return
	}
	var keys []string
	for _, o := range objs {
		if _, run, ok := snapshot.ParseActiveKey(o.Key); ok && run <= r.snap.RunID {
			keys = append(keys, o.Key)
		}
	}
	if len(keys) == 0 {
		return
	}
	if err := r.ex.Store.Delete(ctx, keys); err != nil {
		r.log.Warn("the date's in-flight markers were not deleted; they stop counting as their runs are over", "error", err.Error())
	}
}

// newAttempt returns a random token that names one invocation's writes.
func newAttempt() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
