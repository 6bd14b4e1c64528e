package export_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dsync-export/dsync-export/internal/testenv/workostest"
	"github.com/dsync-export/dsync-export/pkg/export"
	"github.com/dsync-export/dsync-export/pkg/objstore"
	"github.com/dsync-export/dsync-export/pkg/schema"
	"github.com/dsync-export/dsync-export/pkg/snapshot"
)

// Item 5: a base written with another schema_version is not built on.
func TestBaseOfAnotherSchemaVersionIsWalkedInFull(t *testing.T) {
	fake, ex, dst := reviewSetup(t, 87, testConfig())
	m0, _ := dayRun(t, ex, fake, dst, fakeDate(fake))
	m0.SchemaVersion = "0"
	body, _ := m0.Marshal()
	if err := dst.Put(context.Background(), snapshot.ManifestKey(m0.SnapshotDate), body, "application/json"); err != nil {
		t.Fatal(err)
	}
	quietDay(fake)
	m1, _ := dayRun(t, ex, fake, dst, fakeDate(fake))
	for _, d := range m1.Directories {
		if d.Mode != schema.SnapshotModeFull || d.ModeReason != export.ReasonSchema {
			t.Errorf("%s: mode %s (%s), want a full walk: %s", d.ID, d.Mode, d.ModeReason, export.ReasonSchema)
		}
	}
}

// Item 11: a snapshot that verify rejected is not a base: the directories
// the rejection names (all, when it names none) are walked in full.
func TestRejectedBaseIsWalkedInFull(t *testing.T) {
	fake, ex, dst := reviewSetup(t, 95, testConfig())
	m0, _ := dayRun(t, ex, fake, dst, fakeDate(fake))
	reject := func(m *snapshot.Manifest, dirs ...string) {
		b, _ := json.Marshal(snapshot.Rejected{SnapshotDate: m.SnapshotDate, RunID: m.RunID, RejectedAt: time.Now(), Checks: []string{"volume"}, Directories: dirs})
		if err := dst.Put(context.Background(), snapshot.RejectedKey(m.SnapshotDate), b, "application/json"); err != nil {
			t.Fatal(err)
		}
	}
	reject(m0, m0.Directories[1].ID)
	quietDay(fake)
	m1, _ := dayRun(t, ex, fake, dst, fakeDate(fake))
	for _, d := range m1.Directories {
		rejected := d.ID == m0.Directories[1].ID
		if rejected != (d.ModeReason == export.ReasonRejected) {
			t.Errorf("%s (rejected %v): mode %s (%s)", d.ID, rejected, d.Mode, d.ModeReason)
		}
	}
	reject(m1)
	quietDay(fake)
	m2, _ := dayRun(t, ex, fake, dst, fakeDate(fake))
	for _, d := range m2.Directories {
		if d.ModeReason != export.ReasonRejected {
			t.Errorf("%s: mode %s (%s), want a full walk: the whole base was rejected", d.ID, d.Mode, d.ModeReason)
		}
	}
}

// Item 14: a change that emitted no event (a silent create or delete) shows
// in the directory's metadata counts: the plan walks that directory in full
// the same day, and the snapshot equals WorkOS's state. Directories listed
// without metadata are not checked.
func TestDriftWalksTheDirectoryInFull(t *testing.T) {
	fake, ex, dst := hostileSetup(t, 99, testConfig(), workostest.Hostile{}, workostest.MetadataAll)
	ex.Config.FullEvery = 0
	dayRun(t, ex, fake, dst, fakeDate(fake))
	fake.SetHostile(workostest.Hostile{Seed: 4, Silent: 0.5})
	quietDay(fake)
	silent := map[string]bool{}
	for _, c := range fake.SilentChanges() {
		silent[c.DirectoryID] = true
	}
	if len(silent) == 0 {
		t.Fatal("no silent change")
	}
	m, _ := dayRun(t, ex, fake, dst, fakeDate(fake)) // exact against the fake
	for _, d := range m.Directories {
		if d.Drift == nil {
			t.Fatalf("%s: no drift check recorded", d.ID)
		}
		if silent[d.ID] != (d.Drift.Result == snapshot.DriftFound) || silent[d.ID] != (d.ModeReason == export.ReasonDrift) {
			t.Errorf("%s (silent change %v): drift %+v, mode %s (%s)", d.ID, silent[d.ID], d.Drift, d.Mode, d.ModeReason)
		}
	}
	fake.SetHostile(workostest.Hostile{})
	fake.SetMetadata(workostest.MetadataNone)
	quietDay(fake)
	m, _ = dayRun(t, ex, fake, dst, fakeDate(fake))
	for _, d := range m.Directories {
		if d.Drift == nil || d.Drift.Result != snapshot.DriftNoMetadata || d.Mode != schema.SnapshotModeIncremental {
			t.Errorf("%s without metadata: drift %+v, mode %s (%s): want not checked, incremental", d.ID, d.Drift, d.Mode, d.ModeReason)
		}
	}
}

// From review: a create/delete between the cursor's checked_at and the walk of a
// directory is in the full-walked base AND in the next slice's events, so
// the drift check (base count + net events) expects it twice and walks the
// directory in full again -- every day for a directory with churn during
// its walk or the settle window; an EXPORT_MODE=incremental run fails.
func TestDriftFalsePositiveFromWalkOverlap(t *testing.T) {
	cfg := testConfig()
	cfg.EventsSettle = 2 * time.Minute
	cfg.FullEvery = 0
	fake, ex, dst := hostileSetup(t, 207, cfg, workostest.Hostile{}, workostest.MetadataAll)
	run := func() *snapshot.Manifest { return runToday(t, ex, fake) }
	run()
	quietDay(fake)
	// Churn in the minute before the plan: after now-settle, seen by the walk.
	fake.AdvanceWith(time.Minute, workostest.AdvanceOptions{Churn: 50, DirectoryRate: -1})
	m2 := run() // incremental day
	for _, d := range m2.Directories {
		if d.Drift != nil && d.Drift.Result == snapshot.DriftFound {
			t.Errorf("incremental day %s: drift %+v: the listing counts now, the events stop at now-settle", d.ID, d.Drift)
		}
	}
	ex.Config.Mode = export.ModeFull
	fake.AdvanceWith(time.Hour, workostest.AdvanceOptions{Churn: 0, DirectoryRate: -1})
	fake.AdvanceWith(time.Minute, workostest.AdvanceOptions{Churn: 50, DirectoryRate: -1})
	run() // a full walk that sees the last minute's changes
	ex.Config.Mode = export.ModeAuto
	fake.AdvanceWith(24*time.Hour, workostest.AdvanceOptions{Churn: 0, DirectoryRate: -1})
	m := run()
	for _, d := range m.Directories {
		if d.Drift != nil && d.Drift.Result == snapshot.DriftFound {
			t.Errorf("%s: drift %+v with no missed event: walked in full (%s)", d.ID, d.Drift, d.ModeReason)
		}
	}
	verifyOK(t, dst, m.SnapshotDate)
}

// Regression (fixed; incremental.go chooseModes vs readEvents): chooseModes keeps a
// directory incremental while now-CheckedAt <= 30d - EventsMargin, but
// readEvents continues the chain only while now-CheckedAt < 30d - 1h
// (eventsReadSafety). EventsMargin is validated as merely >= 0, so with a
// margin under an hour (EXPORT_EVENTS_MARGIN=0) and a gap in between, the
// run restarts the chain at now-30d+1h (events after the base's cursor and
// before that are never read) yet still builds the directories
// incrementally from the base: the snapshot misses those changes.
func TestEventsMarginAgreesWithTheRead(t *testing.T) {
	// Fixed: a margin below the read's own hour of safety is refused, so
	// the modes and the event read agree on when the chain breaks.
	bad := testConfig()
	bad.EventsMargin = 0
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "EventsMargin") {
		t.Fatalf("EventsMargin 0: %v, want an error naming it", err)
	}
	cfg := testConfig()
	cfg.EventsMargin = time.Hour // the smallest margin allowed
	cfg.FullEvery = 0            // no weekly reconcile: isolate the margin
	fake, ex, dst := reviewSetup(t, 59, cfg)
	m0, _ := dayRun(t, ex, fake, dst, fakeDate(fake))
	gap := 30*24*time.Hour - 20*time.Minute
	// Changes right after the cursor, then a quiet stretch.
	res := fake.AdvanceWith(40*time.Minute, workostest.AdvanceOptions{Churn: 3, DirectoryRate: -1})
	if res.Events == 0 {
		t.Fatal("no changes made")
	}
	fake.AdvanceWith(gap-40*time.Minute, workostest.AdvanceOptions{Churn: 0, DirectoryRate: -1})
	if got := fake.Now().Sub(m0.Events.Through.CheckedAt); got != gap {
		t.Fatalf("gap %s, want %s", got, gap)
	}
	m, _ := dayRun(t, ex, fake, dst, fakeDate(fake)) // exact: a full walk
	if m.Mode != schema.SnapshotModeFull || m.Events.Restart != export.RestartRetention {
		t.Errorf("mode %s, restart %q: want a full walk restarting the chain", m.Mode, m.Events.Restart)
	}
}

// TestIncrementalModeRefusesFullWalk: EXPORT_MODE=incremental fails with an
// error naming the directories and why, and writes nothing.
func TestIncrementalModeRefusesFullWalk(t *testing.T) {
	fake, client := startFake(t, workostest.Config{Seed: 3, Directories: 2, UsersPerDirectory: 20, GroupsPerDirectory: 2}, nil)
	dst, err := objstore.Open(context.Background(), t.TempDir(), objstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.Mode = export.ModeIncremental
	ex := &export.Exporter{Client: client, Store: dst, Config: cfg, Now: fake.Now}
	_, err = ex.Run(context.Background(), export.Target{Date: fake.Now().UTC().Format(schema.PartitionFormat), Trigger: "test"})
	if !errors.Is(err, export.ErrFullWalkNeeded) || !strings.Contains(err.Error(), export.ReasonNoBase) || !strings.Contains(err.Error(), "EXPORT_MODE=auto") {
		t.Fatalf("err = %v, want ErrFullWalkNeeded naming the reason and the fix", err)
	}
	if objs, _ := dst.List(context.Background(), snapshot.ManifestsDir+"/"); len(objs) != 0 {
		t.Errorf("a refused run committed %v", objs)
	}
}
