package export

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/dsync-export/dsync-export/pkg/objstore"
	"github.com/dsync-export/dsync-export/pkg/schema"
	"github.com/dsync-export/dsync-export/pkg/snapshot"
	"github.com/dsync-export/dsync-export/pkg/workos"
)

// Export modes (Config.Mode, EXPORT_MODE).
const (
	// ModeAuto builds a directory incrementally where that is safe and walks
	// it in full where it is not (see fullReason).
	ModeAuto = "auto"
	// ModeFull walks every directory.
	ModeFull = "full"
	// ModeIncremental is ModeAuto that fails where a full walk is needed.
	ModeIncremental = "incremental"
)

// Modes lists the valid export modes.
var Modes = []string{ModeAuto, ModeFull, ModeIncremental}

// Reasons a directory is walked in full (DirectoryManifest.ModeReason).
const (
	ReasonRequested    = "full mode requested"
	ReasonNoBase       = "no earlier committed snapshot"
	ReasonPastDate     = "a date before the latest committed snapshot"
	ReasonBaseNoEvents = "the base snapshot has no event cursor"
	ReasonRetention    = "the base snapshot's event cursor is older than the Events API's retention allows"
	ReasonReconcile    = "the periodic full reconcile is due"
	ReasonNewDirectory = "a directory not in the base snapshot"
	ReasonBaseNotOK    = "the directory was not exported whole in the base snapshot"
	ReasonDemoBase     = "the base snapshot is demo data"
)

// Event chain restarts (EventsManifest.Restart).
const (
	RestartFirst     = "first snapshot with events"
	RestartRetention = "the base snapshot's cursor left the Events API's retention; events before range_start were not read"
)

// ErrFullWalkNeeded is wrapped by the plan's error in ModeIncremental when a
// directory needs a full walk.
var ErrFullWalkNeeded = errors.New("a full walk is needed")

// eventsReadSafety keeps a read from range_start this far inside the Events
// API's retention, so the oldest events are not expiring while read.
const eventsReadSafety = time.Hour

// eventsClockSkew is how far before a cursor's CheckedAt a read from
// range_start begins: an event stamped by WorkOS's clock just before our
// clock's CheckedAt may have become visible only after it. Events already
// read (ids up to the cursor's After, which sort by time) are skipped.
const eventsClockSkew = 5 * time.Minute

// DirMode is how a plan exports one directory.
type DirMode struct {
	Mode   string `json:"mode"`
	Reason string `json:"reason,omitempty"`
	// LastFull is the date of the directory's latest full walk.
	LastFull string `json:"last_full"`
}

// EventsPlan is the plan's slice of the change log: the manifest's events
// record without its final files, plus the staged files the plan wrote.
type EventsPlan struct {
	snapshot.EventsManifest
	// Staged are the events in cursor order, at snapshot.EventsStageKey.
	Staged []snapshot.File `json:"staged"`
	// Dates are the event dates (directory_events partitions) of Staged.
	Dates []string `json:"dates,omitempty"`
	// Carried is set when the run takes over the events record of the
	// date's earlier run instead of reading events (a past date).
	Carried bool `json:"carried,omitempty"`
	// Skipped counts the events read of directories outside the export's
	// filters: they are not logged.
	Skipped int64 `json:"skipped,omitempty"`
	// Restarted is set when this run restarted the chain: no directory may
	// then be built from events.
	Restarted bool `json:"restarted,omitempty"`
	// Latest is the run of the latest committed snapshot (on or before the
	// date) when the events were read: the commit checks it is still so.
	Latest string `json:"latest,omitempty"`
}

// base is a committed snapshot that an incremental run builds on.
type base struct {
	m *snapshot.Manifest
	// head is the latest committed snapshot date of the prefix.
	head string
	// dirs indexes m.Directories by id.
	dirs map[string]*snapshot.DirectoryManifest
}

// findBase returns the latest committed snapshot dated on or before date,
// or nil, with the latest committed date of all.
func (r *run) findBase(ctx context.Context) (*base, error) {
	objs, err := r.ex.Store.List(ctx, snapshot.ManifestsDir+"/")
	if err != nil {
		return nil, fmt.Errorf("list the committed snapshots: %w", err)
	}
	var dates []string
	for _, o := range objs {
		if _, d, ok := snapshot.ParseManifestKey(o.Key); ok {
			dates = append(dates, d)
		}
	}
	if len(dates) == 0 {
		return nil, nil
	}
	slices.Sort(dates)
	b := &base{head: dates[len(dates)-1]}
	i, found := slices.BinarySearch(dates, r.snap.Date)
	if !found {
		i--
	}
	if i < 0 {
		return b, nil
	}
	body, err := r.ex.Store.Get(ctx, snapshot.ManifestKey(dates[i]))
	if err != nil {
		return nil, fmt.Errorf("read the base snapshot %s: %w", dates[i], err)
	}
	m, err := snapshot.Unmarshal(body)
	if err != nil {
		return nil, fmt.Errorf("read the base snapshot %s: %w", dates[i], err)
	}
	b.m = m
	b.dirs = make(map[string]*snapshot.DirectoryManifest, len(m.Directories))
	for j := range m.Directories {
		b.dirs[m.Directories[j].ID] = &m.Directories[j]
	}
	return b, nil
}

// lastFull is the date of a base directory's latest full walk.
func lastFull(m *snapshot.Manifest, d *snapshot.DirectoryManifest) string {
	if d.LastFullDate != "" {
		return d.LastFullDate
	}
	return m.SnapshotDate // written before modes: every walk was full
}

// chooseModes decides how each listed directory is exported and how the
// run reads events. mode is the run's mode (Config.Mode, or the input's).
func (r *run) chooseModes(b *base, dirs []workos.Directory, mode string, now time.Time) (map[string]DirMode, error) {
	runWide := ""
	switch {
	case mode == ModeFull:
		runWide = ReasonRequested
	case r.pastDate(b):
		runWide = ReasonPastDate
	case b == nil || b.m == nil:
		runWide = ReasonNoBase
	case b.m.Events == nil:
		runWide = ReasonBaseNoEvents
	case now.Sub(b.m.Events.Through.CheckedAt) > workos.EventRetention-r.cfg.EventsMargin:
		runWide = ReasonRetention
	case b.m.Demo != r.snap.Demo:
		runWide = ReasonDemoBase
	}
	out := make(map[string]DirMode, len(dirs))
	var needFull []string
	for i := range dirs {
		d := &dirs[i]
		dm := DirMode{Mode: schema.SnapshotModeFull, Reason: runWide, LastFull: r.snap.Date}
		if runWide == "" {
			bd := b.dirs[d.ID]
			switch {
			case bd == nil:
				dm.Reason = ReasonNewDirectory
			case bd.Status != snapshot.DirectoryOK:
				dm.Reason = ReasonBaseNotOK
			default:
				lf := lastFull(b.m, bd)
				if due(lf, r.snap.Date, r.cfg.FullEvery) {
					dm.Reason = ReasonReconcile
				} else {
					dm = DirMode{Mode: schema.SnapshotModeIncremental, LastFull: lf}
				}
			}
		}
		if mode == ModeIncremental && dm.Mode == schema.SnapshotModeFull {
			needFull = append(needFull, fmt.Sprintf("%s (%s)", d.ID, dm.Reason))
		}
		out[d.ID] = dm
	}
	if len(needFull) > 0 {
		const show = 5
		more := ""
		if len(needFull) > show {
			more = fmt.Sprintf(" and %d more", len(needFull)-show)
			needFull = needFull[:show]
		}
		return nil, fmt.Errorf("export: %w: EXPORT_MODE is incremental, but %d directories need a full walk: %s%s; run with EXPORT_MODE=auto (or \"mode\": \"full\" in the input) to walk them",
			ErrFullWalkNeeded, len(needFull), strings.Join(needFull, ", "), more)
	}
	return out, nil
}

// pastDate reports whether the run's date is before the latest committed
// snapshot's: the state APIs only show today, and later snapshots hold the
// events since then.
func (r *run) pastDate(b *base) bool {
	return b != nil && b.head != "" && r.snap.Date < b.head
}

// checkEventsBase is the commit's check that the run's slice of the change
// log still continues the latest committed snapshot: a run of another date
// that committed since this one planned took the same events.
func (r *run) checkEventsBase(ctx context.Context, p *Plan) error {
	if p.Events == nil || p.Events.Carried {
		return nil
	}
	b, err := r.findBase(ctx)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	latest, head := "", ""
	if b != nil {
		head = b.head
		if b.m != nil {
			latest = b.m.RunID
		}
	}
	if head > r.snap.Date || latest != p.Events.Latest {
		return fmt.Errorf("export: %w: another run committed a snapshot (now the latest is %s, run %q) since this run read the events after run %q, so they would be logged twice; run the export of %s again",
			ErrEventsRaced, head, latest, p.Events.Latest, r.snap.Date)
	}
	return nil
}

// ErrEventsRaced is wrapped by the commit's error of a run whose change-log
// slice another date's run committed meanwhile: rerunning the date fixes it.
var ErrEventsRaced = errors.New("the events were taken by another run")

// due reports whether a full reconcile last done on lastFull is due on date.
func due(lastFull, date string, every time.Duration) bool {
	if every <= 0 {
		return false
	}
	lf, err1 := snapshot.ParseDate(lastFull)
	d, err2 := snapshot.ParseDate(date)
	if err1 != nil || err2 != nil {
		return true
	}
	return d.Sub(lf) >= every
}

// inScope reports whether an event's directory is within the export's
// filters: events of other directories are not logged.
func (r *run) inScope(row *schema.DirectoryEvent) bool {
	if len(r.cfg.DirectoryIDs) == 0 && len(r.cfg.OrganizationIDs) == 0 {
		return true
	}
	if len(r.cfg.DirectoryIDs) > 0 && (row.DirectoryID == nil || !slices.Contains(r.cfg.DirectoryIDs, *row.DirectoryID)) {
		return false
	}
	if len(r.cfg.OrganizationIDs) > 0 && (row.OrganizationID == nil || !slices.Contains(r.cfg.OrganizationIDs, *row.OrganizationID)) {
		return false
	}
	return true
}

// readEvents reads the events after the base snapshot's cursor (or, when
// the chain restarts, those the Events API still keeps) and stages them
// under the run's prefix. The cursor is taken here, in the plan, before any
// directory is walked: a change made during the walk is read by the next
// run, and applying it twice is harmless (see fold and the delta unit's
// updated_at comparison).
func (r *run) readEvents(ctx context.Context, b *base, now time.Time) (*EventsPlan, error) {
	ep := &EventsPlan{}
	if r.pastDate(b) {
		// A past date: later snapshots hold the events since its base, so
		// the run keeps the date's earlier record as it was (none for a
		// date never exported).
		ep.Carried = true
		if b.m != nil && b.m.SnapshotDate == r.snap.Date && b.m.Events != nil {
			ep.EventsManifest = *b.m.Events
			ep.CarriedFrom = b.m.RunID
		}
		return ep, nil
	}
	opts := &workos.ListEventsOptions{Events: workos.DirectorySyncEvents, ListOptions: workos.ListOptions{Limit: 100, Order: workos.OrderAsc}}
	var prev *snapshot.EventsManifest // the base's record
	if b != nil && b.m != nil {
		prev = b.m.Events
		ep.Latest = b.m.RunID
	}
	through := snapshot.EventCursor{}
	if prev != nil {
		through = prev.Through
		if b.m.SnapshotDate == r.snap.Date {
			// A rerun of the latest date builds on that date's snapshot and
			// takes its events over: its files, and the range they cover.
			ep.EventsManifest = *prev
			ep.Files = slices.Clone(prev.Files)
			ep.CarriedFrom = b.m.RunID
		} else {
			ep.BaseDate, ep.BaseRunID, ep.From = b.m.SnapshotDate, b.m.RunID, prev.Through
		}
	}
	// Events up to the base's cursor are logged: skip them whichever way
	// the read starts (ids sort by time).
	skipThrough := through.After
	if prev != nil && now.Sub(through.CheckedAt) < workos.EventRetention-eventsReadSafety {
		if through.After != "" && now.Sub(through.AfterTime) < workos.EventRetention-eventsReadSafety {
			opts.After = through.After
		} else {
			// The last event read has expired (a quiet account): nothing
			// was created between it and CheckedAt, give or take skew.
			opts.RangeStart = through.CheckedAt.Add(-eventsClockSkew)
		}
	} else {
		// The chain restarts: the events the Events API still keeps.
		ep.Restart, ep.Restarted = RestartFirst, true
		if prev != nil {
			ep.Restart = RestartRetention
		}
		ep.RangeStart = now.Add(-workos.EventRetention + eventsReadSafety).UTC().Truncate(time.Millisecond)
		ep.BaseDate, ep.BaseRunID = "", ""
		if ep.CarriedFrom == "" {
			ep.From = snapshot.EventCursor{CheckedAt: ep.RangeStart}
		}
		opts.RangeStart = ep.RangeStart
	}
	checkedAt := now.UTC().Truncate(time.Millisecond)

	sw, err := r.stageWriter(ctx)
	if err != nil {
		return nil, err
	}
	var batch []schema.DirectoryEvent
	dates := map[string]bool{}
	for e, err := range r.ex.Client.Events(ctx, opts) {
		if err != nil {
			sw.abort(err)
			return nil, fmt.Errorf("read events: %w", err)
		}
		if skipThrough != "" && e.ID <= skipThrough {
			continue
		}
		row, err := schema.FromEvent(&e, r.snap.Date)
		if err != nil {
			sw.abort(err)
			return nil, fmt.Errorf("read events: %w", err)
		}
		through = snapshot.EventCursor{After: e.ID, AfterTime: row.CreatedAt}
		if !r.inScope(&row) {
			ep.Skipped++
			continue
		}
		dates[row.CreatedAt.UTC().Format(schema.PartitionFormat)] = true
		batch = append(batch, row)
		if len(batch) == 500 {
			if err := sw.send(ctx, batch); err != nil {
				sw.abort(err)
				return nil, err
			}
			batch = nil
		}
	}
	if err := sw.send(ctx, batch); err != nil {
		sw.abort(err)
		return nil, err
	}
	parts, err := sw.finish()
	if err != nil {
		return nil, err
	}
	for _, p := range parts {
		ep.Staged = append(ep.Staged, snapshot.File{Key: snapshot.EventsStageKey(r.snap.Date, r.snap.RunID, p.Index), Bytes: p.Bytes, Rows: p.Rows, SHA256: p.SHA256})
	}
	through.CheckedAt = checkedAt
	ep.Through = through
	for d := range dates {
		ep.Dates = append(ep.Dates, d)
	}
	sort.Strings(ep.Dates)
	return ep, nil
}

// stageWriter opens the writer of the run's staged events.
func (r *run) stageWriter(ctx context.Context) (*tableWriter[schema.DirectoryEvent], error) {
	opts := r.cfg.Writer
	opts.Metadata = map[string]string{"snapshot_date": r.snap.Date}
	key := func(part int) string { return snapshot.EventsStageKey(r.snap.Date, r.snap.RunID, part) }
	return startTable[schema.DirectoryEvent](ctx, r.ex.Store, schema.TableEvents, key, opts, true)
}

// readStaged calls fn with the run's staged events in cursor order.
func readStaged(ctx context.Context, s objstore.Store, ep *EventsPlan, fn func(*schema.DirectoryEvent) error) error {
	for _, f := range ep.Staged {
		if err := readParquet(ctx, s, f.Key, fn); err != nil {
			return fmt.Errorf("read the run's staged events: %w", err)
		}
	}
	return nil
}

// writeEvents writes the run's staged events into the directory_events
// table, one partition per event date (the events are in cursor order, so
// each date's events are consecutive), and returns the files.
func (r *run) writeEvents(ctx context.Context, ep *EventsPlan) ([]snapshot.File, int64, error) {
	var (
		files []snapshot.File
		n     int64
		cur   string
		tw    *tableWriter[schema.DirectoryEvent]
		batch []schema.DirectoryEvent
	)
	opts := r.cfg.Writer
	opts.Metadata = map[string]string{"snapshot_date": r.snap.Date}
	flush := func() error {
		if tw == nil {
			return nil
		}
		if err := tw.send(ctx, batch); err != nil {
			tw.abort(err)
			return err
		}
		batch = nil
		parts, err := tw.finish()
		if err != nil {
			return err
		}
		for _, p := range parts {
			files = append(files, snapshot.File{Key: snapshot.PartKey(schema.TableEvents, cur, r.snap.RunID, p.Index), Bytes: p.Bytes, Rows: p.Rows, SHA256: p.SHA256})
			n += p.Rows
		}
		tw = nil
		return nil
	}
	err := readStaged(ctx, r.ex.Store, ep, func(e *schema.DirectoryEvent) error {
		d := e.CreatedAt.UTC().Format(schema.PartitionFormat)
		if d != cur || tw == nil {
			if err := flush(); err != nil {
				return err
			}
			cur = d
			date := d
			var err error
			tw, err = startTable[schema.DirectoryEvent](ctx, r.ex.Store, schema.TableEvents,
				func(part int) string { return snapshot.PartKey(schema.TableEvents, date, r.snap.RunID, part) }, opts, true)
			if err != nil {
				return err
			}
		}
		batch = append(batch, *e)
		if len(batch) == 500 {
			if err := tw.send(ctx, batch); err != nil {
				return err
			}
			batch = nil
		}
		return nil
	})
	if err == nil {
		err = flush()
	} else if tw != nil {
		tw.abort(err)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("export: write the directory_events table: %w", err)
	}
	return files, n, nil
}

// eventFilesOf lists the directory_events files of run in dates.
func eventFilesOf(ctx context.Context, s objstore.Store, run string, dates []string) ([]string, error) {
	var out []string
	for _, d := range dates {
		objs, err := s.List(ctx, snapshot.PartitionPrefix(schema.TableEvents, d))
		if err != nil {
			return nil, err
		}
		for _, o := range objs {
			if snapshot.RunOfKey(o.Key) == run {
				out = append(out, o.Key)
			}
		}
	}
	return out, nil
}
