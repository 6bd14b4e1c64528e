package export_test

import (
	"context"
	"testing"
	"time"

	"github.com/dsync-export/dsync-export/internal/testenv/workostest"
	"github.com/dsync-export/dsync-export/pkg/export"
	"github.com/dsync-export/dsync-export/pkg/objstore"
	"github.com/dsync-export/dsync-export/pkg/snapshot"
)

// The state machine retries a commit whose manifest PUT lost its answer
// (Export.Retryable). The retry finds the run's manifest, writes the
// snapshots row that is missing and deletes the stale objects.
func TestRetriedCommitWritesTheSnapshotRowAndCleansUp(t *testing.T) {
	_, client := startFake(t, workostest.Config{Seed: 11, Directories: 2, UsersPerDirectory: 60, GroupsPerDirectory: 2}, nil)
	local, err := objstore.Open(context.Background(), t.TempDir(), objstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ex := &export.Exporter{Client: client, Store: local, Config: testConfig()}
	p, err := ex.Plan(context.Background(), export.Snapshot{Date: "2026-11-28", Time: snapTime}, export.PlanOptions{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	runUnits(t, ex, p, time.Minute, retryCrashes)
	lost := &export.Exporter{Client: client, Store: lostAnswerStore{local}, Config: testConfig()}
	if _, err := lost.Commit(context.Background(), p.SnapshotDate, p.RunID); err == nil {
		t.Fatal("want the lost answer error")
	}
	res, err := ex.Commit(context.Background(), p.SnapshotDate, p.RunID) // the state machine's retry
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	if _, err := local.Get(context.Background(), snapshot.SnapshotRowKey(p.SnapshotDate, p.RunID)); err != nil {
		t.Errorf("retried commit returned success (manifest %s) but the snapshots row is missing: %v", res.ManifestKey, err)
	}
	objs, _ := local.List(context.Background(), snapshot.RunsPrefix(p.SnapshotDate))
	if len(objs) > 0 {
		t.Errorf("retried commit left %d plan/checkpoint objects", len(objs))
	}
}
