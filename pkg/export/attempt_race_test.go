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
	p, err := ex.Plan(context.Background(), export.Snapshot{Date: "2026-11-28", Time: snapTime}, export.PlanOptions{Workers: 1})
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
