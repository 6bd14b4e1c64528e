// Package verify checks that a dsync-export snapshot is complete and correct.
//
//	dst, _ := objstore.Open(ctx, "s3://bucket/exports/workos", objstore.Options{})
//	report, err := verify.Verify(ctx, dst, "2026-11-28", verify.Options{})
//	if err != nil { /* storage unreachable: the snapshot was not checked */ }
//	os.Stdout.Write(report.JSONLines())        // one JSON line per check
//
// functions/verify also prints the report's CloudWatch metric SnapshotValid
// (an EMF line, in the namespace EMFNamespace); this package imports no
// Lambda code.
//
// The checks, in order (see the Check… constants):
//
//   - manifest: _manifests/dt=D/manifest.json exists, parses, is for D and
//     for the current schema version, lists every table, its row counts add
//     up, and every file has a key in its table's partition, a size and a
//     SHA-256. Keys are taken from the manifest as they are (they may carry
//     a run id).
//   - previous_snapshot: compared with the latest manifest before D, this
//     snapshot is not empty, and users and memberships did not fall by more
//     than Options.MaxDrop in total or per directory; a directory that
//     vanished without a deleted status is a warning, and the fall deleted
//     directories account for is explained, not a failure (see previous.go).
//   - objects, stray_objects: each table's partition is listed once; every
//     listed file exists with its listed size, and no other object sits there
//     (Athena would read it). The directory_events partitions that the
//     manifest's events record has files in are listed too: its files must
//     be there with their sizes, and no unlisted file of the run may be.
//   - snapshots_row: the snapshots table's row of the run exists and agrees
//     with the manifest: run_id, mode, trigger, demo, exported_at, the
//     tables' row counts, files and bytes.
//   - parquet_footers, schema, row_counts: each file's footer is read through
//     ranged reads; its schema must equal pkg/schema's column for column, and
//     its row count the manifest's.
//   - columns, checksums: every page of every column of every file (the
//     change log's included) is decoded, which checks each page's CRC, and
//     every file's SHA-256 is compared with the manifest's. Both come from one streaming pass that
//     fetches each byte once, in ranged reads of at most 1 MiB (see
//     fileReader); no file is ever held in memory whole.
//   - events: the run's slice of the directory_events change log joins its
//     base snapshot's slice, and its files, decoded in the same pass, hold
//     the record's events, each once and in any order, in the partition of
//     its own date. Every event, quarantined ones included, is after the
//     base's cursor and at or before the slice's, and the slice's cursor is
//     its greatest event (see checkEvents).
//   - unique_ids, references, directory_counts: the id, directory_id,
//     organization_id, group_id and user_id columns, kept from that pass a
//     row group at a time, are decoded again. IDs are unique per table,
//     (group_id, user_id) pairs are unique, every membership references a
//     user and a group of its directory, every user and group a directory of
//     the directories table in the same organization, and the rows of each
//     directory match the manifest's counts.
//   - sample (Options.Sample > 0): random records are re-fetched from WorkOS
//     by ID and compared; see the comment on sampling in sample.go.
//
// A bad snapshot gives a report with Valid false whose errors name the object,
// column or ID at fault; Verify returns an error only when it could not check
// (storage or WorkOS unreachable, cancelled context).
//
// Memory: IDs are held as 64-bit hashes, 16 bytes per user or group and 8 per
// membership, with exact re-checks of the candidate duplicates (see ids.go).
// Per file being read (Options.Concurrency at once) the verifier holds a
// 1 MiB read buffer, the footer and page index, one decoded page per column
// and the id columns of one row group.
package verify
