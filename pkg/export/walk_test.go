package export_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
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
				_, err = ex.Run(ctx, export.Target{Date: "2026-11-28", Time: snapTime})
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

// hostileRows are rows a broken or hostile API could slip into a page of
// directory dir: IDs that are traversal paths, hold a newline or are empty,
// and a well-formed row of another directory.
func hostileRows(object, prefix, dir string) []json.RawMessage {
	row := func(id, dirID string) any {
		return map[string]any{"object": object, "id": id, "directory_id": dirID, "organization_id": "org_01HOSTILE",
			"idp_id": "x", "name": "x", "state": "active", "email": nil, "groups": []any{},
			"created_at": "2026-01-01T00:00:00.000Z", "updated_at": "2026-01-01T00:00:00.000Z"}
	}
	var out []json.RawMessage
	for _, r := range []any{
		row(prefix+"../../x", dir),
		row(prefix+"01ABC\n01DEF", dir),
		row("", dir),
		row(prefix+"01OTHERDIRECTORYROW", "directory_01SOMEOTHERDIRECTORY"),
	} {
		b, _ := json.Marshal(r)
		out = append(out, b)
	}
	return out
}

func hostileIDs(prefix string) []string {
	return []string{strconv.Quote(prefix + "../../x"), strconv.Quote(prefix + "01ABC\n01DEF"), `""`, strconv.Quote(prefix + "01OTHERDIRECTORYROW")}
}

// TestHostileRowsAreSkippedOnEveryRoute slips hostile rows into the first
// page of each list the export reads rows from: the users walk (by_group and
// by_user routes), the groups walk, the members of each group (by_group), the
// groups of each user (by_user) and the legacy groups arrays. On every route
// the export must commit exactly the fake's good rows, count the rejected
// rows in the directory's manifest entry and log one warning per directory
// with the count and a quoted sample id.
func TestHostileRowsAreSkippedOnEveryRoute(t *testing.T) {
	const users, groups = 40, 3
	for _, tc := range []struct {
		name    string
		mode    string
		legacy  bool
		match   func(*http.Request) bool
		inject  func(body map[string]any, dir string)
		prefix  string
		perDir  int64 // rejected rows expected per directory
		firstPg bool  // inject into first pages only
	}{
		{name: "users/by_group", mode: snapshot.RouteByGroup, match: isUsers, prefix: "directory_user_", perDir: 4},
		{name: "users/by_user", mode: snapshot.RouteByUser, match: isUsers, prefix: "directory_user_", perDir: 4},
		{name: "groups", mode: snapshot.RouteByGroup, match: isGroups, prefix: "directory_group_", perDir: 4},
		{name: "memberships/by_group", mode: snapshot.RouteByGroup, match: isGroupMembers, prefix: "directory_user_", perDir: 4 * groups},
		{name: "memberships/by_user", mode: snapshot.RouteByUser, match: isUserGroups, prefix: "directory_group_", perDir: 4 * users},
		{name: "memberships/legacy", mode: snapshot.RouteLegacy, legacy: true, match: isUsers, prefix: "directory_group_", perDir: 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			userDir := map[string]string{}
			legacyInto := tc.legacy
			object := "directory_user"
			if strings.HasPrefix(tc.prefix, "directory_group_") {
				object = "directory_group"
			}
			wrap := rewrite(t, tc.match, func(r *http.Request, body map[string]json.RawMessage) {
				q := r.URL.Query()
				if q.Get("after") != "" {
					return
				}
				dir := q.Get("directory")
				if dir == "" {
					dir = userDir[q.Get("user")]
				}
				bad := hostileRows(object, tc.prefix, dir)
				var data []json.RawMessage
				if err := json.Unmarshal(body["data"], &data); err != nil {
					t.Errorf("page %s: %v", r.URL, err)
					return
				}
				if legacyInto {
					var first map[string]json.RawMessage
					var gs []json.RawMessage
					if len(data) == 0 || json.Unmarshal(data[0], &first) != nil || json.Unmarshal(first["groups"], &gs) != nil {
						t.Errorf("page %s: no user with a groups array to slip hostile groups into", r.URL)
						return
					}
					first["groups"] = mustJSON(t, append(bad, gs...))
					data[0] = mustJSON(t, first)
				} else {
					data = append(bad, data...)
				}
				body["data"] = mustJSON(t, data)
			})
			fake, client := startFake(t, workostest.Config{Seed: 8, Directories: 2, UsersPerDirectory: users, GroupsPerDirectory: groups, LegacyGroups: tc.legacy}, wrap)
			for _, d := range fake.Directories() {
				for u := range fake.Users(d.ID) {
					userDir[u.ID] = d.ID
				}
			}
			dst, err := objstore.Open(context.Background(), t.TempDir(), objstore.Options{})
			if err != nil {
				t.Fatal(err)
			}
			var logs bytes.Buffer
			cfg := testConfig()
			cfg.MembershipMode = tc.mode
			ex := &export.Exporter{Client: client, Store: dst, Config: cfg, Log: slog.New(slog.NewJSONHandler(&logs, nil))}
			res, err := ex.Run(context.Background(), export.Target{Date: "2026-11-28", Time: snapTime})
			if err != nil {
				t.Fatalf("the export failed instead of skipping the hostile rows: %v", err)
			}
			snapshottest.CheckExact(t, dst, res.Manifest, snapshottest.ExpectedRows(fake, snapTime))

			warned := map[string]int{}
			sc := bufio.NewScanner(&logs)
			for sc.Scan() {
				var line struct {
					Msg      string `json:"msg"`
					Dir      string `json:"directory_id"`
					Rejected int64  `json:"rows_rejected"`
					Sample   string `json:"sample_id"`
				}
				if err := json.Unmarshal(sc.Bytes(), &line); err != nil || !strings.HasPrefix(line.Msg, "rows rejected") {
					continue
				}
				warned[line.Dir]++
				if line.Rejected != tc.perDir || !slices.Contains(hostileIDs(tc.prefix), line.Sample) {
					t.Errorf("warning for %s: %d rows rejected, sample %s; want %d and one of %v", line.Dir, line.Rejected, line.Sample, tc.perDir, hostileIDs(tc.prefix))
				}
			}
			for _, dm := range res.Manifest.Directories {
				if dm.RowsRejected != tc.perDir || !strings.Contains(dm.Error, "skipped") {
					t.Errorf("directory %s: rows_rejected %d, error %q; want %d and a note", dm.ID, dm.RowsRejected, dm.Error, tc.perDir)
				}
				if warned[dm.ID] != 1 {
					t.Errorf("directory %s: %d rows-rejected warnings, want 1", dm.ID, warned[dm.ID])
				}
			}
		})
	}
}

// TestRejectedRowSampleNeverCarriesTheKey: a server that echoes the API key
// into a row's id gets the row rejected, and the key reaches neither the
// warning nor the manifest.
func TestRejectedRowSampleNeverCarriesTheKey(t *testing.T) {
	wrap := rewrite(t, isUsers, func(r *http.Request, body map[string]json.RawMessage) {
		if r.URL.Query().Get("after") != "" {
			return
		}
		var data []json.RawMessage
		if err := json.Unmarshal(body["data"], &data); err != nil {
			t.Errorf("page %s: %v", r.URL, err)
			return
		}
		echo := mustJSON(t, map[string]any{"object": "directory_user", "id": r.Header.Get("Authorization"), "directory_id": r.URL.Query().Get("directory"),
			"organization_id": "org_01HOSTILE", "idp_id": "x", "state": "active", "email": nil, "groups": []any{},
			"created_at": "2026-01-01T00:00:00.000Z", "updated_at": "2026-01-01T00:00:00.000Z"})
		body["data"] = mustJSON(t, append([]json.RawMessage{echo}, data...))
	})
	fake, client := startFake(t, workostest.Config{Seed: 9, Directories: 1, UsersPerDirectory: 30, GroupsPerDirectory: 2}, wrap)
	dst, err := objstore.Open(context.Background(), t.TempDir(), objstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	ex := &export.Exporter{Client: client, Store: dst, Config: testConfig(), Log: slog.New(slog.NewJSONHandler(&logs, nil))}
	res, err := ex.Run(context.Background(), export.Target{Date: "2026-11-28", Time: snapTime})
	if err != nil {
		t.Fatal(err)
	}
	snapshottest.CheckExact(t, dst, res.Manifest, snapshottest.ExpectedRows(fake, snapTime))
	manifest, err := dst.Get(context.Background(), res.ManifestKey)
	if err != nil {
		t.Fatal(err)
	}
	if res.Manifest.Directories[0].RowsRejected != 1 || !strings.Contains(logs.String(), "[REDACTED]") {
		t.Errorf("rows rejected %d, logs %s: want the echoed row rejected and its id redacted", res.Manifest.Directories[0].RowsRejected, logs.String())
	}
	if strings.Contains(logs.String(), testKey) || bytes.Contains(manifest, []byte(testKey)) {
		t.Errorf("the API key reached the logs or the manifest:\n%s\n%s", logs.String(), manifest)
	}
}

func TestMembershipRoutesAgree(t *testing.T) {
	for _, mode := range []string{snapshot.RouteByGroup, snapshot.RouteByUser, snapshot.RouteLegacy, export.MembershipAuto} {
		t.Run(mode, func(t *testing.T) {
			fake, client := startFake(t, workostest.Config{Seed: 11, Directories: 2, UsersPerDirectory: 230, GroupsPerDirectory: 6, LegacyGroups: mode == snapshot.RouteLegacy}, nil)
			dst, err := objstore.Open(context.Background(), t.TempDir(), objstore.Options{})
			if err != nil {
				t.Fatal(err)
			}
			cfg := testConfig()
			cfg.MembershipMode = mode
			ex := &export.Exporter{Client: client, Store: dst, Config: cfg}
			res, err := ex.Run(context.Background(), export.Target{Date: "2026-01-02", Time: snapTime})
			if err != nil {
				t.Fatal(err)
			}
			snapshottest.CheckExact(t, dst, res.Manifest, snapshottest.ExpectedRows(fake, snapTime))
			for _, dm := range res.Manifest.Directories {
				if mode != export.MembershipAuto && dm.MembershipRoute != mode {
					t.Errorf("directory %s route %q, want %q", dm.ID, dm.MembershipRoute, mode)
				}
				if mode == export.MembershipAuto && (dm.EstimateByGroupSec <= 0 || dm.EstimateByUserSec <= 0) {
					t.Errorf("auto mode recorded no estimates: %+v", dm)
				}
			}
		})
	}
}

// TestDirectoryDeletedMidExportIsRecordedAndOthersComplete deletes one
// directory at WorkOS during each phase of its walk: the manifest must record
// it as deleted (keeping the rows fetched before), never as ok with missing
// memberships, and the other directories must be complete.
func TestDirectoryDeletedMidExportIsRecordedAndOthersComplete(t *testing.T) {
	for _, tc := range []struct {
		name, mode string
		trigger    func(r *http.Request, victim string, victimUsers map[string]bool) bool
	}{
		{"users walk", snapshot.RouteByGroup, func(r *http.Request, v string, _ map[string]bool) bool {
			q := r.URL.Query()
			return r.URL.Path == "/directory_users" && q.Get("directory") == v && q.Get("group") == "" && q.Get("after") != ""
		}},
		{"by_group member walks", snapshot.RouteByGroup, func(r *http.Request, v string, _ map[string]bool) bool {
			q := r.URL.Query()
			return r.URL.Path == "/directory_users" && q.Get("directory") == v && q.Get("group") != ""
		}},
		{"by_user member walks", snapshot.RouteByUser, func(r *http.Request, _ string, users map[string]bool) bool {
			return r.URL.Path == "/directory_groups" && users[r.URL.Query().Get("user")]
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var fake *workostest.Server
			var victim atomic.Value
			var victimUsers map[string]bool
			var once sync.Once
			wrap := func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if id, _ := victim.Load().(string); id != "" && tc.trigger(r, id, victimUsers) {
						once.Do(func() { fake.DeleteDirectory(id) })
					}
					next.ServeHTTP(w, r)
				})
			}
			f, client := startFake(t, workostest.Config{Seed: 9, Directories: 3, UsersPerDirectory: 350, GroupsPerDirectory: 4}, wrap)
			fake = f
			dirs := fake.Directories()
			victimUsers = map[string]bool{}
			for u := range fake.Users(dirs[1].ID) {
				victimUsers[u.ID] = true
			}
			counts := map[string][3]int{}
			for _, d := range dirs {
				u, g, m := fake.Counts(d.ID)
				counts[d.ID] = [3]int{u, g, m}
			}
			victim.Store(dirs[1].ID)
			dst, err := objstore.Open(context.Background(), t.TempDir(), objstore.Options{})
			if err != nil {
				t.Fatal(err)
			}
			cfg := testConfig()
			cfg.MembershipMode = tc.mode
			ex := &export.Exporter{Client: client, Store: dst, Config: cfg}
			res, err := ex.Run(context.Background(), export.Target{Date: "2026-11-28", Time: snapTime})
			if err != nil {
				t.Fatal(err)
			}
			users := snapshottest.ReadTable[schema.DirectoryUser](t, dst, res.Manifest, schema.TableDirectoryUsers)
			perDir := map[string]int64{}
			for _, u := range users {
				perDir[u.DirectoryID]++
			}
			if n := res.Manifest.Tables[schema.TableDirectories].Rows; n != 3 {
				t.Errorf("directories table has %d rows, want all 3 (the deleted one as last seen)", n)
			}
			for _, dm := range res.Manifest.Directories {
				want := counts[dm.ID]
				if dm.ID == dirs[1].ID {
					if dm.Status != snapshot.DirectoryDeleted || dm.Error == "" {
						t.Errorf("victim recorded as %+v, want status deleted with a note", dm)
					}
					if perDir[dm.ID] != dm.Users {
						t.Errorf("victim: %d user rows kept, manifest says %d", perDir[dm.ID], dm.Users)
					}
					continue
				}
				if dm.Status != snapshot.DirectoryOK || dm.Error != "" ||
					dm.Users != int64(want[0]) || dm.Groups != int64(want[1]) || dm.Memberships != int64(want[2]) || perDir[dm.ID] != int64(want[0]) {
					t.Errorf("directory %s: %+v (%d user rows), want ok with %v users/groups/memberships", dm.ID, dm, perDir[dm.ID], want)
				}
			}
		})
	}
}

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
	p, err := ex.Plan(context.Background(), export.Target{Date: "2026-11-28", Time: snapTime}, export.PlanOptions{Workers: 1})
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
