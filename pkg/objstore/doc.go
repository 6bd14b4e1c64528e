// Package objstore stores snapshot files in an S3 bucket prefix or a local
// folder, behind one interface, Store. S3 writes stream through the transfer
// manager (a multipart upload once an object passes one part), so a file is
// never fully held in memory; local writes are atomic (temporary file, fsync,
// rename). PutIfAbsent is a conditional create, for write-once keys and
// leases.
//
//	dst, err := objstore.Open(ctx, "s3://my-bucket/dsync", objstore.Options{})
//	obj, err := dst.Create(ctx, "directory_users/dt=2026-01-02/part-0.parquet", "application/vnd.apache.parquet")
//	if _, err := obj.Write(data); err != nil { obj.CloseWithError(err); return err } // abort: no object left
//	err = obj.Close() // commit
//	files, err := dst.List(ctx, "directory_users/")
//	err = dst.PutIfAbsent(ctx, "lease.json", body, "application/json") // errors.Is(err, objstore.ErrExists) if taken
//
// Every Create must end with Close or CloseWithError. Errors name the
// bucket and key and say how to fix the problem; test them with errors.Is
// against ErrNotExist, ErrAccessDenied, ErrNoSuchBucket and ErrExists.
package objstore
