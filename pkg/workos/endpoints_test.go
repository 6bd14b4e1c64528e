package workos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func ptr[T any](v T) *T { return &v }

func utc(y int, mo time.Month, d, h, mi, s, ms int) Time {
	return Time{time.Date(y, mo, d, h, mi, s, ms*int(time.Millisecond), time.UTC)}
}

const (
	dirID   = "directory_01ECAZ4NV9QMV47GW873HDCX74"
	userID1 = "directory_user_01E1JG7J09H96KYP8HM9B0G5SJ"
	groupID = "directory_group_01E1JJS84MFPPQ3G655FHTKX6Z"
	orgID   = "org_01EZTR6WYX1A0DSE2CYMGXQ24Y"
)

var wantDevelopers = DirectoryGroup{
	Object:         "directory_group",
	ID:             groupID,
	IdpID:          "02grqrue4294w24",
	DirectoryID:    dirID,
	OrganizationID: orgID,
	Name:           "Developers",
	CreatedAt:      utc(2026, 1, 15, 12, 0, 0, 0),
	UpdatedAt:      utc(2026, 1, 15, 12, 0, 0, 0),
}

func TestListDirectoriesRequestAndDecode(t *testing.T) {
	c, mux := setup(t)
	var hits atomic.Int32
	mux.HandleFunc("/directories", func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		testMethod(t, r, http.MethodGet)
		testHeaders(t, r)
		testQuery(t, r, url.Values{
			"limit": {"100"}, "order": {"desc"}, "organization_id": {"org_01EHZNVPK3SFK441A1RGBFSHRT"},
			"search": {"Foo & Co"}, "domain": {"foo-corp.com"},
		})
		w.Header().Set("X-Request-ID", "req_dirs_1")
		writeJSON(w, 200, string(fixture(t, "directories.json")))
	})
	page, err := c.ListDirectories(context.Background(), &ListDirectoriesOptions{
		OrganizationID: "org_01EHZNVPK3SFK441A1RGBFSHRT", Search: "Foo & Co", Domain: "foo-corp.com",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := &Page[Directory]{
		Object: "list",
		Data: []Directory{
			{
				Object: "directory", ID: dirID, OrganizationID: "org_01EHZNVPK3SFK441A1RGBFSHRT",
				ExternalKey: "sPa12dwRQ", Type: DirectoryTypeGSuiteDirectory, State: DirectoryStateLinked,
				Name: "Foo Corp", Domain: ptr("foo-corp.com"),
				Metadata:  &DirectoryMetadata{Users: DirectoryUserCounts{Active: 42, Inactive: 3}, Groups: 5},
				CreatedAt: utc(2026, 1, 15, 12, 0, 0, 0), UpdatedAt: utc(2026, 1, 15, 12, 0, 0, 0),
			},
			{
				Object: "directory", ID: "directory_01HXYZ987654321KJIHGFEDCBA", OrganizationID: orgID,
				ExternalKey: "k3y",
				Type:        "acme hr v9",      // unknown enum kept
				State:       "paused_by_admin", // unknown enum kept
				Name:        "Acme",
				CreatedAt:   utc(2023, 4, 28, 20, 5, 31, 93),
				UpdatedAt:   utc(2026, 1, 15, 12, 0, 0, 0), // +02:00 normalised to UTC
			},
		},
		ListMetadata: ListMetadata{After: ptr("directory_01HXYZ987654321KJIHGFEDCBA")},
		RequestID:    "req_dirs_1",
	}
	if diff := cmp.Diff(want, page); diff != "" {
		t.Errorf("page mismatch (-want +got):\n%s", diff)
	}
	if after, ok := page.NextAfter(); !ok || after != "directory_01HXYZ987654321KJIHGFEDCBA" {
		t.Errorf("NextAfter = %q, %v", after, ok)
	}
	if _, ok := page.NextBefore(); ok {
		t.Errorf("NextBefore ok with a null before cursor")
	}
	if hits.Load() != 1 || c.Stats().Pages != 1 {
		t.Errorf("hits = %d, stats = %+v", hits.Load(), c.Stats())
	}
}

func TestListDirectoriesNilOptions(t *testing.T) {
	c, mux := setup(t)
	mux.HandleFunc("GET /directories", func(w http.ResponseWriter, r *http.Request) {
		testQuery(t, r, url.Values{"limit": {"100"}, "order": {"desc"}})
		writeJSON(w, 200, `{"object":"list","data":[],"list_metadata":{"before":null,"after":null}}`)
	})
	page, err := c.ListDirectories(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Data) != 0 {
		t.Errorf("data = %v", page.Data)
	}
	if _, ok := page.NextAfter(); ok {
		t.Errorf("NextAfter ok on an empty last page")
	}
}

func TestGetDirectoryDecode(t *testing.T) {
	c, mux := setup(t)
	mux.HandleFunc("GET /directories/{id}", func(w http.ResponseWriter, r *http.Request) {
		testHeaders(t, r)
		testQuery(t, r, url.Values{})
		writeJSON(w, 200, string(fixture(t, "directory.json")))
	})
	d, err := c.GetDirectory(context.Background(), dirID)
	if err != nil {
		t.Fatal(err)
	}
	want := &Directory{
		Object: "directory", ID: dirID, OrganizationID: "org_01EHZNVPK3SFK441A1RGBFSHRT", ExternalKey: "sPa12dwRQ",
		Type: DirectoryTypeOktaSCIMv2, State: DirectoryStateLinked, Name: "Foo Corp",
		Domain:    ptr(""), // empty, not absent
		CreatedAt: utc(2026, 1, 15, 12, 0, 0, 0), UpdatedAt: utc(2026, 1, 15, 12, 0, 0, 0),
	}
	if diff := cmp.Diff(want, d); diff != "" {
		t.Errorf("directory mismatch (-want +got):\n%s", diff)
	}
	if c.Stats().Pages != 0 {
		t.Errorf("a get counted as a page: %+v", c.Stats())
	}
}

func TestListDirectoryUsersRequestAndDecode(t *testing.T) {
	c, mux := setup(t)
	mux.HandleFunc("GET /directory_users", func(w http.ResponseWriter, r *http.Request) {
		testHeaders(t, r)
		testQuery(t, r, url.Values{
			"limit": {"25"}, "order": {"asc"}, "after": {"directory_user_01ABC"},
			"directory": {dirID}, "group": {groupID}, "idp_id": {"id/with space"}, "email": {"a+b@example.com"},
		})
		// Query values are URL-encoded on the wire.
		if !strings.Contains(r.URL.RawQuery, "email=a%2Bb%40example.com") || !strings.Contains(r.URL.RawQuery, "idp_id=id%2Fwith+space") {
			t.Errorf("raw query not encoded: %s", r.URL.RawQuery)
		}
		w.Header().Set("X-Request-ID", "req_users_1")
		writeJSON(w, 200, string(fixture(t, "directory_users.json")))
	})
	page, err := c.ListDirectoryUsers(context.Background(), &ListDirectoryUsersOptions{
		ListOptions: ListOptions{Limit: 25, Order: OrderAsc, After: "directory_user_01ABC"},
		Directory:   dirID, Group: groupID, IdpID: "id/with space", Email: "a+b@example.com",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := &Page[DirectoryUser]{
		Object: "list",
		Data: []DirectoryUser{
			{
				Object: "directory_user", ID: userID1, DirectoryID: dirID, OrganizationID: orgID, IdpID: "2836",
				Email: ptr("marcelina.davis@example.com"), FirstName: ptr("Marcelina"), LastName: ptr("Davis"),
				Name: ptr("Marcelina Davis"), State: DirectoryUserStateActive,
				Emails:        []DirectoryUserEmail{{Primary: ptr(true), Type: ptr("work"), Value: ptr("marcelina.davis@example.com")}},
				JobTitle:      ptr("Software Engineer"),
				Username:      ptr("mdavis"),
				RawAttributes: json.RawMessage(`{}`),
				// Byte-exact, including the double space and the key order.
				CustomAttributes: json.RawMessage(`{"department": "Engineering",  "job_title": "Software Engineer", "cost_center": 4200, "manager": null, "tags": ["a", "b"]}`),
				Role:             &SlimRole{Slug: "admin"},
				Roles:            []SlimRole{{Slug: "admin"}, {Slug: "member"}},
				CreatedAt:        utc(2026, 1, 15, 12, 0, 0, 0),
				UpdatedAt:        utc(2026, 1, 15, 12, 30, 0, 0),
				Groups:           []DirectoryGroup{wantDevelopers},
			},
			{
				Object: "directory_user", ID: "directory_user_01HXYZ123456789ABCDEFGHIJ", DirectoryID: dirID,
				OrganizationID: orgID, IdpID: "00u1a2b3c4",
				Email:     nil,     // null
				FirstName: ptr(""), // empty string, not null
				LastName:  nil,     // null
				Name:      nil,     // absent
				State:     DirectoryUserStateSuspended,
				Emails:    nil, JobTitle: nil, Username: nil,
				RawAttributes:    json.RawMessage(`{}`),
				CustomAttributes: json.RawMessage(`{}`),
				CreatedAt:        utc(2023, 4, 28, 20, 5, 31, 93),
				UpdatedAt:        utc(2026, 1, 15, 12, 0, 0, 0),
				Groups:           []DirectoryGroup{},
			},
			{
				Object: "directory_user", ID: "directory_user_01HXYZ987654321KJIHGFEDCBA", DirectoryID: dirID,
				OrganizationID: orgID, IdpID: "x-9",
				Email:            ptr(""),
				State:            "on_leave", // unknown enum kept
				RawAttributes:    json.RawMessage(`{"legacy": true}`),
				CustomAttributes: json.RawMessage("{\n        \"department\": \"Sales\"\n      }"),
				CreatedAt:        utc(2026, 1, 15, 12, 0, 0, 0),
				UpdatedAt:        Time{time.Date(2026, 1, 15, 12, 0, 0, 123456000, time.UTC)},
				Groups:           []DirectoryGroup{},
			},
		},
		ListMetadata: ListMetadata{
			Before: ptr(userID1),
			After:  ptr("directory_user_01HXYZ987654321KJIHGFEDCBA"),
		},
		RequestID: "req_users_1",
	}
	if diff := cmp.Diff(want, page); diff != "" {
		t.Errorf("page mismatch (-want +got):\n%s", diff)
	}
	if before, ok := page.NextBefore(); !ok || before != userID1 {
		t.Errorf("NextBefore = %q, %v", before, ok)
	}
}

func TestGetDirectoryUserAndGroupDecode(t *testing.T) {
	c, mux := setup(t)
	mux.HandleFunc("GET /directory_users/{id}", func(w http.ResponseWriter, r *http.Request) {
		testHeaders(t, r)
		if r.PathValue("id") != userID1 {
			t.Errorf("user id = %q", r.PathValue("id"))
		}
		writeJSON(w, 200, string(fixture(t, "directory_user.json")))
	})
	mux.HandleFunc("GET /directory_groups/{id}", func(w http.ResponseWriter, r *http.Request) {
		testHeaders(t, r)
		if r.PathValue("id") != groupID {
			t.Errorf("group id = %q", r.PathValue("id"))
		}
		writeJSON(w, 200, string(fixture(t, "directory_group.json")))
	})
	u, err := c.GetDirectoryUser(context.Background(), userID1)
	if err != nil {
		t.Fatal(err)
	}
	if u.ID != userID1 || *u.Email != "marcelina.davis@example.com" || u.Name != nil || u.Role != nil ||
		string(u.CustomAttributes) != `{"department": "Engineering"}` || u.Groups == nil || len(u.Groups) != 0 {
		t.Errorf("user = %+v", u)
	}
	g, err := c.GetDirectoryGroup(context.Background(), groupID)
	if err != nil {
		t.Fatal(err)
	}
	want := wantDevelopers
	want.RawAttributes = json.RawMessage(`{"displayName": "Developers"}`)
	if diff := cmp.Diff(&want, g); diff != "" {
		t.Errorf("group mismatch (-want +got):\n%s", diff)
	}
}

func TestListDirectoryGroupsRequestAndDecode(t *testing.T) {
	c, mux := setup(t)
	mux.HandleFunc("GET /directory_groups", func(w http.ResponseWriter, r *http.Request) {
		testHeaders(t, r)
		testQuery(t, r, url.Values{
			"limit": {"100"}, "order": {"normal"}, "before": {"directory_group_01ZZZ"},
			"directory": {dirID}, "user": {userID1},
		})
		writeJSON(w, 200, string(fixture(t, "directory_groups.json")))
	})
	page, err := c.ListDirectoryGroups(context.Background(), &ListDirectoryGroupsOptions{
		ListOptions: ListOptions{Order: OrderNormal, Before: "directory_group_01ZZZ"},
		Directory:   dirID, User: userID1,
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []DirectoryGroup{
		func() DirectoryGroup { g := wantDevelopers; g.RawAttributes = json.RawMessage(`{}`); return g }(),
		{
			Object: "directory_group", ID: "directory_group_01HXYZ987654321KJIHGFEDCBA", IdpID: "sales",
			DirectoryID: dirID, OrganizationID: orgID, Name: "Sales",
			RawAttributes: nil, // absent
			CreatedAt:     utc(2026, 1, 15, 12, 0, 0, 0),
			UpdatedAt:     utc(2026, 1, 15, 12, 0, 0, 500),
		},
	}
	if diff := cmp.Diff(want, page.Data); diff != "" {
		t.Errorf("groups mismatch (-want +got):\n%s", diff)
	}
	if page.ListMetadata.Before != nil || page.ListMetadata.After != nil {
		t.Errorf("list_metadata = %+v, want both null", page.ListMetadata)
	}
}

func TestDeleteDirectory(t *testing.T) {
	for _, status := range []int{200, 202, 204} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			c, mux := setup(t)
			var hits atomic.Int32
			mux.HandleFunc("/directories/{id}", func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				testMethod(t, r, http.MethodDelete)
				testHeaders(t, r)
				if r.PathValue("id") != dirID {
					t.Errorf("id = %q", r.PathValue("id"))
				}
				if status == 202 {
					writeJSON(w, status, `{}`)
					return
				}
				w.WriteHeader(status)
			})
			if err := c.DeleteDirectory(context.Background(), dirID); err != nil {
				t.Fatalf("DeleteDirectory: %v", err)
			}
			if hits.Load() != 1 {
				t.Errorf("hits = %d", hits.Load())
			}
		})
	}
}

func TestDeleteDirectoryRetriesServerErrors(t *testing.T) {
	c, mux := setup(t)
	var hits atomic.Int32
	mux.HandleFunc("DELETE /directories/{id}", func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) == 1 {
			writeJSON(w, 503, `{"message":"try again"}`)
			return
		}
		w.WriteHeader(204)
	})
	if err := c.DeleteDirectory(context.Background(), dirID); err != nil {
		t.Fatal(err)
	}
	if hits.Load() != 2 {
		t.Errorf("hits = %d, want 2", hits.Load())
	}
}

// pagedUsers serves /directory_users from ids (in list order) honouring limit,
// after and before like the API: list_metadata.after is the last ID of the
// page when more follow, before the first ID when more precede.
func pagedUsers(t *testing.T, ids []string, calls *atomic.Int32, seen *queryLog) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		q := r.URL.Query()
		seen.add(q)
		limit, err := strconv.Atoi(q.Get("limit"))
		if err != nil || limit < 1 || limit > 100 {
			t.Errorf("bad limit %q", q.Get("limit"))
			limit = 10
		}
		start, end := 0, min(limit, len(ids))
		switch {
		case q.Get("after") != "":
			start = slices.Index(ids, q.Get("after")) + 1
			end = min(start+limit, len(ids))
		case q.Get("before") != "":
			end = slices.Index(ids, q.Get("before"))
			start = max(0, end-limit)
		}
		writeJSON(w, 200, usersPage(ids[start:end], start > 0, end < len(ids)))
	}
}

// queryLog records the queries a handler saw.
type queryLog struct {
	mu sync.Mutex
	qs []url.Values
}

func (l *queryLog) add(q url.Values) { l.mu.Lock(); l.qs = append(l.qs, q); l.mu.Unlock() }

func (l *queryLog) all() []url.Values {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.qs)
}

func usersPage(ids []string, hasBefore, hasAfter bool) string {
	data := make([]string, len(ids))
	for i, id := range ids {
		data[i] = fmt.Sprintf(`{"object":"directory_user","id":%q,"directory_id":%q,"email":null,"state":"active","created_at":"2026-01-15T12:00:00.000Z","updated_at":"2026-01-15T12:00:00.000Z","groups":[]}`, id, dirID)
	}
	cursor := func(ok bool, id func() string) string {
		if !ok {
			return "null"
		}
		return strconv.Quote(id())
	}
	return fmt.Sprintf(`{"object":"list","data":[%s],"list_metadata":{"before":%s,"after":%s}}`,
		strings.Join(data, ","),
		cursor(hasBefore, func() string { return ids[0] }),
		cursor(hasAfter, func() string { return ids[len(ids)-1] }))
}

func userIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("directory_user_%03d", i)
	}
	return ids
}

func collect[T any](t *testing.T, seq iter.Seq2[T, error]) ([]T, error) {
	t.Helper()
	var items []T
	for it, err := range seq {
		if err != nil {
			return items, err
		}
		items = append(items, it)
	}
	return items, nil
}

func ids(users []DirectoryUser) []string {
	out := make([]string, len(users))
	for i, u := range users {
		out[i] = u.ID
	}
	return out
}

func TestDirectoryUsersWalkAfter(t *testing.T) {
	c, mux := setup(t)
	all := userIDs(7)
	var calls atomic.Int32
	var seen queryLog
	mux.HandleFunc("GET /directory_users", pagedUsers(t, all, &calls, &seen))
	opts := &ListDirectoryUsersOptions{ListOptions: ListOptions{Limit: 3}, Directory: dirID}
	users, err := collect(t, c.DirectoryUsers(context.Background(), opts))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(all, ids(users)); diff != "" {
		t.Errorf("walk mismatch (-want +got):\n%s", diff)
	}
	if calls.Load() != 3 {
		t.Errorf("calls = %d, want 3", calls.Load())
	}
	wantAfter := []string{"", "directory_user_002", "directory_user_005"}
	for i, q := range seen.all() {
		if q.Get("after") != wantAfter[i] || q.Get("before") != "" || q.Get("limit") != "3" ||
			q.Get("order") != "desc" || q.Get("directory") != dirID {
			t.Errorf("call %d query = %v", i, q)
		}
	}
	if opts.After != "" || opts.Limit != 3 {
		t.Errorf("the iterator changed the caller's options: %+v", opts)
	}
	if got := c.Stats(); got.Pages != 3 || got.Requests != 3 {
		t.Errorf("stats = %+v", got)
	}
}

func TestDirectoryUsersWalkBefore(t *testing.T) {
	c, mux := setup(t)
	all := userIDs(7)
	var calls atomic.Int32
	var seen queryLog
	mux.HandleFunc("GET /directory_users", pagedUsers(t, all, &calls, &seen))
	users, err := collect(t, c.DirectoryUsers(context.Background(), &ListDirectoryUsersOptions{
		ListOptions: ListOptions{Limit: 3, Before: "directory_user_006"}, Directory: dirID,
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"directory_user_003", "directory_user_004", "directory_user_005",
		"directory_user_000", "directory_user_001", "directory_user_002"}
	if diff := cmp.Diff(want, ids(users)); diff != "" {
		t.Errorf("walk mismatch (-want +got):\n%s", diff)
	}
	if calls.Load() != 2 {
		t.Errorf("calls = %d, want 2", calls.Load())
	}
	qs := seen.all()
	for i, wantBefore := range []string{"directory_user_006", "directory_user_003"} {
		if qs[i].Get("before") != wantBefore || qs[i].Get("after") != "" {
			t.Errorf("call %d query = %v", i, qs[i])
		}
	}
}

func TestWalkStopsWhenBreaking(t *testing.T) {
	c, mux := setup(t)
	var calls atomic.Int32
	var seen queryLog
	mux.HandleFunc("GET /directory_users", pagedUsers(t, userIDs(9), &calls, &seen))
	n := 0
	for _, err := range c.DirectoryUsers(context.Background(), &ListDirectoryUsersOptions{ListOptions: ListOptions{Limit: 3}, Directory: dirID}) {
		if err != nil {
			t.Fatal(err)
		}
		if n++; n == 4 {
			break
		}
	}
	if calls.Load() != 2 {
		t.Errorf("calls = %d, want 2 (no page fetched after break)", calls.Load())
	}
}

func TestWalkStopsOnEmptyPage(t *testing.T) {
	c, mux := setup(t)
	var calls atomic.Int32
	mux.HandleFunc("GET /directory_groups", func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		// A non-null cursor with no data must still end the walk.
		writeJSON(w, 200, `{"object":"list","data":[],"list_metadata":{"before":null,"after":"directory_group_01X"}}`)
	})
	groups, err := collect(t, c.DirectoryGroups(context.Background(), &ListDirectoryGroupsOptions{Directory: dirID}))
	if err != nil || len(groups) != 0 || calls.Load() != 1 {
		t.Errorf("groups = %v, err = %v, calls = %d", groups, err, calls.Load())
	}
}

func TestWalkYieldsErrorOnce(t *testing.T) {
	c, mux := setup(t)
	var calls atomic.Int32
	mux.HandleFunc("GET /directories", func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			writeJSON(w, 200, string(fixture(t, "directories.json")))
			return
		}
		w.Header().Set("X-Request-ID", "req_gone")
		writeJSON(w, 404, `{"message":"Directory not found"}`)
	})
	var items, errs int
	var last error
	for _, err := range c.Directories(context.Background(), nil) {
		if err != nil {
			errs++
			last = err
			continue // keep ranging: the iterator must stop by itself
		}
		items++
	}
	if items != 2 || errs != 1 || calls.Load() != 2 {
		t.Errorf("items = %d, errors = %d, calls = %d", items, errs, calls.Load())
	}
	if !IsNotFound(last) || !strings.Contains(last.Error(), "req_gone") {
		t.Errorf("error = %v", last)
	}
}

func TestWalkRefusesStuckCursor(t *testing.T) {
	c, mux := setup(t)
	var calls atomic.Int32
	mux.HandleFunc("GET /directory_users", func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("X-Request-ID", "req_stuck")
		writeJSON(w, 200, usersPage([]string{"directory_user_001"}, false, true))
	})
	_, err := collect(t, c.DirectoryUsers(context.Background(), &ListDirectoryUsersOptions{Directory: dirID}))
	if err == nil || !strings.Contains(err.Error(), "req_stuck") || calls.Load() != 2 {
		t.Errorf("err = %v after %d calls, want a stuck-cursor error after 2", err, calls.Load())
	}
}

func TestWalkValidationErrorYieldedOnce(t *testing.T) {
	c, _ := setup(t)
	var errs []error
	for _, err := range c.DirectoryGroups(context.Background(), &ListDirectoryGroupsOptions{User: groupID}) {
		errs = append(errs, err)
	}
	if len(errs) != 1 || !errors.Is(errs[0], ErrInvalidArgument) {
		t.Errorf("errors = %v", errs)
	}
}

func TestDirectoriesAndGroupsWalk(t *testing.T) {
	c, mux := setup(t)
	mux.HandleFunc("GET /directories", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("after") == "" {
			writeJSON(w, 200, string(fixture(t, "directories.json")))
			return
		}
		if r.URL.Query().Get("after") != "directory_01HXYZ987654321KJIHGFEDCBA" {
			t.Errorf("after = %q", r.URL.Query().Get("after"))
		}
		writeJSON(w, 200, `{"object":"list","data":[{"object":"directory","id":"directory_03"}],"list_metadata":{"before":"directory_03","after":null}}`)
	})
	mux.HandleFunc("GET /directory_groups", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, string(fixture(t, "directory_groups.json")))
	})
	dirs, err := collect(t, c.Directories(context.Background(), &ListDirectoriesOptions{}))
	if err != nil || len(dirs) != 3 || dirs[2].ID != "directory_03" {
		t.Errorf("directories = %v, %v", dirs, err)
	}
	groups, err := collect(t, c.DirectoryGroups(context.Background(), nil))
	if err != nil || len(groups) != 2 {
		t.Errorf("groups = %v, %v", groups, err)
	}
}
