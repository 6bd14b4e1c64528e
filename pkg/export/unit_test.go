package export_test

import (
	"context"
	"fmt"
	"net/http"
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

// A chunk whose walk fails after a part rolled over deletes that part.
func TestFailedChunkDeletesItsRolledOverParts(t *testing.T) {
	var users atomic.Int32
	var fail atomic.Bool
	fail.Store(true)
	_, client := startFake(t, workostest.Config{Seed: 10, Directories: 1, UsersPerDirectory: 3000, GroupsPerDirectory: 2}, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if fail.Load() && r.URL.Path == "/directory_users" && r.URL.Query().Get("group") == "" && users.Add(1) > 25 {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadGateway)
				_, _ = w.Write([]byte(`{"message":"bad gateway"}`))
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	local, _ := objstore.Open(context.Background(), t.TempDir(), objstore.Options{})
	cfg := testConfig()
	cfg.Writer.MaxFileBytes = 64 << 10
	cfg.Writer.MaxRowsPerRowGroup = 200
	ex := &export.Exporter{Client: client, Store: local, Config: cfg}
	p, err := ex.Plan(context.Background(), export.Target{Date: "2026-11-28", Time: snapTime}, export.PlanOptions{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = ex.RunChunk(ctx, p.SnapshotDate, p.RunID, p.UnitIDs()[0])
	t.Logf("chunk error (Export.Retryable): %v", err)
	objs, _ := local.List(context.Background(), snapshot.PartitionPrefix(schema.TableDirectoryUsers, p.SnapshotDate))
	for _, o := range objs {
		t.Errorf("left behind by the failed chunk, no checkpoint lists it: %s", o.Key)
	}
}

// TestStepsStressEveryRoute runs each membership route in short chunks under
// 5xx errors and connection resets, retrying every failed chunk from its
// checkpoint as the state machine does: the snapshot is exact, and the
// directories' counts in the manifest equal the tables' rows.
func TestStepsStressEveryRoute(t *testing.T) {
	for _, route := range []string{snapshot.RouteByUser, snapshot.RouteByGroup, snapshot.RouteLegacy} {
		for seed := int64(1); seed <= 3; seed++ {
			t.Run(fmt.Sprintf("%s-%d", route, seed), func(t *testing.T) {
				fake, client := startFake(t, workostest.Config{
					Seed: seed, Directories: 4, UsersPerDirectory: 700, GroupsPerDirectory: 9, LegacyGroups: route == snapshot.RouteLegacy, Latency: 3 * time.Millisecond,
					Faults: workostest.Faults{Seed: seed, ServerError: 0.03, Reset: 0.01},
				}, nil)
				dir, _ := objstore.Open(context.Background(), t.TempDir(), objstore.Options{})
				cfg := testConfig()
				cfg.Concurrency = 2
				cfg.UserRouteParallelism = 3
				cfg.MembershipMode = route
				cfg.DeadlineMargin = 300 * time.Millisecond
				cfg.ProgressEvery = 20 * time.Millisecond
				ex := &export.Exporter{Client: client, Store: dir, Config: cfg}
				p, err := ex.Plan(context.Background(), export.Target{Date: "2026-11-28", Time: snapTime}, export.PlanOptions{Workers: 2})
				if err != nil {
					t.Fatal(err)
				}
				chunks := runUnits(t, ex, p, 700*time.Millisecond, retryAll)
				res, err := ex.Commit(context.Background(), p.SnapshotDate, p.RunID)
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("chunks %v", chunks)
				snapshottest.CheckExact(t, dir, res.Manifest, snapshottest.ExpectedRows(fake, snapTime))
				var u, g, m int64
				for _, d := range res.Manifest.Directories {
					if d.Error != "" || d.Status != "ok" {
						t.Errorf("dir %s: %s %s", d.ID, d.Status, d.Error)
					}
					u += d.Users
					g += d.Groups
					m += d.Memberships
				}
				if u != res.Manifest.Tables["directory_users"].Rows || g != res.Manifest.Tables["directory_groups"].Rows || m != res.Manifest.Tables["directory_group_memberships"].Rows {
					t.Errorf("directory counts %d/%d/%d differ from tables %+v", u, g, m, res.Manifest.Tables)
				}
			})
		}
	}
}

// retryAll retries every failed chunk from its checkpoint.
func retryAll(error) bool { return true }

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
	p, err := ex.Plan(context.Background(), export.Target{Date: "2026-11-28", Time: snapTime, Trigger: "test"}, export.PlanOptions{Workers: 3})
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
