package verify

import (
	"bytes"
	"context"
	"slices"
	"testing"
	"time"

	"github.com/dsync-export/dsync-export/pkg/objstore"
	"github.com/dsync-export/dsync-export/pkg/schema"
	"github.com/dsync-export/dsync-export/pkg/snapshot"
)

// A directory_events file rewritten after the export (same size, other
// bytes) passed: verify never hashed the change log's files.
func TestRewrittenEventsFileFailsChecksum(t *testing.T) {
	t.Parallel()
	s, root := localSink(t)
	w := newFixture(1, 10, 1).write(t, s)
	key := w.keys[schema.TableEvents][0]
	rewrite(t, root, key, func(b []byte) []byte {
		i := bytes.LastIndex(b, []byte("parquet-go")) // the footer's created_by: only the hash covers it
		if i < 0 {
			t.Fatal("no created_by in the footer")
		}
		b[i] = 'P'
		return b
	})
	r := mustVerify(t, s, Options{})
	wantFailure(t, r, CheckChecksums, key, "SHA-256")
	wantOnlyFailures(t, r, CheckChecksums)
}

// A directory_events file of another size than the manifest's passed: verify
// never compared the change log's files with the manifest.
func TestResizedEventsFileFailsObjects(t *testing.T) {
	t.Parallel()
	s, _ := localSink(t)
	w := newFixture(1, 10, 1).write(t, s)
	w.manifest.Events.Files[1].Bytes += 3
	putManifest(t, s, w.manifest)

	r := mustVerify(t, s, Options{})
	wantFailure(t, r, CheckObjects, w.manifest.Events.Files[1].Key, "bytes, the manifest's events record says")
	wantOnlyFailures(t, r, CheckObjects)
}

// A directory_events file that is not Parquet of the events schema fails the
// footer check, and the events check says its events were not checked.
func TestCorruptEventsFile(t *testing.T) {
	t.Parallel()
	s, root := localSink(t)
	w := newFixture(1, 10, 1).write(t, s)
	key := w.keys[schema.TableEvents][0]
	rewrite(t, root, key, func(b []byte) []byte { return bytes.Repeat([]byte("x"), len(b)) })
	r := mustVerify(t, s, Options{})
	wantFailure(t, r, CheckFooters, key, "not a readable Parquet file")
	wantFailure(t, r, CheckEvents, key, "were not checked")
	// The snapshot tables are still checked in full.
	if c, _ := r.Check(CheckUniqueIDs); !c.OK {
		t.Errorf("unique_ids: %+v, want it checked and passed", c)
	}
}

// An unlisted file of the run in an events partition (a part the run wrote
// and left out of its record) was never looked for.
func TestStrayEventsFileOfTheRun(t *testing.T) {
	t.Parallel()
	s, _ := localSink(t)
	fx := newFixture(1, 10, 1)
	fx.write(t, s)
	date := fx.events[0].CreatedAt.UTC().Format(schema.PartitionFormat)
	stray := snapshot.PartKey(schema.TableEvents, date, testRun, 5)
	other := snapshot.PartKey(schema.TableEvents, date, laterRun, 0) // another snapshot's events: not a stray
	for _, k := range []string{stray, other} {
		if err := s.Put(context.Background(), k, []byte("PAR1 leftover"), "application/vnd.apache.parquet"); err != nil {
			t.Fatal(err)
		}
	}
	r := mustVerify(t, s, Options{})
	wantFailure(t, r, CheckStrayObjects, stray, "not listed in its events record")
	wantOnlyFailures(t, r, CheckStrayObjects)
	if c, _ := r.Check(CheckStrayObjects); c.ErrorCount != 1 {
		t.Errorf("stray_objects: %d errors, want 1 (the other run's file is its own snapshot's): %v", c.ErrorCount, c.Errors)
	}
}

// chainTo makes the written snapshot's events continue a base snapshot of
// the day before, whose slice was read through after: it writes the base's
// manifest and rewrites the snapshot's.
func chainTo(t *testing.T, s objstore.Store, w *written, after string) {
	t.Helper()
	const baseDate, baseRun = "2026-11-27", "20261127T020000.000Z-0a1b2c"
	through := snapshot.EventCursor{After: after, AfterTime: exportedAt.Add(-30 * time.Hour), CheckedAt: exportedAt.Add(-24 * time.Hour)}
	base := &snapshot.Manifest{
		RunID: baseRun, FormatVersion: snapshot.FormatVersion, SnapshotDate: baseDate, SnapshotTime: exportedAt.Add(-24 * time.Hour),
		SchemaVersion: schema.Version, Trigger: "test", Tables: map[string]snapshot.TableManifest{},
		Events: &snapshot.EventsManifest{Restart: "first", Through: through},
	}
	b, err := base.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(context.Background(), snapshot.ManifestKey(baseDate), b, "application/json"); err != nil {
		t.Fatal(err)
	}
	e := w.manifest.Events
	e.Restart, e.RangeStart = "", time.Time{}
	e.BaseDate, e.BaseRunID, e.From = baseDate, baseRun, through
	putManifest(t, s, w.manifest)
}

// A slice that joins its base's with an event at or below the base's cursor
// logs that event twice: it is in the base's slice too.
func TestEventAtOrBelowTheBaseCursorFails(t *testing.T) {
	t.Parallel()
	s, _ := localSink(t)
	fx := newFixture(1, 10, 1)
	w := fx.write(t, s)
	chainTo(t, s, w, fx.events[1].ID) // the base logged events 0 and 1

	r := mustVerify(t, s, Options{})
	wantFailure(t, r, CheckEvents, fx.events[0].ID, "at or below the base's cursor")
	wantFailure(t, r, CheckEvents, fx.events[1].ID, "at or below the base's cursor")
	wantOnlyFailures(t, r, CheckEvents)
	if c, _ := r.Check(CheckEvents); c.ErrorCount != 2 {
		t.Errorf("events: %d errors, want 2: %v", c.ErrorCount, c.Errors)
	}
}

// The same slice after a base that read through an earlier event passes.
func TestEventsAfterTheBaseCursorPass(t *testing.T) {
	t.Parallel()
	s, _ := localSink(t)
	fx := newFixture(1, 10, 1)
	w := fx.write(t, s)
	chainTo(t, s, w, "event_01JD000000")
	if r := mustVerify(t, s, Options{}); !r.Valid {
		t.Fatalf("report is invalid:\n%s", r.JSONLines())
	}
}

// An event logged twice in the slice fails, wherever the copies are.
func TestDuplicatedEventFails(t *testing.T) {
	t.Parallel()
	s, _ := localSink(t)
	fx := newFixture(1, 10, 1)
	fx.events = append(fx.events, fx.events[2])
	fx.write(t, s)

	r := mustVerify(t, s, Options{})
	wantFailure(t, r, CheckEvents, fx.events[2].ID, "appears twice")
	wantOnlyFailures(t, r, CheckEvents)
}

// The export writes the events per date partition, so a file need not be in
// cursor order: a slice whose files are out of id order but otherwise
// correct passes (it failed "not in cursor order").
func TestEventsOutOfIdOrderInTheirFilesPass(t *testing.T) {
	t.Parallel()
	s, _ := localSink(t)
	fx := newFixture(1, 10, 1)
	slices.Reverse(fx.events)
	w := fx.write(t, s)
	chainTo(t, s, w, "event_01JD000000")

	r := mustVerify(t, s, Options{})
	if !r.Valid {
		t.Fatalf("report is invalid:\n%s", r.JSONLines())
	}
}

// The cursor is the greatest id read: a cursor beyond every logged and
// quarantined event means events were read and lost.
func TestCursorBeyondTheGreatestEventFails(t *testing.T) {
	t.Parallel()
	s, _ := localSink(t)
	w := newFixture(1, 10, 1).write(t, s)
	w.manifest.Events.Through.After = "event_01JD999999"
	putManifest(t, s, w.manifest)

	r := mustVerify(t, s, Options{})
	wantFailure(t, r, CheckEvents, "event_01JD999999", "after its greatest event")
	wantOnlyFailures(t, r, CheckEvents)
}

// Quarantined events are not in the files but are in the slice: the cursor
// may end at one, and one outside the slice fails.
func TestQuarantinedEventsAreInTheSlice(t *testing.T) {
	t.Parallel()
	s, _ := localSink(t)
	fx := newFixture(1, 10, 1)
	w := fx.write(t, s)
	chainTo(t, s, w, "event_01JD000000")
	e := w.manifest.Events
	e.Quarantined = []snapshot.QuarantinedEvent{{ID: "event_01JD000007", Event: "dsync.user.updated", Reason: "bad payload"}}
	e.Through.After = "event_01JD000007"
	putManifest(t, s, w.manifest)
	if r := mustVerify(t, s, Options{}); !r.Valid {
		t.Fatalf("a slice ending at a quarantined event: report is invalid:\n%s", r.JSONLines())
	}

	e.Quarantined = append(e.Quarantined,
		snapshot.QuarantinedEvent{ID: "event_01JD000000", Event: "dsync.user.updated", Reason: "bad payload"},
		snapshot.QuarantinedEvent{ID: fx.events[3].ID, Event: "dsync.user.updated", Reason: "bad payload"},
		snapshot.QuarantinedEvent{ID: "event_01JD000008", Event: "dsync.user.updated", Reason: "bad payload"})
	putManifest(t, s, w.manifest)
	r := mustVerify(t, s, Options{})
	wantFailure(t, r, CheckEvents, "quarantined", "event_01JD000000", "at or below the base's cursor")
	wantFailure(t, r, CheckEvents, "quarantined", fx.events[3].ID, "appears twice")
	wantFailure(t, r, CheckEvents, "quarantined", "event_01JD000008", "after the slice's end")
	wantOnlyFailures(t, r, CheckEvents)
}
