package export_test

import (
	"context"
	"testing"

	"github.com/dsync-export/dsync-export/internal/testenv/snapshottest"
	"github.com/dsync-export/dsync-export/internal/testenv/workostest"
	"github.com/dsync-export/dsync-export/pkg/export"
	"github.com/dsync-export/dsync-export/pkg/objstore"
	"github.com/dsync-export/dsync-export/pkg/snapshot"
)

func TestAutoRouteChoosesByUserForManySmallGroups(t *testing.T) {
	// 20 users in 150 groups: one request per user beats one per group.
	fake, client := startFake(t, workostest.Config{Seed: 5, Directories: 1, UsersPerDirectory: 20, GroupsPerDirectory: 150}, nil)
	dst, err := objstore.Open(context.Background(), t.TempDir(), objstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.PerDirectoryRate, cfg.GlobalRate = 4, 100 // the estimates use the real limits
	ex := &export.Exporter{Client: client, Store: dst, Config: cfg}
	res, err := ex.Run(context.Background(), export.Target{Date: "2026-01-02", Time: snapTime})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Manifest.Directories[0].MembershipRoute; got != snapshot.RouteByUser {
		t.Errorf("route %q, want by_user (%+v)", got, res.Manifest.Directories[0])
	}
	snapshottest.CheckExact(t, dst, res.Manifest, snapshottest.ExpectedRows(fake, snapTime))
}
