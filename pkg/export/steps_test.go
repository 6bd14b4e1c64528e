package export_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dsync-export/dsync-export/internal/testenv/snapshottest"
	"github.com/dsync-export/dsync-export/internal/testenv/workostest"
	"github.com/dsync-export/dsync-export/pkg/export"
	"github.com/dsync-export/dsync-export/pkg/objstore"
	"github.com/dsync-export/dsync-export/pkg/snapshot"
)

// crashStore fails the next n checkpoint writes, as if the process died
// after its chunk's parts were uploaded and before its checkpoint.
type crashStore struct {
	objstore.Store
	n atomic.Int64
}

func (s *crashStore) Put(ctx context.Context, key string, body []byte, contentType string) error {
	if strings.Contains(key, "/unit-") && s.n.Add(-1) >= 0 {
		return errors.New("crash before the checkpoint")
	}
	return s.Store.Put(ctx, key, body, contentType)
}

// retryCrashes retries a chunk that crashed before its checkpoint, or that
// overran its deadline on a busy machine, as the state machine's Retry does.
func retryCrashes(err error) bool {
	return strings.Contains(err.Error(), "crash before the checkpoint") || errors.Is(err, context.DeadlineExceeded)
}

// retryAll retries every failed chunk from its checkpoint.
func retryAll(error) bool { return true }

// runUnits runs every unit's chunks at once, each chunk with a deadline of
// chunk, until done, retrying the failed chunks retry accepts; it returns the
// chunks that succeeded per unit.
func runUnits(t *testing.T, ex *export.Exporter, p *export.Plan, chunk time.Duration, retry func(error) bool) map[string]int {
	t.Helper()
	var mu sync.Mutex
	chunks := map[string]int{}
	var wg sync.WaitGroup
	for _, id := range p.UnitIDs() {
		wg.Go(func() {
			for n := 0; ; n++ {
				if n > 500 {
					t.Errorf("unit %s: not done after 500 chunks", id)
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), chunk)
				res, err := ex.RunChunk(ctx, p.SnapshotDate, p.RunID, id)
				cancel()
				if err != nil {
					if retry(err) {
						continue
					}
					t.Errorf("unit %s chunk %d: %v", id, n, err)
					return
				}
				mu.Lock()
				chunks[id]++
				mu.Unlock()
				if res.Done {
					return
				}
			}
		})
	}
	wg.Wait()
	return chunks
}

// TestStepsResumeAcrossChunksExactly runs an export as a state machine
// does: plan, then every unit's chunks (each stopped by a short deadline and
// resumed from its checkpoint, one of them crashing before its checkpoint
// and retried), then commit. The snapshot equals the dataset, each chunk
// wrote at most one file per table, and nothing of the run's bookkeeping
// is left.
func TestStepsResumeAcrossChunksExactly(t *testing.T) {
	fake, client := startFake(t, workostest.Config{
		Seed: 11, Directories: 5, UsersPerDirectory: 1500, GroupsPerDirectory: 7, Latency: 25 * time.Millisecond,
		Faults: workostest.Faults{Seed: 5, ServerError: 0.03, Reset: 0.01},
	}, nil)
	dir, err := objstore.Open(context.Background(), t.TempDir(), objstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dst := &crashStore{Store: dir}
	dst.n.Store(2)
	cfg := testConfig()
	cfg.Concurrency = 2
	cfg.DeadlineMargin = 300 * time.Millisecond
	cfg.ProgressEvery = 50 * time.Millisecond // checks the lease too
	ex := &export.Exporter{Client: client, Store: dst, Config: cfg}
	p, err := ex.Plan(context.Background(), export.Snapshot{Date: "2026-11-28", Time: snapTime, Trigger: "test"}, export.PlanOptions{Workers: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Units) != 3 {
		t.Fatalf("plan has %d units for 5 directories and 3 workers, want 3", len(p.Units))
	}
	chunks := runUnits(t, ex, p, 900*time.Millisecond, retryCrashes)
	total := 0
	for _, n := range chunks {
		total += n
	}
	if total <= len(p.Units) {
		t.Fatalf("chunks per unit %v: want a unit to need more than one chunk, so resumption is tested", chunks)
	}
	if dst.n.Load() >= 0 {
		t.Fatalf("no chunk crashed before its checkpoint")
	}
	res, err := ex.Commit(context.Background(), p.SnapshotDate, p.RunID)
	if err != nil {
		t.Fatal(err)
	}
	snapshottest.CheckExact(t, dir, res.Manifest, snapshottest.ExpectedRows(fake, snapTime))
	snapshottest.CheckObjectsAreManifest(t, dir, res.Manifest)
	perChunk := map[string]int{}
	for _, k := range res.Manifest.Keys() {
		if cp, ok := snapshot.ParseChunkPartKey(k); ok {
			perChunk[fmt.Sprintf("%s unit %s chunk %d", cp.Table, cp.Unit, cp.Chunk)]++
		}
	}
	if len(perChunk) == 0 {
		t.Fatal("no chunk parts in the manifest")
	}
	for k, n := range perChunk {
		if n > 1 {
			t.Errorf("%s wrote %d files, want at most one per table per chunk", k, n)
		}
	}
	if left, err := dir.List(context.Background(), snapshot.RunsPrefix(p.SnapshotDate)); err != nil || len(left) != 0 {
		t.Errorf("plan and checkpoints left after the commit: %v %v", left, err)
	}
	// A commit retried after its answer was lost returns the same snapshot.
	again, err := ex.Commit(context.Background(), p.SnapshotDate, p.RunID)
	if err != nil || again.Manifest.RunID != p.RunID {
		t.Errorf("second commit: %v, %+v", err, again)
	}
	t.Logf("units %d, chunks %v, files %d, requests %d", len(p.Units), chunks, len(res.Manifest.Keys()), res.Manifest.API.Requests)
}

// TestStepsFailedUnitCommitsNothingAndLaterRunWins: a unit that never
// finishes blocks the commit, abort leaves the date's committed snapshot
// whole, a second run supersedes the first one's chunks and commits.
func TestStepsFailedUnitCommitsNothingAndLaterRunWins(t *testing.T) {
	fake, client := startFake(t, workostest.Config{Seed: 12, Directories: 3, UsersPerDirectory: 300, GroupsPerDirectory: 4}, nil)
	dst, err := objstore.Open(context.Background(), t.TempDir(), objstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cfg := testConfig()
	cfg.Mode = export.ModeFull // units that walk: an incremental rerun has one delta unit
	ex := &export.Exporter{Client: client, Store: dst, Config: cfg}
	first, err := ex.Run(ctx, export.Snapshot{Date: "2026-11-28", Time: snapTime})
	if err != nil {
		t.Fatal(err)
	}
	want := snapshottest.ExpectedRows(fake, snapTime)

	// Run A: one chunk of one unit, then the commit is refused.
	a, err := ex.Plan(ctx, export.Snapshot{Date: "2026-11-28", Time: snapTime}, export.PlanOptions{Workers: 3})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ex.RunChunk(ctx, a.SnapshotDate, a.RunID, a.Units[0].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := ex.Commit(ctx, a.SnapshotDate, a.RunID); !errors.Is(err, export.ErrUnitNotDone) {
		t.Fatalf("commit with units left: %v, want ErrUnitNotDone", err)
	}
	if err := ex.RecordFailure(ctx, a.SnapshotDate, a.RunID, a.Units[1].ID, export.Failure{Error: "Export.Failed", Cause: "unit 1 broke"}); err != nil {
		t.Fatal(err)
	}
	if ar, err := ex.Abort(ctx, a.SnapshotDate, a.RunID); err != nil || ar.Deleted == 0 || ar.Superseded != nil || len(ar.Failures) != 1 || ar.Failures[0].Cause != "unit 1 broke" {
		t.Fatalf("abort: %+v, %v; want the run's part and plan deleted and unit 1's failure", ar, err)
	}
	m := snapshottest.ReadManifest(t, dst, "2026-11-28")
	if m.RunID != first.Manifest.RunID {
		t.Fatalf("manifest run %s, want the committed %s", m.RunID, first.Manifest.RunID)
	}
	snapshottest.CheckExact(t, dst, m, want)
	snapshottest.CheckObjectsAreManifest(t, dst, m)

	// Runs B then C of the same date: C takes the lease, B's chunks stop.
	b, err := ex.Plan(ctx, export.Snapshot{Date: "2026-11-28", Time: snapTime}, export.PlanOptions{Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	c, err := ex.Plan(ctx, export.Snapshot{Date: "2026-11-28", Time: snapTime}, export.PlanOptions{Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ex.RunChunk(ctx, b.SnapshotDate, b.RunID, b.Units[0].ID); !errors.Is(err, export.ErrSuperseded) || !strings.Contains(err.Error(), c.RunID) {
		t.Fatalf("earlier run's chunk: %v, want ErrSuperseded naming %s", err, c.RunID)
	}
	runUnits(t, ex, c, time.Minute, retryCrashes)
	res, err := ex.Commit(ctx, c.SnapshotDate, c.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ex.Commit(ctx, b.SnapshotDate, b.RunID); !errors.Is(err, export.ErrSuperseded) {
		t.Errorf("earlier run's commit: %v, want ErrSuperseded", err)
	}
	if ar, err := ex.Abort(ctx, b.SnapshotDate, b.RunID); err != nil || !errors.Is(ar.Superseded, export.ErrSuperseded) {
		t.Errorf("earlier run's abort: %+v, %v; want it to report the supersession", ar, err)
	}
	snapshottest.CheckExact(t, dst, res.Manifest, want)
	snapshottest.CheckObjectsAreManifest(t, dst, res.Manifest)
}

// TestStepsTwoAttemptsOfAChunk: a retry that starts while the first attempt
// of the chunk still runs takes the unit over; the first attempt stops
// without committing a part or writing the checkpoint, and the snapshot is
// exact.
func TestStepsTwoAttemptsOfAChunk(t *testing.T) {
	fake, client := startFake(t, workostest.Config{Seed: 13, Directories: 1, UsersPerDirectory: 2000, GroupsPerDirectory: 5, Latency: 20 * time.Millisecond}, nil)
	dst, err := objstore.Open(context.Background(), t.TempDir(), objstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.ProgressEvery = 50 * time.Millisecond
	ex := &export.Exporter{Client: client, Store: dst, Config: cfg}
	ctx := context.Background()
	p, err := ex.Plan(ctx, export.Snapshot{Date: "2026-11-28", Time: snapTime}, export.PlanOptions{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	unit := p.Units[0].ID
	first := make(chan error, 1)
	go func() {
		_, err := ex.RunChunk(ctx, p.SnapshotDate, p.RunID, unit)
		first <- err
	}()
	time.Sleep(300 * time.Millisecond) // the first attempt is walking
	var res *export.ChunkResult
	for i := 0; ; i++ {
		if res, err = ex.RunChunk(ctx, p.SnapshotDate, p.RunID, unit); err != nil || res.Done || i > 5 {
			break
		}
	}
	if err != nil || !res.Done {
		t.Fatalf("the second attempt: %+v, %v", res, err)
	}
	if err := <-first; !errors.Is(err, export.ErrChunkTakenOver) {
		t.Fatalf("the first attempt: %v, want ErrChunkTakenOver", err)
	}
	out, err := ex.Commit(ctx, p.SnapshotDate, p.RunID)
	if err != nil {
		t.Fatal(err)
	}
	snapshottest.CheckExact(t, dst, out.Manifest, snapshottest.ExpectedRows(fake, snapTime))
	snapshottest.CheckObjectsAreManifest(t, dst, out.Manifest)
}
