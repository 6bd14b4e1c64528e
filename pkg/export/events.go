package export

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/dsync-export/dsync-export/pkg/objstore"
	"github.com/dsync-export/dsync-export/pkg/schema"
	"github.com/dsync-export/dsync-export/pkg/snapshot"
	"github.com/dsync-export/dsync-export/pkg/workos"
)

// Event chain restarts (EventsManifest.Restart).
const (
	RestartFirst     = "first snapshot with events"
	RestartRetention = "the base snapshot's cursor left the Events API's retention; events before range_start were not read"
)

// eventsReadSafety keeps a read from range_start this far inside the Events
// API's retention, so the oldest events are not expiring while read.
const eventsReadSafety = time.Hour

// eventsClockSkew is how far before a cursor's CheckedAt a read from
// range_start begins: an event stamped by WorkOS's clock just before our
// clock's CheckedAt may have become visible only after it. Events already
// read (ids up to the cursor's After, which sort by time) are skipped.
const eventsClockSkew = 5 * time.Minute

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
	// Restarted is set when this run restarted the chain: no directory may
	// then be built from events.
	Restarted bool `json:"restarted,omitempty"`
	// Latest is the run of the latest committed snapshot (on or before the
	// date) when the events were read: the commit checks it is still so.
	Latest string `json:"latest,omitempty"`
	// Unchanged is set when the events could not be read: the run leaves
	// the chain where its base left it and walks every directory in full.
	Unchanged bool `json:"unchanged,omitempty"`

	// net are the events' net creates and deletes per directory, and
	// ambiguous the creates and deletes that a base walked in full may
	// already hold (created before ambiguousUntil); plan only: the drift
	// check. newQuarantined are the events this run quarantined (not those
	// a rerun carried over).
	net                           map[string]*netCount
	ambiguous                     map[string]*netCount
	ambiguousFrom, ambiguousUntil time.Time
	newQuarantined                []snapshot.QuarantinedEvent
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

// netCount is the events' net creates minus deletes of one directory's
// users and groups: the plan's drift check adds them to the base's counts.
type netCount struct{ users, groups int64 }

// errEventsUnread wraps a failed events read: the run walks every directory
// in full and leaves the change log's chain where it was.
var errEventsUnread = errors.New("the Events API could not be read")

// readEvents reads the events after the base snapshot's cursor (or, when
// the chain restarts, those the Events API still keeps) up to now minus
// EventsSettle, and stages them under the run's prefix. The cursor is taken
// here, in the plan, before any directory is walked: a change made during
// the walk is read by the next run, and applying it twice is harmless (see
// fold and the delta unit's updated_at comparison).
//
// The stream is not trusted to be ordered or unique: the cursor is the
// greatest id read, an id read twice or at or below the base's cursor is
// dropped (counted in Duplicates), and an event that does not decode is
// quarantined, not logged, and its directory walked in full.
func (r *run) readEvents(ctx context.Context, b *base, now time.Time) (*EventsPlan, error) {
	if r.pastDate(b) {
		return r.pastDateEvents(b), nil
	}
	ep, through := eventsFromBase(b, r.snap.Date)
	unchanged := *ep // the chain as it stands, should the read fail
	if unchanged.CarriedFrom == "" {
		unchanged.From = through
	}
	unchanged.Through = through
	opts := eventsRange(ep, through, now, r.cfg.EventsSettle)
	readUntil := opts.RangeEnd
	ep.net, ep.ambiguous = map[string]*netCount{}, map[string]*netCount{}
	carriedQ := len(ep.Quarantined)
	// A base directory walked in full holds some of the changes made
	// between its cursor and the end of its walk (at the latest, its
	// commit): their events count either way in the drift check.
	if b != nil && b.m != nil && !ep.Restarted {
		ep.ambiguousFrom, ep.ambiguousUntil = through.CheckedAt, cmp.Or(b.m.WalksEndedAt, b.m.FinishedAt)
	}
	// Events up to the base's cursor are logged: skip them whichever way
	// the read starts (ids sort by time).
	if err := r.streamEvents(ctx, ep, opts, through.After, &through); err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		// The chain stays where it was: the next run reads these events.
		// Every directory is walked in full, so nothing depends on them.
		unchanged.Unchanged = true
		unchanged.ReadError = r.ex.Client.Redact(err.Error())
		unchanged.Link = ""
		r.log.Warn("events not read: every directory is walked in full, and the change log stays where it was", "error", unchanged.ReadError)
		return &unchanged, nil
	}
	through.CheckedAt = readUntil
	ep.Through = through
	ep.newQuarantined = ep.Quarantined[carriedQ:]
	r.countUnsettled(ctx, ep, readUntil, now)
	return ep, nil
}

// pastDateEvents is the events record of a past date's run: later
// snapshots hold the events since its base, so the run keeps the date's
// earlier record as it was (none for a date never exported).
func (r *run) pastDateEvents(b *base) *EventsPlan {
	ep := &EventsPlan{Carried: true}
	if b.m != nil && b.m.SnapshotDate == r.snap.Date && b.m.Events != nil {
		ep.EventsManifest = *b.m.Events
		ep.CarriedFrom = b.m.RunID
	}
	return ep
}

// eventsFromBase starts the run's events record from the base's and
// returns the base's cursor. A rerun of the latest date builds on that
// date's snapshot and takes its events over: its files, and the range they
// cover.
func eventsFromBase(b *base, date string) (*EventsPlan, snapshot.EventCursor) {
	ep := &EventsPlan{}
	if b == nil || b.m == nil {
		return ep, snapshot.EventCursor{}
	}
	ep.Latest = b.m.RunID
	prev := b.m.Events
	if prev == nil {
		return ep, snapshot.EventCursor{}
	}
	if b.m.SnapshotDate == date {
		ep.EventsManifest = *prev
		ep.Files = slices.Clone(prev.Files)
		ep.Quarantined = slices.Clone(prev.Quarantined)
		ep.CarriedFrom = b.m.RunID
		ep.ReadError, ep.Link = "", ""
	} else {
		ep.BaseDate, ep.BaseRunID, ep.From = b.m.SnapshotDate, b.m.RunID, prev.Through
	}
	return ep, prev.Through
}

// eventsRange decides where the read of the events after through starts
// (its cursor, a range_start for a quiet account whose last event expired,
// or the retention's start when the chain restarts, recorded in ep) and
// where it ends: now minus EventsSettle, always after through, so each
// slice's cursor, and so its chain link, is new. It sets ep's chain link.
//
// It is pure: a run's read start is a function of its base's record and the
// clock (TestEventsReadStart).
func eventsRange(ep *EventsPlan, through snapshot.EventCursor, now time.Time, settle time.Duration) *workos.ListEventsOptions {
	opts := &workos.ListEventsOptions{Events: workos.DirectorySyncEvents, ListOptions: workos.ListOptions{Limit: 100, Order: workos.OrderAsc}}
	hasBase := ep.CarriedFrom != "" || ep.BaseRunID != ""
	if hasBase && now.Sub(through.CheckedAt) < workos.EventRetention-eventsReadSafety {
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
		if hasBase {
			ep.Restart = RestartRetention
		}
		ep.RangeStart = now.Add(-workos.EventRetention + eventsReadSafety).UTC().Truncate(time.Millisecond)
		ep.BaseDate, ep.BaseRunID = "", ""
		if ep.CarriedFrom == "" {
			// Ids up to the old chain's last are skipped, so the slice
			// begins after it.
			ep.From = snapshot.EventCursor{After: through.After, AfterTime: through.AfterTime, CheckedAt: ep.RangeStart}
		}
		opts.RangeStart = ep.RangeStart
	}
	ep.Link = snapshot.ChainLinkKey(through, ep.Restarted)
	// The stream's unstable tail is left to the next run: an event WorkOS
	// still holds back is created before readUntil only if it is visible.
	readUntil := now.Add(-settle).UTC().Truncate(time.Millisecond)
	if !readUntil.After(through.CheckedAt) {
		// A rerun moments after its base, a settle raised, a clock behind.
		readUntil = through.CheckedAt.Add(time.Millisecond)
	}
	opts.RangeEnd = readUntil
	if !opts.RangeStart.IsZero() && !opts.RangeStart.Before(readUntil) {
		opts.RangeStart = readUntil.Add(-time.Millisecond)
	}
	return opts
}

// countUnsettled counts, for the drift check, the creates and deletes of
// the unsettled tail (readUntil, now]: the next run logs them, but the
// listing's counts already show them.
func (r *run) countUnsettled(ctx context.Context, ep *EventsPlan, readUntil, now time.Time) {
	tail := &workos.ListEventsOptions{Events: workos.DirectorySyncEvents, ListOptions: workos.ListOptions{Limit: 100, Order: workos.OrderAsc}, RangeStart: readUntil, RangeEnd: now.UTC().Truncate(time.Millisecond)}
	if !tail.RangeStart.Before(tail.RangeEnd) {
		return
	}
	seen := map[string]bool{}
	for e, err := range r.ex.Client.Events(ctx, tail) {
		if err != nil {
			// Only the drift check's precision is lost: say so.
			r.log.Warn("the events' unsettled tail was not read: the drift check may walk a directory in full needlessly", "error", r.ex.Client.Redact(err.Error()))
			return
		}
		if seen[e.ID] || e.ID <= ep.Through.After {
			continue
		}
		seen[e.ID] = true
		if row, err := schema.FromEvent(&e, r.snap.Date); err == nil {
			ep.countTail(&row)
		}
	}
}

// streamEvents reads the events of opts into the run's staged files and ep,
// moving through to the greatest id read.
func (r *run) streamEvents(ctx context.Context, ep *EventsPlan, opts *workos.ListEventsOptions, skipThrough string, through *snapshot.EventCursor) error {
	sw, err := r.stageWriter(ctx)
	if err != nil {
		return err
	}
	var batch []schema.DirectoryEvent
	dates := map[string]bool{}
	seen := map[string]bool{}
	for e, err := range r.ex.Client.Events(ctx, opts) {
		if err != nil {
			sw.abort(err)
			return fmt.Errorf("%w: %w", errEventsUnread, err)
		}
		if e.ID <= skipThrough || seen[e.ID] {
			// A repeated page edge, a double emission, or the base's own.
			ep.Duplicates++
			continue
		}
		seen[e.ID] = true
		if e.ID > through.After {
			*through = snapshot.EventCursor{After: e.ID, AfterTime: e.CreatedAt.UTC().Truncate(time.Millisecond)}
		}
		row, err := schema.FromEvent(&e, r.snap.Date)
		if err != nil {
			q := quarantine(&e, err)
			ep.Quarantined = append(ep.Quarantined, q)
			r.log.Warn("event quarantined: it does not decode; its directory is walked in full",
				"event_id", q.ID, "event", q.Event, "directory_id", q.DirectoryID, "reason", q.Reason)
			continue
		}
		ep.count(&row)
		dates[row.CreatedAt.UTC().Format(schema.PartitionFormat)] = true
		batch = append(batch, row)
		if len(batch) == 500 {
			if err := sw.send(ctx, batch); err != nil {
				sw.abort(err)
				return err
			}
			batch = nil
		}
	}
	if err := sw.send(ctx, batch); err != nil {
		sw.abort(err)
		return err
	}
	parts, err := sw.finish()
	if err != nil {
		return err
	}
	ep.Staged = append(ep.Staged, filesOf(parts, func(part int) string { return snapshot.EventsStageKey(r.snap.Date, r.snap.RunID, r.attempt, part) })...)
	ep.Dates = slices.Sorted(maps.Keys(dates))
	return nil
}

// count adds an event's creates and deletes to its directory's net counts,
// and to its ambiguous ones when a base walked in full may hold it already.
func (ep *EventsPlan) count(row *schema.DirectoryEvent) {
	if !ep.countTail(row) || !row.CreatedAt.After(ep.ambiguousFrom) || row.CreatedAt.After(ep.ambiguousUntil) {
		return
	}
	a := ep.ambiguous[*row.DirectoryID]
	if a == nil {
		a = &netCount{}
		ep.ambiguous[*row.DirectoryID] = a
	}
	switch row.Event {
	case workos.EventUserCreated, workos.EventUserDeleted:
		a.users++
	default:
		a.groups++
	}
}

// countTail adds an event's creates and deletes to its directory's net
// counts, and reports whether it was one.
func (ep *EventsPlan) countTail(row *schema.DirectoryEvent) bool {
	if row.DirectoryID == nil {
		return false
	}
	var du, dg int64
	switch row.Event {
	case workos.EventUserCreated:
		du = 1
	case workos.EventUserDeleted:
		du = -1
	case workos.EventGroupCreated:
		dg = 1
	case workos.EventGroupDeleted:
		dg = -1
	default:
		return false
	}
	n := ep.net[*row.DirectoryID]
	if n == nil {
		n = &netCount{}
		ep.net[*row.DirectoryID] = n
	}
	n.users += du
	n.groups += dg
	return true
}

// quarantine records an event that does not decode: its id, type, time,
// the directory its raw payload names (if it names one), and the decode
// error with the payload's values left out.
func quarantine(e *workos.Event, err error) snapshot.QuarantinedEvent {
	q := snapshot.QuarantinedEvent{ID: e.ID, Event: e.Event, CreatedAt: e.CreatedAt.UTC().Truncate(time.Millisecond), Reason: redactReason(err.Error())}
	var raw struct {
		Object      string `json:"object"`
		ID          any    `json:"id"`
		DirectoryID any    `json:"directory_id"`
	}
	if json.Unmarshal(e.Data, &raw) == nil {
		if s, ok := raw.DirectoryID.(string); ok && workos.CheckDirectoryID(s) == nil {
			q.DirectoryID = s
		} else if s, ok := raw.ID.(string); ok && (e.Event == workos.EventDirectoryActivated || e.Event == workos.EventDirectoryDeleted) && workos.CheckDirectoryID(s) == nil {
			q.DirectoryID = s
		}
	}
	return q
}

// quotedRE matches a quoted value in an error message.
var quotedRE = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|got .*$`)

// redactReason drops the quoted values (and a "got …" tail) of a decode
// error: the reason names what is wrong, never the payload's personal data.
func redactReason(msg string) string {
	msg = quotedRE.ReplaceAllString(msg, "…")
	if len(msg) > 300 {
		msg = msg[:300] + "…"
	}
	return msg
}

// stageWriter opens the writer of the run's staged events.
func (r *run) stageWriter(ctx context.Context) (*tableWriter[schema.DirectoryEvent], error) {
	opts := writerOptions(r.cfg, r.snap.Date)
	key := func(part int) string { return snapshot.EventsStageKey(r.snap.Date, r.snap.RunID, r.attempt, part) }
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
// table, one writer per event date (dt is the event's own UTC date), each
// date's events in id order, and returns the files. The stream's order is
// not trusted: a date's events may be read on either side of another date's,
// so each date is written in one pass over the staged files, and every key
// is written once.
func (r *run) writeEvents(ctx context.Context, ep *EventsPlan) ([]snapshot.File, int64, error) {
	var (
		files []snapshot.File
		n     int64
	)
	opts := writerOptions(r.cfg, r.snap.Date)
	for _, date := range ep.Dates {
		var rows []schema.DirectoryEvent
		err := readStaged(ctx, r.ex.Store, ep, func(e *schema.DirectoryEvent) error {
			if e.CreatedAt.UTC().Format(schema.PartitionFormat) == date {
				rows = append(rows, *e)
			}
			return nil
		})
		if err != nil {
			return nil, 0, fmt.Errorf("export: write the directory_events table: %w", err)
		}
		slices.SortFunc(rows, func(a, b schema.DirectoryEvent) int { return strings.Compare(a.ID, b.ID) })
		key := func(part int) string { return snapshot.PartKey(schema.TableEvents, date, r.snap.RunID, part) }
		tw, err := startTable[schema.DirectoryEvent](ctx, r.ex.Store, schema.TableEvents, key, opts, true)
		if err != nil {
			return nil, 0, fmt.Errorf("export: write the directory_events table: %w", err)
		}
		if err := sendBatches(ctx, tw, rows); err != nil {
			tw.abort(err)
			return nil, 0, fmt.Errorf("export: write the directory_events table: %w", err)
		}
		parts, err := tw.finish()
		if err != nil {
			return nil, 0, fmt.Errorf("export: write the directory_events table: %w", err)
		}
		for _, f := range filesOf(parts, key) {
			files = append(files, f)
			n += f.Rows
		}
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

// linkChain creates the run's chain link (snapshot.ChainLinkKey of where
// its read began) if absent: the one atomic step that lets exactly one run
// extend the change log from a cursor. A link of this run (a retried
// commit) is its own. A link of another run is dead only when that run's
// slice is in no committed manifest and the run can no longer commit
// (another run took its date, it is aborted, or its plan is gone); then the
// run takes the cursor over with the link's next generation, again created
// only if absent (so of two runs that find a link dead, one wins), after
// deleting the dead run's events files. Otherwise the events would be
// logged twice, and the commit fails with ErrEventsRaced.
func (r *run) linkChain(ctx context.Context, p *Plan) error {
	ep := p.Events
	link := snapshot.ChainLink{SnapshotDate: r.snap.Date, RunID: r.snap.RunID, From: ep.From, Through: ep.Through}
	body, err := json.Marshal(link)
	if err != nil {
		return fmt.Errorf("export: encode the chain link: %w", err)
	}
	const generations = 20
	for gen := 1; gen <= generations; gen++ {
		key := chainLinkGen(ep.Link, gen)
		err := r.ex.Store.PutIfAbsent(ctx, key, body, "application/json")
		if err == nil {
			ep.Link = key
			return nil
		}
		if !errors.Is(err, objstore.ErrExist) {
			return fmt.Errorf("export: create the change log's chain link %s: %w", key, err)
		}
		var held snapshot.ChainLink
		if err := getJSON(ctx, r.ex.Store, key, &held); err != nil {
			return fmt.Errorf("export: read the change log's chain link %s: %w", key, err)
		}
		if held.RunID == r.snap.RunID {
			ep.Link = key // a retried commit: this run's own link
			return nil
		}
		dead, err := r.deadLink(ctx, &held)
		if err != nil {
			return err
		}
		if !dead {
			return fmt.Errorf("export: %w: run %s of %s extends the change log from the same cursor (%s), so the events would be logged twice; if that run is still going, let it finish and run the export of %s again; if it died, rerun or abort %s first",
				ErrEventsRaced, held.RunID, held.SnapshotDate, key, r.snap.Date, held.SnapshotDate)
		}
		if err := r.deleteDeadEvents(ctx, &held); err != nil {
			return err
		}
		r.log.Info("taking over a failed run's place in the change log", "link", key, "failed_run_id", held.RunID, "failed_snapshot_date", held.SnapshotDate)
	}
	return fmt.Errorf("export: %w: the change log's cursor %s was taken over %d times; see %s", ErrEventsRaced, ep.Link, generations, snapshot.ChainDir)
}

// chainLinkGen is generation gen of a chain link key (1: the key itself).
func chainLinkGen(key string, gen int) string {
	if gen <= 1 {
		return key
	}
	return fmt.Sprintf("%s.g%d.json", strings.TrimSuffix(key, ".json"), gen)
}

// deleteDeadEvents deletes the directory_events files of a dead link's run
// (its plan names their dates; no committed manifest lists them): an abort
// superseded by a later run of its date leaves them for that run, which may
// have failed too.
func (r *run) deleteDeadEvents(ctx context.Context, l *snapshot.ChainLink) error {
	var dp Plan
	switch err := getJSON(ctx, r.ex.Store, snapshot.PlanKey(l.SnapshotDate, l.RunID), &dp); {
	case errors.Is(err, objstore.ErrNotExist):
		return nil // its abort or a later commit of its date deleted them
	case err != nil:
		return fmt.Errorf("export: read the plan of the failed run %s of %s: %w", l.RunID, l.SnapshotDate, err)
	}
	if dp.Events == nil {
		return nil
	}
	keys, err := eventFilesOf(ctx, r.ex.Store, l.RunID, dp.Events.Dates)
	if err != nil {
		return fmt.Errorf("export: list the events files of the failed run %s: %w", l.RunID, err)
	}
	if len(keys) == 0 {
		return nil
	}
	if err := r.ex.Store.Delete(ctx, keys); err != nil {
		return fmt.Errorf("export: delete the events files of the failed run %s: %w", l.RunID, err)
	}
	r.log.Info("a failed run's events files deleted", "run_id", l.RunID, "count", len(keys))
	return nil
}

// deadLink reports whether a chain link's run can no longer put its slice
// in a committed manifest: its date's manifest does not cover the slice,
// and the run lost its date's lease, is aborted, or has no plan any more.
func (r *run) deadLink(ctx context.Context, l *snapshot.ChainLink) (bool, error) {
	body, err := r.ex.Store.Get(ctx, snapshot.ManifestKey(l.SnapshotDate))
	switch {
	case err == nil:
		m, err := snapshot.Unmarshal(body)
		if err != nil {
			return false, fmt.Errorf("export: the manifest of %s: %w", l.SnapshotDate, err)
		}
		if m.RunID == l.RunID || (m.Events != nil && cursorLE(m.Events.From, l.From) && cursorLE(l.Through, m.Events.Through)) {
			return false, nil // committed, or taken over by a rerun of its date
		}
	case !errors.Is(err, objstore.ErrNotExist):
		return false, fmt.Errorf("export: read the manifest of %s: %w", l.SnapshotDate, err)
	}
	other := r.other(l.SnapshotDate, l.RunID)
	switch err := other.checkLease(ctx); {
	case err == nil:
		// It owns its date: it may still commit while its plan is there.
		switch _, err := r.ex.Store.Get(ctx, snapshot.PlanKey(l.SnapshotDate, l.RunID)); {
		case err == nil:
			return false, nil
		case errors.Is(err, objstore.ErrNotExist):
			return true, nil // its run was cleaned away
		default:
			return false, fmt.Errorf("export: read the plan of run %s of %s: %w", l.RunID, l.SnapshotDate, err)
		}
	case errors.Is(err, ErrSuperseded), errors.Is(err, ErrAborted), errors.Is(err, objstore.ErrNotExist):
		return true, nil // another run took its date, it is aborted, or its date has no lease any more
	default:
		return false, fmt.Errorf("export: %w", err)
	}
}

// cursorLE reports whether cursor a is at or before b.
func cursorLE(a, b snapshot.EventCursor) bool {
	return a.After <= b.After && !a.CheckedAt.After(b.CheckedAt)
}
