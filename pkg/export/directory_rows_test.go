package export_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/dsync-export/dsync-export/pkg/snapshot"

	"github.com/dsync-export/dsync-export/internal/testenv/snapshottest"
	"github.com/dsync-export/dsync-export/internal/testenv/workostest"
	"github.com/dsync-export/dsync-export/pkg/export"
	"github.com/dsync-export/dsync-export/pkg/objstore"
)

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
			res, err := ex.Run(context.Background(), export.Snapshot{Date: "2026-11-28", Time: snapTime})
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
	res, err := ex.Run(context.Background(), export.Snapshot{Date: "2026-11-28", Time: snapTime})
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
