package parquetfile

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"

	"github.com/dsync-export/dsync-export/pkg/schema"
	"github.com/dsync-export/dsync-export/pkg/version"
)

// Key-value metadata keys written to every file.
const (
	MetadataSchemaVersion = "dsync_export.schema_version" // schema.Version
	MetadataVersion       = "dsync_export.version"        // version.Version of the writer
	MetadataTable         = "dsync_export.table"          // table name, when T is a row type of pkg/schema
)

// Writer defaults.
const (
	DefaultCompression        = "zstd"
	DefaultMaxRowsPerRowGroup = 100_000
	DefaultMaxRowGroupBytes   = 4 << 20
	DefaultMaxFileBytes       = 256 << 20
	DefaultPageBufferSize     = 256 << 10
)

const (
	// writeBatch is the number of rows handed to parquet-go between two size
	// checks: it bounds how far a row group or a part overshoots its limit.
	writeBatch = 256
	// columnIndexSizeLimit is the length to which min/max values are cut in
	// the page index. parquet-go's default (16) would cut every ID to its
	// prefix ("directory_user_0"), making the index useless for "id = …".
	columnIndexSizeLimit = 64
	// dictionaryMaxBytes caps a column's dictionary per row group; past it the
	// column falls back to PLAIN, so a dict column with unexpectedly many
	// distinct values cannot hold unbounded memory.
	dictionaryMaxBytes = 1 << 20
)

// Options configures a Writer. The zero value selects the defaults.
type Options struct {
	// Compression is "zstd" (default) or "snappy".
	Compression string
	// MaxRowsPerRowGroup ends a row group after this many rows
	// (default DefaultMaxRowsPerRowGroup).
	MaxRowsPerRowGroup int64
	// MaxRowGroupBytes ends a row group when its buffered size (compressed
	// pages plus values not yet paged) passes this (default 4 MiB, about
	// 2 MiB compressed or 15k users). The open row group is held in memory,
	// so this is the main bound on the writer's memory.
	MaxRowGroupBytes int64
	// MaxFileBytes ends the current part and starts a new one when the
	// file passes this size (default 256 MiB).
	MaxFileBytes int64
	// PageBufferSize is the uncompressed size at which a column page is cut
	// (default 256 KiB). Smaller pages make the page index finer.
	PageBufferSize int
	// Metadata is extra key-value metadata for every file, such as the
	// snapshot date. Keys starting with "dsync_export." are reserved.
	Metadata map[string]string
}

func (o Options) withDefaults() (Options, parquet.WriterOption, error) {
	var codec compress.Codec
	switch strings.ToLower(o.Compression) {
	case "", "zstd":
		o.Compression, codec = "zstd", new(zstdCodec)
	case "snappy":
		o.Compression, codec = "snappy", &parquet.Snappy
	default:
		return o, nil, fmt.Errorf("parquetfile: unknown compression %q: use \"zstd\" or \"snappy\"", o.Compression)
	}
	for _, v := range []struct {
		name string
		val  int64
	}{
		{"MaxRowsPerRowGroup", o.MaxRowsPerRowGroup},
		{"MaxRowGroupBytes", o.MaxRowGroupBytes},
		{"MaxFileBytes", o.MaxFileBytes},
		{"PageBufferSize", int64(o.PageBufferSize)},
	} {
		if v.val < 0 {
			return o, nil, fmt.Errorf("parquetfile: %s is %d: it must be positive, or 0 for the default", v.name, v.val)
		}
	}
	for k := range o.Metadata {
		if strings.HasPrefix(k, "dsync_export.") {
			return o, nil, fmt.Errorf("parquetfile: metadata key %q is reserved: pick a key without the dsync_export. prefix", k)
		}
	}
	o.MaxRowsPerRowGroup = cmp.Or(o.MaxRowsPerRowGroup, DefaultMaxRowsPerRowGroup)
	o.MaxRowGroupBytes = cmp.Or(o.MaxRowGroupBytes, DefaultMaxRowGroupBytes)
	o.MaxFileBytes = cmp.Or(o.MaxFileBytes, DefaultMaxFileBytes)
	o.PageBufferSize = cmp.Or(o.PageBufferSize, DefaultPageBufferSize)
	o.Metadata = maps.Clone(o.Metadata)
	return o, parquet.Compression(codec), nil
}

// PartOpener opens the destination of part n (0-based) of a table's snapshot.
// Closing the returned WriteCloser must finish and commit the part (for S3 it
// waits for the multipart upload); its error is returned by the Writer. If the
// WriteCloser also has a CloseWithError(error) error method (as *io.PipeWriter
// has), Abort calls it to discard the part instead of committing it.
type PartOpener func(part int) (io.WriteCloser, error)

// Part describes a finished part file.
type Part struct {
	// Index is the part number passed to the PartOpener.
	Index int
	// Rows is the number of rows in the part.
	Rows int64
	// Bytes is the size of the part file.
	Bytes int64
	// SHA256 is the hex SHA-256 of the part file's bytes.
	SHA256 string
}

// Writer streams rows of type T (one of pkg/schema's row structs) into
// Parquet part files. It bounds its memory by ending row groups at
// MaxRowsPerRowGroup rows or MaxRowGroupBytes, and starts a new part past
// MaxFileBytes. A Writer is not safe for concurrent use.
type Writer[T any] struct {
	open       PartOpener
	opts       Options
	pqOpts     []parquet.WriterOption
	pw         *parquet.GenericWriter[T]
	sink       *partSink
	partRows   int64
	groupRows  int64
	groupStart int64
	rows       int64
	parts      []Part
	err        error
	closed     bool
}

// NewWriter returns a Writer that writes parts opened by open. No part is
// opened before the first row (or Close, for an empty snapshot).
func NewWriter[T any](open PartOpener, opts Options) (*Writer[T], error) {
	if open == nil {
		return nil, errors.New("parquetfile: NewWriter needs a PartOpener: pass a function that opens part n")
	}
	opts, codec, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	meta := map[string]string{
		MetadataSchemaVersion: schema.Version,
		MetadataVersion:       version.Version,
	}
	if t, ok := schema.TableOf[T](); ok {
		meta[MetadataTable] = t.Name
	}
	maps.Copy(meta, opts.Metadata)
	pqOpts := []parquet.WriterOption{
		codec,
		parquet.PageBufferSize(opts.PageBufferSize),
		parquet.DataPageStatistics(true),
		parquet.ColumnIndexSizeLimit(func([]string) int { return columnIndexSizeLimit }),
		parquet.DictionaryMaxBytes(dictionaryMaxBytes),
	}
	for _, k := range slices.Sorted(maps.Keys(meta)) {
		pqOpts = append(pqOpts, parquet.KeyValueMetadata(k, meta[k]))
	}
	return &Writer[T]{open: open, opts: opts, pqOpts: pqOpts}, nil
}

// Write appends rows to the snapshot. It may end the current row group, and
// end the current part and open the next one. The rows are copied; the slice
// may be reused after Write returns. After an error the Writer is unusable:
// call Abort (or Close, which aborts the open part and returns the error).
func (w *Writer[T]) Write(rows []T) error {
	if err := w.usable(); err != nil {
		return err
	}
	for len(rows) > 0 {
		if w.pw == nil {
			if err := w.openPart(); err != nil {
				return w.fail(err)
			}
		}
		n := min(len(rows), writeBatch, int(w.opts.MaxRowsPerRowGroup-w.groupRows))
		if _, err := w.pw.Write(rows[:n]); err != nil {
			return w.fail(fmt.Errorf("parquetfile: writing part %d: %w", len(w.parts), err))
		}
		rows = rows[n:]
		w.rows += int64(n)
		w.partRows += int64(n)
		w.groupRows += int64(n)

		size := w.pw.Size()
		switch {
		case size >= w.opts.MaxFileBytes:
			if err := w.closePart(); err != nil {
				return w.fail(err)
			}
		case w.groupRows >= w.opts.MaxRowsPerRowGroup || size-w.groupStart >= w.opts.MaxRowGroupBytes:
			if err := w.pw.Flush(); err != nil {
				return w.fail(fmt.Errorf("parquetfile: flushing a row group of part %d: %w", len(w.parts), err))
			}
			w.groupRows, w.groupStart = 0, w.pw.Size()
		}
	}
	return nil
}

// Rows returns the number of rows written so far, over all parts.
func (w *Writer[T]) Rows() int64 { return w.rows }

// Close finishes the current part (writes its footer and closes its
// destination) and returns every part written. A Writer that got no rows still
// writes one valid empty part, so every table has a file in every snapshot.
// If an earlier call failed, Close aborts the open part and returns the error.
func (w *Writer[T]) Close() ([]Part, error) {
	if w.closed {
		if w.err != nil {
			return nil, w.err
		}
		return nil, errors.New("parquetfile: writer already closed")
	}
	if w.err != nil {
		w.abortPart(w.err)
		w.closed = true
		return nil, w.err
	}
	if w.pw == nil && len(w.parts) == 0 {
		if err := w.openPart(); err != nil {
			w.closed = true
			w.err = err
			return nil, err
		}
	}
	if w.pw != nil {
		if err := w.closePart(); err != nil {
			w.closed = true
			w.err = err
			return nil, err
		}
	}
	w.closed = true
	return slices.Clone(w.parts), nil
}

// Abort stops the Writer without finishing the open part: the part's
// destination is closed with CloseWithError(err) when it has that method, and
// with Close otherwise (the truncated part then lacks its footer). Parts
// finished earlier stay as they are; the caller decides whether to delete them.
// Later calls to Write and Close return err. Abort is safe to call more than
// once and after Close.
func (w *Writer[T]) Abort(err error) {
	if w.closed {
		return
	}
	if err == nil {
		err = errors.New("parquetfile: writer aborted")
	}
	w.abortPart(err)
	w.err = err
	w.closed = true
}

func (w *Writer[T]) usable() error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return errors.New("parquetfile: write after Close: create a new Writer")
	}
	return nil
}

func (w *Writer[T]) fail(err error) error {
	w.err = err
	return err
}

func (w *Writer[T]) openPart() error {
	n := len(w.parts)
	dst, err := w.open(n)
	if err != nil {
		return fmt.Errorf("parquetfile: opening part %d: %w", n, err)
	}
	if dst == nil {
		return fmt.Errorf("parquetfile: opening part %d: the PartOpener returned a nil writer", n)
	}
	w.sink = &partSink{dst: dst, hash: sha256.New()}
	w.pw = parquet.NewGenericWriter[T](w.sink, w.pqOpts...)
	w.partRows, w.groupRows, w.groupStart = 0, 0, 0
	return nil
}

func (w *Writer[T]) closePart() error {
	n := len(w.parts)
	pw, sink := w.pw, w.sink
	w.pw, w.sink = nil, nil
	if err := pw.Close(); err != nil {
		err = fmt.Errorf("parquetfile: finishing part %d: %w", n, err)
		abort(sink.dst, err)
		return err
	}
	if sink.err != nil { // already reported through pw.Close, but be safe
		abort(sink.dst, sink.err)
		return fmt.Errorf("parquetfile: writing part %d: %w", n, sink.err)
	}
	if err := sink.dst.Close(); err != nil {
		return fmt.Errorf("parquetfile: committing part %d: %w", n, err)
	}
	w.parts = append(w.parts, Part{
		Index:  n,
		Rows:   w.partRows,
		Bytes:  sink.n,
		SHA256: hex.EncodeToString(sink.hash.Sum(nil)),
	})
	return nil
}

func (w *Writer[T]) abortPart(err error) {
	if w.sink != nil {
		abort(w.sink.dst, err)
	}
	w.pw, w.sink = nil, nil
}

// abort closes dst with err when it supports CloseWithError, else with Close.
func abort(dst io.WriteCloser, err error) {
	if c, ok := dst.(interface{ CloseWithError(error) error }); ok {
		_ = c.CloseWithError(err)
		return
	}
	_ = dst.Close()
}

// partSink counts and hashes the bytes of a part on their way to dst.
type partSink struct {
	dst  io.WriteCloser
	hash hash.Hash
	n    int64
	err  error
}

func (s *partSink) Write(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	n, err := s.dst.Write(p)
	s.hash.Write(p[:n])
	s.n += int64(n)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	s.err = err
	return n, err
}
