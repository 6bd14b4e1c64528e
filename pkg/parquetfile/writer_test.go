package parquetfile

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/deprecated"
	"github.com/parquet-go/parquet-go/format"

	"github.com/dsync-export/dsync-export/pkg/schema"
	"github.com/dsync-export/dsync-export/pkg/version"
)

// roundTrip writes rows with a Writer, reads them back with parquet-go and
// compares; it returns the single part file.
func roundTrip[T any](t *testing.T, rows []T) []byte {
	t.Helper()
	store, parts := writeAll(t, Options{Metadata: map[string]string{"snapshot_date": "2026-07-01"}}, rows)
	if len(parts) != 1 {
		t.Fatalf("got %d parts, want 1", len(parts))
	}
	data := store.parts[0].Bytes()
	got := readRows[T](t, data)
	if diff := cmp.Diff(rows, got); diff != "" {
		t.Errorf("read back (-written +read):\n%s", diff)
	}
	return data
}

func TestRoundTrip(t *testing.T) {
	t.Run(TableDirectories, func(t *testing.T) { roundTrip(t, fixtureDirectories(t)) })
	t.Run(TableDirectoryUsers, func(t *testing.T) { roundTrip(t, fixtureUsers(t)) })
	t.Run(TableDirectoryGroups, func(t *testing.T) { roundTrip(t, fixtureGroups(t)) })
	t.Run(TableMemberships, func(t *testing.T) { roundTrip(t, fixtureMemberships(t)) })
}

func TestFileMetadata(t *testing.T) {
	data := roundTrip(t, fixtureUsers(t))
	f := openFile(t, data)
	for key, want := range map[string]string{
		MetadataSchemaVersion: schema.Version,
		MetadataVersion:       version.Version,
		MetadataTable:         TableDirectoryUsers,
		"snapshot_date":       "2026-07-01",
	} {
		if got, ok := f.Lookup(key); !ok || got != want {
			t.Errorf("metadata %s = %q, %v; want %q", key, got, ok, want)
		}
	}
	// Test binaries carry no module versions, so only the library name
	// shows here; release binaries add " version 0.32.0(build )".
	if cb := f.Metadata().CreatedBy; !strings.HasPrefix(cb, "github.com/parquet-go/parquet-go") {
		t.Errorf("created_by = %q, want the writing library", cb)
	}

	// Legacy converted types too, for readers that predate logical types.
	for _, e := range f.Metadata().Schema[1:] {
		typ, _ := e.Type.Get()
		conv, hasConv := e.ConvertedType.Get()
		switch {
		case e.Type.Valid && typ == format.ByteArray && (!hasConv || conv != deprecated.UTF8):
			t.Errorf("%s: BYTE_ARRAY without converted type UTF8", e.Name)
		case e.Type.Valid && typ == format.Int64 && strings.HasSuffix(e.Name, "_at") && (!hasConv || conv != deprecated.TimestampMillis):
			t.Errorf("%s: timestamp without converted type TIMESTAMP_MILLIS", e.Name)
		case e.Name == "roles" && (!hasConv || conv != deprecated.List):
			t.Errorf("%s: list without converted type LIST", e.Name)
		}
	}

	// Compression, dictionary encoding and statistics, per column chunk.
	dict := map[string]bool{"directory_id": true, "organization_id": true, "state": true, "role_slug": true}
	for _, rg := range f.Metadata().RowGroups {
		for _, cc := range rg.Columns {
			md := cc.MetaData
			name := strings.Join(md.PathInSchema, ".")
			if md.Codec != format.Zstd {
				t.Errorf("%s: codec %v, want ZSTD", name, md.Codec)
			}
			hasDict := false
			for _, e := range md.Encoding {
				hasDict = hasDict || e == format.RLEDictionary
			}
			if hasDict != dict[name] {
				t.Errorf("%s: dictionary encoding = %v, want %v (encodings %v)", name, hasDict, dict[name], md.Encoding)
			}
			if md.Statistics.NullCount < 0 || (md.Statistics.MinValue == nil && md.Statistics.NullCount != rg.NumRows) {
				t.Errorf("%s: no min/max statistics: %+v", name, md.Statistics)
			}
			if cc.ColumnIndexOffset == 0 || cc.OffsetIndexOffset == 0 {
				t.Errorf("%s: no page index", name)
			}
		}
	}
}

func TestSnappy(t *testing.T) {
	store, _ := writeAll(t, Options{Compression: "SNAPPY"}, fixtureGroups(t))
	f := openFile(t, store.parts[0].Bytes())
	for _, cc := range f.Metadata().RowGroups[0].Columns {
		if cc.MetaData.Codec != format.Snappy {
			t.Errorf("%v: codec %v, want SNAPPY", cc.MetaData.PathInSchema, cc.MetaData.Codec)
		}
	}
	if got := readRows[DirectoryGroup](t, store.parts[0].Bytes()); len(got) != 3 {
		t.Errorf("read %d rows, want 3", len(got))
	}
}

func TestEmptySnapshot(t *testing.T) {
	store, parts := writeAll[DirectoryGroupMembership](t, Options{})
	if len(parts) != 1 || parts[0].Rows != 0 || parts[0].Index != 0 {
		t.Fatalf("parts = %+v, want one empty part 0", parts)
	}
	data := store.parts[0].Bytes()
	f := openFile(t, data)
	if f.NumRows() != 0 {
		t.Errorf("NumRows = %d", f.NumRows())
	}
	if v, _ := f.Lookup(MetadataSchemaVersion); v != schema.Version {
		t.Errorf("empty file lacks the schema version metadata")
	}
	tb, _ := schema.TableByName(TableMemberships)
	if !parquet.EqualNodes(f.Schema(), tb.Schema) {
		t.Errorf("empty file schema\n%v\nwant\n%v", f.Schema(), tb.Schema)
	}
}

// manyUsers returns n synthetic users with ascending IDs.
func manyUsers(n int) []DirectoryUser {
	rows := make([]DirectoryUser, n)
	created := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range rows {
		rows[i] = DirectoryUser{
			ID:               fmt.Sprintf("directory_user_%026d", i),
			DirectoryID:      fmt.Sprintf("directory_%026d", i%7),
			OrganizationID:   fmt.Sprintf("org_%026d", i%7),
			IdpID:            fmt.Sprint(i * 7919 % 100_003),
			Email:            sp(fmt.Sprintf("user%x@example.com", i*2654435761%(1<<32))),
			State:            "active",
			CustomAttributes: sp(fmt.Sprintf(`{"department":"dept-%d","employee_number":%d}`, i%13, i)),
			CreatedAt:        created.Add(time.Duration(i) * time.Minute),
			UpdatedAt:        created.Add(time.Duration(i)*time.Minute + 1),
			ExportedAt:       exportedAtMillis,
		}
		if i%5 == 0 {
			rows[i].Email = nil
			rows[i].Roles = []string{"member", fmt.Sprint("r", i%3)}
		}
		rows[i].UpdatedAt = rows[i].UpdatedAt.Truncate(time.Millisecond)
	}
	return rows
}

func TestRowGroupBounds(t *testing.T) {
	rows := manyUsers(2_345)
	t.Run("rows", func(t *testing.T) {
		store, parts := writeAll(t, Options{MaxRowsPerRowGroup: 500}, rows[:1000], rows[1000:])
		f := openFile(t, store.parts[0].Bytes())
		var sizes []int64
		for _, rg := range f.RowGroups() {
			sizes = append(sizes, rg.NumRows())
		}
		if diff := cmp.Diff([]int64{500, 500, 500, 500, 345}, sizes); diff != "" {
			t.Errorf("row group sizes (-want +got):\n%s", diff)
		}
		if parts[0].Rows != int64(len(rows)) {
			t.Errorf("part rows = %d", parts[0].Rows)
		}
		if diff := cmp.Diff(rows, readRows[DirectoryUser](t, store.parts[0].Bytes())); diff != "" {
			t.Errorf("read back (-want +got):\n%s", diff)
		}
	})
	t.Run("bytes", func(t *testing.T) {
		const limit = 32 << 10
		store, _ := writeAll(t, Options{MaxRowGroupBytes: limit, PageBufferSize: 8 << 10}, rows)
		f := openFile(t, store.parts[0].Bytes())
		if n := len(f.RowGroups()); n < 3 {
			t.Fatalf("%d row groups, want several of at most ~%d bytes", n, limit)
		}
		for i, rg := range f.Metadata().RowGroups {
			// The check runs every writeBatch rows, so a group may pass
			// the limit by one batch.
			if rg.TotalCompressedSize > 2*limit {
				t.Errorf("row group %d: %d bytes, limit %d", i, rg.TotalCompressedSize, limit)
			}
		}
		if diff := cmp.Diff(rows, readRows[DirectoryUser](t, store.parts[0].Bytes())); diff != "" {
			t.Errorf("read back (-want +got):\n%s", diff)
		}
	})
}

func TestRollover(t *testing.T) {
	rows := manyUsers(5_000)
	const limit = 64 << 10
	store := &memStore{t: t}
	w, err := NewWriter[DirectoryUser](store.open, Options{MaxFileBytes: limit, MaxRowGroupBytes: 16 << 10, PageBufferSize: 4 << 10})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(rows); i += 100 {
		if err := w.Write(rows[i : i+100]); err != nil {
			t.Fatal(err)
		}
	}
	if w.Rows() != int64(len(rows)) {
		t.Errorf("Rows() = %d", w.Rows())
	}
	parts, err := w.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) < 3 {
		t.Fatalf("%d parts, want a rollover at %d bytes", len(parts), limit)
	}
	var all []DirectoryUser
	for i, p := range parts {
		data := store.parts[i].Bytes()
		sum := sha256.Sum256(data)
		want := Part{Index: i, Rows: p.Rows, Bytes: int64(len(data)), SHA256: hex.EncodeToString(sum[:])}
		if diff := cmp.Diff(want, p); diff != "" {
			t.Errorf("part %d (-want +got):\n%s", i, diff)
		}
		if p.Bytes > 2*limit {
			t.Errorf("part %d is %d bytes, limit %d", i, p.Bytes, limit)
		}
		got := readRows[DirectoryUser](t, data)
		if int64(len(got)) != p.Rows {
			t.Errorf("part %d has %d rows, Part says %d", i, len(got), p.Rows)
		}
		if v, _ := openFile(t, data).Lookup(MetadataSchemaVersion); v != schema.Version {
			t.Errorf("part %d lacks metadata", i)
		}
		all = append(all, got...)
	}
	if diff := cmp.Diff(rows, all); diff != "" {
		t.Errorf("rows over all parts (-want +got):\n%s", diff)
	}
	if _, err := w.Close(); err == nil {
		t.Error("second Close succeeded")
	}
	if err := w.Write(rows[:1]); err == nil {
		t.Error("Write after Close succeeded")
	}
}

// TestPipe streams a part through io.Pipe, the way the export feeds an S3
// multipart upload, and reads it on the other side.
func TestPipe(t *testing.T) {
	rows := manyUsers(3_000)
	pr, pw := io.Pipe()
	done := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(pr)
		done <- b
	}()
	w, err := NewWriter[DirectoryUser](func(part int) (io.WriteCloser, error) {
		if part > 0 {
			return nil, errors.New("unexpected second part")
		}
		return pw, nil
	}, Options{MaxRowGroupBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rows); err != nil {
		t.Fatal(err)
	}
	parts, err := w.Close()
	if err != nil {
		t.Fatal(err)
	}
	data := <-done
	if int64(len(data)) != parts[0].Bytes {
		t.Errorf("reader got %d bytes, part says %d", len(data), parts[0].Bytes)
	}
	if diff := cmp.Diff(rows, readRows[DirectoryUser](t, data)); diff != "" {
		t.Errorf("read back (-want +got):\n%s", diff)
	}
}

func TestAbort(t *testing.T) {
	rows := manyUsers(10)
	t.Run("CloseWithError", func(t *testing.T) {
		store := &memStore{t: t}
		w, _ := NewWriter[DirectoryUser](store.open, Options{})
		if err := w.Write(rows); err != nil {
			t.Fatal(err)
		}
		cause := errors.New("workos: 500")
		w.Abort(cause)
		w.Abort(errors.New("again")) // no effect
		p := store.parts[0]
		if p.abortedErr != cause || p.closed != 0 {
			t.Errorf("part aborted with %v and closed %d times; want CloseWithError(cause) only", p.abortedErr, p.closed)
		}
		if err := w.Write(rows); !errors.Is(err, cause) {
			t.Errorf("Write after Abort = %v", err)
		}
		if _, err := w.Close(); !errors.Is(err, cause) {
			t.Errorf("Close after Abort = %v", err)
		}
	})
	t.Run("plain closer", func(t *testing.T) {
		var closed int
		w, _ := NewWriter[DirectoryUser](func(int) (io.WriteCloser, error) {
			return closerFunc{Writer: io.Discard, close: func() error { closed++; return nil }}, nil
		}, Options{})
		if err := w.Write(rows); err != nil {
			t.Fatal(err)
		}
		w.Abort(nil)
		if closed != 1 {
			t.Errorf("destination closed %d times, want 1", closed)
		}
		if _, err := w.Close(); err == nil || !strings.HasPrefix(err.Error(), "parquetfile: ") {
			t.Errorf("Close after Abort(nil) = %v", err)
		}
	})
	t.Run("before any row", func(t *testing.T) {
		store := &memStore{t: t}
		w, _ := NewWriter[DirectoryUser](store.open, Options{})
		w.Abort(errors.New("stop"))
		if len(store.parts) != 0 {
			t.Errorf("Abort opened a part")
		}
	})
	t.Run("after Close", func(t *testing.T) {
		store := &memStore{t: t}
		w, _ := NewWriter[DirectoryUser](store.open, Options{})
		if err := w.Write(rows); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Close(); err != nil {
			t.Fatal(err)
		}
		w.Abort(errors.New("too late"))
		if p := store.parts[0]; p.abortedErr != nil || p.closed != 1 {
			t.Errorf("Abort after Close touched the committed part: aborted %v, closed %d", p.abortedErr, p.closed)
		}
	})
}

type closerFunc struct {
	io.Writer
	close func() error
}

func (c closerFunc) Close() error { return c.close() }

func TestWriterErrors(t *testing.T) {
	rows := manyUsers(3000)
	t.Run("open", func(t *testing.T) {
		w, _ := NewWriter[DirectoryUser](func(n int) (io.WriteCloser, error) { return nil, errors.New("s3: access denied") }, Options{})
		err := w.Write(rows)
		if err == nil || err.Error() != "parquetfile: opening part 0: s3: access denied" {
			t.Errorf("Write = %v", err)
		}
		if _, err := w.Close(); err == nil {
			t.Error("Close after a failed open succeeded")
		}
	})
	t.Run("write", func(t *testing.T) {
		store := &memStore{t: t}
		w, _ := NewWriter[DirectoryUser](store.open, Options{MaxRowsPerRowGroup: 100})
		if err := w.Write(rows[:1]); err != nil {
			t.Fatal(err)
		}
		broken := errors.New("connection reset")
		store.parts[0].writeErr = broken
		// The error surfaces when a flushed row group leaves the write
		// buffer: in Write, or at the latest in Close.
		err := w.Write(rows)
		if err != nil {
			if !errors.Is(err, broken) {
				t.Fatalf("Write = %v, want %v", err, broken)
			}
			if err := w.Write(rows); !errors.Is(err, broken) {
				t.Errorf("Write after an error = %v, want %v", err, broken)
			}
		}
		if _, err := w.Close(); !errors.Is(err, broken) {
			t.Errorf("Close = %v, want %v", err, broken)
		}
		if p := store.parts[0]; !errors.Is(p.abortedErr, broken) || p.closed != 0 {
			t.Errorf("broken part: aborted with %v, closed %d times; want aborted, not committed", p.abortedErr, p.closed)
		}
	})
	t.Run("commit", func(t *testing.T) {
		store := &memStore{t: t}
		w, _ := NewWriter[DirectoryUser](func(n int) (io.WriteCloser, error) {
			wc, _ := store.open(n)
			wc.(*memPart).closeErr = errors.New("upload failed")
			return wc, nil
		}, Options{})
		if err := w.Write(rows); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Close(); err == nil || err.Error() != "parquetfile: committing part 0: upload failed" {
			t.Errorf("Close = %v", err)
		}
	})
	t.Run("options", func(t *testing.T) {
		open := (&memStore{t: t}).open
		for _, o := range []Options{
			{Compression: "gzip"},
			{MaxRowsPerRowGroup: -1},
			{MaxRowGroupBytes: -1},
			{MaxFileBytes: -1},
			{PageBufferSize: -1},
			{Metadata: map[string]string{MetadataSchemaVersion: "2"}},
		} {
			if _, err := NewWriter[DirectoryUser](open, o); err == nil || !strings.HasPrefix(err.Error(), "parquetfile: ") {
				t.Errorf("NewWriter(%+v) = %v, want a parquetfile: error", o, err)
			}
		}
		if _, err := NewWriter[DirectoryUser](nil, Options{}); err == nil {
			t.Error("NewWriter(nil opener) succeeded")
		}
	})
}

func TestWriteReusesNoInput(t *testing.T) {
	rows := manyUsers(3)
	want := manyUsers(3)
	store := &memStore{t: t}
	w, _ := NewWriter[DirectoryUser](store.open, Options{})
	if err := w.Write(rows); err != nil {
		t.Fatal(err)
	}
	for i := range rows { // the caller reuses its batch
		rows[i].ID, *rows[i].CustomAttributes = "overwritten", "{}"
	}
	if _, err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, readRows[DirectoryUser](t, store.parts[0].Bytes())); diff != "" {
		t.Errorf("rows changed after Write (-want +got):\n%s", diff)
	}
}

// TestDictionaryFallback writes a dict column with more distinct values than
// the dictionary cap, so the writer falls back to PLAIN mid row group, and
// checks that both readers still see every value.
func TestDictionaryFallback(t *testing.T) {
	rows := make([]DirectoryGroupMembership, 40_000)
	for i := range rows {
		rows[i] = DirectoryGroupMembership{
			DirectoryID:    "directory_01HX",
			OrganizationID: "org_01HX",
			GroupID:        fmt.Sprintf("directory_group_%026d", i), // ~1.7 MB of distinct values
			UserID:         fmt.Sprintf("directory_user_%026d", i%977),
			ExportedAt:     exportedAtMillis,
		}
	}
	opts := Options{MaxRowGroupBytes: 64 << 20, PageBufferSize: 16 << 10}
	store, _ := writeAll(t, opts, rows)
	data := store.parts[0].Bytes()
	f := openFile(t, data)
	if n := len(f.RowGroups()); n != 1 {
		t.Fatalf("%d row groups, want 1 so the dictionary overflows", n)
	}
	col, _ := f.Schema().Lookup("group_id")
	stats := f.Metadata().RowGroups[0].Columns[col.ColumnIndex].MetaData.EncodingStats
	var dictPages, plainPages int32
	for _, s := range stats {
		switch {
		case s.PageType == format.DataPageV2 && s.Encoding == format.RLEDictionary:
			dictPages += s.Count
		case s.PageType == format.DataPageV2 && s.Encoding == format.Plain:
			plainPages += s.Count
		}
	}
	if dictPages == 0 || plainPages == 0 {
		t.Errorf("group_id pages: %d dictionary, %d plain; want both (a fallback): %+v", dictPages, plainPages, stats)
	}
	if diff := cmp.Diff(rows, readRows[DirectoryGroupMembership](t, data)); diff != "" {
		t.Errorf("parquet-go read back (-want +got):\n%s", diff)
	}
	arrowCheck(t, TableMemberships, rows, opts)
}

// TestSnapshotsTableRoundTrip writes a snapshots-table row: the file names
// its table in its metadata, and the row reads back equal.
func TestSnapshotsTableRoundTrip(t *testing.T) {
	at := time.Date(2026, 12, 6, 20, 25, 30, 123e6, time.UTC)
	rows := []schema.Snapshot{{
		RunID: "20261206T202530.123Z-1a2b3c", ExportedAt: at, CommittedAt: at.Add(95 * time.Second),
		Mode: schema.SnapshotModeFull, Trigger: "scheduler", Demo: true,
		Directories: 3, DirectoryUsers: 1200, Groups: 40, Memberships: 5000, Files: 4, Bytes: 123456,
	}}
	data := roundTrip(t, rows)
	f := openFile(t, data)
	if v, _ := f.Lookup(MetadataTable); v != schema.TableSnapshots {
		t.Errorf("file metadata %s = %q, want %q", MetadataTable, v, schema.TableSnapshots)
	}
	got, err := parquet.Read[schema.Snapshot](bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(rows, got); d != "" {
		t.Errorf("round trip (-want +got):\n%s", d)
	}
}
