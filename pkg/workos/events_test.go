package workos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"
	"time"
)

// TestListEventsSendsEveryFilter: the types as one parameter each (sorted,
// once), the range in ISO 8601 UTC with milliseconds, the organization, the
// pagination; and one page of every Directory Sync event decodes.
func TestListEventsSendsEveryFilter(t *testing.T) {
	c, mux := setup(t)
	mux.HandleFunc("GET /events", func(w http.ResponseWriter, r *http.Request) {
		testQuery(t, r, url.Values{
			"events":          {"dsync.group.user_added", "dsync.user.created", "dsync.user.updated"},
			"range_start":     {"2026-11-30T00:00:00.000Z"},
			"range_end":       {"2026-12-01T01:30:00.500Z"},
			"organization_id": {"org_01EZTR6WYX1A0DSE2CYMGXQ24Y"},
			"limit":           {"100"},
			"order":           {"asc"},
			"after":           {"event_01HZ000000000000000000000"},
		})
		w.Header().Set("X-Request-ID", "req_events")
		writeJSON(w, 200, string(fixture(t, "events.json")))
	})
	page, err := c.ListEvents(context.Background(), &ListEventsOptions{
		ListOptions:    ListOptions{Order: OrderAsc, After: "event_01HZ000000000000000000000"},
		Events:         []string{EventUserUpdated, EventUserCreated, EventGroupUserAdded, EventUserCreated},
		RangeStart:     time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC),
		RangeEnd:       time.Date(2026, 12, 1, 2, 30, 0, 500_000_000, time.FixedZone("CET", 3600)),
		OrganizationID: "org_01EZTR6WYX1A0DSE2CYMGXQ24Y",
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Data) != len(DirectorySyncEvents) || page.RequestID != "req_events" {
		t.Fatalf("%d events (request %q), want one of each of the %d types", len(page.Data), page.RequestID, len(DirectorySyncEvents))
	}
	seen := map[string]bool{}
	for i := range page.Data {
		e := &page.Data[i]
		seen[e.Event] = true
		if e.CreatedAt.IsZero() || e.CreatedAt.Location() != time.UTC {
			t.Errorf("%s: created_at %v, want a UTC time", e.ID, e.CreatedAt)
		}
		p, err := e.Payload()
		if err != nil {
			t.Errorf("%s: %v", e.ID, err)
			continue
		}
		switch v := p.(type) {
		case *DirectoryEvent:
			if v.ID != "directory_01ECAZ4NV9QMV47GW873HDCX74" || (e.Event == EventDirectoryActivated && (len(v.Domains) != 1 || v.Domains[0].Domain != "foo-corp.com" || v.ExternalKey == "")) {
				t.Errorf("%s: directory payload %+v", e.Event, v)
			}
		case *DirectoryUserEvent:
			if v.ID != "directory_user_01E1JG7J09H96KYP8HM9B0G5SJ" || v.DirectoryID == "" || v.UpdatedAt.IsZero() {
				t.Errorf("%s: user payload %+v", e.Event, v)
			}
			if e.Event == EventUserUpdated && string(v.PreviousAttributes["last_name"]) != `"Torp"` {
				t.Errorf("%s: previous attributes %v", e.Event, v.PreviousAttributes)
			}
		case *DirectoryGroupEvent:
			if v.ID != "directory_group_01E1JJS84MFPPQ3G655FHTKX6Z" || v.Name == "" {
				t.Errorf("%s: group payload %+v", e.Event, v)
			}
			if e.Event == EventGroupUpdated && string(v.PreviousAttributes["name"]) != `"Developers"` {
				t.Errorf("%s: previous attributes %v", e.Event, v.PreviousAttributes)
			}
		case *MembershipEvent:
			if v.DirectoryID == "" || v.User.ID != "directory_user_01E1JG7J09H96KYP8HM9B0G5SJ" || v.Group.ID != "directory_group_01E1JJS84MFPPQ3G655FHTKX6Z" {
				t.Errorf("%s: membership payload %+v", e.Event, v)
			}
		case *DirectoryTokenEvent:
			if v.TokenSuffix != "a1b2" || v.DirectoryID == "" {
				t.Errorf("%s: token payload %+v", e.Event, v)
			}
		default:
			t.Errorf("%s: payload of type %T", e.Event, p)
		}
	}
	for _, ev := range DirectorySyncEvents {
		if !seen[ev] {
			t.Errorf("the fixture has no %s event", ev)
		}
	}
	// The docs' non-ISO form of created_at is read as UTC.
	if got := page.Data[1].CreatedAt.Time; !got.Equal(time.Date(2023, 4, 28, 20, 5, 31, 93_000_000, time.UTC)) {
		t.Errorf("created_at %q read as %v", "2023-04-28 20:05:31.093", got)
	}
}

func TestListEventsRefusesBadOptions(t *testing.T) {
	c, _ := setup(t)
	at := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	for name, opts := range map[string]*ListEventsOptions{
		"no types":      nil,
		"empty types":   {Events: []string{}},
		"bad type":      {Events: []string{"dsync.user.created&x=1"}},
		"blank type":    {Events: []string{""}},
		"range":         {Events: DirectorySyncEvents, RangeStart: at, RangeEnd: at},
		"organization":  {Events: DirectorySyncEvents, OrganizationID: "directory_01ECAZ4NV9QMV47GW873HDCX74"},
		"limit":         {Events: DirectorySyncEvents, ListOptions: ListOptions{Limit: 101}},
		"cursor syntax": {Events: DirectorySyncEvents, ListOptions: ListOptions{After: "event 1"}},
	} {
		_, err := c.ListEvents(context.Background(), opts)
		if !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%s: %v, want ErrInvalidArgument", name, err)
		}
	}
}

// TestEventPagesWalkTheCursorRetryAndStop: the walk follows after cursors
// from the one given, retries a 503 like every list, and stops at a null
// cursor; a cursor that comes back ends the walk with ErrRepeatedCursor.
func TestEventPagesWalkTheCursorRetryAndStop(t *testing.T) {
	c, mux := setup(t)
	var calls atomic.Int32
	next := map[string]string{"event_01HZ0000000000000000000A0": "event_01HZ0000000000000000000A1", "event_01HZ0000000000000000000A1": "event_01HZ0000000000000000000A2", "event_01HZ0000000000000000000A2": ""}
	mux.HandleFunc("GET /events", func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 2 {
			writeJSON(w, 503, `<html>busy</html>`)
			return
		}
		after := r.URL.Query().Get("after")
		n, ok := next[after]
		if !ok {
			t.Errorf("unexpected cursor %q", after)
		}
		cursor := "null"
		if n != "" {
			cursor = fmt.Sprintf("%q", n)
		}
		writeJSON(w, 200, fmt.Sprintf(`{"object":"list","data":[{"object":"event","id":%q,"event":"dsync.user.deleted","created_at":"2026-11-30T10:00:00.000Z","data":{"object":"directory_user","id":"directory_user_01E1JG7J09H96KYP8HM9B0G5SJ"}}],"list_metadata":{"after":%s}}`, n+"x", cursor))
	})
	n, err := drain(c.Events(context.Background(), &ListEventsOptions{Events: []string{EventUserDeleted}, ListOptions: ListOptions{Order: OrderAsc, After: "event_01HZ0000000000000000000A0"}}))
	if err != nil || n != 3 {
		t.Fatalf("walked %d events, %v; want 3 pages of one", n, err)
	}
	if st := c.Stats(); st.Retries != 1 {
		t.Errorf("retries %d, want the 503 retried once", st.Retries)
	}

	c2, mux2 := setup(t)
	mux2.HandleFunc("GET /events", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, `{"object":"list","data":[{"object":"event","id":"event_01HZ0000000000000000000B0","event":"dsync.user.deleted","created_at":"2026-11-30T10:00:00.000Z","data":{}}],"list_metadata":{"after":"event_01HZ0000000000000000000B0"}}`)
	})
	_, err = drain(c2.EventPages(context.Background(), &ListEventsOptions{Events: DirectorySyncEvents}))
	if !errors.Is(err, ErrRepeatedCursor) {
		t.Errorf("a repeated cursor: %v, want ErrRepeatedCursor", err)
	}
}

func TestEventPayloadErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		e    Event
		want error
	}{
		"unknown type": {Event{ID: "event_1", Event: "user.created", Data: json.RawMessage(`{}`)}, ErrUnknownEvent},
		"no data":      {Event{ID: "event_2", Event: EventUserCreated}, ErrEventPayload},
		"null data":    {Event{ID: "event_3", Event: EventGroupCreated, Data: json.RawMessage(`null`)}, ErrEventPayload},
		"wrong shape":  {Event{ID: "event_4", Event: EventGroupUserAdded, Data: json.RawMessage(`{"user":"directory_user_1"}`)}, ErrEventPayload},
		"bad time":     {Event{ID: "event_5", Event: EventUserUpdated, Data: json.RawMessage(`{"id":"directory_user_1","updated_at":"yesterday"}`)}, ErrEventPayload},
	} {
		if _, err := tc.e.Payload(); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
}
