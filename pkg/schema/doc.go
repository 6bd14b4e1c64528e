// Package schema defines the Parquet snapshot tables of dsync-export: their
// row structs and columns, the mapping from WorkOS objects to rows, and their
// Athena definitions, generated from the same row structs.
//
// There are four tables, one row struct each: directories (Directory),
// directory_users (DirectoryUser), directory_groups (DirectoryGroup) and
// directory_group_memberships (DirectoryGroupMembership). Files live under
// <prefix>/<table>/dt=<yyyy-MM-dd>/; dt is a Hive partition column in the
// path, never in the files. COLUMNS.md documents every column. Tables
// returns these four data tables. Package parquetfile writes the files.
//
// A fifth table, snapshots (Snapshot, from SnapshotsTable), has one row per
// committed snapshot, written by the export at the commit: the date, the run
// whose files make up the snapshot, its mode and row counts. Each data table
// has a view, <table>_latest (LatestViewSQL), that reads only the latest
// committed snapshot through it.
//
// Types: timestamps are INT64 TIMESTAMP(MILLIS, adjusted to UTC), never INT96
// or nanoseconds; strings are UTF8; lists are 3-level LISTs; nullable values
// are OPTIONAL and the rest REQUIRED. custom_attributes, raw_attributes and
// emails are compact JSON text, for Athena's json_extract. Columns tagged dict
// are low-cardinality and dictionary-encoded.
//
// # Schema evolution
//
// The schema evolves by adding nullable (OPTIONAL) columns only. Never rename
// a column, never change its type, never make it required, and never reuse a
// removed name: Athena reads Parquet columns by name, so old snapshots must
// stay readable with the newest table definition. Adding a column means a new
// field with an optional tag, a new Version, updated golden files (go test
// ./pkg/schema -update) and the same column in the Glue tables.
//
// # Usage
//
// A WorkOS object maps to a row:
//
//	rows := make([]schema.DirectoryUser, 0, len(page.Data))
//	for _, u := range page.Data {
//		rows = append(rows, schema.FromDirectoryUser(&u, exportedAt))
//	}
//
// The Athena DDL of a table comes from the same structs:
//
//	t, _ := schema.TableByName(schema.TableDirectoryUsers)
//	fmt.Print(schema.AthenaDDL(t, schema.DDLOptions{Database: "dsync", Location: "s3://bucket/exports"}))
package schema
