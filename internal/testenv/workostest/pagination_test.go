package workostest

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// listCase is a list endpoint with the IDs it must return, oldest first.
type listCase struct {
	name string
	path string
	want []string
}

func listCases(t *testing.T, f *fake) []listCase {
	t.Helper()
	var dirIDs, allUsers, allGroups []string
	for _, d := range f.Directories() {
		dirIDs = append(dirIDs, d.ID)
		for u := range f.Users(d.ID) {
			allUsers = append(allUsers, u.ID)
		}
		for g := range f.Groups(d.ID) {
			allGroups = append(allGroups, g.ID)
		}
	}
	d1 := f.Directories()[1].ID
	var users, groups []string
	for u := range f.Users(d1) {
		users = append(users, u.ID)
	}
	for g := range f.Groups(d1) {
		groups = append(groups, g.ID)
	}
	// The biggest group of d1, and the groups of a user in several.
	members := map[string][]string{}
	userGroups := map[string][]string{}
	for g, u := range f.Memberships(d1) {
		members[g] = append(members[g], u)
		userGroups[u] = append(userGroups[u], g)
	}
	big := ""
	for g, m := range members {
		if big == "" || len(m) > len(members[big]) {
			big = g
		}
	}
	multi := ""
	for u, gs := range userGroups {
		if len(gs) >= 2 {
			multi = u
			break
		}
	}
	if big == "" || multi == "" {
		t.Fatal("dataset has no group members or no user in two groups")
	}
	return []listCase{
		{"directories", "directories", dirIDs},
		{"users of a directory", "directory_users?directory=" + d1, users},
		{"users of all directories", "directory_users", allUsers},
		{"members of a group", "directory_users?group=" + big, members[big]},
		{"groups of a directory", "directory_groups?directory=" + d1, groups},
		{"groups of all directories", "directory_groups", allGroups},
		{"groups of a user", "directory_groups?user=" + multi, userGroups[multi]},
	}
}

// TestCursorWalks walks every list in every order, with several page sizes,
// forwards from the first page and then backwards from the last, and checks
// that each walk visits every item exactly once in the display order.
func TestCursorWalks(t *testing.T) {
	f := startFake(t, Config{Seed: 3, Directories: 4, UsersPerDirectory: 57, GroupsPerDirectory: 23})
	for _, lc := range listCases(t, f) {
		for _, ord := range []string{"asc", "desc", "normal"} {
			for _, limit := range []string{"1", "7", "100", ""} {
				t.Run(fmt.Sprintf("%s/%s/limit=%s", lc.name, ord, limit), func(t *testing.T) {
					want := lc.want
					if ord != "asc" {
						want = reversed(want)
					}
					// Cursor that continues in display order: after for asc
					// and desc; before for normal (it fetches older items).
					fwd, back := "after", "before"
					if ord == "normal" {
						fwd, back = "before", "after"
					}
					path := withQuery(lc.path, "order", ord, "limit", limit)
					var got [][]string
					cur := ""
					for n := 0; ; n++ {
						if n > len(want)+1 {
							t.Fatalf("forward walk does not end")
						}
						ids, before, after := f.page(withQuery(path, fwd, cur))
						meta := map[string]string{"before": before, "after": after}
						got = append(got, ids)
						if n == 0 && meta[back] != "" {
							t.Errorf("first page has %s cursor %q, want null", back, meta[back])
						}
						if n > 0 && meta[back] != ids[0] {
							t.Errorf("page %d: %s cursor %q, want its first item %q", n, back, meta[back], ids[0])
						}
						if meta[fwd] == "" {
							break
						}
						if meta[fwd] != ids[len(ids)-1] {
							t.Errorf("page %d: %s cursor %q, want its last item", n, fwd, meta[fwd])
						}
						cur = meta[fwd]
					}
					if diff := cmp.Diff(want, slices.Concat(got...)); diff != "" {
						t.Fatalf("forward walk (-want +got):\n%s", diff)
					}
					pageSize := 10
					if limit != "" {
						fmt.Sscan(limit, &pageSize)
					}
					for i, p := range got[:len(got)-1] {
						if len(p) != pageSize {
							t.Errorf("page %d has %d items, want %d", i, len(p), pageSize)
						}
					}
					// Backwards from the last page's first item.
					last := got[len(got)-1]
					back2 := [][]string{last}
					cur = last[0]
					if len(got) == 1 {
						cur = ""
					}
					for n := 0; cur != ""; n++ {
						if n > len(want)+1 {
							t.Fatalf("backward walk does not end")
						}
						ids, before, after := f.page(withQuery(path, back, cur))
						meta := map[string]string{"before": before, "after": after}
						back2 = append([][]string{ids}, back2...)
						cur = meta[back]
					}
					if diff := cmp.Diff(want, slices.Concat(back2...)); diff != "" {
						t.Fatalf("backward walk (-want +got):\n%s", diff)
					}
				})
			}
		}
	}
}

// TestCursorSemantics pins the meaning of before/after in each order, as the
// spec describes it, around one item in the middle of a directory.
func TestCursorSemantics(t *testing.T) {
	f := startFake(t, Config{Seed: 4, Directories: 1, UsersPerDirectory: 30})
	d := f.Directories()[0].ID
	var ids []string
	for u := range f.Users(d) {
		ids = append(ids, u.ID)
	}
	x := ids[15]
	base := "directory_users?limit=3&directory=" + d
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"", reversed(ids)[:3]}, // default order is desc
		{"&order=asc", ids[:3]},
		{"&order=desc", reversed(ids)[:3]},
		{"&order=normal", reversed(ids)[:3]},
		{"&order=asc&after=" + x, ids[16:19]},
		{"&order=asc&before=" + x, ids[12:15]},
		{"&order=desc&after=" + x, reversed(ids[12:15])},
		{"&order=desc&before=" + x, reversed(ids[16:19])},
		{"&order=normal&before=" + x, reversed(ids[12:15])}, // before fetches older
		{"&order=normal&after=" + x, reversed(ids[16:19])},  // after fetches newer
		{"&order=asc&after=" + ids[10] + "&before=" + ids[12], ids[11:12]},
		{"&order=asc&after=" + ids[29], nil},
		{"&order=desc&after=" + ids[0], nil},
	} {
		got, before, after := f.page(base + tc.query)
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.query, diff)
		}
		if len(got) == 0 && (before != "" || after != "") {
			t.Errorf("%s: empty page has cursors %q/%q, want null", tc.query, before, after)
		}
	}
	// limit defaults to 10.
	if got, _, _ := f.page("directory_users?directory=" + d); len(got) != 10 {
		t.Errorf("no limit: %d items, want 10", len(got))
	}
}

func TestPaginationValidation(t *testing.T) {
	f := startFake(t, Config{Seed: 5, Directories: 1, UsersPerDirectory: 5, GroupsPerDirectory: 3})
	d := f.Directories()[0].ID
	var user, group string
	for u := range f.Users(d) {
		user = u.ID
	}
	for g := range f.Groups(d) {
		group = g.ID
	}
	invalid := func(field string) string {
		return `{"message":"Validation failed.","errors":[{"code":"invalid","field":"` + field + `"}]}`
	}
	users := "directory_users?directory=" + d
	// A valid ID with one character changed: it decodes, but its check fails.
	tampered := user[:len(user)-1] + string("0123456789ABCDEFGHJKMNPQRSTVWXYZ"[(strings.IndexByte("0123456789ABCDEFGHJKMNPQRSTVWXYZ", user[len(user)-1])+1)%32])
	for _, tc := range []struct{ path, want string }{
		{users + "&limit=0", invalid("limit")},
		{users + "&limit=101", invalid("limit")},
		{users + "&limit=-1", invalid("limit")},
		{users + "&limit=ten", invalid("limit")},
		{users + "&limit=1.5", invalid("limit")},
		{users + "&limit=", invalid("limit")},
		{"directories?limit=1000", invalid("limit")},
		{"directory_groups?limit=0", invalid("limit")},
		{users + "&order=ASC", invalid("order")},
		{users + "&order=random", invalid("order")},
		{users + "&order=", invalid("order")},
		{users + "&after=directory_user_nope", invalid("after")},
		{users + "&before=" + tampered, invalid("before")},
		{users + "&after=" + group, invalid("after")}, // an ID of another kind
		{"directory_groups?after=" + user, invalid("after")},
		{"directories?before=" + user, invalid("before")},
		{users + "&limit=0&order=up", `{"message":"Validation failed.","errors":[{"code":"invalid","field":"limit"},{"code":"invalid","field":"order"}]}`},
		{"directory_users?idp_id=1001", `{"message":"Validation failed.","errors":[{"code":"not_implemented_by_fake","field":"idp_id"}]}`},
		{"directory_users?directory=x&email=a@b.c", `{"message":"Validation failed.","errors":[{"code":"not_implemented_by_fake","field":"email"}]}`},
		{"directories?search=x&domain=y", `{"message":"Validation failed.","errors":[{"code":"not_implemented_by_fake","field":"search"},{"code":"not_implemented_by_fake","field":"domain"}]}`},
	} {
		resp, body := f.do(http.MethodGet, tc.path)
		if resp.StatusCode != http.StatusUnprocessableEntity || string(body) != tc.want {
			t.Errorf("GET %s = %d %s, want 422 %s", tc.path, resp.StatusCode, body, tc.want)
		}
	}
	for _, ok := range []string{users + "&limit=1", users + "&limit=100", users + "&order=normal", users + "&after=", users + "&after=" + user} {
		if resp, body := f.do(http.MethodGet, ok); resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s = %d %s, want 200", ok, resp.StatusCode, body)
		}
	}
}
