// Package objstore stores snapshot files in an S3 bucket prefix or a local
// folder, behind one interface, Store. S3 writes stream through the transfer
// manager (a multipart upload once an object passes one part), so a file is
// never fully held in memory; local writes are atomic (temporary file, fsync,
// rename).
//
//	dst, err := objstore.Open(ctx, "s3://my-bucket/dsync", objstore.Options{})
//	obj, err := dst.Create(ctx, "directory_users/dt=2026-01-02/20260102T020000.000Z-1a2b3c-part-00000.parquet", "application/vnd.apache.parquet")
//	if _, err := obj.Write(data); err != nil { obj.CloseWithError(err); return err } // abort: no object left
//	err = obj.Close() // commit
//	files, err := dst.List(ctx, "directory_users/")
//	err = dst.PutIfAbsent(ctx, "_chain/00000042.json", link, "application/json")
//	if errors.Is(err, objstore.ErrExist) { /* another run extended the chain first */ }
//
// Every Create must end with Close or CloseWithError. PutIfAbsent creates a
// small object only if its key is free, atomically (S3: If-None-Match: *; a
// folder: a hard link, which fails if the name exists), so of concurrent
// writers exactly one wins. Errors name the bucket and key and say how to fix
// the problem; test them with errors.Is against ErrNotExist, ErrExist,
// ErrAccessDenied, and ErrNoSuchBucket.
package objstore
