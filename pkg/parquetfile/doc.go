// Package parquetfile writes the Parquet part files of a snapshot table.
//
// A Writer streams rows of one of pkg/schema's row structs to any
// io.WriteCloser, such as an S3 upload fed through an io.Pipe: ZSTD (or
// SNAPPY) compression, dictionary encoding on the columns tagged dict, page
// statistics and page index, row groups bounded in rows and bytes, and a new
// part file past a size threshold. Its memory is bounded by the open row
// group, not by the number of rows. Each file records the schema version, the
// table and the dsync-export version in its key-value metadata (the Metadata*
// keys), and each finished Part carries its row count, size and SHA-256.
//
// ReadFile and ReadRowGroup read rows back in batches, for the export's delta
// unit and for verify, under one buffer rule and one panic rule (see
// reader.go).
//
// # Usage
//
//	open := func(n int) (io.WriteCloser, error) { return store.Create(ctx, partKey(n), "application/vnd.apache.parquet") }
//	w, err := parquetfile.NewWriter[schema.DirectoryUser](open, parquetfile.Options{})
//	if err != nil { return err }
//	if err := w.Write(rows); err != nil { w.Abort(err); return err }
//	parts, err := w.Close()
package parquetfile
