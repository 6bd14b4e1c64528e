package schema

import (
	"bytes"
	"cmp"
	"encoding/json"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/dsync-export/dsync-export/pkg/workos"
)

// FromDirectory maps a WorkOS directory to a directories row. exportedAt is
// the snapshot time. All times are converted to UTC and truncated to
// milliseconds, the precision of the files; an absent (zero) timestamp is
// written as 1970-01-01T00:00:00Z, as the timestamp columns are required.
func FromDirectory(d *workos.Directory, exportedAt time.Time) Directory {
	r := Directory{
		ID:             d.ID,
		OrganizationID: d.OrganizationID,
		ExternalKey:    d.ExternalKey,
		Type:           string(d.Type),
		State:          string(d.State),
		Name:           d.Name,
		Domain:         cloneString(d.Domain),
		CreatedAt:      millis(d.CreatedAt.Time),
		UpdatedAt:      millis(d.UpdatedAt.Time),
		ExportedAt:     millis(exportedAt),
	}
	if m := d.Metadata; m != nil {
		r.MetadataUsersActive = ptr(m.Users.Active)
		r.MetadataUsersInactive = ptr(m.Users.Inactive)
		r.MetadataGroups = ptr(m.Groups)
	}
	return r
}

// FromDirectoryUser maps a WorkOS directory user to a directory_users row.
//
//   - email is the primary address; role.slug becomes role_slug and roles the
//     list of slugs (null when WorkOS sends no roles, empty when it sends []).
//   - custom_attributes and raw_attributes are stored as compact JSON text,
//     exactly as received; absent or JSON null becomes SQL NULL.
//   - emails (deprecated) is re-encoded as a JSON array: null when absent or
//     null, "[]" when empty.
//   - The deprecated groups array is not mapped; memberships have their own
//     table.
func FromDirectoryUser(u *workos.DirectoryUser, exportedAt time.Time) DirectoryUser {
	r := DirectoryUser{
		ID:               u.ID,
		DirectoryID:      u.DirectoryID,
		OrganizationID:   u.OrganizationID,
		IdpID:            u.IdpID,
		Email:            cloneString(u.Email),
		FirstName:        cloneString(u.FirstName),
		LastName:         cloneString(u.LastName),
		Name:             cloneString(u.Name),
		State:            string(u.State),
		Username:         cloneString(u.Username),
		JobTitle:         cloneString(u.JobTitle),
		Emails:           emailsJSON(u.Emails),
		CustomAttributes: compactJSON(u.CustomAttributes),
		RawAttributes:    compactJSON(u.RawAttributes),
		CreatedAt:        millis(u.CreatedAt.Time),
		UpdatedAt:        millis(u.UpdatedAt.Time),
		ExportedAt:       millis(exportedAt),
	}
	if u.Role != nil {
		r.RoleSlug = ptr(u.Role.Slug)
	}
	if u.Roles != nil {
		r.Roles = make([]string, len(u.Roles))
		for i, role := range u.Roles {
			r.Roles[i] = role.Slug
		}
	}
	return r
}

// FromDirectoryGroup maps a WorkOS directory group to a directory_groups row.
// raw_attributes is stored as compact JSON text, null when absent.
func FromDirectoryGroup(g *workos.DirectoryGroup, exportedAt time.Time) DirectoryGroup {
	return DirectoryGroup{
		ID:             g.ID,
		IdpID:          g.IdpID,
		DirectoryID:    g.DirectoryID,
		OrganizationID: g.OrganizationID,
		Name:           g.Name,
		RawAttributes:  compactJSON(g.RawAttributes),
		CreatedAt:      millis(g.CreatedAt.Time),
		UpdatedAt:      millis(g.UpdatedAt.Time),
		ExportedAt:     millis(exportedAt),
	}
}

// NewMembership returns the memberships row saying that user userID is a
// member of group groupID of directory d. It is the one mapping of a
// membership: every membership route of the export, and the tests' expected
// rows, use it.
func NewMembership(d *workos.Directory, groupID, userID string, exportedAt time.Time) DirectoryGroupMembership {
	return DirectoryGroupMembership{
		DirectoryID:    d.ID,
		OrganizationID: d.OrganizationID,
		GroupID:        groupID,
		UserID:         userID,
		ExportedAt:     millis(exportedAt),
	}
}

// millis returns t in UTC, truncated to milliseconds. The timestamp columns
// are required, so an absent timestamp (the zero time, which WorkOS never
// sends for these fields) is written as the Unix epoch, 1970-01-01T00:00:00Z,
// a value every reader can represent.
func millis(t time.Time) time.Time {
	if t.IsZero() {
		return time.Unix(0, 0).UTC()
	}
	return t.UTC().Truncate(time.Millisecond)
}

func ptr[T any](v T) *T { return &v }

func cloneString(s *string) *string {
	if s == nil {
		return nil
	}
	return ptr(*s)
}

// scratch holds reusable buffers for compactJSON and emailsJSON, so mapping a
// row allocates only the strings it returns.
var scratch = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// compactJSON returns raw as compact JSON text, or nil when raw is empty or
// the JSON null. Invalid JSON (which a decoded json.RawMessage cannot be) is
// kept verbatim; invalid UTF-8 is replaced so the column stays valid UTF8.
func compactJSON(raw json.RawMessage) *string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	b := scratch.Get().(*bytes.Buffer)
	defer scratch.Put(b)
	b.Reset()
	if err := json.Compact(b, raw); err == nil {
		raw = b.Bytes()
	}
	s := string(raw)
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return &s
}

// emailsJSON encodes the deprecated emails array; nil stays nil.
func emailsJSON(emails []workos.DirectoryUserEmail) *string {
	if emails == nil {
		return nil
	}
	b := scratch.Get().(*bytes.Buffer)
	defer scratch.Put(b)
	b.Reset()
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(emails); err != nil {
		// DirectoryUserEmail holds only strings and bools: unreachable.
		panic("schema: cannot encode emails: " + err.Error())
	}
	return ptr(string(bytes.TrimSuffix(b.Bytes(), []byte("\n"))))
}

// FromEvent maps a Directory Sync event to a directory_events row fetched by
// the run of snapshot date snapshotDate. The payload is kept as compact JSON
// text; the ids are taken from it by its event type. A payload that does not
// decode is an error naming the event (the row would lose its ids).
func FromEvent(e *workos.Event, snapshotDate string) (DirectoryEvent, error) {
	row := DirectoryEvent{
		ID:           e.ID,
		Event:        e.Event,
		CreatedAt:    millis(e.CreatedAt.Time),
		SnapshotDate: snapshotDate,
	}
	if c := compactJSON(e.Data); c != nil {
		row.Data = *c
	}
	v, err := e.Payload()
	if err != nil {
		return DirectoryEvent{}, err
	}
	opt := func(s string) *string {
		if s == "" {
			return nil
		}
		return ptr(s)
	}
	switch p := v.(type) {
	case *workos.DirectoryEvent:
		row.DirectoryID, row.OrganizationID = opt(p.ID), opt(p.OrganizationID)
		row.ObjectID, row.ObjectType = p.ID, "directory"
	case *workos.DirectoryUserEvent:
		row.DirectoryID, row.OrganizationID = opt(p.DirectoryID), opt(p.OrganizationID)
		row.ObjectID, row.ObjectType = p.ID, "directory_user"
	case *workos.DirectoryGroupEvent:
		row.DirectoryID, row.OrganizationID = opt(p.DirectoryID), opt(p.OrganizationID)
		row.ObjectID, row.ObjectType = p.ID, "directory_group"
	case *workos.MembershipEvent:
		row.DirectoryID = opt(cmp.Or(p.DirectoryID, p.Group.DirectoryID, p.User.DirectoryID))
		row.OrganizationID = opt(cmp.Or(p.Group.OrganizationID, p.User.OrganizationID))
		row.ObjectID, row.ObjectType, row.GroupID = p.User.ID, "directory_user", opt(p.Group.ID)
	case *workos.DirectoryTokenEvent:
		row.DirectoryID, row.OrganizationID = opt(p.DirectoryID), opt(p.OrganizationID)
		row.ObjectID, row.ObjectType = p.ID, "directory_token"
	}
	return row, nil
}
