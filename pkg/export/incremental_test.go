package export_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dsync-export/dsync-export/internal/testenv/snapshottest"
	"github.com/dsync-export/dsync-export/internal/testenv/workostest"
	"github.com/dsync-export/dsync-export/pkg/export"
	"github.com/dsync-export/dsync-export/pkg/objstore"
	"github.com/dsync-export/dsync-export/pkg/schema"
	"github.com/dsync-export/dsync-export/pkg/snapshot"
	"github.com/dsync-export/dsync-export/pkg/verify"
)

// dayRun exports the fake's current state as the snapshot of its clock's
// date, checks it against the fake row for row, verifies it, and returns
// the manifest and the WorkOS requests it sent.
func dayRun(t *testing.T, ex *export.Exporter, fake *workostest.Server, dst objstore.Store, date string) (*snapshot.Manifest, int64) {
	t.Helper()
	before := fake.Stats().Requests
	at := fake.Now().UTC().Truncate(time.Millisecond)
	res, err := ex.Run(context.Background(), export.Snapshot{Date: date, Time: at, Trigger: "test"})
	if err != nil {
		t.Fatalf("%s: %v", date, err)
	}
	snapshottest.CheckExact(t, dst, res.Manifest, snapshottest.ExpectedRows(fake, at))
	// A directory deleted at WorkOS takes a quarter of this small account
	// with it: the drop check would rightly flag that day.
	rep, err := verify.Verify(context.Background(), dst, date, verify.Options{MaxDrop: 0.6})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Valid {
		for _, c := range rep.Checks {
			if !c.OK {
				t.Errorf("%s: verify %s: %s %v", date, c.Name, c.Detail, c.Errors)
			}
		}
	}
	return res.Manifest, fake.Stats().Requests - before
}

// TestIncrementalMonthEqualsFullWalk is the exactness test at small scale
// (make soak runs it large): 30 simulated days of churn with injected
// faults. Every day's incremental snapshot equals a full walk of the same
// state row for row, verify passes, and directory_events holds every event
// the fake emitted exactly once. It also covers a gap longer than the
// retention, a deleted directory, the weekly reconcile, and reruns.
func TestIncrementalMonthEqualsFullWalk(t *testing.T) {
	fake, client := startFake(t, workostest.Config{
		Seed: 11, Directories: 4, UsersPerDirectory: 240, GroupsPerDirectory: 8,
		Faults: workostest.Faults{Seed: 5, ServerError: 0.05, RateLimited: 0.03, Reset: 0.01},
	}, nil)
	dst, err := objstore.Open(context.Background(), t.TempDir(), objstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	ex := &export.Exporter{Client: client, Store: dst, Config: cfg, Now: fake.Now}
	date := func() string { return fake.Now().UTC().Format(schema.PartitionFormat) }
	firstEvent := len(fake.Events())

	m, fullReq := dayRun(t, ex, fake, dst, date())
	if m.Mode != schema.SnapshotModeFull || m.Events == nil || m.Events.Restart != export.RestartFirst {
		t.Fatalf("day 0: mode %q, events %+v: want a full snapshot that starts the chain", m.Mode, m.Events)
	}
	var incReq []int64
	incDays, reconciles := 0, 0
	for day := 1; day <= 30; day++ {
		fake.Advance(24*time.Hour, 0.04)
		if day == 12 {
			// A directory deleted at WorkOS: gone from the next snapshot.
			gone := fake.Directories()[1].ID
			if !fake.DeleteDirectory(gone) {
				t.Fatal("no directory deleted")
			}
		}
		m, req := dayRun(t, ex, fake, dst, date())
		if m.Mode == schema.SnapshotModeIncremental {
			incDays++
			incReq = append(incReq, req)
		}
		for _, d := range m.Directories {
			if d.ModeReason == export.ReasonReconcile {
				reconciles++
			}
		}
		if day == 12 {
			for _, d := range m.Directories {
				if d.Status != snapshot.DirectoryOK {
					t.Errorf("day 12: directory %s status %s", d.ID, d.Status)
				}
			}
		}
	}
	if incDays < 20 {
		t.Errorf("%d of 30 days were incremental, want most (the weekly reconcile walks the rest)", incDays)
	}
	if reconciles == 0 {
		t.Error("no directory got its weekly full reconcile in 30 days")
	}
	slices.Sort(incReq)
	if med := incReq[len(incReq)/2]; med*5 > fullReq {
		t.Errorf("an incremental day sent %d requests (median), a full walk %d: want far fewer", med, fullReq)
	}
	if fake.Stats().FaultsInjected == 0 {
		t.Error("no faults were injected: the test proves nothing about retries")
	}
	t.Logf("30 days: %d incremental, %d directory reconciles, %d events; requests: full walk %d, incremental median %d",
		incDays, reconciles, len(fake.Events())-firstEvent, fullReq, incReq[len(incReq)/2])

	// Every event the fake emitted since the first run's range is logged
	// exactly once.
	checkEventsOnce := func(from int) { t.Helper(); snapshottest.CheckEventsOnce(t, dst, fake.Events()[from:]) }
	checkEventsOnce(firstEvent)

	// A rerun of a past date walks in full and keeps that date's events.
	past := fake.Now().Add(-10 * 24 * time.Hour).UTC().Format(schema.PartitionFormat)
	before := snapshottest.LoggedEvents(t, dst)
	pm, _ := dayRun(t, ex, fake, dst, past)
	if pm.Mode != schema.SnapshotModeFull || pm.Directories[0].ModeReason != export.ReasonPastDate {
		t.Errorf("rerun of %s: mode %q (%s), want a full walk of a past date", past, pm.Mode, pm.Directories[0].ModeReason)
	}
	if after := snapshottest.LoggedEvents(t, dst); len(after) != len(before) {
		t.Errorf("the rerun of a past date changed directory_events from %d to %d events", len(before), len(after))
	}
	// A rerun of the latest date builds on its own snapshot and takes its
	// events over.
	fake.Advance(6*time.Hour, 0.04)
	hm, _ := dayRun(t, ex, fake, dst, date())
	if hm.Events == nil || hm.Events.CarriedFrom == "" {
		t.Errorf("rerun of the latest date: events %+v, want the earlier run's events taken over", hm.Events)
	}
	checkEventsOnce(firstEvent)

	// Idle for longer than the retention: a full walk restarts the chain.
	fake.Advance(35*24*time.Hour, 0.002)
	gm, _ := dayRun(t, ex, fake, dst, date())
	if gm.Mode != schema.SnapshotModeFull || gm.Events == nil || gm.Events.Restart != export.RestartRetention {
		t.Errorf("after a 35-day gap: mode %q, events %+v: want a full walk that restarts the chain", gm.Mode, gm.Events)
	}
	// The next day is incremental again.
	fake.Advance(24*time.Hour, 0.04)
	if nm, _ := dayRun(t, ex, fake, dst, date()); nm.Mode != schema.SnapshotModeIncremental {
		t.Errorf("the day after the restart: mode %q, want incremental", nm.Mode)
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
	_, err = ex.Run(context.Background(), export.Snapshot{Date: fake.Now().UTC().Format(schema.PartitionFormat), Trigger: "test"})
	if !errors.Is(err, export.ErrFullWalkNeeded) || !strings.Contains(err.Error(), export.ReasonNoBase) || !strings.Contains(err.Error(), "EXPORT_MODE=auto") {
		t.Fatalf("err = %v, want ErrFullWalkNeeded naming the reason and the fix", err)
	}
	if objs, _ := dst.List(context.Background(), snapshot.ManifestsDir+"/"); len(objs) != 0 {
		t.Errorf("a refused run committed %v", objs)
	}
}

// TestVerifyCatchesBrokenEventChains: verify fails a snapshot whose events
// slice does not join its base's, holds an event twice, or lost a file.
func TestVerifyCatchesBrokenEventChains(t *testing.T) {
	fake, client := startFake(t, workostest.Config{Seed: 21, Directories: 2, UsersPerDirectory: 150, GroupsPerDirectory: 4}, nil)
	dst, err := objstore.Open(context.Background(), t.TempDir(), objstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ex := &export.Exporter{Client: client, Store: dst, Config: testConfig(), Now: fake.Now}
	date := func() string { return fake.Now().UTC().Format(schema.PartitionFormat) }
	dayRun(t, ex, fake, dst, date())
	fake.AdvanceWith(24*time.Hour, workostest.AdvanceOptions{Churn: 0.05, DirectoryRate: -1})
	m, _ := dayRun(t, ex, fake, dst, date())
	if m.Events == nil || m.Events.Events == 0 || len(m.Events.Files) == 0 {
		t.Fatalf("day 1 logged no events: %+v", m.Events)
	}
	good := *m
	events := *m.Events
	good.Events = &events
	tamper := func(name string, edit func(m *snapshot.Manifest), want string) {
		t.Helper()
		bad := good
		e := *good.Events
		e.Files = slices.Clone(good.Events.Files)
		bad.Events = &e
		edit(&bad)
		body, err := bad.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if err := dst.Put(ctx, snapshot.ManifestKey(m.SnapshotDate), body, "application/json"); err != nil {
			t.Fatal(err)
		}
		rep, err := verify.Verify(ctx, dst, m.SnapshotDate, verify.Options{})
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, c := range rep.Checks {
			if c.Name == verify.CheckEvents && !c.OK && strings.Contains(strings.Join(c.Errors, "\n"), want) {
				found = true
			}
		}
		if found == rep.Valid || !found {
			t.Errorf("%s: verify valid=%v, want the events check to fail with %q: %+v", name, rep.Valid, want, rep.Checks)
		}
	}
	tamper("gap", func(m *snapshot.Manifest) { m.Events.From.After = "event_01ZZZZZZZZZZZZZZZZZZZZZZZZ" }, "a gap or an overlap")
	tamper("count", func(m *snapshot.Manifest) { m.Events.Events++ }, "the manifest says")
	tamper("twice", func(m *snapshot.Manifest) {
		m.Events.Files = append(m.Events.Files, m.Events.Files[0])
		m.Events.Events += m.Events.Files[0].Rows
	}, "appears twice")
	tamper("lost file", func(m *snapshot.Manifest) {
		m.Events.Files[0].Key = snapshot.PartKey(schema.TableEvents, "2020-01-01", m.RunID, 9)
	}, "missing")
}

// TestDeltaUnitResumesAcrossChunks runs an incremental day as the state
// machine does: the delta unit in many short chunks (each stops after a base
// file and resumes from its checkpoint, one crashing before its checkpoint
// and retried), then the commit. The snapshot equals the fake's state.
func TestDeltaUnitResumesAcrossChunks(t *testing.T) {
	fake, client := startFake(t, workostest.Config{Seed: 13, Directories: 4, UsersPerDirectory: 700, GroupsPerDirectory: 6}, nil)
	dir, err := objstore.Open(context.Background(), t.TempDir(), objstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dst := &crashStore{Store: dir}
	cfg := testConfig()
	cfg.Writer.MaxFileBytes = 24 << 10 // many base files
	// Each chunk stops soon after its first step (a base file), and has the
	// margin's 2 s to finish that step even under -race on a busy machine.
	cfg.DeadlineMargin = 2 * time.Second
	cfg.FullEvery = 0 // no directory's reconcile day
	ex := &export.Exporter{Client: client, Store: dst, Config: cfg, Now: fake.Now}
	ctx := context.Background()
	date := func() string { return fake.Now().UTC().Format(schema.PartitionFormat) }
	if _, err := ex.Run(ctx, export.Snapshot{Date: date(), Time: fake.Now(), Trigger: "test"}); err != nil {
		t.Fatal(err)
	}
	fake.AdvanceWith(24*time.Hour, workostest.AdvanceOptions{Churn: 0.05, DirectoryRate: -1})
	at := fake.Now().UTC().Truncate(time.Millisecond)
	p, err := ex.Plan(ctx, export.Snapshot{Date: date(), Time: at, Trigger: "test"}, export.PlanOptions{Workers: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Units) != 1 || p.Units[0].Kind != export.UnitKindDelta || len(p.Units[0].Directories) != 4 {
		t.Fatalf("plan units %+v: want one delta unit of the 4 directories", p.Units)
	}
	dst.n.Store(1)
	chunks := runUnits(t, ex, p, cfg.DeadlineMargin+40*time.Millisecond, func(err error) bool {
		return retryCrashes(err) || errors.Is(err, export.ErrDeadline)
	})
	if n := chunks[p.Units[0].ID]; n < 2 {
		t.Errorf("the delta unit ran in %d chunks, want several (resumption untested)", n)
	}
	if dst.n.Load() >= 0 {
		t.Error("no chunk crashed before its checkpoint")
	}
	res, err := ex.Commit(ctx, p.SnapshotDate, p.RunID)
	if err != nil {
		t.Fatal(err)
	}
	snapshottest.CheckExact(t, dir, res.Manifest, snapshottest.ExpectedRows(fake, at))
	snapshottest.CheckObjectsAreManifest(t, dir, res.Manifest)
	var applied int64
	for _, d := range res.Manifest.Directories {
		if d.Mode != schema.SnapshotModeIncremental {
			t.Errorf("directory %s: mode %q (%s)", d.ID, d.Mode, d.ModeReason)
		}
		applied += d.EventsApplied
	}
	if applied == 0 || res.Manifest.API.Requests > 10 {
		t.Errorf("%d events applied with %d requests: want events applied with a handful of requests", applied, res.Manifest.API.Requests)
	}
	t.Logf("delta unit: %d chunks, %d events applied, %d base files", chunks[p.Units[0].ID], applied, len(res.Manifest.Keys()))
}

// TestChangeDuringWalkIsNotLost: changes made while day 0's full walk runs
// are read by day 1 (the cursor is taken before the walk), so day 1's
// incremental snapshot equals the state, whatever the walk saw.
func TestChangeDuringWalkIsNotLost(t *testing.T) {
	var fake *workostest.Server
	var pending atomic.Int32
	pending.Store(3)
	mid := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/directory_users" && pending.Add(-1) >= 0 {
				fake.AdvanceWith(2*time.Hour, workostest.AdvanceOptions{Churn: 0.2, DirectoryRate: -1})
			}
			next.ServeHTTP(w, r)
		})
	}
	fake, client := startFake(t, workostest.Config{Seed: 17, Directories: 3, UsersPerDirectory: 400, GroupsPerDirectory: 5}, mid)
	dst, err := objstore.Open(context.Background(), t.TempDir(), objstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ex := &export.Exporter{Client: client, Store: dst, Config: testConfig(), Now: fake.Now}
	ctx := context.Background()
	start := fake.Now()
	d0, err := ex.Run(ctx, export.Snapshot{Date: start.UTC().Format(schema.PartitionFormat), Time: start, Trigger: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if moved := fake.Now().Sub(start); moved < 6*time.Hour {
		t.Fatalf("the fake moved %s during the walk, want three changes", moved)
	}
	if d0.Manifest.Events.Through.CheckedAt.After(start.Add(time.Minute)) {
		t.Errorf("day 0's cursor was checked at %s, after the walk's changes began (%s)", d0.Manifest.Events.Through.CheckedAt, start)
	}
	fake.AdvanceWith(24*time.Hour, workostest.AdvanceOptions{Churn: 0.02, DirectoryRate: -1})
	dayRun(t, ex, fake, dst, fake.Now().UTC().Format(schema.PartitionFormat))
}
