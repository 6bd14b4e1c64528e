package export_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dsync-export/dsync-export/pkg/snapshot"

	"github.com/dsync-export/dsync-export/internal/testenv/snapshottest"
	"github.com/dsync-export/dsync-export/internal/testenv/workostest"
	"github.com/dsync-export/dsync-export/pkg/export"
	"github.com/dsync-export/dsync-export/pkg/objstore"
	"github.com/dsync-export/dsync-export/pkg/workos"
)

// The lists an export walks, told apart by path and filter.
var (
	isDirectories = func(r *http.Request) bool { return r.URL.Path == "/directories" }
	isUsers       = func(r *http.Request) bool {
		return r.URL.Path == "/directory_users" && r.URL.Query().Get("group") == ""
	}
	isGroups = func(r *http.Request) bool {
		return r.URL.Path == "/directory_groups" && r.URL.Query().Get("user") == ""
	}
	isGroupMembers = func(r *http.Request) bool {
		return r.URL.Path == "/directory_users" && r.URL.Query().Get("group") != ""
	}
	isUserGroups = func(r *http.Request) bool {
		return r.URL.Path == "/directory_groups" && r.URL.Query().Get("user") != ""
	}
)

// rewrite wraps the fake: the answer to a request that match selects is
// fetched from the fake (without the after cursor when it is a scripted
// "cursor_…", which the fake would refuse), decoded, handed to edit with the
// request, and sent re-encoded with the fake's headers. Values stay raw JSON,
// so what edit leaves alone is sent byte for byte.
func rewrite(t *testing.T, match func(*http.Request) bool, edit func(r *http.Request, body map[string]json.RawMessage)) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !match(r) {
				next.ServeHTTP(w, r)
				return
			}
			fwd := r.Clone(r.Context())
			if q := fwd.URL.Query(); strings.HasPrefix(q.Get("after"), "cursor_") {
				q.Del("after")
				fwd.URL.RawQuery = q.Encode()
			}
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, fwd)
			body := rec.Body.Bytes()
			if rec.Code == http.StatusOK {
				var m map[string]json.RawMessage
				if err := json.Unmarshal(body, &m); err != nil {
					t.Errorf("rewrite: the fake's answer to %s is not JSON: %v", r.URL, err)
				}
				edit(r, m)
				body = mustJSON(t, m)
			}
			for k, v := range rec.Header() {
				if k != "Content-Length" {
					w.Header()[k] = v
				}
			}
			w.WriteHeader(rec.Code)
			_, _ = w.Write(body)
		})
	}
}

// TestExportEndsOnARepeatedCursor serves, on each list the export walks, an
// after cursor that repeats (A, A) or cycles (A, B, A). The export must end
// with an error that names the endpoint and the cursor, write no manifest,
// and never spin until the test's timeout.
func TestExportEndsOnARepeatedCursor(t *testing.T) {
	lists := []struct {
		name     string
		match    func(*http.Request) bool
		mode     string
		endpoint string
	}{
		{"directories", isDirectories, snapshot.RouteByGroup, "GET /directories:"},
		{"users", isUsers, snapshot.RouteByGroup, "GET /directory_users?directory=directory_"},
		{"groups", isGroups, snapshot.RouteByGroup, "GET /directory_groups?directory=directory_"},
		{"members by group", isGroupMembers, snapshot.RouteByGroup, "&group=directory_group_"},
		{"groups by user", isUserGroups, snapshot.RouteByUser, "GET /directory_groups?user=directory_user_"},
	}
	shapes := []struct {
		name string
		next map[string]string
	}{
		{"repeat", map[string]string{"": "cursor_A", "cursor_A": "cursor_A"}},
		{"cycle", map[string]string{"": "cursor_A", "cursor_A": "cursor_B", "cursor_B": "cursor_A"}},
	}
	for _, l := range lists {
		for _, sh := range shapes {
			t.Run(l.name+"/"+sh.name, func(t *testing.T) {
				var served atomic.Int64
				wrap := rewrite(t, l.match, func(r *http.Request, body map[string]json.RawMessage) {
					served.Add(1)
					after := r.URL.Query().Get("after")
					next, ok := sh.next[after]
					if !ok {
						t.Errorf("the export sent the after cursor %q, which no page gave", after)
					}
					body["list_metadata"] = mustJSON(t, map[string]any{"before": nil, "after": next})
				})
				_, client := startFake(t, workostest.Config{Seed: 4, Directories: 2, UsersPerDirectory: 40, GroupsPerDirectory: 3}, wrap)
				dst, err := objstore.Open(context.Background(), t.TempDir(), objstore.Options{})
				if err != nil {
					t.Fatal(err)
				}
				cfg := testConfig()
				cfg.MembershipMode = l.mode
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				ex := &export.Exporter{Client: client, Store: dst, Config: cfg}
				_, err = ex.Run(ctx, export.Snapshot{Date: "2026-11-28", Time: snapTime})
				if ctx.Err() != nil {
					t.Fatalf("the export ran into the test's timeout after %d rewritten pages: it loops", served.Load())
				}
				if !errors.Is(err, workos.ErrRepeatedCursor) {
					t.Fatalf("err = %v, want a repeated-cursor error", err)
				}
				for _, want := range []string{l.endpoint, `cursor "cursor_A"`} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not name %q", err, want)
					}
				}
				if snapshottest.ReadManifest(t, dst, "2026-11-28") != nil {
					t.Error("a manifest was written after a looping cursor")
				}
			})
		}
	}
}

// mustJSON encodes v without HTML escapes, which would change raw values.
func mustJSON(t *testing.T, v any) json.RawMessage {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}
