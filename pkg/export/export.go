// Package export runs a dsync-export snapshot: it pages through every
// directory, user, group and group membership of WorkOS Directory Sync and
// streams them into Parquet, then commits the snapshot with a manifest and
// removes the files of earlier runs of the same date.
//
// An export is three steps, so that it can outlive one Lambda invocation:
//
//   - Plan lists the directories, reads the run's slice of the change log,
//     packs the directories into work units, stores the plan and, last,
//     takes the lease on the date (a later run of the date supersedes an
//     earlier one; a run of another date waits);
//   - RunChunk runs a unit until it is done or its invocation's deadline
//     nears, writes at most one part per table under keys that carry the run,
//     the unit and the chunk, and then a checkpoint the next chunk resumes
//     from;
//   - Commit checks that every unit is done and the lease is still the run's,
//     writes the manifest (the commit, replacing the previous run's), then the
//     snapshots-table row, and only then deletes every object of the date the
//     manifest does not list. Abort removes a failed run's files instead.
//
// Until the manifest is replaced, the date's previous snapshot stays whole.
// AWS Step Functions runs the steps one invocation at a time (template.yaml);
// Run runs them in one process:
//
//	ex := &export.Exporter{Client: client, Store: dst, Config: export.DefaultConfig()}
//	res, err := ex.Run(ctx, export.Target{Date: "2026-11-28", Time: now})
//	if err != nil { ... } // no manifest was written
//	fmt.Println(res.ManifestKey, res.Manifest.Tables["directory_users"].Rows)
//
// The files follow the pipeline:
//
//	export.go       the Exporter, its errors, and Run (every step in one process)
//	config.go       Config, its defaults and checks
//	plan.go         Plan: the directory listing, unit packing, the stored plan
//	modes.go        full or incremental, per directory: the base, reconcile, drift
//	events.go       the change log: the events read, staged, written, chained
//	cost.go         every cost and estimate (requests, seconds, routes)
//	lease.go        who owns a date (the lease) and a unit (the attempt claim)
//	inflight.go     one date in flight at a time
//	unit.go         RunChunk: a unit's chunk, its checkpoint
//	walk.go         a directory's walk: users, groups, memberships
//	delta.go        the delta unit: the base's rows with the events applied
//	tablewriter.go  one Parquet part writer per table
//	commit.go       Commit: the manifest, the snapshots row, the cleanup
//	abort.go        Abort and the recorded failures
//	store.go        the store's JSON helpers and API counts
//	progress.go     progress lines and the live status
package export

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/dsync-export/dsync-export/pkg/objstore"
	"github.com/dsync-export/dsync-export/pkg/snapshot"
	"github.com/dsync-export/dsync-export/pkg/workos"
)

// Target is what a run writes: the snapshot date, the time its rows are
// exported at, and the run (pkg/snapshot and schema.Snapshot name the
// stored snapshot itself).
type Target struct {
	Date    string    // the dt partition, YYYY-MM-DD
	Time    time.Time // the exported_at value of every row
	Trigger string    // what started it, recorded in the manifest
	RunID   string    // the run's id (default: snapshot.NewRunID of the start)
	Demo    bool      // the data is the built-in fake's demo data
}

// Exporter runs exports. Client, Store and Config must be set before Run.
type Exporter struct {
	Client *workos.Client
	Store  objstore.Store
	Log    *slog.Logger
	Config Config
	// Watch, when set, is called about every WatchEvery (default 250 ms)
	// with the export's progress, for a live display; the last call has
	// Status.Final set.
	Watch      func(Status)
	WatchEvery time.Duration

	// Now is the clock of the event cursor and retention checks (nil:
	// time.Now). Tests set it to a fake WorkOS's simulated clock.
	Now func() time.Time

	// tracker is the progress of Run, shared by its chunks (nil: each
	// chunk tracks itself).
	tracker *tracker
}

func (ex *Exporter) now() time.Time {
	if ex.Now != nil {
		return ex.Now()
	}
	return time.Now()
}

// Result is a committed snapshot.
type Result struct {
	Manifest    *snapshot.Manifest
	ManifestKey string
	// StaleDeleted lists the objects of earlier runs of the date (committed
	// or failed) removed after the commit.
	StaleDeleted []string
	Duration     time.Duration
}

// ProgressError is returned when an export stops early (deadline, 401, an
// unrecoverable API or storage error). No manifest was written.
type ProgressError struct {
	Err              error
	DirectoriesDone  int
	DirectoriesTotal int
	RowsWritten      int64
	Hint             string
}

func (e *ProgressError) Error() string {
	msg := fmt.Sprintf("export: failed after %d of %d directories and %d rows; no manifest was written, so the snapshot is not committed: %v",
		e.DirectoriesDone, e.DirectoriesTotal, e.RowsWritten, e.Err)
	if e.Hint != "" {
		msg += ". " + e.Hint
	}
	return msg
}

func (e *ProgressError) Unwrap() error { return e.Err }

// ErrDeadline is wrapped by the error of an export stopped by its deadline.
var ErrDeadline = errors.New("stopped before the invocation deadline")

// ErrAborted is wrapped by the error of a chunk or commit of a run whose
// abort has begun (another unit failed).
var ErrAborted = errors.New("the run is aborted")

// ErrChunkTakenOver is wrapped by the error of a chunk whose unit another
// attempt started meanwhile (a retry while this invocation still ran): the
// later attempt owns the unit, and this one writes neither parts nor a
// checkpoint.
var ErrChunkTakenOver = errors.New("another attempt took over the chunk")

// ErrSuperseded is wrapped by the error of an export whose date was taken
// over by a later run of the same date: the later run commits.
var ErrSuperseded = errors.New("superseded by a later run of the same date")

// run names one run for the lease and the cleanup.
type run struct {
	ex   *Exporter
	cfg  Config
	snap Target
	log  *slog.Logger
	// attempt names this plan invocation's staged files (Plan only).
	attempt string
}

// newRun returns run runID of date, after checking both: the one preamble
// of every step that names a run.
func (ex *Exporter) newRun(date, runID string) (*run, error) {
	if _, err := snapshot.ParseDate(date); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	if !snapshot.ValidRunID(runID) {
		return nil, fmt.Errorf("export: run id %q is not of the form snapshot.NewRunID returns", runID)
	}
	return &run{ex: ex, cfg: ex.Config, snap: Target{Date: date, RunID: runID}, log: ex.logger().With("snapshot_date", date, "run_id", runID)}, nil
}

// other returns another run of the store (a lease's, a chain link's, an
// in-flight marker's), as r sees it.
func (r *run) other(date, runID string) *run {
	return &run{ex: r.ex, cfg: r.cfg, snap: Target{Date: date, RunID: runID}, log: r.log}
}

func (ex *Exporter) logger() *slog.Logger {
	if ex.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return ex.Log
}

// Run exports one snapshot in this process: the plan, every work unit's
// chunks, and the commit, the same steps a Step Functions execution runs
// one invocation at a time. In one process the plan has one unit, so each
// table gets one file. On error nothing is committed, the date keeps its
// previous snapshot, the run's files are removed, and the error says how far
// the run got.
func (ex *Exporter) Run(ctx context.Context, snap Target) (*Result, error) {
	start := time.Now()
	if err := ex.Config.Validate(); err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= ex.Config.DeadlineMargin {
		return nil, fmt.Errorf("export: %w: only %s left before the deadline, less than the %s margin; raise the function timeout", ErrDeadline, time.Until(dl).Round(time.Second), ex.Config.DeadlineMargin)
	}
	p, err := ex.Plan(ctx, snap, PlanOptions{Workers: 1})
	if err != nil {
		return nil, err
	}
	log := ex.logger().With("snapshot_date", p.SnapshotDate, "run_id", p.RunID)
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	tr := newTracker(ex, p, log)
	exr := *ex
	exr.tracker = tr
	r, err := exr.newRun(p.SnapshotDate, p.RunID)
	if err != nil {
		return nil, err
	}
	stopProgress := tr.start(runCtx, cancel, r.checkLease)
	fail := func(err error) error {
		stopProgress()
		if cause := context.Cause(runCtx); cause != nil && errors.Is(cause, ErrSuperseded) {
			err = cause
		}
		st := tr.status()
		if _, aerr := exr.Abort(ctx, p.SnapshotDate, p.RunID); aerr != nil {
			log.Warn("failed run's files not deleted; the next run of the date deletes them", "error", aerr.Error())
		}
		return &ProgressError{Err: err, DirectoriesDone: st.DirectoriesDone, DirectoriesTotal: st.DirectoriesTotal, RowsWritten: st.RowsTotal(), Hint: hintFor(err)}
	}
	for _, u := range p.Units {
		for {
			res, err := exr.RunChunk(runCtx, p.SnapshotDate, p.RunID, u.ID)
			if err != nil {
				return nil, fail(err)
			}
			if res.Done {
				break
			}
			if err := context.Cause(runCtx); err != nil {
				return nil, fail(err)
			}
			// The chunk stopped at the deadline margin: one process cannot go on.
			return nil, fail(fmt.Errorf("%w (the deadline margin is %s)", ErrDeadline, ex.Config.DeadlineMargin))
		}
		tr.unitDone()
	}
	stopProgress()
	res, err := exr.Commit(ctx, p.SnapshotDate, p.RunID)
	if err != nil {
		var ce *commitError
		if errors.As(err, &ce) && ce.keepFiles {
			st := tr.status()
			return nil, &ProgressError{Err: err, DirectoriesDone: st.DirectoriesDone, DirectoriesTotal: st.DirectoriesTotal, RowsWritten: st.RowsTotal(), Hint: hintFor(err)}
		}
		if errors.As(err, &ce) && ce.committed {
			return nil, err
		}
		return nil, fail(err)
	}
	res.Duration = time.Since(start)
	return res, nil
}

// hintFor says how to fix a failed run's cause.
func hintFor(err error) string {
	switch {
	case errors.Is(err, ErrSuperseded):
		return "Another export of the same date started later and owns it now; it commits the snapshot. Run one export per date at a time"
	case errors.Is(err, ErrDeadline):
		return "Run the export through its Step Functions state machine, which resumes across invocations (README, Deployment); or raise the function timeout (at most 900 s), raise EXPORT_CONCURRENCY, or split the export with EXPORT_ORGANIZATION_IDS / EXPORT_DIRECTORY_IDS"
	case workos.IsUnauthorized(err), workos.IsForbidden(err):
		return "Fix the WorkOS API key: store a valid secret key (sk_…) with Directory Sync access"
	}
	return ""
}
