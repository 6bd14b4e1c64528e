// Package export runs one dsync-export snapshot: it pages through every
// directory, user, group and group membership of WorkOS Directory Sync and
// streams them into one Parquet writer per table, then commits the snapshot
// with a manifest and removes stale objects of earlier failed attempts.
//
//	ex := &export.Exporter{Client: client, Store: dst, Config: export.DefaultConfig()}
//	res, err := ex.Run(ctx, export.Snapshot{Date: "2026-11-28", Time: now})
//	if err != nil { ... } // no manifest was written
//	fmt.Println(res.ManifestKey, res.Manifest.Tables["directory_users"].Rows)
package export

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dsync-export/dsync-export/pkg/objstore"
	"github.com/dsync-export/dsync-export/pkg/schema"
	"github.com/dsync-export/dsync-export/pkg/snapshot"
	"github.com/dsync-export/dsync-export/pkg/version"
	"github.com/dsync-export/dsync-export/pkg/workos"
)

// Membership modes.
const (
	MembershipAuto    = "auto"     // choose by_group or by_user per directory from its counts
	MembershipByGroup = "by_group" // always GET /directory_users?directory=D&group=G
	MembershipByUser  = "by_user"  // always GET /directory_groups?user=U
	MembershipLegacy  = "legacy"   // the deprecated groups array on users (no extra requests)
)

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
	Writer schema.WriterOptions
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
	}
}

// Validate reports every invalid field at once.
func (c Config) Validate() error {
	var errs []string
	if c.Concurrency < 1 || c.Concurrency > 1000 {
		errs = append(errs, fmt.Sprintf("concurrency %d must be between 1 and 1000", c.Concurrency))
	}
	if c.UserRouteParallelism < 1 || c.UserRouteParallelism > 100 {
		errs = append(errs, fmt.Sprintf("user route parallelism %d must be between 1 and 100", c.UserRouteParallelism))
	}
	switch c.MembershipMode {
	case MembershipAuto, MembershipByGroup, MembershipByUser, MembershipLegacy:
	default:
		errs = append(errs, fmt.Sprintf("membership mode %q must be one of auto, by_group, by_user, legacy", c.MembershipMode))
	}
	switch c.Order {
	case workos.OrderAsc, workos.OrderDesc:
	default:
		errs = append(errs, fmt.Sprintf("order %q must be asc or desc", c.Order))
	}
	for _, id := range c.DirectoryIDs {
		if !strings.HasPrefix(id, workos.DirectoryIDPrefix) || strings.HasPrefix(id, workos.DirectoryUserIDPrefix) || strings.HasPrefix(id, workos.DirectoryGroupIDPrefix) {
			errs = append(errs, fmt.Sprintf("directory ID %q is not a directory ID: it must start with %q (not %q or %q)", id, workos.DirectoryIDPrefix, workos.DirectoryUserIDPrefix, workos.DirectoryGroupIDPrefix))
		}
	}
	for _, id := range c.OrganizationIDs {
		if !strings.HasPrefix(id, "org_") {
			errs = append(errs, fmt.Sprintf("organization ID %q must start with \"org_\"", id))
		}
	}
	if c.DeadlineMargin < 0 {
		errs = append(errs, "deadline margin must not be negative")
	}
	if len(errs) > 0 {
		return fmt.Errorf("export: invalid config: %s", strings.Join(errs, "; "))
	}
	return nil
}

// Snapshot names the snapshot to write.
type Snapshot struct {
	Date    string    // the dt partition, YYYY-MM-DD
	Time    time.Time // the exported_at value of every row
	Trigger string    // what started it, recorded in the manifest
}

// Exporter runs exports. Its fields must be set before Run.
type Exporter struct {
	Client *workos.Client
	Store  objstore.Store
	Log    *slog.Logger
	Config Config
}

// Result is a committed snapshot.
type Result struct {
	Manifest    *snapshot.Manifest
	ManifestKey string
	// StaleDeleted lists objects of earlier attempts removed after the commit.
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

	dirsDone     atomic.Int64
	activeShares atomic.Int64
}

// Run exports one snapshot. On error nothing is committed and the error says
// how far it got.
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
	log := ex.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
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

	// A re-run of a committed date rewrites the same part keys, so the old
	// manifest would soon describe files that changed: withdraw it first. From
	// here until the new manifest is written the date is not committed.
	if err := r.withdrawManifest(runCtx); err != nil {
		return nil, err
	}

	statsBefore := ex.Client.Stats()
	directories, err := r.listDirectories(runCtx)
	if err != nil {
		return nil, r.progress(runCtx, err, 0)
	}
	log.Info("directories listed", "count", len(directories), "snapshot_date", snap.Date)

	if err := r.openTables(runCtx); err != nil {
		return nil, err
	}
	dms, err := r.exportDirectories(runCtx, cancel, directories)
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
		return nil, r.progress(runCtx, err, len(directories))
	}
	tables, err := r.finishTables()
	if err != nil {
		return nil, r.progress(runCtx, err, len(directories))
	}
	if err := context.Cause(runCtx); err != nil {
		return nil, r.progress(runCtx, err, len(directories))
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
	// The manifest is written last: it is the commit. A cancelled run context
	// must not leave a half-committed snapshot, so this uses the caller's ctx.
	if err := ex.Store.Put(ctx, key, body, "application/json"); err != nil {
		return nil, r.progress(ctx, fmt.Errorf("write manifest %s: %w", key, err), len(directories))
	}
	stale, err := r.deleteStale(ctx, m)
	if err != nil {
		// The snapshot is committed; stale objects are left for the next run
		// (and flagged by verify).
		log.Warn("stale objects not deleted", "error", err.Error())
	}
	res := &Result{Manifest: m, ManifestKey: key, StaleDeleted: stale, Duration: time.Since(start)}
	return res, nil
}

func (r *run) progress(ctx context.Context, err error, total int) error {
	if cause := context.Cause(ctx); cause != nil && errors.Is(cause, ErrDeadline) {
		err = fmt.Errorf("%w (the deadline margin is %s)", ErrDeadline, r.cfg.DeadlineMargin)
	}
	var rows int64
	if r.users != nil {
		rows = r.users.Rows() + r.groups.Rows() + r.memberships.Rows()
	}
	pe := &ProgressError{Err: err, DirectoriesDone: int(r.dirsDone.Load()), DirectoriesTotal: total, RowsWritten: rows}
	switch {
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
	s, d := r.ex.Store, r.snap.Date
	if r.dirs, err = startTable[schema.Directory](ctx, s, schema.TableDirectories, d, opts); err != nil {
		return err
	}
	if r.users, err = startTable[schema.DirectoryUser](ctx, s, schema.TableDirectoryUsers, d, opts); err != nil {
		r.dirs.abort(err)
		return err
	}
	if r.groups, err = startTable[schema.DirectoryGroup](ctx, s, schema.TableDirectoryGroups, d, opts); err != nil {
		r.dirs.abort(err)
		r.users.abort(err)
		return err
	}
	if r.memberships, err = startTable[schema.DirectoryGroupMembership](ctx, s, schema.TableMemberships, d, opts); err != nil {
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
	add := func(table string, parts []schema.Part, err error) {
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			return
		}
		tm := snapshot.TableManifest{}
		for _, p := range parts {
			tm.Rows += p.Rows
			tm.Files = append(tm.Files, snapshot.File{Key: snapshot.PartKey(table, r.snap.Date, p.Index), Bytes: p.Bytes, Rows: p.Rows, SHA256: p.SHA256})
		}
		out[table] = tm
	}
	// After a failure the remaining tables are aborted, not committed: a
	// failed run commits as little as possible (and no upload is left open).
	finish := func(table string, f func() ([]schema.Part, error), abort func(error)) {
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
func (r *run) exportDirectories(ctx context.Context, cancel context.CancelCauseFunc, dirs []workos.Directory) ([]snapshot.DirectoryManifest, error) {
	order := make([]int, len(dirs))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return dirSize(&dirs[order[a]]) > dirSize(&dirs[order[b]]) })

	results := make([]snapshot.DirectoryManifest, len(dirs))
	sem := make(chan struct{}, r.cfg.Concurrency)
	var wg sync.WaitGroup
	var once sync.Once
	var firstErr error
	for _, i := range order {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			dm, err := r.exportDirectory(ctx, &dirs[i], len(dirs))
			results[i] = dm
			if err != nil {
				once.Do(func() {
					firstErr = err
					cancel(err)
				})
			}
		}(i)
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
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

// withdrawManifest deletes the manifest of the snapshot's date, if any.
func (r *run) withdrawManifest(ctx context.Context) error {
	key := snapshot.ManifestKey(r.snap.Date)
	objs, err := r.ex.Store.List(ctx, key)
	if err != nil {
		return fmt.Errorf("export: check for an earlier manifest %s: %w", key, err)
	}
	for _, o := range objs {
		if o.Key != key {
			continue
		}
		if err := r.ex.Store.Delete(ctx, []string{key}); err != nil {
			return fmt.Errorf("export: withdraw the earlier manifest %s before re-exporting %s: %w", key, r.snap.Date, err)
		}
		r.log.Warn("re-exporting a committed date: its manifest is withdrawn until this run commits", "manifest", key)
	}
	return nil
}

// deleteStale removes objects in the snapshot's table partitions that the
// manifest does not list: parts of an earlier failed or larger attempt at the
// same date. Afterwards the partitions hold exactly the manifest's objects.
func (r *run) deleteStale(ctx context.Context, m *snapshot.Manifest) ([]string, error) {
	listed := map[string]bool{}
	for _, k := range m.Keys() {
		listed[k] = true
	}
	var stale []string
	for _, t := range schema.Tables() {
		objs, err := r.ex.Store.List(ctx, snapshot.PartitionPrefix(t.Name, m.SnapshotDate))
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", snapshot.PartitionPrefix(t.Name, m.SnapshotDate), err)
		}
		for _, o := range objs {
			if !listed[o.Key] {
				stale = append(stale, o.Key)
			}
		}
	}
	if len(stale) == 0 {
		return nil, nil
	}
	if err := r.ex.Store.Delete(ctx, stale); err != nil {
		return nil, fmt.Errorf("delete %d stale objects: %w", len(stale), err)
	}
	r.log.Info("stale objects deleted", "count", len(stale), "snapshot_date", m.SnapshotDate)
	return stale, nil
}
