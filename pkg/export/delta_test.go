package export_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/dsync-export/dsync-export/internal/testenv/snapshottest"
	"github.com/dsync-export/dsync-export/internal/testenv/workostest"
	"github.com/dsync-export/dsync-export/pkg/export"
	"github.com/dsync-export/dsync-export/pkg/objstore"
	"github.com/dsync-export/dsync-export/pkg/schema"
	"github.com/dsync-export/dsync-export/pkg/workos"
)

// Regression (fixed; delta.go delta, the stop return inside the loop): the checkpoint's
// Kept list (ids whose base row was newer than their events, so the base row
// was written and the event's row must not be) is only stored when the unit
// is Done. A chunk that stops after the base file that set kept[id] and
// before deltaRest loses it; the next chunk's deltaRest writes the event's
// row as well, and the user appears twice. (Reaching "base row newer than
// its events" needs WorkOS to bump updated_at without an event; the test
// makes that happen by moving one base row's updated_at forward.)
func TestDeltaKeptAcrossChunks(t *testing.T) {
	if n, target := keptRun(t, true); n != 1 {
		t.Errorf("chunked delta unit: user %s (base row newer than its events) is in the snapshot %d times, want once", target, n)
	}
}

// Check: the contrast to TestDeltaKeptAcrossChunks: the same day
// with the delta unit in one chunk writes the user once.
func TestDeltaKeptOneChunk(t *testing.T) {
	if n, target := keptRun(t, false); n != 1 {
		t.Errorf("one-chunk delta unit: user %s is in the snapshot %d times, want once", target, n)
	}
}

// keptRun makes one base row newer than its events, runs the next day
// (in one-step chunks if chunked) and returns how often that user is in
// the snapshot.
func keptRun(t *testing.T, chunked bool) (int, string) {
	t.Helper()
	fake, client := startFake(t, workostest.Config{Seed: 61, Directories: 3, UsersPerDirectory: 700, GroupsPerDirectory: 6}, nil)
	dst, err := objstore.Open(context.Background(), t.TempDir(), objstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.Writer.MaxFileBytes = 24 << 10   // many base files
	cfg.DeadlineMargin = 2 * time.Second // room for one step under -race on a busy machine
	ex := &export.Exporter{Client: client, Store: dst, Config: cfg, Now: fake.Now}
	ctx := context.Background()
	res0, err := ex.Run(ctx, export.Target{Date: fakeDate(fake), Time: fake.Now(), Trigger: "test"})
	if err != nil {
		t.Fatal(err)
	}
	quietDay(fake)
	// A user updated today, whose base row we make newer than the event.
	var target string
	for _, e := range fake.Events() {
		if e.Event == "dsync.user.updated" {
			v, err := e.Payload()
			if err != nil {
				t.Fatal(err)
			}
			target = v.(*workos.DirectoryUserEvent).ID
			break
		}
	}
	if target == "" {
		t.Fatal("no user update event")
	}
	bumped := false
	for _, f := range res0.Manifest.Tables[schema.TableDirectoryUsers].Files {
		b, err := dst.Get(ctx, f.Key)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := parquet.Read[schema.DirectoryUser](bytes.NewReader(b), int64(len(b)))
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for i := range rows {
			if rows[i].ID == target {
				rows[i].UpdatedAt = fake.Now().Add(time.Hour).UTC().Truncate(time.Millisecond)
				found = true
			}
		}
		if !found {
			continue
		}
		var buf bytes.Buffer
		if err := parquet.Write(&buf, rows); err != nil {
			t.Fatal(err)
		}
		if err := dst.Put(ctx, f.Key, buf.Bytes(), "application/octet-stream"); err != nil {
			t.Fatal(err)
		}
		bumped = true
	}
	if !bumped {
		t.Fatalf("user %s not in the base", target)
	}
	p, err := ex.Plan(ctx, export.Target{Date: fakeDate(fake), Time: fake.Now(), Trigger: "test"}, export.PlanOptions{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	// Chunks that each stop right after their first step (one base file).
	chunk := time.Minute
	if chunked {
		chunk = cfg.DeadlineMargin + 100*time.Millisecond
	}
	chunks := runUnits(t, ex, p, chunk, func(err error) bool {
		return retryCrashes(err) || errors.Is(err, export.ErrDeadline)
	})
	t.Logf("chunks %v", chunks)
	res, err := ex.Commit(ctx, p.SnapshotDate, p.RunID)
	if err != nil {
		t.Fatal(err)
	}
	users := snapshottest.ReadTable[schema.DirectoryUser](t, dst, res.Manifest, schema.TableDirectoryUsers)
	n := 0
	for _, u := range users {
		if u.ID == target {
			n++
		}
	}
	return n, target
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
	if _, err := ex.Run(ctx, export.Target{Date: date(), Time: fake.Now(), Trigger: "test"}); err != nil {
		t.Fatal(err)
	}
	fake.AdvanceWith(24*time.Hour, workostest.AdvanceOptions{Churn: 0.05, DirectoryRate: -1})
	at := fake.Now().UTC().Truncate(time.Millisecond)
	p, err := ex.Plan(ctx, export.Target{Date: date(), Time: at, Trigger: "test"}, export.PlanOptions{Workers: 3})
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
