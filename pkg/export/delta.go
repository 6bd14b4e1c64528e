package export

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/dsync-export/dsync-export/pkg/objstore"
	"github.com/dsync-export/dsync-export/pkg/parquetfile"
	"github.com/dsync-export/dsync-export/pkg/schema"
	"github.com/dsync-export/dsync-export/pkg/snapshot"
	"github.com/dsync-export/dsync-export/pkg/workos"
)

// The delta unit builds the incremental directories of a run: it streams
// the base snapshot's rows of those directories, file by file, applies the
// run's events on the way, and writes the result as the unit's parts. Memory
// holds the events' changes (one entry per changed object), never the base.

// UnitKindDelta marks the plan's delta unit (Unit.Kind).
const UnitKindDelta = "delta"

// deltaTables are the tables a delta unit rebuilds, in order.
var deltaTables = []string{schema.TableDirectoryUsers, schema.TableDirectoryGroups, schema.TableMemberships}

// deltaState is where a delta unit stands, in its checkpoint.
type deltaState struct {
	// Table indexes deltaTables; File is the next base file of that table.
	Table int `json:"table"`
	File  int `json:"file"`
	// Kept are the ids whose base row was newer than their events: the
	// base row was written, so the event's row is not.
	Kept []string `json:"kept,omitempty"`
	Done bool     `json:"done,omitempty"`
}

// change is the latest state of one object after the run's events.
type change[T any] struct {
	dir     string
	deleted bool
	row     T
	updated time.Time
	// seq is the event's place in id order (from 1): a membership counts
	// only when it comes after its user's and group's last deletion.
	seq int
}

// memberKey is a (group, user) pair.
type memberKey struct{ group, user string }

// changes are the run's events folded per object, for the delta unit's
// directories.
type changes struct {
	users   map[string]*change[schema.DirectoryUser]
	groups  map[string]*change[schema.DirectoryGroup]
	members map[memberKey]*change[bool]
	// ended is the seq of each user's or group's last deletion: every
	// membership before it ended with it, even when the object was then
	// created again with the same id.
	ended   map[string]int
	applied map[string]int64 // events per directory
	// rejected counts, per directory, the events whose payload ids are
	// malformed or name another directory; sample is the first, redacted.
	rejected             map[string]int64
	sample, sampleReason string
	redact               func(string) string
}

// loadChanges folds the run's staged events of dirs into changes in id
// order (ids sort by creation; the stream's own order is not trusted): the
// last event of an object wins unless it is older (by updated_at) than what
// is held. An event whose ids are malformed is rejected like a listed row
// (see dirWalk.accept): counted, and its first one kept, redacted, as the
// sample.
func loadChanges(ctx context.Context, s objstore.Store, p *Plan, dirs map[string]bool, redact func(string) string) (*changes, error) {
	ch := &changes{
		redact:   redact,
		users:    map[string]*change[schema.DirectoryUser]{},
		groups:   map[string]*change[schema.DirectoryGroup]{},
		members:  map[memberKey]*change[bool]{},
		ended:    map[string]int{},
		applied:  map[string]int64{},
		rejected: map[string]int64{},
	}
	if p.Events == nil {
		return ch, nil
	}
	var rows []schema.DirectoryEvent
	err := readStaged(ctx, s, p.Events, func(row *schema.DirectoryEvent) error {
		if row.DirectoryID != nil && dirs[*row.DirectoryID] {
			rows = append(rows, *row)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(rows, func(a, b schema.DirectoryEvent) int { return strings.Compare(a.ID, b.ID) })
	rows = slices.CompactFunc(rows, func(a, b schema.DirectoryEvent) bool { return a.ID == b.ID })
	for i := range rows {
		if err := ch.apply(&rows[i], i+1, p.SnapshotTime); err != nil {
			return nil, err
		}
	}
	return ch, nil
}

// apply folds one event, number seq in id order, into the changes.
func (ch *changes) apply(row *schema.DirectoryEvent, seq int, at time.Time) error {
	dir := *row.DirectoryID
	e := workos.Event{ID: row.ID, Event: row.Event, Data: []byte(row.Data)}
	v, err := e.Payload()
	if err != nil {
		return err
	}
	switch pl := v.(type) {
	case *workos.DirectoryUserEvent:
		if !ch.accept(dir, pl.ID, pl.DirectoryID, workos.CheckDirectoryUserID) {
			return nil
		}
		ch.applied[dir]++
		del := row.Event == workos.EventUserDeleted
		if fold(ch.users, pl.ID, &change[schema.DirectoryUser]{dir: dir, deleted: del, updated: pl.UpdatedAt.Time, seq: seq},
			func() schema.DirectoryUser { return schema.FromDirectoryUser(&pl.DirectoryUser, at) }) && del {
			ch.ended[pl.ID] = seq
		}
	case *workos.DirectoryGroupEvent:
		if !ch.accept(dir, pl.ID, pl.DirectoryID, workos.CheckDirectoryGroupID) {
			return nil
		}
		ch.applied[dir]++
		del := row.Event == workos.EventGroupDeleted
		if fold(ch.groups, pl.ID, &change[schema.DirectoryGroup]{dir: dir, deleted: del, updated: pl.UpdatedAt.Time, seq: seq},
			func() schema.DirectoryGroup { return schema.FromDirectoryGroup(&pl.DirectoryGroup, at) }) && del {
			ch.ended[pl.ID] = seq
		}
	case *workos.MembershipEvent:
		if !ch.accept(dir, pl.User.ID, pl.User.DirectoryID, workos.CheckDirectoryUserID) ||
			!ch.accept(dir, pl.Group.ID, pl.Group.DirectoryID, workos.CheckDirectoryGroupID) {
			return nil
		}
		ch.applied[dir]++
		ch.members[memberKey{pl.Group.ID, pl.User.ID}] = &change[bool]{dir: dir, row: row.Event == workos.EventGroupUserAdded, seq: seq}
	}
	// Directory and token events change no row of the delta tables.
	return nil
}

// accept reports whether an event's object id passes checkID and names
// the event's directory, as listed rows must (see dirWalk.accept); a
// rejection is counted, and the first kept, redacted, as the sample.
func (ch *changes) accept(dir, id, idDir string, checkID func(string) error) bool {
	err := checkID(id)
	if err == nil && idDir != "" && idDir != dir {
		err = fmt.Errorf("event row %s has directory_id %s, not the event's directory", strconv.Quote(id), strconv.Quote(idDir))
	}
	if err == nil {
		return true
	}
	ch.rejected[dir]++
	if ch.sample == "" {
		ch.sample, ch.sampleReason = ch.redact(id), ch.redact(err.Error())
	}
	return false
}

// fold records c, a later event of object id, and reports whether it took
// effect: it does unless what is held is newer (by updated_at), whether
// the held state is an upsert or a deletion, so a stale update never brings
// a deleted object back. A time missing on either side leaves it to the
// order of the events.
func fold[T any](m map[string]*change[T], id string, c *change[T], row func() T) bool {
	if old := m[id]; old != nil && !c.updated.IsZero() && old.updated.After(c.updated) {
		return false
	}
	if !c.deleted {
		c.row = row()
	}
	m[id] = c
	return true
}

// userGone and groupGone report objects the events deleted.
func (ch *changes) userGone(id string) bool {
	c := ch.users[id]
	return c != nil && c.deleted
}

func (ch *changes) groupGone(id string) bool {
	c := ch.groups[id]
	return c != nil && c.deleted
}

// memberEnded reports whether a base membership of (group, user) ended: a
// deletion of its user or group, or a membership event, comes after it.
func (ch *changes) memberEnded(k memberKey) bool {
	return ch.ended[k.user] > 0 || ch.ended[k.group] > 0 || ch.members[k] != nil
}

// memberLive reports whether a membership event's state stands: it is an
// addition made after its user's and group's last deletion, and neither is
// deleted now.
func (ch *changes) memberLive(k memberKey, cm *change[bool]) bool {
	return cm.row && cm.seq > ch.ended[k.user] && cm.seq > ch.ended[k.group] && !ch.userGone(k.user) && !ch.groupGone(k.group)
}

// delta runs the delta unit's share of a chunk: base files, one at a time,
// until stop is closed or every table is rebuilt. Rows go to the chunk's
// table writers; the directories' counts to their manifests in cp.
func (c *chunk) delta(ctx context.Context, cp *Checkpoint, stop <-chan struct{}) error {
	st := cp.Delta
	bm, err := c.deltaBaseManifest(ctx)
	if err != nil {
		return err
	}
	dirs := map[string]bool{}
	idx := map[string]int{}
	for i := range cp.Directories {
		dirs[cp.Directories[i].ID] = true
		idx[cp.Directories[i].ID] = i
	}
	ch, err := loadChanges(ctx, c.ex.Store, c.plan, dirs, c.ex.Client.Redact)
	if err != nil {
		return err
	}
	kept := map[string]bool{}
	for _, id := range st.Kept {
		kept[id] = true
	}
	// The checkpoint keeps the ids whose base row was written, however the
	// chunk ends: a later chunk must not write their event rows too.
	defer func() { st.Kept = slices.Sorted(maps.Keys(kept)) }()
	count := func(dir string, table int, n int64) {
		m := &cp.Directories[idx[dir]].Manifest
		switch table {
		case 0:
			m.Users += n
		case 1:
			m.Groups += n
		default:
			m.Memberships += n
		}
	}
	if st.Table == 0 && st.File == 0 {
		c.recordEvents(cp, idx, ch)
	}
	return c.deltaSteps(ctx, st, bm, stop, func(ctx context.Context, table int, key string) error {
		if key == "" {
			return c.deltaRest(ctx, table, ch, kept, count)
		}
		return c.deltaBase(ctx, table, key, dirs, ch, kept, count)
	})
}

// deltaBaseManifest reads the plan's base snapshot, which must still be the
// run the plan named.
func (c *chunk) deltaBaseManifest(ctx context.Context) (*snapshot.Manifest, error) {
	p := c.plan
	if p.Base == nil {
		return nil, errors.New("export: the plan has a delta unit but no base snapshot")
	}
	body, err := c.ex.Store.Get(ctx, snapshot.ManifestKey(p.Base.Date))
	if err != nil {
		return nil, fmt.Errorf("read the base snapshot %s: %w", p.Base.Date, err)
	}
	bm, err := snapshot.Unmarshal(body)
	if err != nil {
		return nil, fmt.Errorf("read the base snapshot %s: %w", p.Base.Date, err)
	}
	if bm.RunID != p.Base.RunID {
		return nil, fmt.Errorf("export: the base snapshot %s was replaced (run %s, the plan's base is run %s) while this run was going on; rerun the export", p.Base.Date, bm.RunID, p.Base.RunID)
	}
	return bm, nil
}

// deltaSteps runs the delta unit's steps from the checkpoint st until done
// or stop closes: each base file of each table (step with its key), then
// the table's rows the events created or changed after the base (step with
// key ""). Every chunk does at least one step, so a chunk whose setup used
// its time still moves the unit on.
func (c *chunk) deltaSteps(ctx context.Context, st *deltaState, bm *snapshot.Manifest, stop <-chan struct{}, step func(ctx context.Context, table int, key string) error) error {
	for progress := false; st.Table < len(deltaTables); progress = true {
		if progress {
			select {
			case <-stop:
				return nil
			default:
			}
		}
		if err := ctx.Err(); err != nil {
			return context.Cause(ctx)
		}
		files := bm.Tables[deltaTables[st.Table]].Files
		if st.File < len(files) {
			key := files[st.File].Key
			if err := step(ctx, st.Table, key); err != nil {
				return fmt.Errorf("apply events to base file %s: %w", key, err)
			}
			st.File++
			continue
		}
		if err := step(ctx, st.Table, ""); err != nil {
			return err
		}
		st.Table++
		st.File = 0
	}
	st.Done = true
	return nil
}

// recordEvents records in the directories' manifests the events applied
// and rejected, and logs the rejections once per directory.
func (c *chunk) recordEvents(cp *Checkpoint, idx map[string]int, ch *changes) {
	for dir, n := range ch.applied {
		cp.Directories[idx[dir]].Manifest.EventsApplied = n
	}
	for dir, n := range ch.rejected {
		m := &cp.Directories[idx[dir]].Manifest
		m.RowsRejected = n
		m.Error = fmt.Sprintf("%d events were skipped: a malformed id, or a directory_id of another directory (e.g. %s)", n, strconv.Quote(ch.sample))
		c.log.Warn("events rejected: malformed id or another directory's row",
			"directory_id", dir, "rows_rejected", n, "sample_id", strconv.Quote(ch.sample), "reason", ch.sampleReason)
	}
}

// deltaFile streams one base file of a table to w: keep returns the row to
// write (restamped) and its directory, or false to drop it.
func deltaFile[T any](ctx context.Context, s objstore.Store, w *tableWriter[T], key string, keep func(*T) (T, string, bool), count func(dir string)) error {
	var out []T
	err := readParquet(ctx, s, key, func(r *T) error {
		row, dir, ok := keep(r)
		if !ok {
			return nil
		}
		out = append(out, row)
		count(dir)
		if len(out) == deltaBatch {
			if err := w.send(ctx, out); err != nil {
				return err
			}
			out = nil
		}
		return nil
	})
	if err != nil {
		return err
	}
	return w.send(ctx, out)
}

// deltaBase streams base file key of table number table, dropping the rows
// of other directories and those the events delete or replace (written at
// the end from the events), and keeping base rows newer than their events.
func (c *chunk) deltaBase(ctx context.Context, table int, key string, dirs map[string]bool, ch *changes, kept map[string]bool, count func(string, int, int64)) error {
	at := c.plan.SnapshotTime
	s := c.ex.Store
	switch table {
	case 0:
		return deltaFile(ctx, s, c.users, key, func(u *schema.DirectoryUser) (schema.DirectoryUser, string, bool) {
			if !dirs[u.DirectoryID] {
				return schema.DirectoryUser{}, "", false
			}
			if cu := ch.users[u.ID]; cu != nil {
				if cu.deleted || !u.UpdatedAt.After(cu.updated) {
					return schema.DirectoryUser{}, "", false // deleted, or written from the event at the end
				}
				kept[u.ID] = true // the base row is newer than the events
			}
			row := *u
			row.ExportedAt = at
			return row, u.DirectoryID, true
		}, func(dir string) { count(dir, 0, 1) })
	case 1:
		return deltaFile(ctx, s, c.groups, key, func(g *schema.DirectoryGroup) (schema.DirectoryGroup, string, bool) {
			if !dirs[g.DirectoryID] {
				return schema.DirectoryGroup{}, "", false
			}
			if cg := ch.groups[g.ID]; cg != nil {
				if cg.deleted || !g.UpdatedAt.After(cg.updated) {
					return schema.DirectoryGroup{}, "", false
				}
				kept[g.ID] = true
			}
			row := *g
			row.ExportedAt = at
			return row, g.DirectoryID, true
		}, func(dir string) { count(dir, 1, 1) })
	default:
		return deltaFile(ctx, s, c.memberships, key, func(m *schema.DirectoryGroupMembership) (schema.DirectoryGroupMembership, string, bool) {
			if !dirs[m.DirectoryID] || ch.memberEnded(memberKey{m.GroupID, m.UserID}) {
				return schema.DirectoryGroupMembership{}, "", false // gone, or written from the events at the end
			}
			row := *m
			row.ExportedAt = at
			return row, m.DirectoryID, true
		}, func(dir string) { count(dir, 2, 1) })
	}
}

// deltaRest writes the rows that come from the events: objects created or
// changed (unless the base row was newer) and memberships added, in id
// order so a retried chunk writes the same bytes.
func (c *chunk) deltaRest(ctx context.Context, table int, ch *changes, kept map[string]bool, count func(string, int, int64)) error {
	switch table {
	case 0:
		return sendBatches(ctx, c.users, changedRows(ch.users, kept, func(dir string) { count(dir, 0, 1) }))
	case 1:
		return sendBatches(ctx, c.groups, changedRows(ch.groups, kept, func(dir string) { count(dir, 1, 1) }))
	default:
		keys := slices.SortedFunc(maps.Keys(ch.members), func(a, b memberKey) int {
			return cmp.Or(strings.Compare(a.group, b.group), strings.Compare(a.user, b.user))
		})
		var out []schema.DirectoryGroupMembership
		for _, k := range keys {
			cm := ch.members[k]
			if !ch.memberLive(k, cm) {
				continue
			}
			d, _ := c.plan.directory(cm.dir)
			out = append(out, schema.NewMembership(d, k.group, k.user, c.plan.SnapshotTime))
			count(cm.dir, 2, 1)
		}
		return sendBatches(ctx, c.memberships, out)
	}
}

// changedRows returns the rows of the objects the events left present and
// whose base row was not newer (kept), in id order.
func changedRows[T any](m map[string]*change[T], kept map[string]bool, count func(dir string)) []T {
	var out []T
	for _, id := range slices.Sorted(maps.Keys(m)) {
		if c := m[id]; !c.deleted && !kept[id] {
			out = append(out, c.row)
			count(c.dir)
		}
	}
	return out
}

// sendBatches sends rows to a table writer deltaBatch at a time.
func sendBatches[T any](ctx context.Context, w *tableWriter[T], rows []T) error {
	for len(rows) > 0 {
		n := min(len(rows), deltaBatch)
		if err := w.send(ctx, rows[:n:n]); err != nil {
			return err
		}
		rows = rows[n:]
	}
	return nil
}

// deltaBatch is the rows of a batch sent to a table writer: about an API
// page, as on a walk, since each writer queues up to 8 batches.
const deltaBatch = 100

// deltaReadBuffer is the read buffer of each column of a base file: pages are
// read through it, so memory stays bounded whatever the file's size. 128 KiB
// (not 1 MiB) and batches of deltaBatch rows (not 1,000) keep an incremental
// day on a 1M-user base well under 128 MiB peak RSS, where it was 148 MiB
// (make bench, section 8); on S3 each buffer fill is one ranged GET.
const deltaReadBuffer = 128 << 10

// readParquet calls fn for every row of the Parquet object key, streaming
// it 128 rows at a time through parquetfile.ReadFile (see its buffer and
// panic rules: a panic of parquet-go on a corrupt file is an error).
func readParquet[T any](ctx context.Context, s objstore.Store, key string, fn func(*T) error) error {
	rd, size, err := s.OpenRange(ctx, key)
	if err != nil {
		return err
	}
	if cl, ok := rd.(io.Closer); ok {
		defer cl.Close()
	}
	return parquetfile.ReadFile(rd, size, key, 128, fn, parquet.SkipBloomFilters(true), parquet.ReadBufferSize(deltaReadBuffer))
}
