package export_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

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
	p, err := ex.Plan(context.Background(), export.Snapshot{Date: "2026-11-28", Time: snapTime}, export.PlanOptions{Workers: 1})
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
