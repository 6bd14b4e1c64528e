package workostest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dsync-export/dsync-export/pkg/workos"
)

func TestUnauthorized(t *testing.T) {
	f := startFake(t, Config{APIKey: "sk_test_secret", Directories: 1, UsersPerDirectory: 1})
	for _, auth := range []string{"", "Bearer " + testKey, "Bearer sk_test_secreT", "bearer sk_test_secret", "sk_test_secret", "Basic c2s6"} {
		resp, body := f.do(http.MethodGet, "directories", "Authorization", auth)
		if resp.StatusCode != http.StatusUnauthorized || string(body) != `{"message":"Unauthorized"}` {
			t.Errorf("Authorization %q: %d %s, want 401 {\"message\":\"Unauthorized\"}", auth, resp.StatusCode, body)
		}
		if bytes.Contains(body, []byte("sk_test")) {
			t.Errorf("401 body echoes the key: %s", body)
		}
	}
	if resp, body := f.do(http.MethodGet, "directories", "Authorization", "Bearer sk_test_secret"); resp.StatusCode != http.StatusOK {
		t.Errorf("right key: %d %s", resp.StatusCode, body)
	}
	// DELETE needs the key too.
	d := f.Directories()[0].ID
	if resp, _ := f.do(http.MethodDelete, "directories/"+d, "Authorization", ""); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("DELETE without key: %d, want 401", resp.StatusCode)
	}
	if len(f.Directories()) != 1 {
		t.Error("unauthorized DELETE deleted the directory")
	}
}

func TestHeaders(t *testing.T) {
	f := startFake(t, Config{Directories: 1, UsersPerDirectory: 1})
	seen := map[string]bool{}
	for _, path := range []string{"directories", "directories/nope", "nope", "directory_users?limit=0"} {
		resp, _ := f.do(http.MethodGet, path)
		id := resp.Header.Get("X-Request-ID")
		if !strings.HasPrefix(id, "req_") || len(id) != 4+26 || seen[id] {
			t.Errorf("GET %s: X-Request-ID %q, want a fresh req_ + ULID", path, id)
		}
		seen[id] = true
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("GET %s: Content-Type %q", path, ct)
		}
	}
	resp, _ := f.do(http.MethodGet, "directories", "X-Request-ID", "trace-123")
	if got := resp.Header.Get("X-Request-ID"); got != "trace-123" {
		t.Errorf("X-Request-ID not echoed: %q", got)
	}
}

func TestNotFound(t *testing.T) {
	f := startFake(t, Config{Directories: 2, UsersPerDirectory: 3, GroupsPerDirectory: 2})
	d := f.Directories()[0].ID
	u := collect(f.Users(d))[0].ID
	g := collect(f.Groups(d))[0].ID
	notFound := `{"message":"Not Found"}`
	const unknownDir = "directory_01HXYZ123456789ABCDEFGHJKM"
	for _, tc := range []struct{ method, path, want string }{
		{"GET", "nope", notFound},
		{"GET", "", notFound},
		{"GET", "directories/", notFound},
		{"GET", "directories/" + d + "/users", notFound},
		{"POST", "directories", notFound},
		{"PUT", "directories/" + d, notFound},
		{"DELETE", "directory_users/" + u, notFound},
		{"GET", "events/x", notFound},
		{"POST", "_fake/advance", notFound},
		{"GET", "directories/" + unknownDir, `{"message":"Directory not found: '` + unknownDir + `'."}`},
		{"GET", "directories/" + u, `{"message":"Directory not found: '` + u + `'."}`},
		{"GET", "directory_users/" + d, `{"message":"Directory user not found: '` + d + `'."}`},
		{"GET", "directory_users/directory_user_x", `{"message":"Directory user not found: 'directory_user_x'."}`},
		{"GET", "directory_groups/" + u, `{"message":"Directory group not found: '` + u + `'."}`},
		{"GET", "directory_users?directory=" + unknownDir, `{"message":"Directory not found: '` + unknownDir + `'."}`},
		{"GET", "directory_groups?directory=bogus", `{"message":"Directory not found: 'bogus'."}`},
		{"GET", "directory_users?group=" + u, `{"message":"Directory group not found: '` + u + `'."}`},
		{"GET", "directory_groups?user=" + g, `{"message":"Directory user not found: '` + g + `'."}`},
		{"DELETE", "directories/" + unknownDir, `{"message":"Directory not found: '` + unknownDir + `'."}`},
	} {
		resp, body := f.do(tc.method, tc.path)
		if resp.StatusCode != http.StatusNotFound || string(body) != tc.want {
			t.Errorf("%s /%s = %d %s, want 404 %s", tc.method, tc.path, resp.StatusCode, body, tc.want)
		}
	}
}

func TestDeleteDirectory(t *testing.T) {
	f := startFake(t, Config{Directories: 3, UsersPerDirectory: 5, GroupsPerDirectory: 3})
	dirs := f.Directories()
	d := dirs[1].ID
	u := collect(f.Users(d))[0].ID
	g := collect(f.Groups(d))[0].ID
	users, _, _ := f.page("directory_users?limit=100")
	if len(users) != 15 {
		t.Fatalf("%d users before delete, want 15", len(users))
	}

	resp, body := f.do(http.MethodDelete, "directories/"+d)
	if resp.StatusCode != http.StatusAccepted || len(body) != 0 {
		t.Fatalf("DELETE = %d %q, want 202 with an empty body", resp.StatusCode, body)
	}
	gone := `{"message":"Directory not found: '` + d + `'."}`
	for _, tc := range []struct{ method, path, want string }{
		{"GET", "directories/" + d, gone},
		{"DELETE", "directories/" + d, gone},
		{"GET", "directory_users?directory=" + d, gone},
		{"GET", "directory_groups?directory=" + d, gone},
		{"GET", "directory_users/" + u, `{"message":"Directory user not found: '` + u + `'."}`},
		{"GET", "directory_groups/" + g, `{"message":"Directory group not found: '` + g + `'."}`},
		{"GET", "directory_users?group=" + g, `{"message":"Directory group not found: '` + g + `'."}`},
		{"GET", "directory_groups?user=" + u, `{"message":"Directory user not found: '` + u + `'."}`},
	} {
		resp, body := f.do(tc.method, tc.path)
		if resp.StatusCode != http.StatusNotFound || string(body) != tc.want {
			t.Errorf("after delete, %s /%s = %d %s, want 404 %s", tc.method, tc.path, resp.StatusCode, body, tc.want)
		}
	}
	listed, _, _ := f.page("directories")
	if want := []string{dirs[2].ID, dirs[0].ID}; !slices.Equal(listed, want) {
		t.Errorf("directories after delete = %v, want %v", listed, want)
	}
	if users, _, _ = f.page("directory_users?limit=100"); len(users) != 10 || slices.Contains(users, u) {
		t.Errorf("all users after delete: %d, want the 10 of the other directories", len(users))
	}
	if n := len(f.Directories()); n != 2 {
		t.Errorf("Directories() has %d, want 2", n)
	}
	if n, _, _ := f.Counts(d); n != 0 || len(collect(f.Users(d))) != 0 {
		t.Error("accessors still return the deleted directory's users")
	}
	// A cursor of a deleted object is still a position.
	if resp, body := f.do(http.MethodGet, "directory_users?order=asc&after="+u); resp.StatusCode != http.StatusOK {
		t.Errorf("cursor of a deleted user: %d %s", resp.StatusCode, body)
	}
	if f.DeleteDirectory(d) {
		t.Error("DeleteDirectory of a deleted directory reported true")
	}
	if !f.DeleteDirectory(dirs[0].ID) || len(f.Directories()) != 1 {
		t.Error("DeleteDirectory did not delete")
	}
}

func TestDirectoryFilters(t *testing.T) {
	f := startFake(t, Config{Directories: 10, UsersPerDirectory: 1})
	dirs := f.Directories()
	byOrg := map[string][]string{}
	for _, d := range dirs {
		byOrg[d.OrganizationID] = append(byOrg[d.OrganizationID], d.ID)
	}
	shared := 0
	for org, want := range byOrg {
		got, _, _ := f.page("directories?order=asc&organization_id=" + org)
		if !slices.Equal(got, want) {
			t.Errorf("organization_id=%s: %v, want %v", org, got, want)
		}
		if len(want) > 1 {
			shared++
		}
	}
	if shared == 0 {
		t.Error("no organization has several directories")
	}
	if got, _, _ := f.page("directories?organization_id=org_01HXYZ123456789ABCDEFGHJKM"); len(got) != 0 {
		t.Errorf("unknown organization: %v", got)
	}
}

// TestEmailsUniqueAndLowerCase: e-mails are unique within a directory, and
// lower case.
func TestEmailsUniqueAndLowerCase(t *testing.T) {
	f := startFake(t, Config{Seed: 11, Directories: 1, UsersPerDirectory: 5000, GroupsPerDirectory: 4})
	dirs := f.Directories()
	seen := map[string]bool{}
	for u := range f.Users(dirs[0].ID) {
		if u.Email == nil {
			continue
		}
		if seen[*u.Email] || *u.Email != strings.ToLower(*u.Email) {
			t.Fatalf("e-mail %q duplicated or not lower case", *u.Email)
		}
		seen[*u.Email] = true
	}
}

// TestMemberships checks that ?group=, ?user=, the legacy groups array and
// Memberships() all describe the same edges.
func TestMemberships(t *testing.T) {
	f := startFake(t, Config{Seed: 12, Directories: 2, UsersPerDirectory: 300, GroupsPerDirectory: 12, LegacyGroups: true})
	for _, d := range f.Directories() {
		type edge struct{ g, u string }
		var want []edge
		for g, u := range f.Memberships(d.ID) {
			want = append(want, edge{g, u})
		}
		var viaGroup, viaUser, viaLegacy []edge
		groups := walkAll[workos.DirectoryGroup](f, "directory_groups?directory="+d.ID)
		for _, g := range groups {
			for _, u := range walkAll[idOnly](f, "directory_users?directory="+d.ID+"&group="+g.ID) {
				viaGroup = append(viaGroup, edge{g.ID, u.ID})
			}
		}
		users := walkAll[workos.DirectoryUser](f, "directory_users?directory="+d.ID)
		sizes := map[int]int{}
		for _, u := range users {
			gs := walkAll[idOnly](f, "directory_groups?user="+u.ID)
			sizes[len(gs)]++
			for _, g := range gs {
				viaUser = append(viaUser, edge{g.ID, u.ID})
			}
			for _, g := range u.Groups {
				viaLegacy = append(viaLegacy, edge{g.ID, u.ID})
				if g.RawAttributes != nil {
					t.Errorf("embedded group %s has raw_attributes", g.ID)
				}
			}
		}
		sortEdges := func(e []edge) []edge {
			slices.SortFunc(e, func(a, b edge) int { return strings.Compare(a.g+a.u, b.g+b.u) })
			return e
		}
		want = sortEdges(want)
		for name, got := range map[string][]edge{"?group=": viaGroup, "?user=": viaUser, "legacy groups": viaLegacy} {
			if diff := cmp.Diff(want, sortEdges(got), cmp.AllowUnexported(edge{})); diff != "" {
				t.Errorf("%s: memberships via %s differ from Memberships() (-want +got):\n%s", d.ID, name, diff)
			}
		}
		_, _, n := f.Counts(d.ID)
		if n != len(want) {
			t.Errorf("Counts memberships = %d, want %d", n, len(want))
		}
		// Users are in 0–3 groups, and some in none.
		for k := range sizes {
			if k > 3 {
				t.Errorf("a user is in %d groups", k)
			}
		}
		if sizes[0] == 0 || sizes[1] == 0 || sizes[2] == 0 {
			t.Errorf("group counts per user %v: want users in 0, 1 and 2 groups", sizes)
		}
		// Some groups are empty.
		empty := 0
		for _, g := range groups {
			if ids, _, _ := f.page("directory_users?group=" + g.ID); len(ids) == 0 {
				empty++
			}
		}
		if empty == 0 || empty == len(groups) {
			t.Errorf("%d of %d groups empty", empty, len(groups))
		}
	}
	// ?user= lists the groups Memberships() names.
	d0 := f.Directories()[0].ID
	for g, u := range f.Memberships(d0) {
		userGroups, _, _ := f.page("directory_groups?limit=100&user=" + u)
		if !slices.Contains(userGroups, g) {
			t.Errorf("?user=%s lacks %s", u, g)
		}
		break
	}
	// Filters combine: a group of one directory with another directory is empty.
	dirs := f.Directories()
	g := collect(f.Groups(dirs[0].ID))[0].ID
	if got, _, _ := f.page("directory_users?directory=" + dirs[1].ID + "&group=" + g); len(got) != 0 {
		t.Errorf("group of directory 0 within directory 1: %v", got)
	}
	u := collect(f.Users(dirs[0].ID))[0].ID
	if got, _, _ := f.page("directory_groups?directory=" + dirs[1].ID + "&user=" + u); len(got) != 0 {
		t.Errorf("user of directory 0 within directory 1: %v", got)
	}
}

func TestLegacyGroupsOff(t *testing.T) {
	f := startFake(t, Config{Directories: 1, UsersPerDirectory: 50, GroupsPerDirectory: 5})
	d := f.Directories()[0].ID
	var l list[map[string]json.RawMessage]
	f.getOK("directory_users?limit=50&directory="+d, &l)
	for _, u := range l.Data {
		if string(u["groups"]) != "[]" {
			t.Fatalf("groups = %s, want []", u["groups"])
		}
	}
	if _, _, n := f.Counts(d); n == 0 {
		t.Fatal("no memberships")
	}
}

// TestAccessorsMatchAPI compares the accessors with what the API serves,
// field by field.
func TestAccessorsMatchAPI(t *testing.T) {
	for _, legacy := range []bool{false, true} {
		f := startFake(t, Config{Seed: 13, Directories: 3, UsersPerDirectory: 150, GroupsPerDirectory: 9, LegacyGroups: legacy})
		dirs := walkAll[workos.Directory](f, "directories")
		if diff := cmp.Diff(f.Directories(), dirs, timeOpt); diff != "" {
			t.Errorf("Directories() differs from GET /directories (-accessor +api):\n%s", diff)
		}
		for _, d := range dirs {
			var one workos.Directory
			f.getOK("directories/"+d.ID, &one)
			if diff := cmp.Diff(d, one, timeOpt); diff != "" {
				t.Errorf("GET /directories/{id} differs from the list:\n%s", diff)
			}
			users := walkAll[workos.DirectoryUser](f, "directory_users?directory="+d.ID)
			if diff := cmp.Diff(collect(f.Users(d.ID)), users, timeOpt); diff != "" {
				t.Errorf("Users(%s) differs from the API (-accessor +api):\n%s", d.ID, diff)
			}
			for _, u := range users[:5] {
				var one workos.DirectoryUser
				f.getOK("directory_users/"+u.ID, &one)
				if diff := cmp.Diff(u, one, timeOpt); diff != "" {
					t.Errorf("GET /directory_users/{id} differs from the list:\n%s", diff)
				}
			}
			groups := walkAll[workos.DirectoryGroup](f, "directory_groups?directory="+d.ID)
			if diff := cmp.Diff(collect(f.Groups(d.ID)), groups, timeOpt); diff != "" {
				t.Errorf("Groups(%s) differs from the API (-accessor +api):\n%s", d.ID, diff)
			}
			var oneGroup workos.DirectoryGroup
			f.getOK("directory_groups/"+groups[0].ID, &oneGroup)
			if diff := cmp.Diff(groups[0], oneGroup, timeOpt); diff != "" {
				t.Errorf("GET /directory_groups/{id} differs from the list:\n%s", diff)
			}
			nu, ng, _ := f.Counts(d.ID)
			if nu != len(users) || ng != len(groups) {
				t.Errorf("Counts = %d users %d groups, API has %d and %d", nu, ng, len(users), len(groups))
			}
		}
	}
	// Unknown IDs yield nothing.
	f := startFake(t, Config{Directories: 1, UsersPerDirectory: 1, GroupsPerDirectory: 1})
	if len(collect(f.Users("directory_nope")))+len(collect(f.Groups("nope"))) != 0 {
		t.Error("accessors yield for an unknown directory")
	}
	for range f.Memberships("nope") {
		t.Error("Memberships yields for an unknown directory")
	}
}

func TestDeterminism(t *testing.T) {
	cfg := Config{Seed: 42, Directories: 3, UsersPerDirectory: 120, GroupsPerDirectory: 7, LegacyGroups: true}
	a, b := startFake(t, cfg), startFake(t, cfg)
	cfg.Seed = 43
	c := startFake(t, cfg)
	d := a.Directories()[1].ID
	u := collect(a.Users(d))[17].ID
	g := collect(a.Groups(d))[2].ID
	for _, path := range []string{
		"directories?limit=100",
		"directories/" + d,
		"directory_users?limit=100&order=asc&directory=" + d,
		"directory_users?limit=100&order=desc",
		"directory_users/" + u,
		"directory_groups?limit=100",
		"directory_groups/" + g,
		"directory_users?group=" + g,
		"directory_groups?user=" + u,
	} {
		ba, bb := a.getOK(path, nil), b.getOK(path, nil)
		if !bytes.Equal(ba, bb) {
			t.Errorf("GET %s differs between two servers with the same seed", path)
		}
	}
	if bytes.Equal(a.getOK("directories", nil), c.getOK("directories", nil)) {
		t.Error("different seeds serve identical directories")
	}
}
