package workos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"regexp"
	"slices"
	"time"
)

// The Directory Sync event types (the Events API's dsync.* types).
const (
	EventDirectoryActivated = "dsync.activated"
	EventDirectoryDeleted   = "dsync.deleted"
	EventUserCreated        = "dsync.user.created"
	EventUserUpdated        = "dsync.user.updated"
	EventUserDeleted        = "dsync.user.deleted"
	EventGroupCreated       = "dsync.group.created"
	EventGroupUpdated       = "dsync.group.updated"
	EventGroupDeleted       = "dsync.group.deleted"
	EventGroupUserAdded     = "dsync.group.user_added"
	EventGroupUserRemoved   = "dsync.group.user_removed"
	EventTokenCreated       = "dsync.token.created"
	EventTokenRevoked       = "dsync.token.revoked"
)

// DirectorySyncEvents lists every Directory Sync event type. The Events API
// has no catch-all type: a caller names each type it wants.
var DirectorySyncEvents = []string{
	EventDirectoryActivated, EventDirectoryDeleted,
	EventUserCreated, EventUserUpdated, EventUserDeleted,
	EventGroupCreated, EventGroupUpdated, EventGroupDeleted,
	EventGroupUserAdded, EventGroupUserRemoved,
	EventTokenCreated, EventTokenRevoked,
}

// EventRetention is how long WorkOS keeps events: the Events API returns
// events up to 30 days old.
const EventRetention = 30 * 24 * time.Hour

// EventIDPrefix is the prefix of event IDs, which are also the Events API's
// cursors.
const EventIDPrefix = "event_"

// Event is one event of the Events API. Data is the payload as sent; Payload
// decodes it into the type of its event.
type Event struct {
	Object    string          `json:"object"` // "event"
	ID        string          `json:"id"`
	Event     string          `json:"event"` // the type, e.g. dsync.user.created
	Data      json.RawMessage `json:"data"`
	CreatedAt Time            `json:"created_at"`
	Context   json.RawMessage `json:"context,omitempty"`

	// malformed is why a field of the event itself (not its data) did not
	// decode: the page is still read, and Payload reports it.
	malformed error
}

// UnmarshalJSON decodes an event leniently: a created_at that is not a
// timestamp does not fail the page it is on (one bad event would stop every
// read of the stream); Payload reports it instead, so the caller can set the
// event aside and read on.
func (e *Event) UnmarshalJSON(b []byte) error {
	type plain Event
	var raw struct {
		plain
		CreatedAt json.RawMessage `json:"created_at"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*e = Event(raw.plain)
	e.CreatedAt, e.malformed = Time{}, nil
	if len(raw.CreatedAt) > 0 {
		if err := e.CreatedAt.UnmarshalJSON(raw.CreatedAt); err != nil {
			e.malformed = fmt.Errorf("created_at: %w", err)
		}
	}
	return nil
}

// DirectoryEvent is the payload of dsync.activated and dsync.deleted: the
// directory, and on activation its organization's domains.
type DirectoryEvent struct {
	Directory
	Domains []OrganizationDomain `json:"domains,omitempty"`
}

// OrganizationDomain is a domain of a directory's organization.
type OrganizationDomain struct {
	Object string `json:"object"` // "organization_domain"
	ID     string `json:"id"`
	Domain string `json:"domain"`
}

// DirectoryUserEvent is the payload of dsync.user.created, .updated and
// .deleted. PreviousAttributes (updates only) holds the changed attributes'
// earlier values, as sent.
type DirectoryUserEvent struct {
	DirectoryUser
	PreviousAttributes map[string]json.RawMessage `json:"previous_attributes,omitempty"`
}

// DirectoryGroupEvent is the payload of dsync.group.created, .updated and
// .deleted.
type DirectoryGroupEvent struct {
	DirectoryGroup
	PreviousAttributes map[string]json.RawMessage `json:"previous_attributes,omitempty"`
}

// MembershipEvent is the payload of dsync.group.user_added and
// dsync.group.user_removed.
type MembershipEvent struct {
	DirectoryID string         `json:"directory_id"`
	User        DirectoryUser  `json:"user"`
	Group       DirectoryGroup `json:"group"`
}

// DirectoryTokenEvent is the payload of dsync.token.created and .revoked. The
// token itself is never in an event, only its suffix.
type DirectoryTokenEvent struct {
	Object         string `json:"object"` // "directory_token"
	ID             string `json:"id"`
	DirectoryID    string `json:"directory_id"`
	OrganizationID string `json:"organization_id,omitempty"`
	TokenSuffix    string `json:"token_suffix"`
	CreatedAt      Time   `json:"created_at"`
}

// ErrUnknownEvent is wrapped by Payload's error for an event type it does not
// know; the event's Data is still there, as sent.
var ErrUnknownEvent = errors.New("workos: unknown event type")

// ErrEventPayload is wrapped by Payload's error for data that does not
// decode into its event type's payload.
var ErrEventPayload = errors.New("workos: malformed event payload")

// Payload decodes the event's data into the type of its event: a
// *DirectoryEvent, *DirectoryUserEvent, *DirectoryGroupEvent,
// *MembershipEvent or *DirectoryTokenEvent. Data that does not decode is an
// error wrapping ErrEventPayload and naming the event.
func (e *Event) Payload() (any, error) {
	var v any
	switch e.Event {
	case EventDirectoryActivated, EventDirectoryDeleted:
		v = new(DirectoryEvent)
	case EventUserCreated, EventUserUpdated, EventUserDeleted:
		v = new(DirectoryUserEvent)
	case EventGroupCreated, EventGroupUpdated, EventGroupDeleted:
		v = new(DirectoryGroupEvent)
	case EventGroupUserAdded, EventGroupUserRemoved:
		v = new(MembershipEvent)
	case EventTokenCreated, EventTokenRevoked:
		v = new(DirectoryTokenEvent)
	default:
		return nil, fmt.Errorf("%w %q (event %s): this client knows %v", ErrUnknownEvent, e.Event, e.ID, DirectorySyncEvents)
	}
	if e.malformed != nil {
		return nil, fmt.Errorf("%w: event %s (%s): %w", ErrEventPayload, e.ID, e.Event, e.malformed)
	}
	if len(e.Data) == 0 || string(e.Data) == "null" {
		return nil, fmt.Errorf("%w: event %s (%s) has no data", ErrEventPayload, e.ID, e.Event)
	}
	if err := json.Unmarshal(e.Data, v); err != nil {
		return nil, fmt.Errorf("%w: event %s (%s): %w", ErrEventPayload, e.ID, e.Event, err)
	}
	return v, nil
}

// ListEventsOptions filter and paginate ListEvents. Events is required: the
// API has no catch-all type.
type ListEventsOptions struct {
	ListOptions
	// Events are the event types to list (DirectorySyncEvents for all of
	// Directory Sync's).
	Events []string
	// RangeStart and RangeEnd keep the events created after and before
	// these times (zero: no bound).
	RangeStart, RangeEnd time.Time
	// OrganizationID keeps one organization's events (org_…).
	OrganizationID string
}

var eventTypeRE = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$`)

func (o *ListEventsOptions) request() (request, error) {
	var opts ListEventsOptions
	if o != nil {
		opts = *o
	}
	q, err := opts.ListOptions.query()
	if err != nil {
		return request{}, err
	}
	if len(opts.Events) == 0 {
		return request{}, invalidArg("the events filter of /events is required (the API has no catch-all type): pass workos.DirectorySyncEvents or the types you need")
	}
	for _, ev := range opts.Events {
		if !eventTypeRE.MatchString(ev) {
			return request{}, invalidArg("event type %q is not of the form dsync.user.created", truncate(ev, 64))
		}
	}
	if !opts.RangeStart.IsZero() && !opts.RangeEnd.IsZero() && !opts.RangeStart.Before(opts.RangeEnd) {
		return request{}, invalidArg("range_start %s is not before range_end %s", opts.RangeStart.UTC().Format(time.RFC3339), opts.RangeEnd.UTC().Format(time.RFC3339))
	}
	if opts.OrganizationID != "" {
		if err := checkID(kindOrganization, "the organization filter", opts.OrganizationID); err != nil {
			return request{}, err
		}
	}
	// The SDKs send one events parameter per type; the spec's form style
	// would join them with commas. WorkOS accepts the SDKs' form.
	for _, ev := range slices.Compact(slices.Sorted(slices.Values(opts.Events))) {
		q.Add("events", ev)
	}
	if !opts.RangeStart.IsZero() {
		q.Set("range_start", opts.RangeStart.UTC().Format("2006-01-02T15:04:05.000Z"))
	}
	if !opts.RangeEnd.IsZero() {
		q.Set("range_end", opts.RangeEnd.UTC().Format("2006-01-02T15:04:05.000Z"))
	}
	setIf(q, "organization_id", opts.OrganizationID)
	return request{method: http.MethodGet, path: "events", query: q}, nil
}

// ListEvents returns one page of events. Events are paced by the global rate
// limiter only.
//
// WorkOS API docs: https://workos.com/docs/reference/events/list
func (c *Client) ListEvents(ctx context.Context, opts *ListEventsOptions) (*Page[Event], error) {
	r, err := opts.request()
	if err != nil {
		return nil, c.scrub(err)
	}
	return listPage[Event](ctx, c, r)
}

// EventPages iterates over the pages of the list ListEvents returns, from
// opts on (keep the last event's ID and pass it as After to resume there).
// On an error, a repeated cursor included, it yields the error once and
// stops.
func (c *Client) EventPages(ctx context.Context, opts *ListEventsOptions) iter.Seq2[*Page[Event], error] {
	var o ListEventsOptions
	if opts != nil {
		o = *opts
	}
	return pages[Event](ctx, c, o.ListOptions, func(lo ListOptions) (request, error) {
		o.ListOptions = lo
		return o.request()
	})
}

// Events iterates over the events ListEvents returns, from opts on.
func (c *Client) Events(ctx context.Context, opts *ListEventsOptions) iter.Seq2[Event, error] {
	return items(c.EventPages(ctx, opts))
}
