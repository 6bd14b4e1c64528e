package export_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/dsync-export/dsync-export/internal/testenv/snapshottest"
	"github.com/dsync-export/dsync-export/internal/testenv/workostest"
	"github.com/dsync-export/dsync-export/pkg/export"
	"github.com/dsync-export/dsync-export/pkg/objstore"
	"github.com/dsync-export/dsync-export/pkg/snapshot"
)

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
				p, err := ex.Plan(context.Background(), export.Snapshot{Date: "2026-11-28", Time: snapTime}, export.PlanOptions{Workers: 2})
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
