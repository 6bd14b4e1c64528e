package workostest

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dsync-export/dsync-export/pkg/workos"
)

// hostileFake is a churned fake with hostile modes h, set at start.
func hostileFake(t *testing.T, h Hostile) *fake {
	t.Helper()
	cfg := churnConfig
	cfg.Hostile = h
	f := startFake(t, cfg)
	f.AdvanceWith(72*time.Hour, churnOpts)
	return f
}

// eventPages reads /events with the real client from after on, ascending,
// limit events a page.
func (f *fake) eventPages(t *testing.T, order workos.Order, limit int, after string) []*workos.Page[workos.Event] {
	t.Helper()
	c := f.workosClient()
	opts := &workos.ListEventsOptions{ListOptions: workos.ListOptions{Order: order, Limit: limit, After: after}, Events: workos.DirectorySyncEvents}
	return all(t, c.EventPages(context.Background(), opts))
}

// flatten returns the events of pages, in the order served.
func flatten(pages []*workos.Page[workos.Event]) []workos.Event {
	var out []workos.Event
	for _, p := range pages {
		out = append(out, p.Data...)
	}
	return out
}

func eventIDs(es []workos.Event) []string {
	out := make([]string, len(es))
	for k, e := range es {
		out[k] = e.ID
	}
	return out
}

// distinctSorted returns the IDs of es, sorted, without repeats.
func distinctSorted(es []workos.Event) []string {
	ids := eventIDs(es)
	slices.Sort(ids)
	return slices.Compact(ids)
}

// checkAfter checks that every page's list_metadata.after is its last event
// as served, or null on the last page.
func checkAfter(t *testing.T, pages []*workos.Page[workos.Event]) {
	t.Helper()
	for n, p := range pages {
		after, ok := p.NextAfter()
		switch {
		case n == len(pages)-1 && ok:
			t.Errorf("last page: after is %q, want null", after)
		case n < len(pages)-1 && (!ok || after != p.Data[len(p.Data)-1].ID):
			t.Errorf("page %d: after %q, want its last event %s", n, after, p.Data[len(p.Data)-1].ID)
		}
	}
}

// TestHostileOffUnchanged checks that a zero Hostile (whatever its seed)
// changes neither the log nor a byte of what GET /events serves.
func TestHostileOffUnchanged(t *testing.T) {
	plain := hostileFake(t, Hostile{})
	off := hostileFake(t, Hostile{Seed: 99})
	if d := diffEvents(plain.Events(), off.Events()); d != "" {
		t.Fatalf("the log with Hostile{Seed: 99} differs: %s", d)
	}
	events := plain.Events()
	if len(events) < 100 {
		t.Fatalf("only %d events", len(events))
	}
	mid := events[len(events)/2].ID
	for _, q := range []string{"order=asc&limit=7", "order=desc&limit=5", "limit=100", "order=asc&limit=3&after=" + mid,
		"order=desc&limit=4&after=" + mid, "order=asc&limit=3&before=" + mid, "order=normal&limit=6&after=" + mid} {
		path := "events?events=" + strings.Join(workos.DirectorySyncEvents, ",") + "&" + q
		if a, b := plain.getOK(path, nil), off.getOK(path, nil); string(a) != string(b) {
			t.Errorf("%s:\n%s\nvs\n%s", q, a, b)
		}
	}
	if tr := off.HostileTruth(); len(tr.Undecodable)+len(tr.Silent)+len(tr.DoubleEmitted)+len(tr.EarlyCreatedAt) > 0 {
		t.Errorf("HostileTruth with every mode off: %+v", tr)
	}
	pages := off.eventPages(t, workos.OrderAsc, 9, "")
	checkAfter(t, pages)
	if diff := cmp.Diff(eventIDs(events), eventIDs(flatten(pages))); diff != "" {
		t.Errorf("the stream differs from Events():\n%s", diff)
	}
}

func TestHostileSwapInPage(t *testing.T) {
	f := hostileFake(t, Hostile{SwapInPage: true})
	want := eventIDs(f.Events())
	for _, order := range []workos.Order{workos.OrderAsc, workos.OrderDesc} {
		for _, limit := range []int{2, 10, 100} {
			pages := f.eventPages(t, order, limit, "")
			checkAfter(t, pages)
			swapped := 0
			for n, p := range pages {
				if len(p.Data) < 2 {
					continue
				}
				a, b := p.Data[len(p.Data)-2].ID, p.Data[len(p.Data)-1].ID
				if (order == workos.OrderAsc) == (a < b) {
					t.Errorf("%s limit %d page %d: the last two events %s, %s are in order", order, limit, n, a, b)
				}
				swapped++
				// after names the page's last event as served, so the
				// next page reads the swapped-away one again (at its top,
				// unless that is swapped in turn).
				if next := pages[min(n+1, len(pages)-1)].Data; n < len(pages)-1 && next[0].ID != a && (len(next) != 2 || next[1].ID != a) {
					t.Errorf("%s limit %d page %d: the next page %v lacks the swapped-away %s at its top", order, limit, n, eventIDs(next), a)
				}
			}
			if swapped == 0 {
				t.Errorf("%s limit %d: no page swapped", order, limit)
			}
			got := distinctSorted(flatten(pages))
			if diff := cmp.Diff(slices.Sorted(slices.Values(want)), got); diff != "" {
				t.Errorf("%s limit %d: the walk's events differ from the log:\n%s", order, limit, diff)
			}
		}
	}
}

func TestHostileRepeatCursor(t *testing.T) {
	f := hostileFake(t, Hostile{RepeatCursor: true})
	want := slices.Sorted(slices.Values(eventIDs(f.Events())))
	for _, limit := range []int{1, 2, 10} {
		pages := f.eventPages(t, workos.OrderAsc, limit, "")
		checkAfter(t, pages)
		for n := 1; n < len(pages); n++ {
			prev := pages[n-1].Data
			if got, cursor := pages[n].Data[0].ID, prev[len(prev)-1].ID; got != cursor {
				t.Fatalf("limit %d page %d starts with %s, want the cursor's event %s", limit, n, got, cursor)
			}
			if len(pages[n].Data) < 2 || len(pages[n].Data) > max(limit, 2) {
				t.Errorf("limit %d page %d has %d events", limit, n, len(pages[n].Data))
			}
		}
		if diff := cmp.Diff(want, distinctSorted(flatten(pages))); diff != "" {
			t.Errorf("limit %d: the walk's events differ from the log:\n%s", limit, diff)
		}
		if got := len(flatten(pages)); got != len(want)+len(pages)-1 {
			t.Errorf("limit %d: %d events read in %d pages, want %d", limit, got, len(pages), len(want)+len(pages)-1)
		}
	}
	// Resuming from the last event: the page is that event alone, and the
	// walk ends.
	last := want[len(want)-1]
	pages := f.eventPages(t, workos.OrderAsc, 10, last)
	if len(pages) != 1 || len(pages[0].Data) != 1 || pages[0].Data[0].ID != last {
		t.Errorf("after the last event: %d pages, first %+v", len(pages), pages[0].Data)
	}
}

func TestHostileEarlyCreatedAt(t *testing.T) {
	f := hostileFake(t, Hostile{})
	real := map[string]time.Time{}
	for _, e := range f.Events() {
		real[e.ID] = e.CreatedAt.Time
	}
	f.SetHostile(Hostile{Seed: 5, EarlyCreatedAt: 0.2})
	early := map[string]bool{}
	for _, id := range f.HostileTruth().EarlyCreatedAt {
		early[id] = true
	}
	if n := len(early); n < len(real)/10 || n > len(real)*3/10 {
		t.Errorf("%d of %d events early at rate 0.2", n, len(real))
	}
	stream := flatten(f.eventPages(t, workos.OrderAsc, 100, ""))
	if !slices.IsSorted(eventIDs(stream)) {
		t.Error("IDs are out of order")
	}
	if len(stream) != len(real) {
		t.Fatalf("%d events served, the log has %d", len(stream), len(real))
	}
	served := map[string]time.Time{}
	for _, e := range f.Events() {
		served[e.ID] = e.CreatedAt.Time
	}
	for _, e := range stream {
		want := real[e.ID]
		if early[e.ID] {
			want = want.Add(-24 * time.Hour)
		}
		if !e.CreatedAt.Equal(want) || !served[e.ID].Equal(want) {
			t.Errorf("%s (early %v): created_at %s, Events() says %s, want %s", e.ID, early[e.ID], e.CreatedAt, served[e.ID], want)
		}
	}
}

// twins starts a fake with hostile modes h and one without, and makes the
// same changes in both.
func twins(t *testing.T, h Hostile) (hostile, plain *fake) {
	t.Helper()
	hostile, plain = hostileFake(t, h), hostileFake(t, Hostile{})
	for _, f := range []*fake{hostile, plain} {
		f.DeleteDirectory(f.Directories()[0].ID)
		f.AdvanceWith(24*time.Hour, churnOpts)
	}
	return hostile, plain
}

func TestHostileUndecodable(t *testing.T) {
	f, plain := twins(t, Hostile{Seed: 2, Undecodable: 0.1})
	// The changes were applied all the same.
	if diff := cmp.Diff(snapshot(plain.Server), snapshot(f.Server), timeOpt); diff != "" {
		t.Fatalf("the state differs from a fake without hostile modes (-plain +hostile):\n%s", diff)
	}
	tr := f.HostileTruth()
	bad := map[string]HostileChange{}
	for _, c := range tr.Undecodable {
		bad[c.ID] = c
	}
	stream := flatten(f.eventPages(t, workos.OrderAsc, 100, ""))
	truth := plain.Events()
	if len(stream) != len(truth) || len(bad) < len(stream)/20 {
		t.Fatalf("%d events served, %d undecodable; the plain fake has %d", len(stream), len(bad), len(truth))
	}
	types := map[string]bool{}
	for k, e := range stream {
		if e.ID != truth[k].ID || e.Event != truth[k].Event {
			t.Fatalf("event %d is %s %s, the plain fake's %s %s", k, e.ID, e.Event, truth[k].ID, truth[k].Event)
		}
		_, err := e.Payload()
		c, isBad := bad[e.ID]
		if !isBad {
			if err != nil {
				t.Errorf("%s: %v", e.ID, err)
			}
			continue
		}
		types[e.Event] = true
		if !errors.Is(err, workos.ErrEventPayload) {
			t.Errorf("%s %s: Payload() = %v, want an error wrapping ErrEventPayload; data %s", e.ID, e.Event, err, e.Data)
		}
		// Still an object naming the directory and the object changed,
		// as the plain fake's event does.
		var got, want struct {
			ID          string `json:"id"`
			DirectoryID string `json:"directory_id"`
			User        struct {
				ID string `json:"id"`
			} `json:"user"`
		}
		if err := json.Unmarshal(e.Data, &got); err != nil {
			t.Fatalf("%s: data %s is not an object: %v", e.ID, e.Data, err)
		}
		_ = json.Unmarshal(truth[k].Data, &want)
		dir, obj := want.DirectoryID, want.ID
		switch e.Event {
		case workos.EventDirectoryActivated, workos.EventDirectoryDeleted:
			dir = want.ID
			if got.ID != dir {
				t.Errorf("%s: id %q, want the directory %s", e.ID, got.ID, dir)
			}
		case workos.EventGroupUserAdded, workos.EventGroupUserRemoved:
			obj = want.User.ID
			if got.User.ID != obj {
				t.Errorf("%s: user.id %q, want %s", e.ID, got.User.ID, obj)
			}
		default:
			if got.ID != obj {
				t.Errorf("%s: id %q, want %s", e.ID, got.ID, obj)
			}
		}
		if got.DirectoryID != dir || !strings.HasPrefix(dir, "directory_") {
			t.Errorf("%s: directory_id %q, want %s", e.ID, got.DirectoryID, dir)
		}
		if c.DirectoryID != dir || c.ObjectID != obj || c.Event != e.Event || !c.At.Equal(e.CreatedAt.Time) {
			t.Errorf("HostileTruth says %+v of %s %s (%s, %s)", c, e.ID, e.Event, dir, obj)
		}
	}
	if !types[workos.EventUserUpdated] || len(types) < 4 {
		t.Errorf("undecodable types: %v", types)
	}
	if got := f.UndecodableEvents(); len(got) != len(bad) {
		t.Errorf("UndecodableEvents lists %d, HostileTruth %d", len(got), len(bad))
	}
}

// TestUndecodableUserUpdated pins the example of the issue: a
// dsync.user.updated whose emails is not an array.
func TestUndecodableUserUpdated(t *testing.T) {
	c := HostileChange{DirectoryID: "directory_01", ObjectID: "directory_user_01"}
	data := undecodableData(workos.EventUserUpdated, c, payloadIDs{})
	const want = `{"object":"directory_user","id":"directory_user_01","directory_id":"directory_01","emails":"not-an-array","created_at":12}`
	if string(data) != want {
		t.Errorf("data %s, want %s", data, want)
	}
	e := workos.Event{ID: "event_1", Event: workos.EventUserUpdated, Data: data}
	if _, err := e.Payload(); !errors.Is(err, workos.ErrEventPayload) {
		t.Errorf("Payload() = %v, want ErrEventPayload", err)
	}
}

func TestHostileSilent(t *testing.T) {
	f, plain := twins(t, Hostile{Seed: 4, Silent: 0.3})
	if diff := cmp.Diff(snapshot(plain.Server), snapshot(f.Server), timeOpt); diff != "" {
		t.Fatalf("the state differs from a fake without hostile modes (-plain +hostile):\n%s", diff)
	}
	silent := f.SilentChanges()
	stream := flatten(f.eventPages(t, workos.OrderAsc, 100, ""))
	truth := plain.Events()
	if len(silent) < 5 || len(stream)+len(silent) != len(truth) {
		t.Fatalf("%d events served and %d silent; the plain fake has %d", len(stream), len(silent), len(truth))
	}
	// The plain fake's events are the stream's and the silent changes,
	// interleaved.
	byType := map[string]int{}
	created := map[string]bool{} // users created silently
	k, s := 0, 0
	for _, e := range truth {
		if k < len(stream) && stream[k].Event == e.Event && stream[k].CreatedAt.Equal(e.CreatedAt.Time) && string(stream[k].Data) == string(e.Data) {
			k++
			continue
		}
		if s == len(silent) {
			t.Fatalf("%s %s at %s is neither served nor silent", e.ID, e.Event, e.CreatedAt)
		}
		c := silent[s]
		s++
		var o payloadIDs
		_ = json.Unmarshal(e.Data, &o)
		obj := o.ID
		if e.Event == workos.EventGroupUserAdded {
			obj = o.User.ID
			if !created[obj] {
				t.Errorf("silent %s of %s, whose creation was not silent", e.Event, obj)
			}
		}
		if c.Event != e.Event || c.ObjectID != obj || c.ID != "" || !c.At.Equal(e.CreatedAt.Time) || c.DirectoryID != o.DirectoryID {
			t.Errorf("silent change %+v, the plain fake's event %s %s of %s in %s", c, e.Event, e.CreatedAt, obj, o.DirectoryID)
		}
		if e.Event == workos.EventUserCreated {
			created[obj] = true
		}
		byType[e.Event]++
	}
	if byType[workos.EventUserCreated] == 0 || byType[workos.EventUserDeleted] == 0 {
		t.Errorf("silent changes by type: %v", byType)
	}
	for typ := range byType {
		switch typ {
		case workos.EventUserCreated, workos.EventUserDeleted, workos.EventGroupUserAdded:
		default:
			t.Errorf("a silent %s", typ)
		}
	}
}

func TestHostileDoubleEmit(t *testing.T) {
	f := hostileFake(t, Hostile{Seed: 6, DoubleEmit: 0.2})
	events := f.Events()
	doubled := map[string]bool{}
	for _, id := range f.HostileTruth().DoubleEmitted {
		doubled[id] = true
	}
	if n := len(doubled); n < len(events)/10 || n > len(events)*3/10 {
		t.Errorf("%d of %d events doubled at rate 0.2", n, len(events))
	}
	for _, order := range []workos.Order{workos.OrderAsc, workos.OrderDesc} {
		for _, limit := range []int{1, 3, 10, 100} {
			pages := f.eventPages(t, order, limit, "")
			checkAfter(t, pages)
			stream := flatten(pages)
			count := map[string]int{}
			for _, e := range stream {
				count[e.ID]++
			}
			lastID := stream[len(stream)-1].ID
			for _, e := range events {
				want := 1
				if doubled[e.ID] && e.ID != lastID { // the walk's last event has no next page
					want = 2
				}
				if count[e.ID] != want {
					t.Errorf("%s limit %d: %s (doubled %v) served %d times", order, limit, e.ID, doubled[e.ID], count[e.ID])
				}
			}
			for n, p := range pages {
				if len(p.Data) > max(limit, 2) {
					t.Errorf("%s limit %d: page %d has %d events", order, limit, n, len(p.Data))
				}
			}
			if len(stream) != len(events)+len(doubled)-btoi(doubled[lastID]) {
				t.Errorf("%s limit %d: %d events served", order, limit, len(stream))
			}
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestHostileAll walks the stream with every mode on: the walk ends, every
// page matches the spec's EventList but for undecodable data, and the
// distinct events read are the log's.
func TestHostileAll(t *testing.T) {
	sch := specSchemas(t, "EventList")
	h := Hostile{Seed: 8, SwapInPage: true, RepeatCursor: true, EarlyCreatedAt: 0.1, Silent: 0.1, DoubleEmit: 0.1}
	f := hostileFake(t, h)
	for _, limit := range []int{1, 2, 5, 100} {
		pages := f.eventPages(t, workos.OrderAsc, limit, "")
		checkAfter(t, pages)
		if diff := cmp.Diff(slices.Sorted(slices.Values(eventIDs(f.Events()))), distinctSorted(flatten(pages))); diff != "" {
			t.Errorf("limit %d: the walk's events differ from the log:\n%s", limit, diff)
		}
	}
	after := ""
	for range 10_000 {
		body := f.getOK(withQuery("events?order=asc&limit=10&events="+strings.Join(workos.DirectorySyncEvents, ","), "after", after), nil)
		validate(t, sch["EventList"], "GET /events", body)
		var l list[workos.Event]
		if err := json.Unmarshal(body, &l); err != nil {
			t.Fatal(err)
		}
		if l.ListMetadata.After == nil {
			break
		}
		after = *l.ListMetadata.After
	}
	// Undecodable events appear in the walk too.
	f.SetHostile(Hostile{Seed: 8, Undecodable: 0.5, SwapInPage: true, RepeatCursor: true, DoubleEmit: 0.3})
	f.AdvanceWith(24*time.Hour, churnOpts)
	pages := f.eventPages(t, workos.OrderAsc, 7, "")
	bad := 0
	for _, e := range flatten(pages) {
		if _, err := e.Payload(); err != nil {
			bad++
		}
	}
	if bad == 0 {
		t.Error("no undecodable event read")
	}
}

func TestParseHostile(t *testing.T) {
	h, err := ParseHostile("swap,repeat,early=0.05&undecodable=0.01,silent=0.02,double=0.01,seed=7")
	want := Hostile{Seed: 7, SwapInPage: true, RepeatCursor: true, EarlyCreatedAt: 0.05, Undecodable: 0.01, Silent: 0.02, DoubleEmit: 0.01}
	if err != nil || h != want {
		t.Fatalf("ParseHostile = %+v, %v", h, err)
	}
	if back, err := ParseHostile(h.String()); err != nil || back != h {
		t.Errorf("ParseHostile(%q) = %+v, %v", h.String(), back, err)
	}
	if h, err := ParseHostile(""); err != nil || h != (Hostile{}) {
		t.Errorf("ParseHostile(\"\") = %+v, %v", h, err)
	}
	for _, bad := range []string{"swap=maybe", "early=2", "silent=-0.1", "double=x", "seed=x", "chaos"} {
		if _, err := ParseHostile(bad); err == nil {
			t.Errorf("ParseHostile(%q) accepted it", bad)
		}
	}
	if _, err := New(Config{Hostile: Hostile{Silent: 1.5}}); err == nil {
		t.Error("New accepted Hostile.Silent 1.5")
	}
}

func TestControlHostile(t *testing.T) {
	cfg := churnConfig
	cfg.ControlEndpoint = true
	f := startFake(t, cfg)
	resp, body := f.do(http.MethodPost, "_fake/hostile?swap&silent=0.5&seed=3")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /_fake/hostile: %d %s", resp.StatusCode, body)
	}
	if h := f.Hostile(); h != (Hostile{Seed: 3, SwapInPage: true, Silent: 0.5}) {
		t.Errorf("Hostile() = %+v", h)
	}
	f.AdvanceWith(48*time.Hour, churnOpts)
	var got struct {
		Modes string       `json:"modes"`
		Truth HostileTruth `json:"truth"`
	}
	f.getOK("_fake/hostile", &got)
	if got.Modes != "seed=3,swap,silent=0.5" || len(got.Truth.Silent) == 0 || len(got.Truth.Silent) != len(f.SilentChanges()) {
		t.Errorf("GET /_fake/hostile: %+v", got)
	}
	if resp, body := f.do(http.MethodPost, "_fake/hostile?early=7"); resp.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("POST /_fake/hostile?early=7: %d %s", resp.StatusCode, body)
	}
	if resp, _ := f.do(http.MethodPost, "_fake/hostile"); resp.StatusCode != http.StatusOK || f.Hostile() != (Hostile{}) {
		t.Errorf("POST /_fake/hostile without modes: %d, %+v", resp.StatusCode, f.Hostile())
	}
	plain := startFake(t, churnConfig)
	if resp, _ := plain.do(http.MethodGet, "_fake/hostile"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /_fake/hostile without ControlEndpoint: %d", resp.StatusCode)
	}
}
