// Package schema defines the Parquet snapshot tables of dsync-export, writes
// them, and generates their Athena definitions from the same row structs.
//
// There are four tables, one row struct each: directories (Directory),
// directory_users (DirectoryUser), directory_groups (DirectoryGroup) and
// directory_group_memberships (DirectoryGroupMembership). Files live under
// <prefix>/<table>/dt=<yyyy-MM-dd>/; dt is a Hive partition column in the
// path, never in the files. COLUMNS.md documents every column. Tables
// returns these four data tables.
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
// emails are compact JSON text, for Athena's json_extract.
//
// The Writer streams rows to any io.Writer (such as an S3 multipart upload):
// ZSTD (or SNAPPY) compression, dictionary encoding on low-cardinality
// columns, page statistics and page index, row groups bounded in rows and
// bytes, and a new part file past a size threshold. Each file records the
// schema version and the dsync-export version in its key-value metadata.
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
//	w, err := schema.NewWriter[schema.DirectoryUser](openPart, schema.WriterOptions{})
//	if err != nil { return err }
//	for _, u := range page.Data {
//		rows = append(rows, schema.FromDirectoryUser(&u, exportedAt))
//	}
//	if err := w.Write(rows); err != nil { w.Abort(err); return err }
//	parts, err := w.Close()
//
// The Athena DDL of a table comes from the same structs:
//
//	t, _ := schema.TableByName(schema.TableDirectoryUsers)
//	fmt.Print(schema.AthenaDDL(t, schema.DDLOptions{Database: "dsync", Location: "s3://bucket/exports"}))
package schema
