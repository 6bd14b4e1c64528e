package workostest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dsync-export/dsync-export/pkg/workos"
)

// churnConfig is a small account for the timeline tests.
var churnConfig = Config{Seed: 21, Directories: 3, UsersPerDirectory: 60, GroupsPerDirectory: 7, LegacyGroups: true}

// churnOpts changes a lot, with directory activations and deletions.
var churnOpts = AdvanceOptions{Churn: 0.3, DirectoryRate: 0.4}

// client returns a pkg/workos client for the fake, without client-side
// pacing.
func (f *fake) workosClient() *workos.Client {
	f.t.Helper()
	c, err := workos.NewClient(testKey, workos.WithBaseURL(f.base), workos.WithRateLimits(workos.RateLimits{}),
		workos.WithHTTPClient(f.client))
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

func all[T any](t *testing.T, seq func(func(T, error) bool)) []T {
	t.Helper()
	var out []T
	for v, err := range seq {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

// state is an account as a consumer of the API holds it.
type state struct {
	Dirs    map[string]workos.Directory
	Users   map[string]workos.DirectoryUser
	Groups  map[string]workos.DirectoryGroup
	Members map[[2]string]bool // {group, user}
}

// snapshot reads the accessors. Users' deprecated groups arrays and the
// directories' metadata counts, which events do not carry, are left out.
func snapshot(s *Server) state {
	st := state{Dirs: map[string]workos.Directory{}, Users: map[string]workos.DirectoryUser{},
		Groups: map[string]workos.DirectoryGroup{}, Members: map[[2]string]bool{}}
	for _, d := range s.Directories() {
		d.Metadata = nil
		st.Dirs[d.ID] = d
		for u := range s.Users(d.ID) {
			u.Groups = nil
			st.Users[u.ID] = u
		}
		for g := range s.Groups(d.ID) {
			st.Groups[g.ID] = g
		}
		for g, u := range s.Memberships(d.ID) {
			st.Members[[2]string{g, u}] = true
		}
	}
	return st
}

func (st *state) clone() state {
	c := state{Dirs: map[string]workos.Directory{}, Users: map[string]workos.DirectoryUser{},
		Groups: map[string]workos.DirectoryGroup{}, Members: map[[2]string]bool{}}
	for k, v := range st.Dirs {
		c.Dirs[k] = v
	}
	for k, v := range st.Users {
		c.Users[k] = v
	}
	for k, v := range st.Groups {
		c.Groups[k] = v
	}
	for k, v := range st.Members {
		c.Members[k] = v
	}
	return c
}

// apply replays one event, cascading deletes as a consumer must, and checks
// previous_attributes against the state it replaces.
func (st *state) apply(t *testing.T, e workos.Event) {
	t.Helper()
	pl, err := e.Payload()
	if err != nil {
		t.Fatalf("event %s: %v", e.ID, err)
	}
	switch p := pl.(type) {
	case *workos.DirectoryEvent:
		if e.Event == workos.EventDirectoryDeleted {
			delete(st.Dirs, p.ID)
			for id, u := range st.Users {
				if u.DirectoryID == p.ID {
					st.dropUser(id)
				}
			}
			for id, g := range st.Groups {
				if g.DirectoryID == p.ID {
					st.dropGroup(id)
				}
			}
			return
		}
		d := p.Directory
		if d.State == "active" { // the event schema's name for "linked"
			d.State = workos.DirectoryStateLinked
		}
		if len(p.Domains) > 0 {
			d.Domain = &p.Domains[0].Domain
		}
		st.Dirs[d.ID] = d
	case *workos.DirectoryUserEvent:
		switch e.Event {
		case workos.EventUserDeleted:
			st.dropUser(p.ID)
		case workos.EventUserUpdated:
			old, ok := st.Users[p.ID]
			if !ok {
				t.Errorf("event %s updates unknown user %s", e.ID, p.ID)
			}
			checkPrevious(t, e, old, p.PreviousAttributes)
			st.Users[p.ID] = p.DirectoryUser
		default:
			st.Users[p.ID] = p.DirectoryUser
		}
	case *workos.DirectoryGroupEvent:
		switch e.Event {
		case workos.EventGroupDeleted:
			st.dropGroup(p.ID)
		case workos.EventGroupUpdated:
			checkPrevious(t, e, st.Groups[p.ID], p.PreviousAttributes)
			st.Groups[p.ID] = p.DirectoryGroup
		default:
			st.Groups[p.ID] = p.DirectoryGroup
		}
	case *workos.MembershipEvent:
		k := [2]string{p.Group.ID, p.User.ID}
		if e.Event == workos.EventGroupUserAdded {
			if st.Members[k] {
				t.Errorf("event %s adds an existing membership", e.ID)
			}
			st.Members[k] = true
		} else {
			if !st.Members[k] {
				t.Errorf("event %s removes a missing membership", e.ID)
			}
			delete(st.Members, k)
		}
		if p.DirectoryID != p.User.DirectoryID || p.DirectoryID != p.Group.DirectoryID {
			t.Errorf("event %s: directory_id %s, user's %s, group's %s", e.ID, p.DirectoryID, p.User.DirectoryID, p.Group.DirectoryID)
		}
	default:
		t.Errorf("event %s: unexpected payload %T", e.ID, pl)
	}
}

func (st *state) dropUser(id string) {
	delete(st.Users, id)
	for k := range st.Members {
		if k[1] == id {
			delete(st.Members, k)
		}
	}
}

func (st *state) dropGroup(id string) {
	delete(st.Groups, id)
	for k := range st.Members {
		if k[0] == id {
			delete(st.Members, k)
		}
	}
}

// checkPrevious checks that previous_attributes holds the old values of
// fields that changed, and only those.
func checkPrevious(t *testing.T, e workos.Event, old any, prev map[string]json.RawMessage) {
	t.Helper()
	if len(prev) == 0 {
		t.Errorf("event %s: no previous_attributes", e.ID)
		return
	}
	var before, after map[string]any
	b, _ := json.Marshal(old)
	_ = json.Unmarshal(b, &before)
	_ = json.Unmarshal(e.Data, &after)
	for k, v := range prev {
		var pv any
		_ = json.Unmarshal(v, &pv)
		bv, had := before[k]
		if !had && (reflect.DeepEqual(pv, []any{}) || reflect.DeepEqual(pv, map[string]any{})) {
			bv = pv // the model's omitempty dropped an empty field
		}
		if !reflect.DeepEqual(pv, bv) {
			t.Errorf("event %s: previous_attributes.%s = %s, the field was %v", e.ID, k, v, before[k])
		}
		if reflect.DeepEqual(pv, after[k]) {
			t.Errorf("event %s: previous_attributes.%s did not change", e.ID, k)
		}
	}
}

// TestAdvanceReplay is the property the exporter relies on: replaying the
// events onto the state before Advance gives the state after it, and the
// events served by GET /events are Events().
func TestAdvanceReplay(t *testing.T) {
	f := startFake(t, churnConfig)
	c := f.workosClient()
	before := snapshot(f.Server)
	var res []AdvanceResult
	for _, d := range []time.Duration{36 * time.Hour, 5 * time.Minute, 50 * time.Hour} {
		res = append(res, f.AdvanceWith(d, churnOpts))
	}
	f.DeleteDirectory(f.Directories()[0].ID)
	after := snapshot(f.Server)

	events := f.Events()
	total := 1
	byType := map[string]int{}
	for _, r := range res {
		total += r.Events
		for k, v := range r.ByType {
			byType[k] += v
		}
	}
	if len(events) != total {
		t.Errorf("Events() has %d events, the Advance results %d and DeleteDirectory 1", len(events), total)
	}
	for _, typ := range workos.DirectorySyncEvents {
		if !strings.HasPrefix(typ, "dsync.token.") && byType[typ] == 0 && typ != workos.EventDirectoryDeleted {
			t.Errorf("no %s events: %v", typ, byType)
		}
	}
	if byType[workos.EventDirectoryDeleted] == 0 && byType[workos.EventDirectoryActivated] == 0 {
		t.Errorf("no directory activated or deleted: %v", byType)
	}
	t.Logf("%d events: %v", len(events), byType)

	served := all(t, c.Events(context.Background(), &workos.ListEventsOptions{
		ListOptions: workos.ListOptions{Order: workos.OrderAsc}, Events: workos.DirectorySyncEvents}))
	if msg := diffEvents(events, served); msg != "" {
		t.Fatalf("GET /events differs from Events(): %s", msg)
	}
	for k, e := range events {
		if k > 0 && (e.ID <= events[k-1].ID || e.CreatedAt.Before(events[k-1].CreatedAt.Time)) {
			t.Fatalf("events %s and %s out of order", events[k-1].ID, e.ID)
		}
		if !strings.HasPrefix(e.ID, "event_") || len(e.ID) != len("event_")+ulidLen {
			t.Fatalf("event ID %q", e.ID)
		}
	}

	replayed := before.clone()
	for _, e := range events {
		replayed.apply(t, e)
	}
	if diff := cmp.Diff(after, replayed, timeOpt); diff != "" {
		t.Errorf("replaying the events does not give the state after Advance (-after +replayed):\n%s", diff)
	}
	if cmp.Equal(before, after, timeOpt) {
		t.Error("Advance changed nothing")
	}
}

// TestAdvanceListsMatchAccessors walks every list with the real client after
// Advance and compares it with the accessors.
func TestAdvanceListsMatchAccessors(t *testing.T) {
	f := startFake(t, churnConfig)
	c := f.workosClient()
	ctx := context.Background()
	asc := workos.ListOptions{Order: workos.OrderAsc}
	before, start := f.Directories(), f.Now()
	f.AdvanceWith(72*time.Hour, churnOpts)

	dirs := all(t, c.Directories(ctx, &workos.ListDirectoriesOptions{ListOptions: asc}))
	if diff := cmp.Diff(f.Directories(), dirs, timeOpt); diff != "" {
		t.Errorf("directories (-accessor +api):\n%s", diff)
	}
	if slices.Equal(dirIDs(before), dirIDs(dirs)) {
		t.Error("no directory was activated or deleted")
	}
	changed := 0
	var allUsers []workos.DirectoryUser
	for _, d := range dirs {
		users := all(t, c.DirectoryUsers(ctx, &workos.ListDirectoryUsersOptions{ListOptions: asc, Directory: d.ID}))
		allUsers = append(allUsers, users...)
		if diff := cmp.Diff(collect(f.Users(d.ID)), users, timeOpt); diff != "" {
			t.Errorf("users of %s (-accessor +api):\n%s", d.ID, diff)
		}
		desc := all(t, c.DirectoryUsers(ctx, &workos.ListDirectoryUsersOptions{ListOptions: workos.ListOptions{Limit: 7}, Directory: d.ID}))
		if !slices.Equal(ids(reversed(users)), ids(desc)) {
			t.Errorf("users of %s in desc order differ", d.ID)
		}
		for k, u := range users {
			if k > 0 && !users[k-1].CreatedAt.Before(u.CreatedAt.Time) {
				t.Errorf("users %s and %s not in created_at order", users[k-1].ID, u.ID)
			}
			if !u.UpdatedAt.Equal(u.CreatedAt.Time) && u.UpdatedAt.After(start) {
				changed++
			}
		}
		groups := all(t, c.DirectoryGroups(ctx, &workos.ListDirectoryGroupsOptions{ListOptions: asc, Directory: d.ID}))
		if diff := cmp.Diff(collect(f.Groups(d.ID)), groups, timeOpt); diff != "" {
			t.Errorf("groups of %s (-accessor +api):\n%s", d.ID, diff)
		}
		want := map[[2]string]bool{}
		for g, u := range f.Memberships(d.ID) {
			want[[2]string{g, u}] = true
		}
		viaGroup, viaUser, viaLegacy := map[[2]string]bool{}, map[[2]string]bool{}, map[[2]string]bool{}
		for _, g := range groups {
			for _, u := range all(t, c.DirectoryUsers(ctx, &workos.ListDirectoryUsersOptions{ListOptions: asc, Group: g.ID})) {
				viaGroup[[2]string{g.ID, u.ID}] = true
			}
		}
		for _, u := range users {
			for _, g := range all(t, c.DirectoryGroups(ctx, &workos.ListDirectoryGroupsOptions{ListOptions: asc, User: u.ID})) {
				viaUser[[2]string{g.ID, u.ID}] = true
			}
			for _, g := range u.Groups {
				viaLegacy[[2]string{g.ID, u.ID}] = true
			}
		}
		for name, got := range map[string]map[[2]string]bool{"?group=": viaGroup, "?user=": viaUser, "legacy groups": viaLegacy} {
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s: memberships via %s differ from Memberships() (-want +got):\n%s", d.ID, name, diff)
			}
		}
		nu, ng, nm := f.Counts(d.ID)
		if nu != len(users) || ng != len(groups) || nm != len(want) {
			t.Errorf("Counts(%s) = %d, %d, %d; the API has %d users, %d groups, %d memberships", d.ID, nu, ng, nm, len(users), len(groups), len(want))
		}
		if d.Metadata != nil {
			var active int64
			for _, u := range users {
				if u.State == workos.DirectoryUserStateActive {
					active++
				}
			}
			if m := d.Metadata; m.Users.Active != active || m.Users.Active+m.Users.Inactive != int64(len(users)) || m.Groups != int64(len(groups)) {
				t.Errorf("metadata of %s = %+v, want %d active of %d users and %d groups", d.ID, m, active, len(users), len(groups))
			}
		}
	}
	if changed == 0 {
		t.Error("no user was updated")
	}
	unfiltered := all(t, c.DirectoryUsers(ctx, &workos.ListDirectoryUsersOptions{ListOptions: asc}))
	if !slices.Equal(ids(allUsers), ids(unfiltered)) {
		t.Error("the unfiltered user list differs from the directories' lists")
	}

	// Deleted objects are gone, with a 404.
	for _, e := range f.Events() {
		var path string
		var o struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(e.Data, &o)
		switch e.Event {
		case workos.EventUserDeleted:
			path = "directory_users/" + o.ID
		case workos.EventGroupDeleted:
			path = "directory_groups/" + o.ID
		case workos.EventDirectoryDeleted:
			path = "directories/" + o.ID
		default:
			continue
		}
		if resp, body := f.do(http.MethodGet, path); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s of a deleted object: %d %s", path, resp.StatusCode, body)
		}
	}
}

// diffEvents describes the first difference of two event lists ("" if
// none). (cmp.Diff of many byte slices is slow.)
func diffEvents(a, b []workos.Event) string {
	for k := range min(len(a), len(b)) {
		x, y := a[k], b[k]
		if x.Object != y.Object || x.ID != y.ID || x.Event != y.Event || !x.CreatedAt.Equal(y.CreatedAt.Time) ||
			!bytes.Equal(x.Data, y.Data) || !bytes.Equal(x.Context, y.Context) {
			return fmt.Sprintf("event %d: %+v vs %+v", k, x, y)
		}
	}
	if len(a) != len(b) {
		return fmt.Sprintf("%d events vs %d", len(a), len(b))
	}
	return ""
}

func dirIDs(ds []workos.Directory) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.ID)
	}
	return out
}

func ids(us []workos.DirectoryUser) []string {
	var out []string
	for _, u := range us {
		out = append(out, u.ID)
	}
	return out
}

// eventPage fetches one page of /events.
func (f *fake) eventPage(query string) (ids []string, after string) {
	f.t.Helper()
	var l list[workos.Event]
	body := f.getOK("events?"+query, &l)
	if bytes.Contains(body, []byte(`"before"`)) {
		f.t.Errorf("events?%s: list_metadata has before, which the spec's EventList does not", query)
	}
	for _, e := range l.Data {
		ids = append(ids, e.ID)
	}
	return ids, deref(l.ListMetadata.After)
}

func TestEventsPagination(t *testing.T) {
	f := startFake(t, churnConfig)
	f.AdvanceWith(48*time.Hour, churnOpts)
	events := f.Events()
	var allIDs []string
	for _, e := range events {
		allIDs = append(allIDs, e.ID)
	}
	types := "events=" + strings.Join(workos.DirectorySyncEvents, ",")

	walk := func(query string) []string {
		var got []string
		after := ""
		for n := 0; ; n++ {
			q := query
			if after != "" {
				q += "&after=" + after
			}
			page, next := f.eventPage(q)
			got = append(got, page...)
			if next == "" {
				return got
			}
			if n > len(events) {
				t.Fatalf("%s: the walk does not end", query)
			}
			after = next
		}
	}
	for _, limit := range []int{1, 7, 100} {
		if got := walk(fmt.Sprintf("%s&order=asc&limit=%d", types, limit)); !slices.Equal(got, allIDs) {
			t.Errorf("asc walk with limit %d: %d events, want %d", limit, len(got), len(allIDs))
		}
		if got := walk(fmt.Sprintf("%s&limit=%d", types, limit)); !slices.Equal(got, reversed(allIDs)) {
			t.Errorf("default (desc) walk with limit %d: %d events, want all newest first", limit, len(got))
		}
	}
	// Repeated parameters work like a comma-separated list; the default
	// page is 10 newest first.
	var rep []string
	for _, typ := range workos.DirectorySyncEvents {
		rep = append(rep, "events="+url.QueryEscape(typ))
	}
	if got, _ := f.eventPage(strings.Join(rep, "&")); !slices.Equal(got, reversed(allIDs)[:10]) {
		t.Errorf("default page: %v", got)
	}
	// after and before are positions, for known and unknown IDs alike.
	mid := events[len(events)/2]
	if got, _ := f.eventPage(types + "&order=asc&limit=5&after=" + mid.ID); !slices.Equal(got, allIDs[len(events)/2+1:len(events)/2+6]) {
		t.Errorf("after=%s: %v", mid.ID, got)
	}
	if got, _ := f.eventPage(types + "&order=asc&limit=5&before=" + mid.ID); !slices.Equal(got, allIDs[len(events)/2-5:len(events)/2]) {
		t.Errorf("before=%s: %v", mid.ID, got)
	}
	if got, _ := f.eventPage(types + "&order=desc&limit=3&after=" + mid.ID); !slices.Equal(got, reversed(allIDs[len(events)/2-3:len(events)/2])) {
		t.Errorf("desc after=%s: %v", mid.ID, got)
	}
	between := mid.ID[:len(mid.ID)-1] + "Z" // sorts after mid, before the next
	if between > allIDs[len(events)/2+1] {
		t.Fatalf("test assumption: %s sorts before %s", between, allIDs[len(events)/2+1])
	}
	for _, tc := range []struct{ query, cursor string }{{"order=asc&limit=2&after=", between}, {"order=desc&limit=2&after=", between}} {
		got, _ := f.eventPage(types + "&" + tc.query + tc.cursor)
		want := allIDs[len(events)/2+1 : len(events)/2+3]
		if strings.Contains(tc.query, "desc") {
			want = reversed(allIDs[len(events)/2-1 : len(events)/2+1])
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s%s: %v, want %v", tc.query, tc.cursor, got, want)
		}
	}
	if got, next := f.eventPage(types + "&order=asc&after=" + allIDs[len(allIDs)-1]); len(got) != 0 || next != "" {
		t.Errorf("after the last event: %v %q", got, next)
	}
	if got, _ := f.eventPage(types + "&order=asc&limit=1&after=" + strings.ToLower(mid.ID)); !slices.Equal(got, allIDs[len(events)/2+1:len(events)/2+2]) {
		t.Errorf("lower-case cursor: %v", got)
	}

	// Type filter.
	var userIDs []string
	for _, e := range events {
		if e.Event == workos.EventUserUpdated || e.Event == workos.EventUserDeleted {
			userIDs = append(userIDs, e.ID)
		}
	}
	if got := walk("events=dsync.user.updated&events=dsync.user.deleted&order=asc&limit=9"); !slices.Equal(got, userIDs) {
		t.Errorf("type filter: %d events, want %d", len(got), len(userIDs))
	}
	if got := walk("events=dsync.user.updated,dsync.user.deleted&order=desc&limit=9"); !slices.Equal(got, reversed(userIDs)) {
		t.Errorf("type filter desc: %d events, want %d", len(got), len(userIDs))
	}
	if got, _ := f.eventPage("events=user.created&order=asc"); len(got) != 0 {
		t.Errorf("a type without events: %v", got)
	}

	// Range filter: range_start inclusive, range_end exclusive.
	lo, hi := events[len(events)/4].CreatedAt.Time, events[3*len(events)/4].CreatedAt.Time
	var inRange []string
	for _, e := range events {
		if !e.CreatedAt.Before(lo) && e.CreatedAt.Before(hi) {
			inRange = append(inRange, e.ID)
		}
	}
	q := fmt.Sprintf("%s&order=asc&limit=50&range_start=%s&range_end=%s", types,
		lo.Format("2006-01-02T15:04:05.000Z"), url.QueryEscape(hi.In(time.FixedZone("", 2*3600)).Format(time.RFC3339Nano)))
	if got := walk(q); !slices.Equal(got, inRange) {
		t.Errorf("range: %d events, want %d", len(got), len(inRange))
	}
	if got := walk(types + "&order=asc&limit=100&range_start=" + lo.Format(time.DateOnly)); len(got) == 0 || len(got) > len(events) {
		t.Errorf("date-only range_start: %d events", len(got))
	}

	// Organization filter, through the client.
	org := f.Directories()[0].OrganizationID
	var ofOrg []string
	for _, e := range events {
		var o struct {
			OrganizationID string `json:"organization_id"`
			User           struct {
				OrganizationID string `json:"organization_id"`
			} `json:"user"`
		}
		_ = json.Unmarshal(e.Data, &o)
		if o.OrganizationID == org || o.User.OrganizationID == org {
			ofOrg = append(ofOrg, e.ID)
		}
	}
	c := f.workosClient()
	got := all(t, c.Events(context.Background(), &workos.ListEventsOptions{ListOptions: workos.ListOptions{Order: workos.OrderAsc},
		Events: workos.DirectorySyncEvents, OrganizationID: org}))
	if len(ofOrg) == 0 || len(ofOrg) == len(events) || len(got) != len(ofOrg) {
		t.Errorf("organization_id=%s: %d events, want %d of %d", org, len(got), len(ofOrg), len(events))
	}
	for k := range min(len(got), len(ofOrg)) {
		if got[k].ID != ofOrg[k] {
			t.Fatalf("organization filter: event %d is %s, want %s", k, got[k].ID, ofOrg[k])
		}
	}
}

func TestEventsValidation(t *testing.T) {
	f := startFake(t, Config{Directories: 1, UsersPerDirectory: 5, GroupsPerDirectory: 1})
	f.Advance(24*time.Hour, 1)
	invalid := func(field, code string) string {
		return `{"message":"Validation failed.","errors":[{"code":"` + code + `","field":"` + field + `"}]}`
	}
	for _, tc := range []struct {
		query  string
		status int
		want   string
	}{
		{"", 422, invalid("events", "required")},
		{"events=", 422, invalid("events", "required")},
		{"events=,", 422, invalid("events", "required")},
		{"events=dsync.user.created&events=Nope!", 422, invalid("events", "invalid")},
		{"events=dsync.user.created&limit=0", 422, invalid("limit", "invalid")},
		{"events=dsync.user.created&limit=101", 422, invalid("limit", "invalid")},
		{"events=dsync.user.created&order=sideways", 422, invalid("order", "invalid")},
		{"events=dsync.user.created&after=event_x", 422, invalid("after", "invalid")},
		{"events=dsync.user.created&before=directory_01HXYZ123456789ABCDEFGHJKM", 422, invalid("before", "invalid")},
		{"events=dsync.user.created&after=event_81HXYZ123456789ABCDEFGHJKM", 422, invalid("after", "invalid")},
		{"events=dsync.user.created&range_start=yesterday", 422, invalid("range_start", "invalid")},
		{"events=dsync.user.created&range_end=2026-13-01T00:00:00Z", 422, invalid("range_end", "invalid")},
		{"events=dsync.user.created&organization_id=org_01HXYZ123456789ABCDEFGHJKM", 400, `{"message":"Organization not found: 'org_01HXYZ123456789ABCDEFGHJKM'."}`},
		{"events=dsync.user.created&after=event_01HXYZ123456789ABCDEFGHJKM", 200, ""},
	} {
		resp, body := f.do(http.MethodGet, "events?"+tc.query)
		if resp.StatusCode != tc.status || (tc.want != "" && string(body) != tc.want) {
			t.Errorf("GET /events?%s = %d %s, want %d %s", tc.query, resp.StatusCode, body, tc.status, tc.want)
		}
	}
	// The client refuses to send a request without events; the fake's 422
	// is what an SDK that does gets.
	if _, err := f.workosClient().ListEvents(context.Background(), &workos.ListEventsOptions{}); err == nil {
		t.Error("client sent /events without events")
	}
}

// TestEventsRetention: events older than 30 days are not served; a cursor
// of an expired event still works as a position.
func TestEventsRetention(t *testing.T) {
	f := startFake(t, Config{Seed: 5, Directories: 2, UsersPerDirectory: 20, GroupsPerDirectory: 3})
	opts := AdvanceOptions{Churn: 0.2, DirectoryRate: -1}
	f.AdvanceWith(10*24*time.Hour, opts)
	old := f.Events()
	f.AdvanceWith(25*24*time.Hour, opts)
	events := f.Events()
	cut := f.Now().Add(-workos.EventRetention)
	var retained []string
	expired := 0
	for _, e := range events {
		if e.CreatedAt.Before(cut) {
			expired++
		} else {
			retained = append(retained, e.ID)
		}
	}
	if expired == 0 || len(retained) == 0 {
		t.Fatalf("%d expired and %d retained events: the test needs both", expired, len(retained))
	}
	c := f.workosClient()
	served := all(t, c.Events(context.Background(), &workos.ListEventsOptions{ListOptions: workos.ListOptions{Order: workos.OrderAsc}, Events: workos.DirectorySyncEvents}))
	var servedIDs []string
	for _, e := range served {
		servedIDs = append(servedIDs, e.ID)
	}
	if !slices.Equal(servedIDs, retained) {
		t.Errorf("served %d events, want the %d of the last 30 days", len(servedIDs), len(retained))
	}
	// after= an expired event: the retained events (all after it).
	got := all(t, c.Events(context.Background(), &workos.ListEventsOptions{ListOptions: workos.ListOptions{Order: workos.OrderAsc, After: old[0].ID}, Events: workos.DirectorySyncEvents}))
	if len(got) != len(retained) {
		t.Errorf("after an expired event: %d events, want %d", len(got), len(retained))
	}
	// range_start before the cut-off changes nothing.
	got = all(t, c.Events(context.Background(), &workos.ListEventsOptions{ListOptions: workos.ListOptions{Order: workos.OrderAsc},
		Events: workos.DirectorySyncEvents, RangeStart: cut.Add(-48 * time.Hour)}))
	if len(got) != len(retained) {
		t.Errorf("range_start before the cut-off: %d events, want %d", len(got), len(retained))
	}
	// The clock alone expires events.
	f.Advance(31*24*time.Hour, 0)
	if ids, _ := f.eventPage("events=dsync.user.updated&order=asc"); len(ids) != 0 {
		t.Errorf("after 31 quiet days, %d events still served", len(ids))
	}
	if n := len(f.Events()); n != len(events) {
		t.Errorf("Events() has %d events after a quiet month, want all %d", n, len(events))
	}
}

func TestAdvanceDeterminism(t *testing.T) {
	run := func(cfg Config) (*fake, []workos.Event) {
		f := startFake(t, cfg)
		f.AdvanceWith(30*time.Hour, churnOpts)
		f.DeleteDirectory(f.Directories()[1].ID)
		f.AdvanceWith(20*time.Hour, churnOpts)
		return f, f.Events()
	}
	a, ea := run(churnConfig)
	b, eb := run(churnConfig)
	if msg := diffEvents(ea, eb); msg != "" {
		t.Errorf("two servers with the same seed and calls emit different events: %s", msg)
	}
	if !a.Now().Equal(b.Now()) {
		t.Errorf("clocks differ: %v, %v", a.Now(), b.Now())
	}
	d := a.Directories()[0].ID
	for _, path := range []string{"directories", "directory_users?limit=100&directory=" + d, "directory_groups?limit=100", "events?events=dsync.user.updated&limit=100"} {
		if !bytes.Equal(a.getOK(path, nil), b.getOK(path, nil)) {
			t.Errorf("GET %s differs between two servers with the same seed and calls", path)
		}
	}
	cfg := churnConfig
	cfg.Seed++
	if _, ec := run(cfg); diffEvents(ea, ec) == "" {
		t.Error("another seed emits the same events")
	}
}

// TestAdvanceSmallDirectories: churn is rounded, so a small directory
// changes too; Advance with churn 0 only moves the clock.
func TestAdvanceSmallDirectories(t *testing.T) {
	f := startFake(t, Config{Directories: 4, UsersPerDirectory: 20, GroupsPerDirectory: 2})
	start := f.Now()
	r := f.AdvanceWith(24*time.Hour, AdvanceOptions{Churn: 0.05, DirectoryRate: -1})
	if r.Events < 4 || !r.From.Equal(start) || !r.To.Equal(start.Add(24*time.Hour)) || !f.Now().Equal(r.To) {
		t.Errorf("Advance(24h, 5%%) of 4 directories of 20 users = %+v, want at least one change each", r)
	}
	perDir := map[string]int{}
	for _, e := range f.Events() {
		var o struct {
			DirectoryID string `json:"directory_id"`
		}
		_ = json.Unmarshal(e.Data, &o)
		perDir[o.DirectoryID]++
		if e.CreatedAt.After(r.To) || !e.CreatedAt.After(r.From) {
			t.Errorf("event %s at %v, outside (%v, %v]", e.ID, e.CreatedAt, r.From, r.To)
		}
	}
	if len(perDir) != 4 {
		t.Errorf("events per directory: %v", perDir)
	}
	if r := f.Advance(5*24*time.Hour, 0); r.Events != 0 || len(r.ByType) != 0 {
		t.Errorf("Advance with churn 0 changed things: %+v", r)
	}
	r = f.AdvanceDays(2, 0.05)
	if !r.To.Equal(start.Add(8 * 24 * time.Hour)) {
		t.Errorf("AdvanceDays(2) ends at %v", r.To)
	}
	for _, bad := range []func(){
		func() { f.Advance(-time.Second, 0) },
		func() { f.Advance(time.Hour, -1) },
		func() { f.AdvanceWith(time.Hour, AdvanceOptions{DirectoryRate: 1 / zero()}) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Error("bad Advance did not panic")
				}
			}()
			bad()
		}()
	}
}

func zero() float64 { return 0 }

func TestNow(t *testing.T) {
	f := startFake(t, churnConfig)
	now := f.Now()
	if h, m, s := now.Clock(); h != 6 || m != 0 || s != 0 || now.Location() != time.UTC {
		t.Errorf("default Now %v: want 06:00 UTC", now)
	}
	for _, d := range f.Directories() {
		for u := range f.Users(d.ID) {
			if !u.UpdatedAt.Before(now) || !u.CreatedAt.Before(now) {
				t.Fatalf("user %s updated at %v, after Now %v", u.ID, u.UpdatedAt, now)
			}
		}
		for g := range f.Groups(d.ID) {
			if !g.UpdatedAt.Before(now) {
				t.Fatalf("group %s updated at %v, after Now %v", g.ID, g.UpdatedAt, now)
			}
		}
		if !d.UpdatedAt.Before(now) {
			t.Fatalf("directory %s updated at %v, after Now %v", d.ID, d.UpdatedAt, now)
		}
	}
	later := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	cfg := churnConfig
	cfg.Now = later
	g, err := New(cfg)
	if err != nil || !g.Now().Equal(later) {
		t.Fatalf("Config.Now %v: %v, %v", later, g, err)
	}
	g.Advance(time.Hour+time.Millisecond+time.Microsecond, 0)
	if !g.Now().Equal(later.Add(time.Hour + time.Millisecond)) {
		t.Errorf("Now after 1h1ms = %v", g.Now())
	}
	cfg.Now = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "before the dataset's newest timestamp") {
		t.Errorf("Config.Now before the data: %v", err)
	}
}

func TestDeleteDirectoryEmits(t *testing.T) {
	f := startFake(t, Config{Directories: 2, UsersPerDirectory: 3, GroupsPerDirectory: 1})
	d := f.Directories()[1]
	f.Advance(90*time.Minute, 0)
	if resp, _ := f.do(http.MethodDelete, "directories/"+d.ID); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("DELETE: %d", resp.StatusCode)
	}
	events := f.Events()
	if len(events) != 1 || events[0].Event != workos.EventDirectoryDeleted || !events[0].CreatedAt.Equal(f.Now()) {
		t.Fatalf("events after DELETE: %+v", events)
	}
	p, err := events[0].Payload()
	if err != nil {
		t.Fatal(err)
	}
	got := p.(*workos.DirectoryEvent)
	if got.ID != d.ID || got.OrganizationID != d.OrganizationID || got.State != workos.DirectoryStateDeleting || !got.UpdatedAt.Equal(f.Now()) || got.Name != d.Name {
		t.Errorf("dsync.deleted payload %+v", got)
	}
	if f.DeleteDirectory(d.ID) || len(f.Events()) != 1 {
		t.Error("deleting a deleted directory emitted again")
	}
}

// TestAdvanceConcurrent serves and walks lists while Advance runs (run it with
// -race).
func TestAdvanceConcurrent(t *testing.T) {
	f := startFake(t, Config{Seed: 9, Directories: 3, UsersPerDirectory: 80, GroupsPerDirectory: 5, LegacyGroups: true})
	dirs := f.Directories()
	var wg sync.WaitGroup
	done := make(chan struct{})
	errs := make(chan string, 100)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-done:
					return
				default:
				}
				d := dirs[(w+n)%len(dirs)].ID
				var path string
				switch n % 5 {
				case 0:
					path = "directory_users?limit=100&directory=" + d
				case 1:
					path = "directory_groups?limit=100&directory=" + d
				case 2:
					path = "events?events=dsync.user.updated,dsync.group.user_added&order=asc&limit=100"
				case 3:
					path = "directories?limit=100"
				default:
					path = "directory_users?limit=50&order=asc"
				}
				req, _ := http.NewRequest(http.MethodGet, f.base+path, nil)
				req.Header.Set("Authorization", "Bearer "+testKey)
				resp, err := f.client.Do(req)
				if err != nil {
					errs <- err.Error()
					return
				}
				var l list[json.RawMessage]
				err = json.NewDecoder(resp.Body).Decode(&l)
				resp.Body.Close()
				if resp.StatusCode != 200 && resp.StatusCode != 404 || err != nil {
					errs <- fmt.Sprintf("GET %s: %d %v", path, resp.StatusCode, err)
					return
				}
			}
		}()
	}
	for range 6 {
		f.AdvanceWith(12*time.Hour, AdvanceOptions{Churn: 0.2, DirectoryRate: 1})
		collect(f.Users(dirs[0].ID))
		_ = f.Events()
		time.Sleep(5 * time.Millisecond)
	}
	close(done)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// TestEventsLimitsAndFaults: /events is counted, faulted and rate limited by
// the global key limit only.
func TestEventsLimitsAndFaults(t *testing.T) {
	s, err := New(Config{Directories: 1, UsersPerDirectory: 5, GroupsPerDirectory: 1, RateLimit: true})
	if err != nil {
		t.Fatal(err)
	}
	for range 20 { // the per-directory limit would refuse the fifth
		if w := serve(s, "GET", "events?events=dsync.user.created"); w.Code != 200 {
			t.Fatalf("/events: %d %s", w.Code, w.Body)
		}
	}
	if st := s.Stats(); st.Requests != 20 || st.Pages != 20 {
		t.Errorf("stats %+v", st)
	}
	s.SetFaults(Faults{Seed: 1, RateLimited: 1})
	if w := serve(s, "GET", "events?events=dsync.user.created"); w.Code != 429 {
		t.Errorf("/events with faults: %d", w.Code)
	}
}

func TestEventsMatchSpec(t *testing.T) {
	sch := specSchemas(t, "EventList")
	f := startFake(t, churnConfig)
	f.AdvanceWith(72*time.Hour, churnOpts)
	f.DeleteDirectory(f.Directories()[0].ID)
	seen := map[string]bool{}
	after := ""
	for {
		body := f.getOK(withQuery("events?order=asc&limit=100&events="+strings.Join(workos.DirectorySyncEvents, ","), "after", after), nil)
		validate(t, sch["EventList"], "GET /events", body)
		for _, m := range regexp.MustCompile(`"(created|updated)_at":"[^"]*"`).FindAll(body, -1) {
			if !msTimestamp.Match(m) {
				t.Fatalf("timestamp %s is not ISO 8601 UTC with milliseconds", m)
			}
		}
		var l list[workos.Event]
		if err := json.Unmarshal(body, &l); err != nil {
			t.Fatal(err)
		}
		for _, e := range l.Data {
			seen[e.Event] = true
		}
		if l.ListMetadata.After == nil {
			break
		}
		after = *l.ListMetadata.After
	}
	if len(seen) != 10 {
		t.Errorf("validated %d event types, want the 10 the fake emits: %v", len(seen), seen)
	}
}

func TestControlEndpoint(t *testing.T) {
	cfg := churnConfig
	cfg.ControlEndpoint = true
	f := startFake(t, cfg)
	start := f.Now()
	resp, body := f.do(http.MethodPost, "_fake/advance?days=1&hours=12&churn=0.1")
	var r struct {
		From, To time.Time
		Events   int
		ByType   map[string]int `json:"by_type"`
	}
	if err := json.Unmarshal(body, &r); resp.StatusCode != 200 || err != nil {
		t.Fatalf("POST /_fake/advance: %d %s %v", resp.StatusCode, body, err)
	}
	if !r.From.Equal(start) || !r.To.Equal(start.Add(36*time.Hour)) || r.Events != len(f.Events()) || r.Events == 0 {
		t.Errorf("POST /_fake/advance = %s", body)
	}
	if resp, body := f.do(http.MethodPost, "_fake/advance?days=-1"); resp.StatusCode != 422 {
		t.Errorf("days=-1: %d %s", resp.StatusCode, body)
	}
}

func TestSplitObject(t *testing.T) {
	f := startFake(t, Config{Seed: 3, Directories: 1, UsersPerDirectory: 200, GroupsPerDirectory: 40, LegacyGroups: true})
	var l list[json.RawMessage]
	f.getOK("directory_users?limit=100", &l)
	var g list[json.RawMessage]
	f.getOK("directory_groups?limit=100", &g)
	for _, raw := range append(l.Data, g.Data...) {
		var want map[string]json.RawMessage
		if err := json.Unmarshal(raw, &want); err != nil {
			t.Fatal(err)
		}
		fields := splitObject(raw, nil)
		if len(fields) != len(want) {
			t.Fatalf("splitObject found %d members, want %d: %s", len(fields), len(want), raw)
		}
		for _, fl := range fields {
			var k string
			if err := json.Unmarshal(fl.key, &k); err != nil || string(want[k]) != string(fl.value) {
				t.Fatalf("member %s = %s, want %s", fl.key, fl.value, want[k])
			}
		}
	}
}
