package export_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dsync-export/dsync-export/internal/testenv/snapshottest"
	"github.com/dsync-export/dsync-export/internal/testenv/workostest"
	"github.com/dsync-export/dsync-export/pkg/export"
	"github.com/dsync-export/dsync-export/pkg/objstore"
	"github.com/dsync-export/dsync-export/pkg/schema"
	"github.com/dsync-export/dsync-export/pkg/snapshot"
)

// raceStore holds attempt A's checkpoint PUT (A already passed its last
// claim check) until attempt B has claimed the unit, and fails B's
// checkpoint PUT (a crash after its parts landed).
type raceStore struct {
	objstore.Store
	aReady, bClaimed chan struct{}
	attempts, cps    atomic.Int32
}

func (s *raceStore) Put(ctx context.Context, key string, body []byte, ct string) error {
	switch {
	case strings.HasSuffix(key, ".attempt.json"):
		if err := s.Store.Put(ctx, key, body, ct); err != nil {
			return err
		}
		if s.attempts.Add(1) == 2 {
			close(s.bClaimed)
		}
		return nil
	case strings.Contains(key, "/unit-") && strings.HasSuffix(key, ".json") && !strings.Contains(key, ".failure"):
		switch s.cps.Add(1) {
		case 1: // attempt A, after its checks
			close(s.aReady)
			<-s.bClaimed
		case 2: // attempt B crashes before its checkpoint
			return errors.New("crash before the checkpoint")
		}
	}
	return s.Store.Put(ctx, key, body, ct)
}

// TestStaleAttemptCannotOverwriteCheckpointedParts: attempt A completes the
// unit's chunk after attempt B (a retry) claimed the unit; B, which shares
// A's part keys, must stop without overwriting A's checkpointed parts, and
// the snapshot stays exact.
func TestStaleAttemptCannotOverwriteCheckpointedParts(t *testing.T) {
	fake, client := startFake(t, workostest.Config{Seed: 4, Directories: 1, UsersPerDirectory: 3000, GroupsPerDirectory: 4, Latency: 5 * time.Millisecond}, nil)
	local, err := objstore.Open(context.Background(), t.TempDir(), objstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st := &raceStore{Store: local, aReady: make(chan struct{}), bClaimed: make(chan struct{})}
	cfg := testConfig()
	cfg.ProgressEvery = 0
	cfg.DeadlineMargin = 100 * time.Millisecond
	ex := &export.Exporter{Client: client, Store: st, Config: cfg}
	p, err := ex.Plan(context.Background(), export.Target{Date: "2026-11-28", Time: snapTime}, export.PlanOptions{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	unit := p.UnitIDs()[0]
	var wg sync.WaitGroup
	var aRes *export.ChunkResult
	var aErr, bErr error
	wg.Go(func() { // attempt A: long deadline, finishes the unit
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		aRes, aErr = ex.RunChunk(ctx, p.SnapshotDate, p.RunID, unit)
	})
	<-st.aReady
	wg.Go(func() { // attempt B: the state machine's retry, a short-lived one
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		_, bErr = ex.RunChunk(ctx, p.SnapshotDate, p.RunID, unit)
	})
	wg.Wait()
	t.Logf("A: done=%v err=%v; B: err=%v", aRes != nil && aRes.Done, aErr, bErr)
	// The state machine saw B fail (retryable) and retries: the checkpoint
	// (A's) says done.
	res, err := ex.RunChunk(context.Background(), p.SnapshotDate, p.RunID, unit)
	if err != nil || !res.Done {
		t.Fatalf("retry: %v", err)
	}
	c, err := ex.Commit(context.Background(), p.SnapshotDate, p.RunID)
	if err != nil {
		t.Fatal(err)
	}
	snapshottest.CheckExact(t, local, c.Manifest, snapshottest.ExpectedRows(fake, snapTime))
}

// gateStore holds the first Create of key until release is closed, after
// telling reached.
type gateStore struct {
	objstore.Store
	key              string
	once             sync.Once
	reached, release chan struct{}
}

func (s *gateStore) Create(ctx context.Context, key, ct string) (objstore.Object, error) {
	if key == s.key {
		s.once.Do(func() {
			close(s.reached)
			<-s.release
		})
	}
	return s.Store.Create(ctx, key, ct)
}

// Item 18: a stale chunk attempt A (an invocation that went on after the
// state machine retried it) rolls a part over after the retry B finished
// the unit and the run committed. A and B share part keys, so A's rolled
// part would overwrite a committed file: it must not be committed.
func TestStaleAttemptNeverOverwritesACommittedPart(t *testing.T) {
	fake, client := startFake(t, workostest.Config{Seed: 103, Directories: 1, UsersPerDirectory: 2500, GroupsPerDirectory: 3}, nil)
	local := localStore(t)
	cfg := testConfig()
	cfg.ProgressEvery = 0 // no progress check: only the part's own check stops A
	cfg.Writer.MaxFileBytes = 32 << 10
	ex := &export.Exporter{Client: client, Store: local, Config: cfg, Now: fake.Now}
	ctx := context.Background()
	p, err := ex.Plan(ctx, export.Target{Date: fakeDate(fake), Time: fake.Now(), Trigger: "test"}, export.PlanOptions{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	unit := p.UnitIDs()[0]
	gate := &gateStore{Store: local, key: snapshot.ChunkPartKey(schema.TableDirectoryUsers, p.SnapshotDate, p.RunID, unit, 0, 1),
		reached: make(chan struct{}), release: make(chan struct{})}
	exA := *ex
	exA.Store = gate
	var aErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, aErr = exA.RunChunk(ctx, p.SnapshotDate, p.RunID, unit)
	}()
	<-gate.reached
	// The state machine retried A: B walks changed data, finishes the unit,
	// and the run commits.
	fake.AdvanceWith(time.Hour, workostest.AdvanceOptions{Churn: 0.2, DirectoryRate: -1})
	res, err := ex.RunChunk(ctx, p.SnapshotDate, p.RunID, unit)
	if err != nil || !res.Done {
		t.Fatalf("attempt B: %+v, %v", res, err)
	}
	c, err := ex.Commit(ctx, p.SnapshotDate, p.RunID)
	if err != nil {
		t.Fatal(err)
	}
	close(gate.release)
	<-done
	t.Logf("A: %v; users parts %d", aErr, len(c.Manifest.Tables[schema.TableDirectoryUsers].Files))
	if !errors.Is(aErr, export.ErrChunkTakenOver) {
		t.Errorf("attempt A: %v, want ErrChunkTakenOver", aErr)
	}
	if len(c.Manifest.Tables[schema.TableDirectoryUsers].Files) < 3 {
		t.Fatalf("users in %d parts: the test needs rolled-over parts", len(c.Manifest.Tables[schema.TableDirectoryUsers].Files))
	}
	verifyOK(t, local, p.SnapshotDate)
}

// Two exports of the same date at once: the later one takes the lease and
// commits; the earlier one fails with ErrSuperseded, commits nothing and
// deletes nothing of the later one.
func TestConcurrentRunsOfADateTheLaterOneWins(t *testing.T) {
	slowFake, slow := startFake(t, workostest.Config{Seed: 6, Directories: 2, UsersPerDirectory: 400, GroupsPerDirectory: 4, Latency: 15 * time.Millisecond}, nil)
	_, fast := startFake(t, workostest.Config{Seed: 6, Directories: 2, UsersPerDirectory: 400, GroupsPerDirectory: 4}, nil)
	dst, _ := newS3Sink(t)
	ctx := context.Background()
	cfg := testConfig()
	cfg.ProgressEvery = 50 * time.Millisecond // the earlier run checks its lease this often
	earlier := &export.Exporter{Client: slow, Store: dst, Config: cfg}
	later := &export.Exporter{Client: fast, Store: dst, Config: cfg}

	errc := make(chan error, 1)
	go func() {
		_, err := earlier.Run(ctx, export.Target{Date: "2026-11-28", Time: snapTime})
		errc <- err
	}()
	// Wait until the earlier run holds the lease.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := dst.Get(ctx, snapshot.LeaseKey("2026-11-28")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the earlier run never took the lease")
		}
		time.Sleep(5 * time.Millisecond)
	}
	res, err := later.Run(ctx, export.Target{Date: "2026-11-28", Time: snapTime})
	if err != nil {
		t.Fatalf("the later run failed: %v", err)
	}
	err = <-errc
	if !errors.Is(err, export.ErrSuperseded) || !strings.Contains(err.Error(), res.Manifest.RunID) {
		t.Fatalf("the earlier run: err %v, want ErrSuperseded naming the later run %s", err, res.Manifest.RunID)
	}
	m := snapshottest.ReadManifest(t, dst, "2026-11-28")
	if m.RunID != res.Manifest.RunID {
		t.Errorf("committed run %s, want the later run %s", m.RunID, res.Manifest.RunID)
	}
	snapshottest.CheckExact(t, dst, m, snapshottest.ExpectedRows(slowFake, snapTime))
	snapshottest.CheckObjectsAreManifest(t, dst, m)
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
	p, err := ex.Plan(ctx, export.Target{Date: "2026-11-28", Time: snapTime}, export.PlanOptions{Workers: 1})
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
