package export

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/dsync-export/dsync-export/pkg/objstore"
	"github.com/dsync-export/dsync-export/pkg/parquetfile"
	"github.com/dsync-export/dsync-export/pkg/schema"
	"github.com/dsync-export/dsync-export/pkg/snapshot"
	"github.com/dsync-export/dsync-export/pkg/version"
)

// ErrUnitNotDone is wrapped by the error of a commit that found a work unit
// unfinished: every unit's chunks must run until done first.
var ErrUnitNotDone = errors.New("a work unit is not done")

// commitError is a commit that failed after its manifest PUT was attempted.
type commitError struct {
	err error
	// keepFiles is set when the manifest PUT failed without an answer: it
	// may have landed, so the run's files must stay.
	keepFiles bool
	// committed is set when the manifest is written but a later step failed.
	committed bool
}

func (e *commitError) Error() string { return e.err.Error() }
func (e *commitError) Unwrap() error { return e.err }

// committedManifest returns the date's manifest when run committed it, nil
// when the date has no manifest or another run's. An error means it could not
// tell: the caller must not act as if the run were not committed.
func (ex *Exporter) committedManifest(ctx context.Context, date, run string) (*snapshot.Manifest, error) {
	b, err := ex.Store.Get(ctx, snapshot.ManifestKey(date))
	if errors.Is(err, objstore.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("export: read the manifest of %s: %w", date, err)
	}
	m, err := snapshot.Unmarshal(b)
	if err != nil {
		return nil, fmt.Errorf("export: the manifest of %s: %w", date, err)
	}
	if m.RunID != run {
		return nil, nil
	}
	return m, nil
}

// Commit is a run's last step. It checks that every unit of the plan is
// done, writes the directories table (from the plan's listing), gives every
// table at least one file, writes the manifest listing every part (the
// commit), then the snapshots-table row, and deletes every other object of
// the date's partitions and the run's plan and checkpoints. A commit of a run
// that is already committed returns its manifest again.
func (ex *Exporter) Commit(ctx context.Context, date, runID string) (*Result, error) {
	start := time.Now()
	r, err := ex.newRun(date, runID)
	if err != nil {
		return nil, err
	}
	if m, err := ex.committedManifest(ctx, date, runID); err != nil {
		return nil, err
	} else if m != nil {
		return r.finishCommitted(ctx, m, start)
	}
	if err := r.checkLease(ctx); err != nil {
		return nil, err
	}
	p, err := loadPlan(ctx, ex.Store, date, runID)
	if err != nil {
		return nil, err
	}
	r.snap.Time = p.SnapshotTime
	tables, dms, api, err := r.gatherUnits(ctx, p)
	if err != nil {
		return nil, err
	}
	if err := r.commitTables(ctx, p, tables); err != nil {
		return nil, err
	}
	dirs, err := planOrder(p, dms)
	if err != nil {
		return nil, err
	}
	events, err := r.commitEvents(ctx, p)
	if err != nil {
		return nil, err
	}
	if err := r.checkLease(ctx); err != nil {
		return nil, err
	}
	m := &snapshot.Manifest{
		FormatVersion:      snapshot.FormatVersion,
		SnapshotDate:       date,
		SnapshotTime:       p.SnapshotTime,
		StartedAt:          p.StartedAt,
		FinishedAt:         time.Now().UTC(),
		DsyncExportVersion: version.Version,
		SchemaVersion:      schema.Version,
		RunID:              runID,
		Demo:               p.Demo,
		Trigger:            p.Trigger,
		Tables:             tables,
		Directories:        dirs,
		API:                api,
		Mode:               snapshotMode(dirs),
		Events:             events,
		WalksEndedAt:       ex.now().UTC().Truncate(time.Millisecond),
	}
	if p.Base != nil {
		m.BaseDate, m.BaseRunID = p.Base.Date, p.Base.RunID
	}
	body, err := m.Marshal()
	if err != nil {
		return nil, fmt.Errorf("export: encode manifest: %w", err)
	}
	key := snapshot.ManifestKey(date)
	// The manifest is the commit: it replaces the previous run's in one PUT.
	if err := ex.Store.Put(ctx, key, body, "application/json"); err != nil {
		// The PUT may have landed with its answer lost: keep this run's
		// files, which that manifest would list; the next run cleans up.
		return nil, &commitError{err: fmt.Errorf("write manifest %s: %w", key, err), keepFiles: true}
	}
	r.log.Info("snapshot committed", "manifest", key, "units", len(p.Units))
	if err := r.writeSnapshotRow(ctx, m, time.Now()); err != nil {
		// The manifest is written, but without its row the snapshots table
		// and the _latest views do not show this run: keep the earlier runs'
		// files and fail, so a rerun exports the date again.
		return nil, &commitError{committed: true, err: fmt.Errorf("export: snapshot %s is committed (%s), but its snapshots table row was not written, so the _latest views do not show it; the earlier runs' files are kept, and a rerun of the date fixes it: %w", date, key, err)}
	}
	return &Result{Manifest: m, ManifestKey: key, StaleDeleted: r.cleanUp(ctx, m), Duration: time.Since(start)}, nil
}

// finishCommitted is a retried commit whose manifest landed (its answer, or
// a later step, failed): it finishes what follows the manifest.
func (r *run) finishCommitted(ctx context.Context, m *snapshot.Manifest, start time.Time) (*Result, error) {
	date, runID := m.SnapshotDate, m.RunID
	r.snap.Time = m.SnapshotTime
	if _, err := r.ex.Store.Get(ctx, snapshot.SnapshotRowKey(date, runID)); errors.Is(err, objstore.ErrNotExist) {
		if err := r.writeSnapshotRow(ctx, m, time.Now()); err != nil {
			return nil, &commitError{committed: true, err: fmt.Errorf("export: snapshot %s is committed, but its snapshots table row was not written: %w", date, err)}
		}
	} else if err != nil {
		return nil, fmt.Errorf("export: check the snapshots row of %s: %w", date, err)
	}
	return &Result{Manifest: m, ManifestKey: snapshot.ManifestKey(date), StaleDeleted: r.cleanUp(ctx, m), Duration: time.Since(start)}, nil
}

// commitTables writes the commit's own parts: the directories table, from
// the plan's listing (a directory deleted mid-export keeps its row, as
// listed, so its partial users and groups still reference it), and an empty
// part of every table the units wrote none of.
func (r *run) commitTables(ctx context.Context, p *Plan, tables map[string]snapshot.TableManifest) error {
	dirRows := make([]schema.Directory, len(p.Directories))
	for i := range p.Directories {
		dirRows[i] = schema.FromDirectory(&p.Directories[i], p.SnapshotTime)
	}
	dt, err := writeCommitTable(ctx, r, schema.TableDirectories, dirRows)
	if err != nil {
		return err
	}
	tables[schema.TableDirectories] = dt
	for _, t := range []string{schema.TableDirectoryUsers, schema.TableDirectoryGroups, schema.TableMemberships} {
		if len(tables[t].Files) > 0 {
			continue
		}
		var err error
		switch t {
		case schema.TableDirectoryUsers:
			tables[t], err = writeCommitTable[schema.DirectoryUser](ctx, r, t, nil)
		case schema.TableDirectoryGroups:
			tables[t], err = writeCommitTable[schema.DirectoryGroup](ctx, r, t, nil)
		default:
			tables[t], err = writeCommitTable[schema.DirectoryGroupMembership](ctx, r, t, nil)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// snapshotMode is incremental when a directory was built from events.
func snapshotMode(dirs []snapshot.DirectoryManifest) string {
	for _, d := range dirs {
		if d.Mode == schema.SnapshotModeIncremental {
			return schema.SnapshotModeIncremental
		}
	}
	return schema.SnapshotModeFull
}

// planOrder returns the directories' manifests in the plan's order.
func planOrder(p *Plan, dms map[string]snapshot.DirectoryManifest) ([]snapshot.DirectoryManifest, error) {
	dirs := make([]snapshot.DirectoryManifest, 0, len(p.Directories))
	for _, d := range p.Directories {
		dm, ok := dms[d.ID]
		if !ok {
			return nil, fmt.Errorf("export: directory %s is in no unit of the plan", d.ID)
		}
		dirs = append(dirs, dm)
	}
	return dirs, nil
}

// gatherUnits checks that every unit of the plan is done and returns its
// files by table, its directories' manifests and the run's API counts.
func (r *run) gatherUnits(ctx context.Context, p *Plan) (map[string]snapshot.TableManifest, map[string]snapshot.DirectoryManifest, snapshot.APIStats, error) {
	tables := map[string]snapshot.TableManifest{}
	dms := map[string]snapshot.DirectoryManifest{}
	api := p.API
	for i := range p.Units {
		u := &p.Units[i]
		var cp Checkpoint
		if err := getJSON(ctx, r.ex.Store, snapshot.CheckpointKey(p.SnapshotDate, p.RunID, u.ID), &cp); err != nil {
			return nil, nil, api, fmt.Errorf("export: %w: unit %s has no checkpoint: %w", ErrUnitNotDone, u.ID, err)
		}
		if !cp.Done {
			return nil, nil, api, fmt.Errorf("export: %w: unit %s stopped after %d chunks; run its chunks until one returns done before the commit", ErrUnitNotDone, u.ID, cp.Chunk)
		}
		for _, t := range schema.Tables() {
			tm := tables[t.Name]
			for _, f := range cp.Tables[t.Name] {
				tm.Rows += f.Rows
				tm.Files = append(tm.Files, f)
			}
			tables[t.Name] = tm
		}
		for _, d := range cp.Directories {
			dms[d.ID] = d.Manifest
		}
		addAPI(&api, cp.API)
	}
	return tables, dms, api, nil
}

// commitEvents writes the run's slice of the change log: the events the
// plan staged, in their dates' partitions, after the files of an earlier run
// of the date it took over, and returns the manifest's events record (nil
// for none).
func (r *run) commitEvents(ctx context.Context, p *Plan) (*snapshot.EventsManifest, error) {
	if p.Events == nil {
		return nil, nil
	}
	em := p.Events.EventsManifest
	if !p.Events.Carried {
		if err := r.checkEventsBase(ctx, p); err != nil {
			return nil, err
		}
	}
	if !p.Events.Carried && !p.Events.Unchanged {
		// The link first: exactly one run extends the chain from a cursor,
		// whatever runs of other dates commit meanwhile.
		if err := r.linkChain(ctx, p); err != nil {
			return nil, err
		}
		em.Link = p.Events.Link // the generation it created
		files, n, err := r.writeEvents(ctx, p.Events)
		if err != nil {
			return nil, err
		}
		em.Files = append(slices.Clip(em.Files), files...)
		em.Events += n
	}
	switch {
	case p.Events.Unchanged && em.Through == (snapshot.EventCursor{}):
		return nil, nil // no chain to leave as it was: the next run starts one
	case !p.Events.Carried || p.Events.CarriedFrom != "":
		return &em, nil
	}
	return nil, nil
}

// cleanUp deletes the stale objects of a committed run's date while the run
// still owns the date, and returns them. Failures are logged: the snapshot
// is committed, and the next run cleans up (verify flags what is left).
func (r *run) cleanUp(ctx context.Context, m *snapshot.Manifest) []string {
	r.clearDateInFlight(ctx)
	if err := r.checkLease(ctx); err != nil {
		// A later run took the date after this commit: its manifest will
		// replace this one and its cleanup will remove these files.
		r.log.Warn("a later run took the date after this commit; it cleans up", "error", err.Error())
		return nil
	}
	stale, err := r.deleteStale(ctx, m)
	if err != nil {
		r.log.Warn("stale objects not deleted", "error", err.Error())
	}
	return stale
}

// writeCommitTable writes rows as the commit's own part of table.
func writeCommitTable[T any](ctx context.Context, r *run, table string, rows []T) (snapshot.TableManifest, error) {
	opts := writerOptions(r.cfg, r.snap.Date)
	key := func(part int) string { return snapshot.PartKey(table, r.snap.Date, r.snap.RunID, part) }
	tw, err := startTable[T](ctx, r.ex.Store, table, key, opts, false)
	if err != nil {
		return snapshot.TableManifest{}, err
	}
	if err := tw.send(ctx, rows); err != nil {
		tw.abort(err)
		return snapshot.TableManifest{}, err
	}
	parts, err := tw.finish()
	if err != nil {
		return snapshot.TableManifest{}, err
	}
	tm := snapshot.TableManifest{Files: filesOf(parts, key)}
	for _, f := range tm.Files {
		tm.Rows += f.Rows
	}
	return tm, nil
}

// deleteStale removes every object of the snapshot's date partitions that
// the manifest does not list, but for this run's snapshots row: committed
// earlier runs, failed or superseded runs, parts of this run's crashed
// chunk attempts, and keys written before run ids. Then it removes the plans
// and checkpoints of this run and of earlier runs. It runs right after this
// run found the lease still its own, so no other run is writing the date.
func (r *run) deleteStale(ctx context.Context, m *snapshot.Manifest) ([]string, error) {
	listed := map[string]bool{}
	for _, k := range m.Keys() {
		listed[k] = true
	}
	listed[snapshot.SnapshotRowKey(m.SnapshotDate, m.RunID)] = true
	stale, err := r.staleData(ctx, m, listed)
	if err != nil {
		return nil, err
	}
	if len(stale) > 0 {
		if err := r.ex.Store.Delete(ctx, stale); err != nil {
			return nil, fmt.Errorf("delete %d stale objects: %w", len(stale), err)
		}
		r.log.Info("stale objects deleted", "count", len(stale))
	}
	// Plans and checkpoints: this run's and earlier runs'. A later run's
	// (run ids sort by start time) may be in progress and keeps its own.
	objs, err := r.ex.Store.List(ctx, snapshot.RunsPrefix(m.SnapshotDate))
	if err != nil {
		return stale, fmt.Errorf("list %s: %w", snapshot.RunsPrefix(m.SnapshotDate), err)
	}
	var runs []string
	for _, o := range objs {
		if run := snapshot.RunOfRunsKey(o.Key); run == "" || run <= m.RunID {
			runs = append(runs, o.Key)
		}
	}
	orphans, err := r.orphanEvents(ctx, m, runs, listed)
	if err != nil {
		return stale, err
	}
	if len(orphans) > 0 {
		if err := r.ex.Store.Delete(ctx, orphans); err != nil {
			return stale, fmt.Errorf("delete %d events files of failed runs: %w", len(orphans), err)
		}
		stale = append(stale, orphans...)
		r.log.Info("failed runs' events files deleted", "count", len(orphans))
	}
	if len(runs) > 0 {
		if err := r.ex.Store.Delete(ctx, runs); err != nil {
			return stale, fmt.Errorf("delete %d plan and checkpoint objects: %w", len(runs), err)
		}
	}
	return stale, nil
}

// staleData lists the objects of the snapshot's date partitions that the
// manifest does not list (listed) and that no later run wrote: a later
// run's files stay, as it may have taken the date since this run's last
// lease check.
func (r *run) staleData(ctx context.Context, m *snapshot.Manifest, listed map[string]bool) ([]string, error) {
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
			if run := snapshot.RunOfKey(o.Key); !listed[o.Key] && (run == "" || run <= m.RunID) {
				stale = append(stale, o.Key)
			}
		}
	}
	return stale, nil
}

// orphanEvents lists the directory_events files of an earlier run of the
// date whose commit failed after it wrote them (its manifest write failed,
// or the process died): its plan, among runs' objects, names their dates.
// The files this manifest took over (listed) stay.
func (r *run) orphanEvents(ctx context.Context, m *snapshot.Manifest, runs []string, listed map[string]bool) ([]string, error) {
	var orphans []string
	for _, k := range runs {
		run := snapshot.RunOfRunsKey(k)
		if run == m.RunID || !strings.HasSuffix(k, "/plan.json") {
			continue
		}
		var op Plan
		if err := getJSON(ctx, r.ex.Store, k, &op); err != nil || op.Events == nil {
			continue
		}
		keys, err := eventFilesOf(ctx, r.ex.Store, run, op.Events.Dates)
		if err != nil {
			return nil, fmt.Errorf("list the events files of run %s: %w", run, err)
		}
		for _, key := range keys {
			if !listed[key] {
				orphans = append(orphans, key)
			}
		}
	}
	return orphans, nil
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
