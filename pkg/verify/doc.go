// Package verify checks that a dsync-export snapshot is complete and correct.
//
//	dst, _ := objstore.Open(ctx, "s3://bucket/exports/workos", objstore.Options{})
//	report, err := verify.Verify(ctx, dst, "2026-11-28", verify.Options{})
//	if err != nil { /* storage unreachable: the snapshot was not checked */ }
//	os.Stdout.Write(report.JSONLines())        // one JSON line per check
//	os.Stdout.Write(report.EMF(time.Now()))    // CloudWatch metric SnapshotValid
//
// The checks, in order (see the Check… constants):
//
//   - manifest: _manifests/dt=D/manifest.json exists, parses, is for D and
//     for the current schema version, lists every table, and its row counts
//     add up.
//   - objects, stray_objects: each table's partition is listed once; every
//     listed file exists with its listed size, and no other object sits there
//     (Athena would read it).
//   - parquet_footers, schema, row_counts: each file's footer is read through
//     ranged reads (never the whole file); its schema must equal pkg/schema's
//     column for column, and its row count the manifest's.
//   - columns, unique_ids, references, directory_counts: only the id,
//     directory_id, organization_id, group_id and user_id columns are read,
//     page by page (1.6% of the bytes of a 1M-user snapshot). IDs are unique
//     per table, (group_id, user_id) pairs are unique, every membership
//     references a user and a group of its directory, every user and group a
//     directory of the directories table in the same organization, and the
//     rows of each directory match the manifest's counts.
//   - sample (Options.Sample > 0): random records are re-fetched from WorkOS
//     by ID and compared; see the comment on sampling in sample.go.
//
// A bad snapshot gives a report with Valid false whose errors name the object,
// column or ID at fault; Verify returns an error only when it could not check
// (storage or WorkOS unreachable, cancelled context).
//
// Memory: IDs are held as 64-bit hashes, 16 bytes per user or group and 8 per
// membership, with exact re-checks of the candidate duplicates (see ids.go).
// Verifying 1M users and 1.5M memberships peaks at about 70 MiB of heap.
package verify
