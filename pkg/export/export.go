// Package export runs one dsync-export snapshot: it pages through every
// directory, user, group and group membership of WorkOS Directory Sync and
// streams them into one Parquet writer per table, then commits the snapshot
// with a manifest and removes the files of earlier runs of the same date.
//
// The commit protocol: a run takes the lease on its date (a later run of the
// date supersedes an earlier one), writes its parts under keys that carry its
// run id, checks that it still holds the lease, writes the manifest (the
// commit, replacing the previous run's), then writes its snapshots-table row
// and only then deletes the earlier runs' files. Until the manifest is
// replaced, the date's previous snapshot stays whole.
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
	"math"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/dsync-export/dsync-export/pkg/objstore"
	"github.com/dsync-export/dsync-export/pkg/parquetfile"
	"github.com/dsync-export/dsync-export/pkg/schema"
	"github.com/dsync-export/dsync-export/pkg/snapshot"
	"github.com/dsync-export/dsync-export/pkg/version"
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
	// Concurrency is how many directories are fetched at once.
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
	// DeadlineMargin is how long before the context deadline the export
	// stops, so that it aborts its uploads cleanly and is never killed by the
	// Lambda timeout mid-write.
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

// ErrSuperseded is wrapped by the error of an export whose date was taken
// over by a later run of the same date: the later run commits.
var ErrSuperseded = errors.New("superseded by a later run of the same date")

// run is the state of one export.
type run struct {
	ex   *Exporter
	cfg  Config
	snap Snapshot
	log  *slog.Logger

	dirs        *tableWriter[schema.Directory]
	users       *tableWriter[schema.DirectoryUser]
	groups      *tableWriter[schema.DirectoryGroup]
	memberships *tableWriter[schema.DirectoryGroupMembership]

	dirsDone atomic.Int64
	progress *tracker
	// keepOwnFiles is set when a failed manifest write may have committed
	// the run after all: then its files must stay.
	keepOwnFiles bool
}

// Run exports one snapshot. On error nothing is committed, the date keeps
// its previous snapshot, and the error says how far the run got.
func (ex *Exporter) Run(ctx context.Context, snap Snapshot) (*Result, error) {
	start := time.Now()
	cfg := ex.Config
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if _, err := snapshot.ParseDate(snap.Date); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	if snap.Time.IsZero() {
		snap.Time = start
	}
	snap.Time = snap.Time.UTC().Truncate(time.Millisecond)
	if snap.RunID == "" {
		snap.RunID = snapshot.NewRunID(start)
	} else if !snapshot.ValidRunID(snap.RunID) {
		return nil, fmt.Errorf("export: run id %q is not of the form snapshot.NewRunID returns", snap.RunID)
	}
	log := ex.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("snapshot_date", snap.Date, "run_id", snap.RunID)
	r := &run{ex: ex, cfg: cfg, snap: snap, log: log}

	// Stop DeadlineMargin before the caller's deadline, so uploads are aborted
	// cleanly and the Lambda runtime never kills the process mid-write.
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if dl, ok := ctx.Deadline(); ok {
		stopAt := dl.Add(-cfg.DeadlineMargin)
		if !stopAt.After(time.Now()) {
			return nil, fmt.Errorf("export: %w: only %s left before the deadline, less than the %s margin; raise the function timeout", ErrDeadline, time.Until(dl).Round(time.Second), cfg.DeadlineMargin)
		}
		timer := time.AfterFunc(time.Until(stopAt), func() { cancel(ErrDeadline) })
		defer timer.Stop()
	}

	// Take the date: a later run of the same date supersedes this one. The
	// date's committed snapshot, if any, is not touched until the commit.
	if err := r.takeLease(runCtx, start); err != nil {
		return nil, err
	}

	statsBefore := ex.Client.Stats()
	directories, err := r.listDirectories(runCtx)
	if err != nil {
		return nil, r.failure(runCtx, err, 0)
	}
	log.Info("directories listed", "count", len(directories))

	r.progress = newTracker(r, directories, statsBefore)
	if err := r.openTables(runCtx); err != nil {
		return nil, err
	}
	stopProgress := r.progress.start(runCtx, cancel) // after openTables: it reads the tables' row counts
	dms, err := r.exportDirectories(runCtx, directories)
	if err == nil {
		// Directory rows go last: a directory deleted mid-export keeps its row
		// (as last seen) so its partial users and groups still reference it.
		rows := make([]schema.Directory, len(directories))
		for i := range directories {
			rows[i] = schema.FromDirectory(&directories[i], snap.Time)
		}
		err = r.dirs.send(runCtx, rows)
	}
	if err == nil {
		err = context.Cause(runCtx) // the deadline may have passed meanwhile
	}
	if err != nil {
		r.abortTables(err)
		stopProgress()
		return nil, r.failure(runCtx, err, len(directories))
	}
	tables, err := r.finishTables()
	stopProgress()
	if err == nil {
		err = context.Cause(runCtx)
	}
	if err == nil {
		err = r.checkLease(runCtx)
	}
	if err != nil {
		return nil, r.failure(runCtx, err, len(directories))
	}

	statsAfter := ex.Client.Stats()
	m := &snapshot.Manifest{
		FormatVersion:      snapshot.FormatVersion,
		SnapshotDate:       snap.Date,
		SnapshotTime:       snap.Time,
		StartedAt:          start.UTC(),
		FinishedAt:         time.Now().UTC(),
		DsyncExportVersion: version.Version,
		SchemaVersion:      schema.Version,
		RunID:              snap.RunID,
		Demo:               snap.Demo,
		Trigger:            snap.Trigger,
		Tables:             tables,
		Directories:        dms,
		API: snapshot.APIStats{
			Requests:    statsAfter.Requests - statsBefore.Requests,
			Pages:       statsAfter.Pages - statsBefore.Pages,
			Retries:     statsAfter.Retries - statsBefore.Retries,
			RateLimited: statsAfter.RateLimited - statsBefore.RateLimited,
		},
	}
	body, err := m.Marshal()
	if err != nil {
		return nil, fmt.Errorf("export: encode manifest: %w", err)
	}
	key := snapshot.ManifestKey(snap.Date)
	// The manifest is written last: it is the commit, and it replaces the
	// previous run's manifest in one PUT. A cancelled run context must not
	// leave a half-committed snapshot, so this uses the caller's ctx.
	if err := ex.Store.Put(ctx, key, body, "application/json"); err != nil {
		// The PUT may have landed with its answer lost: keep this run's
		// files, which that manifest would list; the next run cleans up.
		r.keepOwnFiles = true
		return nil, r.failure(ctx, fmt.Errorf("write manifest %s: %w", key, err), len(directories))
	}
	log.Info("snapshot committed", "manifest", key)
	if err := r.writeSnapshotRow(ctx, m, time.Now()); err != nil {
		// The manifest is written, but without its row the snapshots table
		// and the _latest views do not show this run: keep the earlier runs'
		// files and fail, so the trigger's retry exports the date again.
		return nil, fmt.Errorf("export: snapshot %s is committed (%s), but its snapshots table row was not written, so the _latest views do not show it; the earlier runs' files are kept, and a rerun of the date fixes it: %w", snap.Date, key, err)
	}
	var stale []string
	if err := r.checkLease(ctx); err != nil {
		// A later run took the date after this commit: its manifest will
		// replace this one and its cleanup will remove these files.
		log.Warn("a later run took the date after this commit; it cleans up", "error", err.Error())
	} else if stale, err = r.deleteStale(ctx, m); err != nil {
		// The snapshot is committed; earlier runs' objects are left for the
		// next run (and flagged by verify).
		log.Warn("earlier runs' objects not deleted", "error", err.Error())
	}
	res := &Result{Manifest: m, ManifestKey: key, StaleDeleted: stale, Duration: time.Since(start)}
	return res, nil
}

// removeOwnFiles deletes, best effort, the files this run wrote in the date's
// partitions (parts that rolled over before the run failed), so a failed or
// superseded run leaves nothing for Athena's raw tables to read. It runs on a
// context of its own: the run's may be cancelled by then.
func (r *run) removeOwnFiles(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	var own []string
	for _, t := range schema.Tables() {
		objs, err := r.ex.Store.List(ctx, snapshot.PartitionPrefix(t.Name, r.snap.Date))
		if err != nil {
			r.log.Warn("failed run's files not listed; the next run of the date deletes them", "error", err.Error())
			return
		}
		for _, o := range objs {
			if snapshot.RunOfKey(o.Key) == r.snap.RunID {
				own = append(own, o.Key)
			}
		}
	}
	if len(own) == 0 {
		return
	}
	if err := r.ex.Store.Delete(ctx, own); err != nil {
		r.log.Warn("failed run's files not deleted; the next run of the date deletes them", "count", len(own), "error", err.Error())
		return
	}
	r.log.Info("failed run's files deleted", "count", len(own))
}

func (r *run) failure(ctx context.Context, err error, total int) error {
	if r.users != nil && !r.keepOwnFiles {
		r.removeOwnFiles(ctx)
	}
	if cause := context.Cause(ctx); cause != nil && errors.Is(cause, ErrDeadline) {
		err = fmt.Errorf("%w (the deadline margin is %s)", ErrDeadline, r.cfg.DeadlineMargin)
	} else if cause != nil && errors.Is(cause, ErrSuperseded) {
		err = cause
	}
	var rows int64
	if r.users != nil {
		rows = r.users.Rows() + r.groups.Rows() + r.memberships.Rows()
	}
	pe := &ProgressError{Err: err, DirectoriesDone: int(r.dirsDone.Load()), DirectoriesTotal: total, RowsWritten: rows}
	switch {
	case errors.Is(err, ErrSuperseded):
		pe.Hint = "Another export of the same date started later and owns it now; it commits the snapshot. Run one export per date at a time"
	case errors.Is(err, ErrDeadline):
		pe.Hint = "Raise the function timeout (at most 900 s), raise EXPORT_CONCURRENCY, or split the export with EXPORT_ORGANIZATION_IDS / EXPORT_DIRECTORY_IDS"
	case workos.IsUnauthorized(err), workos.IsForbidden(err):
		pe.Hint = "Fix the WorkOS API key: store a valid secret key (sk_…) with Directory Sync access"
	}
	return pe
}

func (r *run) openTables(ctx context.Context) error {
	var err error
	opts := r.cfg.Writer
	meta := map[string]string{"snapshot_date": r.snap.Date}
	for k, v := range opts.Metadata {
		meta[k] = v
	}
	opts.Metadata = meta
	s, d, run := r.ex.Store, r.snap.Date, r.snap.RunID
	if r.dirs, err = startTable[schema.Directory](ctx, s, schema.TableDirectories, d, run, opts); err != nil {
		return err
	}
	if r.users, err = startTable[schema.DirectoryUser](ctx, s, schema.TableDirectoryUsers, d, run, opts); err != nil {
		r.dirs.abort(err)
		return err
	}
	if r.groups, err = startTable[schema.DirectoryGroup](ctx, s, schema.TableDirectoryGroups, d, run, opts); err != nil {
		r.dirs.abort(err)
		r.users.abort(err)
		return err
	}
	if r.memberships, err = startTable[schema.DirectoryGroupMembership](ctx, s, schema.TableMemberships, d, run, opts); err != nil {
		r.dirs.abort(err)
		r.users.abort(err)
		r.groups.abort(err)
		return err
	}
	return nil
}

func (r *run) abortTables(err error) {
	r.dirs.abort(err)
	r.users.abort(err)
	r.groups.abort(err)
	r.memberships.abort(err)
}

func (r *run) finishTables() (map[string]snapshot.TableManifest, error) {
	out := map[string]snapshot.TableManifest{}
	var firstErr error
	add := func(table string, parts []parquetfile.Part, err error) {
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			return
		}
		tm := snapshot.TableManifest{}
		for _, p := range parts {
			tm.Rows += p.Rows
			tm.Files = append(tm.Files, snapshot.File{Key: snapshot.PartKey(table, r.snap.Date, r.snap.RunID, p.Index), Bytes: p.Bytes, Rows: p.Rows, SHA256: p.SHA256})
		}
		out[table] = tm
	}
	// After a failure the remaining tables are aborted, not committed: a
	// failed run commits as little as possible (and no upload is left open).
	finish := func(table string, f func() ([]parquetfile.Part, error), abort func(error)) {
		if firstErr != nil {
			abort(firstErr)
			return
		}
		parts, err := f()
		add(table, parts, err)
	}
	finish(schema.TableDirectories, r.dirs.finish, r.dirs.abort)
	finish(schema.TableDirectoryUsers, r.users.finish, r.users.abort)
	finish(schema.TableDirectoryGroups, r.groups.finish, r.groups.abort)
	finish(schema.TableMemberships, r.memberships.finish, r.memberships.abort)
	return out, firstErr
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

// exportDirectories fetches every directory with bounded concurrency. Larger
// directories start first so the longest walks overlap the most.
func (r *run) exportDirectories(ctx context.Context, dirs []workos.Directory) ([]snapshot.DirectoryManifest, error) {
	order := make([]int, len(dirs))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return dirSize(&dirs[order[a]]) > dirSize(&dirs[order[b]]) })

	results := make([]snapshot.DirectoryManifest, len(dirs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(r.cfg.Concurrency)
	for _, i := range order {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error {
			r.progress.begin(i)
			defer r.progress.end(i)
			dm, err := r.exportDirectory(gctx, &dirs[i], len(dirs))
			results[i] = dm
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	return results, nil
}

func dirSize(d *workos.Directory) int64 {
	if d.Metadata == nil {
		return math.MaxInt32 // unknown: start early
	}
	return d.Metadata.Users.Active + d.Metadata.Users.Inactive + d.Metadata.Groups
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
// date has taken the lease, or the lease cannot be read.
func (r *run) checkLease(ctx context.Context) error {
	l, err := r.readLease(ctx)
	if err != nil {
		return fmt.Errorf("check the lease on %s: %w", r.snap.Date, err)
	}
	if l.RunID != r.snap.RunID {
		return fmt.Errorf("%w: run %s (started %s) took over %s from this run %s; it commits the snapshot",
			ErrSuperseded, l.RunID, l.StartedAt.Format(time.RFC3339), r.snap.Date, r.snap.RunID)
	}
	return nil
}

// deleteStale removes the objects of every other run of the snapshot's date
// in its table partitions and its snapshots-table partition: committed
// earlier runs, failed or superseded runs, and keys written before run ids.
// It runs right after this run found the lease still its own, so no other
// run is writing the date. Afterwards the partitions hold exactly the
// manifest's objects and this run's snapshots row.
func (r *run) deleteStale(ctx context.Context, m *snapshot.Manifest) ([]string, error) {
	listed := map[string]bool{}
	for _, k := range m.Keys() {
		listed[k] = true
	}
	listed[snapshot.SnapshotRowKey(m.SnapshotDate, m.RunID)] = true
	prefixes := []string{snapshot.PartitionPrefix(schema.TableSnapshots, m.SnapshotDate)}
	for _, t := range schema.Tables() {
		prefixes = append(prefixes, snapshot.PartitionPrefix(t.Name, m.SnapshotDate))
	}
	var stale []string
	for _, p := range prefixes {
		objs, err := r.ex.Store.List(ctx, p)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", p, err)
		}
		for _, o := range objs {
			if listed[o.Key] {
				continue
			}
			if snapshot.RunOfKey(o.Key) != m.RunID {
				stale = append(stale, o.Key)
			}
		}
	}
	if len(stale) == 0 {
		return nil, nil
	}
	if err := r.ex.Store.Delete(ctx, stale); err != nil {
		return nil, fmt.Errorf("delete %d objects of earlier runs: %w", len(stale), err)
	}
	r.log.Info("objects of earlier runs deleted", "count", len(stale))
	return stale, nil
}

// writeSnapshotRow writes the snapshots table's row of a committed snapshot
// (after the manifest, so the table and the _latest views never name an
// uncommitted run).
func (r *run) writeSnapshotRow(ctx context.Context, m *snapshot.Manifest, committedAt time.Time) error {
	row := schema.Snapshot{
		RunID:       m.RunID,
		ExportedAt:  m.SnapshotTime,
		CommittedAt: committedAt.UTC().Truncate(time.Millisecond),
		Mode:        schema.SnapshotModeFull,
		Trigger:     m.Trigger,
		Demo:        m.Demo,
	}
	counts := map[string]*int64{
		schema.TableDirectories:     &row.Directories,
		schema.TableDirectoryUsers:  &row.DirectoryUsers,
		schema.TableDirectoryGroups: &row.Groups,
		schema.TableMemberships:     &row.Memberships,
	}
	for name, t := range m.Tables {
		if c := counts[name]; c != nil {
			*c = t.Rows
		}
		row.Files += int64(len(t.Files))
		for _, f := range t.Files {
			row.Bytes += f.Bytes
		}
	}
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
