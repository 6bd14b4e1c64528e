// Package export runs a dsync-export snapshot: it pages through every
// directory, user, group and group membership of WorkOS Directory Sync and
// streams them into Parquet, then commits the snapshot with a manifest and
// removes the files of earlier runs of the same date.
//
// An export is three steps, so that it can outlive one Lambda invocation:
//
//   - Plan takes the lease on the date (a later run of the date supersedes an
//     earlier one), lists the directories and packs them into work units;
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
//	res, err := ex.Run(ctx, export.Snapshot{Date: "2026-11-28", Time: now})
//	if err != nil { ... } // no manifest was written
//	fmt.Println(res.ManifestKey, res.Manifest.Tables["directory_users"].Rows)
package export

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/dsync-export/dsync-export/pkg/objstore"
	"github.com/dsync-export/dsync-export/pkg/parquetfile"
	"github.com/dsync-export/dsync-export/pkg/schema"
	"github.com/dsync-export/dsync-export/pkg/snapshot"
	"github.com/dsync-export/dsync-export/pkg/workos"
)

// MembershipAuto chooses by_group or by_user per directory from its counts.
// The other membership modes are the routes of pkg/snapshot (RouteByGroup,
// RouteByUser, RouteLegacy), which force that route for every directory.
const MembershipAuto = "auto"

// MembershipModes lists the valid membership modes.
var MembershipModes = []string{MembershipAuto, snapshot.RouteByGroup, snapshot.RouteByUser, snapshot.RouteLegacy}

// Config tunes an export. The zero value is not valid; start from DefaultConfig.
type Config struct {
	// Concurrency is how many directories a chunk walks at once.
	Concurrency int
	// UserRouteParallelism is how many /directory_groups?user= walks run at
	// once within one directory on the by_user membership route.
	UserRouteParallelism int
	// MembershipMode is auto, by_group, by_user or legacy.
	MembershipMode string
	// OrganizationIDs and DirectoryIDs restrict the export; empty means all.
	OrganizationIDs []string
	DirectoryIDs    []string
	// Order is the list order sent to WorkOS. asc walks oldest first, so
	// records created during the run are still reached at the tail.
	Order workos.Order
	// DeadlineMargin is how long before the context deadline a chunk stops
	// walking, so that it closes its parts and writes its checkpoint (or, in
	// Run, fails cleanly) and is never killed by the Lambda timeout mid-write.
	DeadlineMargin time.Duration
	// PerDirectoryRate and GlobalRate are the WorkOS limits the client paces
	// itself to (requests/s); the route choice uses them for its estimates.
	PerDirectoryRate float64
	GlobalRate       float64
	// Writer configures the Parquet writers.
	Writer parquetfile.Options
	// ProgressEvery is how often a running export logs a progress line
	// (0: never).
	ProgressEvery time.Duration
	// Mode is auto (incremental where safe), full or incremental (fail
	// where a full walk is needed).
	Mode string
	// FullEvery is how often each directory is walked in full anyway (the
	// reconcile that repairs what events miss); 0: never.
	FullEvery time.Duration
	// EventsMargin is the safety margin inside the Events API's 30-day
	// retention: a base whose cursor is older than retention minus it gets
	// a full walk.
	EventsMargin time.Duration
	// EventsSettle is how long before now the event read ends: WorkOS
	// holds fresh events back from cursor reads for a few seconds, so an
	// event still held back is read by the next run, not skipped.
	EventsSettle time.Duration
}

// DefaultConfig returns the defaults chosen by measurement (see README).
func DefaultConfig() Config {
	return Config{
		Concurrency:          32,
		UserRouteParallelism: 8,
		MembershipMode:       MembershipAuto,
		Order:                workos.OrderAsc,
		DeadlineMargin:       60 * time.Second,
		PerDirectoryRate:     4,
		GlobalRate:           100,
		ProgressEvery:        30 * time.Second,
		Mode:                 ModeAuto,
		FullEvery:            7 * 24 * time.Hour,
		EventsMargin:         48 * time.Hour,
		EventsSettle:         2 * time.Minute,
	}
}

// Problem is one invalid field of a Config. Field is the Config field's
// name; callers map it to where the value came from (an environment variable
// or an input field) so the message names what to fix.
type Problem struct {
	Field   string
	Message string
}

// Check is the one place the export's configuration is checked: it returns
// every problem at once.
func (c Config) Check() []Problem {
	var ps []Problem
	bad := func(field, format string, args ...any) {
		ps = append(ps, Problem{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	if c.Concurrency < 1 || c.Concurrency > 1000 {
		bad("Concurrency", "%d must be a whole number from 1 to 1000", c.Concurrency)
	}
	if c.UserRouteParallelism < 1 || c.UserRouteParallelism > 100 {
		bad("UserRouteParallelism", "%d must be a whole number from 1 to 100", c.UserRouteParallelism)
	}
	if !slices.Contains(MembershipModes, c.MembershipMode) {
		bad("MembershipMode", "%q must be one of %s", c.MembershipMode, strings.Join(MembershipModes, ", "))
	}
	if c.Order != workos.OrderAsc && c.Order != workos.OrderDesc {
		bad("Order", "%q must be asc or desc", c.Order)
	}
	for _, id := range c.DirectoryIDs {
		if !strings.HasPrefix(id, workos.DirectoryIDPrefix) || strings.HasPrefix(id, workos.DirectoryUserIDPrefix) || strings.HasPrefix(id, workos.DirectoryGroupIDPrefix) {
			bad("DirectoryIDs", "%q is not a directory ID: it must start with %q (not %q or %q)", id, workos.DirectoryIDPrefix, workos.DirectoryUserIDPrefix, workos.DirectoryGroupIDPrefix)
		}
	}
	for _, id := range c.OrganizationIDs {
		if !strings.HasPrefix(id, "org_") {
			bad("OrganizationIDs", "%q is not an organization ID: it must start with \"org_\"", id)
		}
	}
	if c.DeadlineMargin < 0 {
		bad("DeadlineMargin", "%s must not be negative", c.DeadlineMargin)
	}
	if c.PerDirectoryRate < 0 {
		bad("PerDirectoryRate", "%g must be 0 (off) or a positive number of requests per second", c.PerDirectoryRate)
	}
	if c.GlobalRate < 0 {
		bad("GlobalRate", "%g must be 0 (off) or a positive number of requests per second", c.GlobalRate)
	}
	if c.ProgressEvery < 0 {
		bad("ProgressEvery", "%s must not be negative", c.ProgressEvery)
	}
	if !slices.Contains(Modes, c.Mode) {
		bad("Mode", "%q must be one of %s", c.Mode, strings.Join(Modes, ", "))
	}
	if c.FullEvery < 0 {
		bad("FullEvery", "%s must be 0 (never) or a positive duration such as 168h (7 days)", c.FullEvery)
	}
	if c.EventsMargin < eventsReadSafety || c.EventsMargin >= workos.EventRetention {
		bad("EventsMargin", "%s must be at least %s and less than the Events API's retention of %s", c.EventsMargin, eventsReadSafety, workos.EventRetention)
	}
	if c.EventsSettle < 0 || c.EventsSettle > eventsClockSkew {
		bad("EventsSettle", "%s must be from 0s to %s", c.EventsSettle, eventsClockSkew)
	}
	return ps
}

// Validate returns nil, or one error listing every problem of Check, each
// named with the Config field.
func (c Config) Validate() error {
	ps := c.Check()
	if len(ps) == 0 {
		return nil
	}
	msgs := make([]string, len(ps))
	for i, p := range ps {
		msgs[i] = p.Field + ": " + p.Message
	}
	return fmt.Errorf("export: invalid config: %s", strings.Join(msgs, "; "))
}

// Snapshot names the snapshot to write.
type Snapshot struct {
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
	snap Snapshot
	log  *slog.Logger
	// attempt names this plan invocation's staged files (Plan only).
	attempt string
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
func (ex *Exporter) Run(ctx context.Context, snap Snapshot) (*Result, error) {
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
	r := &run{ex: &exr, cfg: ex.Config, snap: Snapshot{Date: p.SnapshotDate, RunID: p.RunID}, log: log}
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

// listDirectories lists the directories in scope, in a stable order.
func (r *run) listDirectories(ctx context.Context) ([]workos.Directory, error) {
	c := r.ex.Client
	var out []workos.Directory
	switch {
	case len(r.cfg.DirectoryIDs) > 0:
		for _, id := range r.cfg.DirectoryIDs {
			d, err := c.GetDirectory(ctx, id)
			if err != nil {
				return nil, fmt.Errorf("get directory %s (from the configured directory IDs): %w", id, err)
			}
			if len(r.cfg.OrganizationIDs) > 0 && !slices.Contains(r.cfg.OrganizationIDs, d.OrganizationID) {
				continue
			}
			out = append(out, *d)
		}
	case len(r.cfg.OrganizationIDs) > 0:
		for _, org := range r.cfg.OrganizationIDs {
			opts := &workos.ListDirectoriesOptions{ListOptions: workos.ListOptions{Order: r.cfg.Order}, OrganizationID: org}
			for d, err := range c.Directories(ctx, opts) {
				if err != nil {
					return nil, fmt.Errorf("list directories of organization %s: %w", org, err)
				}
				out = append(out, d)
			}
		}
	default:
		opts := &workos.ListDirectoriesOptions{ListOptions: workos.ListOptions{Order: r.cfg.Order}}
		for d, err := range c.Directories(ctx, opts) {
			if err != nil {
				return nil, fmt.Errorf("list directories: %w", err)
			}
			out = append(out, d)
		}
	}
	// Deduplicate (a directory could be named twice in config).
	seen := map[string]bool{}
	uniq := out[:0]
	for _, d := range out {
		if !seen[d.ID] {
			seen[d.ID] = true
			uniq = append(uniq, d)
		}
	}
	return uniq, nil
}

// lease is the content of the lease object of a date (snapshot.LeaseKey):
// the run that owns the date. A run takes the lease by overwriting it, so
// the latest run of a date wins; an earlier run finds another run id there
// and stops with ErrSuperseded instead of committing.
type lease struct {
	RunID     string    `json:"run_id"`
	StartedAt time.Time `json:"started_at"`
	Trigger   string    `json:"trigger,omitempty"`
}

func (r *run) takeLease(ctx context.Context, start time.Time) error {
	key := snapshot.LeaseKey(r.snap.Date)
	if prev, err := r.readLease(ctx); err == nil && prev.RunID != "" && prev.RunID != r.snap.RunID {
		r.log.Info("taking over the date from an earlier run", "earlier_run_id", prev.RunID, "earlier_started_at", prev.StartedAt)
	}
	body, _ := json.Marshal(lease{RunID: r.snap.RunID, StartedAt: start.UTC(), Trigger: r.snap.Trigger})
	if err := r.ex.Store.Put(ctx, key, body, "application/json"); err != nil {
		return fmt.Errorf("export: take the lease on %s (%s): %w", r.snap.Date, key, err)
	}
	return nil
}

func (r *run) readLease(ctx context.Context) (lease, error) {
	var l lease
	b, err := r.ex.Store.Get(ctx, snapshot.LeaseKey(r.snap.Date))
	if err != nil {
		return l, err
	}
	if err := json.Unmarshal(b, &l); err != nil {
		return l, fmt.Errorf("lease %s is not valid JSON: %w", snapshot.LeaseKey(r.snap.Date), err)
	}
	return l, nil
}

// checkLease returns an error wrapping ErrSuperseded when a later run of the
// date has taken the lease, or the lease cannot be read, and one wrapping
// ErrAborted when the run's abort has begun.
func (r *run) checkLease(ctx context.Context) error {
	l, err := r.readLease(ctx)
	if err != nil {
		return fmt.Errorf("check the lease on %s: %w", r.snap.Date, err)
	}
	if l.RunID != r.snap.RunID {
		return fmt.Errorf("%w: run %s (started %s) took over %s from this run %s; it commits the snapshot",
			ErrSuperseded, l.RunID, l.StartedAt.Format(time.RFC3339), r.snap.Date, r.snap.RunID)
	}
	switch _, err := r.ex.Store.Get(ctx, snapshot.AbortedKey(r.snap.Date, r.snap.RunID)); {
	case err == nil:
		return fmt.Errorf("%w: run %s of %s failed and is being aborted", ErrAborted, r.snap.RunID, r.snap.Date)
	case !errors.Is(err, objstore.ErrNotExist):
		return fmt.Errorf("check whether run %s is aborted: %w", r.snap.RunID, err)
	}
	return nil
}

// writeSnapshotRow writes the snapshots table's row of a committed snapshot
// (after the manifest, so the table and the _latest views never name an
// uncommitted run).
func (r *run) writeSnapshotRow(ctx context.Context, m *snapshot.Manifest, committedAt time.Time) error {
	row := m.Row(committedAt)
	key := snapshot.SnapshotRowKey(m.SnapshotDate, m.RunID)
	w, err := parquetfile.NewWriter[schema.Snapshot](func(int) (io.WriteCloser, error) {
		return r.ex.Store.Create(ctx, key, parquetContentType)
	}, parquetfile.Options{Compression: r.cfg.Writer.Compression, Metadata: map[string]string{"snapshot_date": m.SnapshotDate}})
	if err != nil {
		return fmt.Errorf("write %s: %w", key, err)
	}
	if err := w.Write([]schema.Snapshot{row}); err != nil {
		w.Abort(err)
		return fmt.Errorf("write %s: %w", key, err)
	}
	if _, err := w.Close(); err != nil {
		return fmt.Errorf("write %s: %w", key, err)
	}
	return nil
}
