package workos

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Object type discriminators sent in the "object" field of each resource.
const (
	ObjectDirectory      = "directory"
	ObjectDirectoryUser  = "directory_user"
	ObjectDirectoryGroup = "directory_group"
	ObjectList           = "list"
)

// ID prefixes of Directory Sync resources. The client refuses IDs that lack them
// before any request is sent.
const (
	DirectoryIDPrefix      = "directory_"
	DirectoryUserIDPrefix  = "directory_user_"
	DirectoryGroupIDPrefix = "directory_group_"
)

// DirectoryType is the kind of identity provider behind a directory. Values the
// client does not know are kept verbatim.
type DirectoryType string

// Directory types listed by the WorkOS OpenAPI spec.
const (
	DirectoryTypeAzureSCIMv2      DirectoryType = "azure scim v2.0"
	DirectoryTypeBambooHR         DirectoryType = "bamboohr"
	DirectoryTypeBreatheHR        DirectoryType = "breathe hr"
	DirectoryTypeCezanneHR        DirectoryType = "cezanne hr"
	DirectoryTypeCyberArkSCIMv2   DirectoryType = "cyberark scim v2.0"
	DirectoryTypeFourthHR         DirectoryType = "fourth hr"
	DirectoryTypeGenericSCIMv2    DirectoryType = "generic scim v2.0"
	DirectoryTypeGSuiteDirectory  DirectoryType = "gsuite directory"
	DirectoryTypeHiBob            DirectoryType = "hibob"
	DirectoryTypeSailPointSCIMv2  DirectoryType = "sailpoint scim v2.0"
	DirectoryTypeJumpCloudSCIMv2  DirectoryType = "jump cloud scim v2.0"
	DirectoryTypeOktaSCIMv2       DirectoryType = "okta scim v2.0"
	DirectoryTypeOneLoginSCIMv2   DirectoryType = "onelogin scim v2.0"
	DirectoryTypePeopleHR         DirectoryType = "people hr"
	DirectoryTypePersonio         DirectoryType = "personio"
	DirectoryTypePingFederateSCIM DirectoryType = "pingfederate scim v2.0"
	DirectoryTypeRipplingSCIMv2   DirectoryType = "rippling scim v2.0"
	DirectoryTypeS3               DirectoryType = "s3"
	DirectoryTypeSFTP             DirectoryType = "sftp"
	DirectoryTypeSFTPWorkday      DirectoryType = "sftp workday"
	DirectoryTypeWorkday          DirectoryType = "workday"
)

// DirectoryTypes lists every directory type of the spec, in spec order.
var DirectoryTypes = []DirectoryType{
	DirectoryTypeAzureSCIMv2, DirectoryTypeBambooHR, DirectoryTypeBreatheHR, DirectoryTypeCezanneHR,
	DirectoryTypeCyberArkSCIMv2, DirectoryTypeFourthHR, DirectoryTypeGenericSCIMv2, DirectoryTypeGSuiteDirectory,
	DirectoryTypeHiBob, DirectoryTypeSailPointSCIMv2, DirectoryTypeJumpCloudSCIMv2, DirectoryTypeOktaSCIMv2,
	DirectoryTypeOneLoginSCIMv2, DirectoryTypePeopleHR, DirectoryTypePersonio, DirectoryTypePingFederateSCIM,
	DirectoryTypeRipplingSCIMv2, DirectoryTypeS3, DirectoryTypeSFTP, DirectoryTypeSFTPWorkday, DirectoryTypeWorkday,
}

// DirectoryState says whether a directory is connected to its provider. The
// wire values are stored (the Node SDK maps linked/unlinked to active/inactive;
// we do not).
type DirectoryState string

// Directory states listed by the spec.
const (
	DirectoryStateLinked             DirectoryState = "linked"
	DirectoryStateValidating         DirectoryState = "validating"
	DirectoryStateInvalidCredentials DirectoryState = "invalid_credentials"
	DirectoryStateUnlinked           DirectoryState = "unlinked"
	DirectoryStateDeleting           DirectoryState = "deleting"
)

// DirectoryStates lists every directory state of the spec.
var DirectoryStates = []DirectoryState{
	DirectoryStateLinked, DirectoryStateValidating, DirectoryStateInvalidCredentials,
	DirectoryStateUnlinked, DirectoryStateDeleting,
}

// DirectoryUserState is the state of a directory user. "suspended" was folded
// into "inactive" in December 2023 but is still listed by the spec.
type DirectoryUserState string

// Directory user states listed by the spec.
const (
	DirectoryUserStateActive    DirectoryUserState = "active"
	DirectoryUserStateSuspended DirectoryUserState = "suspended"
	DirectoryUserStateInactive  DirectoryUserState = "inactive"
)

// DirectoryUserStates lists every user state of the spec.
var DirectoryUserStates = []DirectoryUserState{
	DirectoryUserStateActive, DirectoryUserStateSuspended, DirectoryUserStateInactive,
}

// Directory is a connection to a customer's identity provider.
//
// WorkOS API docs: https://workos.com/docs/reference/directory-sync/directory
type Directory struct {
	Object         string             `json:"object"`
	ID             string             `json:"id"`
	OrganizationID string             `json:"organization_id"`
	ExternalKey    string             `json:"external_key"`
	Type           DirectoryType      `json:"type"`
	State          DirectoryState     `json:"state"`
	Name           string             `json:"name"`
	Domain         *string            `json:"domain,omitempty"`   // optional in the spec
	Metadata       *DirectoryMetadata `json:"metadata,omitempty"` // optional in the spec
	CreatedAt      Time               `json:"created_at"`
	UpdatedAt      Time               `json:"updated_at"`
}

// DirectoryMetadata holds aggregate counts of a directory's users and groups.
type DirectoryMetadata struct {
	Users  DirectoryUserCounts `json:"users"`
	Groups int64               `json:"groups"`
}

// DirectoryUserCounts counts a directory's active and inactive users.
type DirectoryUserCounts struct {
	Active   int64 `json:"active"`
	Inactive int64 `json:"inactive"`
}

// DirectoryUser is a user synced from a directory, as returned by the list and
// get endpoints (the spec's DirectoryUserWithGroups).
//
// Pointer fields are nullable or optional: nil means null or absent, and a
// non-nil pointer to "" is an empty string the API really sent.
//
// WorkOS API docs: https://workos.com/docs/reference/directory-sync/directory-user
type DirectoryUser struct {
	Object         string             `json:"object"`
	ID             string             `json:"id"`
	DirectoryID    string             `json:"directory_id"`
	OrganizationID string             `json:"organization_id"`
	IdpID          string             `json:"idp_id"`
	Email          *string            `json:"email"` // required but nullable
	FirstName      *string            `json:"first_name,omitempty"`
	LastName       *string            `json:"last_name,omitempty"`
	Name           *string            `json:"name,omitempty"`
	State          DirectoryUserState `json:"state"`
	// Emails is deprecated (April 2026); nil when null or absent.
	Emails []DirectoryUserEmail `json:"emails,omitempty"`
	// JobTitle is deprecated (April 2026).
	JobTitle *string `json:"job_title,omitempty"`
	// Username is deprecated (April 2026).
	Username *string `json:"username,omitempty"`
	// RawAttributes is deprecated and now always {}; kept as the raw JSON sent.
	RawAttributes json.RawMessage `json:"raw_attributes,omitempty"`
	// CustomAttributes is the raw JSON object of mapped custom attributes.
	CustomAttributes json.RawMessage `json:"custom_attributes,omitempty"`
	Role             *SlimRole       `json:"role,omitempty"`
	Roles            []SlimRole      `json:"roles,omitempty"`
	CreatedAt        Time            `json:"created_at"`
	UpdatedAt        Time            `json:"updated_at"`
	// Groups is deprecated (May 2026): empty for new teams. Use the
	// group/user filters for memberships instead.
	Groups []DirectoryGroup `json:"groups"`
}

// DirectoryUserEmail is one entry of the deprecated emails array.
type DirectoryUserEmail struct {
	Primary *bool   `json:"primary,omitempty"`
	Type    *string `json:"type,omitempty"`
	Value   *string `json:"value"`
}

// SlimRole is a role assigned to a directory user.
type SlimRole struct {
	Slug string `json:"slug"`
}

// DirectoryGroup is a group synced from a directory.
//
// WorkOS API docs: https://workos.com/docs/reference/directory-sync/directory-group
type DirectoryGroup struct {
	Object         string `json:"object"`
	ID             string `json:"id"`
	IdpID          string `json:"idp_id"`
	DirectoryID    string `json:"directory_id"`
	OrganizationID string `json:"organization_id"`
	Name           string `json:"name"`
	// RawAttributes is deprecated, optional, and now {}; nil when absent.
	RawAttributes json.RawMessage `json:"raw_attributes,omitempty"`
	CreatedAt     Time            `json:"created_at"`
	UpdatedAt     Time            `json:"updated_at"`
}

// ListMetadata holds the cursors of a list page. A nil After means the end of
// the list; a nil Before means its start.
type ListMetadata struct {
	Before *string `json:"before"`
	After  *string `json:"after"`
}

// Time is a WorkOS timestamp. It decodes leniently: RFC 3339 with or without
// fractional seconds or zone, and the "2023-04-28 20:05:31.093" form found in
// the docs (read as UTC). It encodes as RFC 3339 with milliseconds in UTC, the
// API's own form.
type Time struct {
	time.Time
}

// timeLayouts are tried in order by ParseTime.
var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999Z0700",
	"2006-01-02",
}

// ParseTime parses a WorkOS timestamp leniently. Timestamps without a zone are
// taken as UTC. The result is in UTC.
func ParseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("workos: cannot parse timestamp %q: want ISO 8601 such as 2026-01-15T12:00:00.000Z", s)
}

// UnmarshalJSON decodes a timestamp string; null leaves the zero time.
func (t *Time) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		t.Time = time.Time{}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("workos: timestamp must be a string, got %s", truncate(string(b), 64))
	}
	if s == "" {
		t.Time = time.Time{}
		return nil
	}
	p, err := ParseTime(s)
	if err != nil {
		return err
	}
	t.Time = p
	return nil
}

// MarshalJSON encodes the time as RFC 3339 with milliseconds in UTC.
func (t Time) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte("null"), nil
	}
	return []byte(`"` + t.UTC().Format("2006-01-02T15:04:05.000Z07:00") + `"`), nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
