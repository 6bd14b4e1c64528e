package schema

import (
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
)

// Version is the schema version. It is recorded in the key-value metadata of
// every file (key "dsync_export.schema_version") and in export manifests. It
// changes when a column is added; columns are never renamed or retyped.
const Version = "1"

// Names of the exported tables. They are also the first path segment under the
// export prefix: <prefix>/<table>/dt=<yyyy-MM-dd>/.
const (
	TableDirectories     = "directories"
	TableDirectoryUsers  = "directory_users"
	TableDirectoryGroups = "directory_groups"
	TableMemberships     = "directory_group_memberships"
	// TableSnapshots records the committed snapshots (see SnapshotsTable).
	TableSnapshots = "snapshots"
	// TableEvents is the change log: every Directory Sync event once (see
	// EventsTable).
	TableEvents = "directory_events"
)

// Snapshot modes (see Snapshot.Mode). Both hold every row of every table;
// they differ in how the rows were fetched.
const (
	// SnapshotModeFull: every directory was walked with the list endpoints.
	SnapshotModeFull = "full"
	// SnapshotModeIncremental: at least one directory was built from the
	// previous snapshot plus the Events API's events since its cursor.
	SnapshotModeIncremental = "incremental"
)

// PartitionColumn is the Hive partition column of every table: the snapshot
// date, yyyy-MM-dd in UTC. It lives in the object path (dt=2026-01-15/), not in
// the Parquet files.
const PartitionColumn = "dt"

// PartitionFormat is the Go layout of the partition value (Java yyyy-MM-dd).
const PartitionFormat = "2006-01-02"

// Directory is a row of the "directories" table: one WorkOS directory as seen
// at export time.
//
// Struct tags: parquet is the column definition, comment the column comment
// (Athena DDL and Glue), source the WorkOS field it comes from.
type Directory struct {
	ID                    string    `parquet:"id" comment:"WorkOS directory ID (directory_...)" source:"id"`
	OrganizationID        string    `parquet:"organization_id,dict" comment:"WorkOS organization the directory belongs to (org_...)" source:"organization_id"`
	ExternalKey           string    `parquet:"external_key" comment:"External key of the directory" source:"external_key"`
	Type                  string    `parquet:"type,dict" comment:"Identity provider type as sent by WorkOS, e.g. okta scim v2.0" source:"type"`
	State                 string    `parquet:"state,dict" comment:"Connection state as sent by WorkOS: linked, validating, invalid_credentials, unlinked or deleting" source:"state"`
	Name                  string    `parquet:"name" comment:"Directory name" source:"name"`
	Domain                *string   `parquet:"domain,optional" comment:"Domain of the directory, null when WorkOS sends none" source:"domain"`
	MetadataUsersActive   *int64    `parquet:"metadata_users_active,optional" comment:"Active users counted by WorkOS, null when metadata is absent" source:"metadata.users.active"`
	MetadataUsersInactive *int64    `parquet:"metadata_users_inactive,optional" comment:"Inactive users counted by WorkOS, null when metadata is absent" source:"metadata.users.inactive"`
	MetadataGroups        *int64    `parquet:"metadata_groups,optional" comment:"Groups counted by WorkOS, null when metadata is absent" source:"metadata.groups"`
	CreatedAt             time.Time `parquet:"created_at,timestamp(millisecond:utc)" comment:"When WorkOS created the directory (UTC)" source:"created_at"`
	UpdatedAt             time.Time `parquet:"updated_at,timestamp(millisecond:utc)" comment:"When WorkOS last updated the directory (UTC)" source:"updated_at"`
	ExportedAt            time.Time `parquet:"exported_at,timestamp(millisecond:utc)" comment:"When the snapshot was taken (UTC), the same for every row of a run" source:"(export run)"`
}

// DirectoryUser is a row of the "directory_users" table: one user synced from
// a directory. The deprecated WorkOS fields (username, job_title, emails,
// raw_attributes) are kept as nullable columns; the deprecated groups array is
// not exported (see the directory_group_memberships table).
type DirectoryUser struct {
	ID               string    `parquet:"id" comment:"WorkOS directory user ID (directory_user_...)" source:"id"`
	DirectoryID      string    `parquet:"directory_id,dict" comment:"Directory the user belongs to (directory_...)" source:"directory_id"`
	OrganizationID   string    `parquet:"organization_id,dict" comment:"WorkOS organization of the directory (org_...)" source:"organization_id"`
	IdpID            string    `parquet:"idp_id" comment:"User ID assigned by the identity provider, format varies by provider" source:"idp_id"`
	Email            *string   `parquet:"email,optional" comment:"Primary email address, null when the provider has none" source:"email"`
	FirstName        *string   `parquet:"first_name,optional" comment:"First name" source:"first_name"`
	LastName         *string   `parquet:"last_name,optional" comment:"Last name" source:"last_name"`
	Name             *string   `parquet:"name,optional" comment:"Full name" source:"name"`
	State            string    `parquet:"state,dict" comment:"User state as sent by WorkOS: active, inactive or suspended (legacy)" source:"state"`
	Username         *string   `parquet:"username,optional" comment:"Deprecated by WorkOS (April 2026) and null once removed, use custom_attributes" source:"username"`
	JobTitle         *string   `parquet:"job_title,optional" comment:"Deprecated by WorkOS (April 2026) and null once removed, use custom_attributes" source:"job_title"`
	Emails           *string   `parquet:"emails,optional" comment:"Deprecated by WorkOS (April 2026), JSON array of {primary,type,value}, null when absent" source:"emails"`
	RoleSlug         *string   `parquet:"role_slug,optional,dict" comment:"Slug of the primary role, null when no role is assigned" source:"role.slug"`
	Roles            []string  `parquet:"roles,optional,list" comment:"Slugs of all assigned roles, null when WorkOS sends no roles field" source:"roles[].slug"`
	CustomAttributes *string   `parquet:"custom_attributes,optional" comment:"Mapped custom attributes as compact JSON text (use json_extract), null when absent" source:"custom_attributes"`
	RawAttributes    *string   `parquet:"raw_attributes,optional" comment:"Deprecated by WorkOS (April 2026, now {}), raw provider attributes as compact JSON text" source:"raw_attributes"`
	CreatedAt        time.Time `parquet:"created_at,timestamp(millisecond:utc)" comment:"When WorkOS created the user (UTC)" source:"created_at"`
	UpdatedAt        time.Time `parquet:"updated_at,timestamp(millisecond:utc)" comment:"When WorkOS last updated the user (UTC)" source:"updated_at"`
	ExportedAt       time.Time `parquet:"exported_at,timestamp(millisecond:utc)" comment:"When the snapshot was taken (UTC), the same for every row of a run" source:"(export run)"`
}

// DirectoryGroup is a row of the "directory_groups" table: one group synced
// from a directory.
type DirectoryGroup struct {
	ID             string    `parquet:"id" comment:"WorkOS directory group ID (directory_group_...)" source:"id"`
	IdpID          string    `parquet:"idp_id" comment:"Group ID assigned by the identity provider, format varies by provider" source:"idp_id"`
	DirectoryID    string    `parquet:"directory_id,dict" comment:"Directory the group belongs to (directory_...)" source:"directory_id"`
	OrganizationID string    `parquet:"organization_id,dict" comment:"WorkOS organization of the directory (org_...)" source:"organization_id"`
	Name           string    `parquet:"name" comment:"Group name" source:"name"`
	RawAttributes  *string   `parquet:"raw_attributes,optional" comment:"Deprecated by WorkOS (April 2026, now {}), raw provider attributes as compact JSON text, null when absent" source:"raw_attributes"`
	CreatedAt      time.Time `parquet:"created_at,timestamp(millisecond:utc)" comment:"When WorkOS created the group (UTC)" source:"created_at"`
	UpdatedAt      time.Time `parquet:"updated_at,timestamp(millisecond:utc)" comment:"When WorkOS last updated the group (UTC)" source:"updated_at"`
	ExportedAt     time.Time `parquet:"exported_at,timestamp(millisecond:utc)" comment:"When the snapshot was taken (UTC), the same for every row of a run" source:"(export run)"`
}

// DirectoryGroupMembership is a row of the "directory_group_memberships"
// table: user UserID is a member of group GroupID. The export builds it from
// the user list of each group (GET /directory_users?group=…), not from the
// deprecated groups array of a user.
type DirectoryGroupMembership struct {
	DirectoryID    string    `parquet:"directory_id,dict" comment:"Directory of the group and the user (directory_...)" source:"group.directory_id"`
	OrganizationID string    `parquet:"organization_id,dict" comment:"WorkOS organization of the directory (org_...)" source:"group.organization_id"`
	GroupID        string    `parquet:"group_id,dict" comment:"Group ID (directory_group_...), joins directory_groups.id" source:"group.id"`
	UserID         string    `parquet:"user_id" comment:"User ID (directory_user_...), joins directory_users.id, listed by GET /directory_users?group=group_id" source:"user.id"`
	ExportedAt     time.Time `parquet:"exported_at,timestamp(millisecond:utc)" comment:"When the snapshot was taken (UTC), the same for every row of a run" source:"(export run)"`
}

// Snapshot is a row of the "snapshots" table: one committed snapshot. The
// export writes it at the commit, one row per file, to
// <prefix>/snapshots/dt=<date>/<run_id>.parquet, and deletes the row of the
// run it replaces after the commit. Its dt is the snapshot date; the row
// names the run whose data files make up the committed snapshot of that date,
// which is how the <table>_latest views read only committed data.
type Snapshot struct {
	RunID          string    `parquet:"run_id" comment:"Export run that committed the snapshot; its data files are <table>/dt=<dt>/<run_id>-*.parquet" source:"(export run)"`
	ExportedAt     time.Time `parquet:"exported_at,timestamp(millisecond:utc)" comment:"When the snapshot was taken (UTC), the exported_at of all its rows" source:"(export run)"`
	CommittedAt    time.Time `parquet:"committed_at,timestamp(millisecond:utc)" comment:"When the snapshot was committed (UTC): its manifest was written then" source:"(export run)"`
	Mode           string    `parquet:"mode,dict" comment:"full: every directory walked, incremental: some built from the previous snapshot plus events; both hold every row" source:"(export run)"`
	Trigger        string    `parquet:"trigger,dict" comment:"What started the export, as in the manifest: scheduler, eventbridge, manual or now" source:"(export run)"`
	Demo           bool      `parquet:"demo" comment:"True when the data came from the built-in WorkOS fake (make run), not from WorkOS" source:"(export run)"`
	Directories    int64     `parquet:"rows_directories" comment:"Rows of the directories table in the snapshot" source:"(export run)"`
	DirectoryUsers int64     `parquet:"rows_directory_users" comment:"Rows of the directory_users table in the snapshot" source:"(export run)"`
	Groups         int64     `parquet:"rows_directory_groups" comment:"Rows of the directory_groups table in the snapshot" source:"(export run)"`
	Memberships    int64     `parquet:"rows_directory_group_memberships" comment:"Rows of the directory_group_memberships table in the snapshot" source:"(export run)"`
	Files          int64     `parquet:"files" comment:"Data files of the snapshot over all tables" source:"(export run)"`
	Bytes          int64     `parquet:"bytes" comment:"Bytes of the snapshot's data files over all tables" source:"(export run)"`
}

// DirectoryEvent is a row of the "directory_events" table: one Directory
// Sync event of the WorkOS Events API. Its dt is the event's own UTC date
// (not the snapshot date), so time-range queries prune. Every event is in
// exactly one committed run's files: consecutive runs read consecutive
// cursor ranges (see snapshot.EventsManifest).
type DirectoryEvent struct {
	ID             string    `parquet:"id" comment:"WorkOS event ID (event_...), unique over the table" source:"id"`
	Event          string    `parquet:"event,dict" comment:"Event type, e.g. dsync.user.created, dsync.group.user_added" source:"event"`
	CreatedAt      time.Time `parquet:"created_at,timestamp(millisecond:utc)" comment:"When WorkOS created the event (UTC); dt is its date" source:"created_at"`
	DirectoryID    *string   `parquet:"directory_id,optional,dict" comment:"Directory the event is about (directory_...), null when the payload has none" source:"data.directory_id or data.id"`
	OrganizationID *string   `parquet:"organization_id,optional,dict" comment:"WorkOS organization of the directory (org_...), null when the payload has none" source:"data.organization_id"`
	ObjectID       string    `parquet:"object_id" comment:"ID of the object the event is about: the directory, user, group or token; the user for group.user_added/removed" source:"data.id or data.user.id"`
	ObjectType     string    `parquet:"object_type,dict" comment:"Type of object_id: directory, directory_user, directory_group or directory_token" source:"data.object"`
	GroupID        *string   `parquet:"group_id,optional" comment:"Group of dsync.group.user_added/removed (directory_group_...), else null" source:"data.group.id"`
	Data           string    `parquet:"data" comment:"The event's payload as sent, compact JSON text (use json_extract)" source:"data"`
	SnapshotDate   string    `parquet:"snapshot_date,dict" comment:"The snapshot date (dt of the snapshot tables) whose run fetched the event" source:"(export run)"`
}

// Table describes one exported table.
type Table struct {
	// Name is the table name, also its path segment under the export prefix.
	Name string
	// Schema is the Parquet schema of the table's files.
	Schema *parquet.Schema
	// IDColumn is the column that identifies a row ("id"), or "" for the
	// memberships table, whose key is (group_id, user_id).
	IDColumn string
	// Description is a one-line description, used as the table comment.
	Description string
	// PartitionComment describes dt (the snapshot date, or the event date).
	PartitionComment string

	rowType reflect.Type
}

var tables = []Table{
	newTable[Directory](TableDirectories, "id",
		"WorkOS Directory Sync directories, one row per directory per daily snapshot (dt)"),
	newTable[DirectoryUser](TableDirectoryUsers, "id",
		"WorkOS Directory Sync users, one row per user per daily snapshot (dt)"),
	newTable[DirectoryGroup](TableDirectoryGroups, "id",
		"WorkOS Directory Sync groups, one row per group per daily snapshot (dt)"),
	newTable[DirectoryGroupMembership](TableMemberships, "",
		"WorkOS Directory Sync group memberships, one row per (group, user) pair per daily snapshot (dt)"),
}

// snapshotsTable is not in tables: it is not part of a snapshot's data.
var snapshotsTable = newTable[Snapshot](TableSnapshots, "run_id",
	"Committed dsync-export snapshots, one row per snapshot date (dt) naming the run that committed it")

// eventsTable is not in tables either: it is a change log, partitioned by
// the events' dates.
var eventsTable = func() Table {
	t := newTable[DirectoryEvent](TableEvents, "id",
		"WorkOS Directory Sync events (Events API), each exactly once, partitioned by the event's UTC date (dt)")
	t.PartitionComment = EventPartitionComment
	return t
}()

// Partition column comments.
const (
	SnapshotPartitionComment = "Snapshot date (yyyy-MM-dd, UTC)"
	EventPartitionComment    = "Event date (yyyy-MM-dd, UTC) of created_at"
)

func newTable[T any](name, idColumn, description string) Table {
	t := reflect.TypeFor[T]()
	return Table{
		Name:             name,
		Schema:           parquet.SchemaOf(reflect.New(t).Interface()),
		IDColumn:         idColumn,
		Description:      description,
		PartitionComment: SnapshotPartitionComment,
		rowType:          t,
	}
}

// Tables returns the data tables of a snapshot: directories,
// directory_users, directory_groups and directory_group_memberships, in that
// order. Every snapshot has files of each, and the export, the verifier and
// the <table>_latest views iterate these. The snapshots table is not among
// them: see SnapshotsTable. The returned slice is a copy.
func Tables() []Table {
	return append([]Table(nil), tables...)
}

// SnapshotsTable returns the snapshots table (row type Snapshot): one row per
// committed snapshot, written at the commit. It is a catalog table like the
// data tables (same partitioning, Parquet writer, DDL and Glue table) but
// holds no directory data, so Tables does not return it. Athena tables are
// Tables() followed by SnapshotsTable().
func SnapshotsTable() Table { return snapshotsTable }

// EventsTable returns the directory_events table (row type DirectoryEvent):
// the change log read from the Events API. Its dt is the event date.
func EventsTable() Table { return eventsTable }

// CatalogTables returns every Athena/Glue table: Tables(), then the
// snapshots table, then directory_events.
func CatalogTables() []Table {
	return append(Tables(), snapshotsTable, eventsTable)
}

// TableByName returns the table with the given name: a data table, the
// snapshots table or directory_events.
func TableByName(name string) (Table, bool) {
	for _, t := range CatalogTables() {
		if t.Name == name {
			return t, true
		}
	}
	return Table{}, false
}

// TableOf returns the table whose row type is T, and false when T is not
// one of this package's row structs.
func TableOf[T any]() (Table, bool) {
	rt := reflect.TypeFor[T]()
	for _, t := range CatalogTables() {
		if t.rowType == rt {
			return t, true
		}
	}
	return Table{}, false
}

// Column is a table column in Glue/Hive form, for DDL and for comparing with
// the Glue tables of template.yaml.
type Column struct {
	// Name is the lower snake_case column name.
	Name string
	// HiveType is the Hive/Glue type name: string, bigint, int, boolean,
	// double, timestamp, date, binary, array<…> or struct<…>.
	HiveType string
	// Comment is the column comment (at most 255 characters, no quotes).
	Comment string
	// Nullable reports whether the column is OPTIONAL in the Parquet files.
	Nullable bool
}

// Columns returns the columns of t's Parquet files, in file order, with Hive
// types. The partition column dt is not included: it is in the path, not in
// the files (see PartitionColumn).
func (t Table) Columns() []Column {
	fields := t.Schema.Fields()
	cols := make([]Column, 0, len(fields))
	for _, f := range fields {
		c := Column{
			Name:     f.Name(),
			HiveType: hiveType(f),
			Nullable: f.Optional(),
		}
		if sf, ok := t.field(f.Name()); ok {
			c.Comment = sf.Tag.Get("comment")
		}
		cols = append(cols, c)
	}
	return cols
}

// field returns the struct field of t's row type that holds column name.
func (t Table) field(name string) (reflect.StructField, bool) {
	if t.rowType == nil {
		return reflect.StructField{}, false
	}
	for i := range t.rowType.NumField() {
		f := t.rowType.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("parquet"), ",")
		if tag == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// hiveType returns the Hive type name of a Parquet node.
func hiveType(n parquet.Node) string {
	var lt format.LogicalTypeValue
	if l := n.Type().LogicalType(); l != nil {
		lt = l.Value
	}
	if !n.Leaf() {
		if _, ok := lt.(*format.ListType); ok && len(n.Fields()) == 1 {
			// 3-level LIST: <list> repeated group list { <element> }.
			list := n.Fields()[0]
			if !list.Leaf() && len(list.Fields()) == 1 {
				return "array<" + hiveType(list.Fields()[0]) + ">"
			}
			return "array<" + hiveType(list) + ">"
		}
		var b strings.Builder
		b.WriteString("struct<")
		for i, f := range n.Fields() {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(f.Name() + ":" + hiveType(f))
		}
		b.WriteByte('>')
		return b.String()
	}
	switch n.Type().Kind() {
	case parquet.Boolean:
		return "boolean"
	case parquet.Int32:
		if _, ok := lt.(*format.DateType); ok {
			return "date"
		}
		return "int"
	case parquet.Int64:
		if _, ok := lt.(*format.TimestampType); ok {
			return "timestamp"
		}
		return "bigint"
	case parquet.Float:
		return "float"
	case parquet.Double:
		return "double"
	case parquet.ByteArray, parquet.FixedLenByteArray:
		switch lt.(type) {
		case *format.StringType, *format.EnumType, *format.JsonType:
			return "string"
		}
		return "binary"
	}
	panic(fmt.Sprintf("schema: no Hive type for Parquet type %v", n.Type()))
}
