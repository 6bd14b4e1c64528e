package export_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dsync-export/dsync-export/internal/testenv/workostest"
	"github.com/dsync-export/dsync-export/pkg/export"
	"github.com/dsync-export/dsync-export/pkg/objstore"
	"github.com/dsync-export/dsync-export/pkg/snapshot"
)

// Every /directory_groups?user= answer carries one row of another directory,
// so RowsRejected must equal the number of users, although chunks stopped in
// the middle of a by_user batch discard it and fetch it again.
func TestRejectedRowsCountedOnceAcrossStoppedByUserBatches(t *testing.T) {
	const users = 400
	var mu sync.Mutex
	injected := map[string]int{}
	wrap := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/directory_groups" || r.URL.Query().Get("user") == "" {
				h.ServeHTTP(w, r)
				return
			}
			time.Sleep(15 * time.Millisecond)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			var page map[string]any
			if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &page) != nil {
				for k, v := range rec.Header() {
					w.Header()[k] = v
				}
				w.WriteHeader(rec.Code)
				w.Write(rec.Body.Bytes())
				return
			}
			data, _ := page["data"].([]any)
			if len(data) > 0 {
				g := map[string]any{}
				for k, v := range data[0].(map[string]any) {
					g[k] = v
				}
				g["id"] = "directory_group_" + strings.ReplaceAll(r.URL.Query().Get("user"), "directory_user_", "x")
				g["directory_id"] = "directory_someoneelse"
				page["data"] = append(data, g)
				mu.Lock()
				injected[r.URL.Query().Get("user")]++
				mu.Unlock()
			}
			b, _ := json.Marshal(page)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(200)
			w.Write(bytes.TrimSpace(b))
		})
	}
	_, client := startFake(t, workostest.Config{Seed: 3, Directories: 1, UsersPerDirectory: users, GroupsPerDirectory: 5}, wrap)
	local, err := objstore.Open(context.Background(), t.TempDir(), objstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.MembershipMode = snapshot.RouteByUser
	cfg.DeadlineMargin = 100 * time.Millisecond
	ex := &export.Exporter{Client: client, Store: local, Config: cfg}
	p, err := ex.Plan(context.Background(), export.Snapshot{Date: "2026-11-28", Time: snapTime}, export.PlanOptions{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	chunks := runUnits(t, ex, p, 250*time.Millisecond, retryCrashes)
	res, err := ex.Commit(context.Background(), p.SnapshotDate, p.RunID)
	if err != nil {
		t.Fatal(err)
	}
	d := res.Manifest.Directories[0]
	t.Logf("chunks %v, users %d, memberships %d, rows_rejected %d", chunks, d.Users, d.Memberships, d.RowsRejected)
	refetched := 0
	for _, n := range injected {
		if n > 1 {
			refetched++
		}
	}
	t.Logf("distinct users with an injected row %d, of them served more than once %d", len(injected), refetched)
	if d.RowsRejected != int64(len(injected)) {
		t.Errorf("rows_rejected %d, want %d (one per distinct user with groups)", d.RowsRejected, len(injected))
	}
}
