package parquetfile

// Athena engine 3 (Trino) answers "WHERE id = '…'" through the row group
// statistics and the page index (ColumnIndex min/max per page, OffsetIndex
// page locations). A broken page index fails only those queries, so these
// tests look a value up the way Trino does, with both parquet-go and arrow-go,
// in a file of several row groups of many pages each.

import (
	"bytes"
	"fmt"
	"slices"
	"testing"

	pq "github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"
)

func TestPageIndexEqualityLookup(t *testing.T) {
	rows := manyUsers(6_000) // IDs ascending, as WorkOS lists them; emails in random order
	store, _ := writeAll(t, Options{MaxRowsPerRowGroup: 2_000, PageBufferSize: 4 << 10}, rows)
	data := store.parts[0].Bytes()
	f := openFile(t, data)
	if n := len(f.RowGroups()); n != 3 {
		t.Fatalf("%d row groups, want 3", n)
	}
	ar, err := file.NewParquetReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	defer ar.Close()

	for _, column := range []string{"id", "email", "idp_id"} {
		col, ok := f.Schema().Lookup(column)
		if !ok {
			t.Fatal(column)
		}
		ci := col.ColumnIndex
		for i, rg := range f.RowGroups() {
			idx, err := rg.ColumnChunks()[ci].ColumnIndex()
			if err != nil {
				t.Fatalf("%s: row group %d: %v", column, i, err)
			}
			if idx.NumPages() < 3 {
				t.Fatalf("%s: row group %d has %d pages, want many", column, i, idx.NumPages())
			}
		}
		t.Run(column, func(t *testing.T) {
			checkOffsetIndex(t, data, f, ci)
			var targets []int
			for _, r := range []int{0, 1, 1_999, 2_000, 2_001, 3_333, 4_000, 5_998, 5_999} {
				if v := columnValue(rows[r], column); v != nil {
					targets = append(targets, r)
				}
			}
			for r := 5; r < len(rows); r += 97 {
				if columnValue(rows[r], column) != nil {
					targets = append(targets, r)
				}
			}
			for _, r := range targets {
				target := *columnValue(rows[r], column)
				var want []int64
				for j := range rows { // idp_id values repeat
					if v := columnValue(rows[j], column); v != nil && *v == target {
						want = append(want, int64(j))
					}
				}
				got, pagesRead := lookupParquetGo(t, f, ci, target)
				if !slices.Equal(got, want) {
					t.Errorf("parquet-go: %s = %q found rows %v, want %v", column, target, got, want)
				}
				// IDs are sorted and longer than parquet-go's default
				// 16-byte page bounds: only full-length bounds select
				// a single page.
				if column == "id" && pagesRead != 1 {
					t.Errorf("%s = %q: the page index selected %d pages, want 1", column, target, pagesRead)
				}
				if got := lookupArrow(t, ar, ci, target); !slices.Equal(got, want) {
					t.Errorf("arrow-go: %s = %q found rows %v, want %v", column, target, got, want)
				}
			}
			for _, missing := range []string{"", "directory_user_00000000000000000000000000x", "zzz", "user@example.org"} {
				if got, _ := lookupParquetGo(t, f, ci, missing); len(got) != 0 {
					t.Errorf("parquet-go: %s = %q found rows %v", column, missing, got)
				}
				if got := lookupArrow(t, ar, ci, missing); len(got) != 0 {
					t.Errorf("arrow-go: %s = %q found rows %v", column, missing, got)
				}
			}
		})
	}
}

// columnValue returns the value of a string column of a user row.
func columnValue(u DirectoryUser, column string) *string {
	switch column {
	case "id":
		return &u.ID
	case "email":
		return u.Email
	case "idp_id":
		return &u.IdpID
	}
	panic(column)
}

// lookupParquetGo finds the rows whose column ci equals target the way a query
// engine does: row group statistics, then the ColumnIndex to pick pages, then
// the OffsetIndex to read only those pages.
func lookupParquetGo(t *testing.T, f *parquet.File, ci int, target string) (found []int64, pagesRead int) {
	t.Helper()
	var base int64
	for rgi, rg := range f.RowGroups() {
		cc := rg.ColumnChunks()[ci]
		stats := f.Metadata().RowGroups[rgi].Columns[ci].MetaData.Statistics
		inStats := target >= string(stats.MinValue) && target <= string(stats.MaxValue)
		idx, err := cc.ColumnIndex()
		if err != nil {
			t.Fatal(err)
		}
		oidx, err := cc.OffsetIndex()
		if err != nil {
			t.Fatal(err)
		}
		if idx.NumPages() != oidx.NumPages() {
			t.Fatalf("row group %d: column index has %d pages, offset index %d", rgi, idx.NumPages(), oidx.NumPages())
		}
		for p := range idx.NumPages() {
			if idx.NullPage(p) {
				continue
			}
			lo, hi := string(idx.MinValue(p).ByteArray()), string(idx.MaxValue(p).ByteArray())
			if target < lo || target > hi {
				continue
			}
			if !inStats {
				t.Errorf("row group %d: page %d bounds [%q, %q] are outside the chunk statistics", rgi, p, lo, hi)
			}
			pagesRead++
			first := oidx.FirstRowIndex(p)
			end := rg.NumRows()
			if p+1 < oidx.NumPages() {
				end = oidx.FirstRowIndex(p + 1)
			}
			pages := cc.Pages()
			if err := pages.SeekToRow(first); err != nil {
				t.Fatal(err)
			}
			page, err := pages.ReadPage()
			if err != nil {
				t.Fatalf("row group %d page %d: %v", rgi, p, err)
			}
			if page.NumRows() != end-first {
				t.Errorf("row group %d page %d: %d rows, offset index says %d", rgi, p, page.NumRows(), end-first)
			}
			vals := make([]parquet.Value, page.NumValues())
			n, _ := page.Values().ReadValues(vals)
			for k, v := range vals[:n] {
				if !v.IsNull() {
					s := string(v.ByteArray())
					if s < lo || s > hi {
						t.Errorf("row group %d page %d: value %q outside the page bounds [%q, %q]", rgi, p, s, lo, hi)
					}
					if s == target {
						found = append(found, base+first+int64(k))
					}
				}
			}
			parquet.Release(page)
			pages.Close()
		}
		base += rg.NumRows()
	}
	return found, pagesRead
}

// lookupArrow does what lookupParquetGo does with arrow-go's page index reader
// and its offset-index seek (ColumnChunkReader.SeekToRow).
func lookupArrow(t *testing.T, r *file.Reader, ci int, target string) []int64 {
	t.Helper()
	var found []int64
	var base int64
	pir := r.GetPageIndexReader()
	for rgi := range r.NumRowGroups() {
		rgr := r.RowGroup(rgi)
		idxr, err := pir.RowGroup(rgi)
		if err != nil {
			t.Fatal(err)
		}
		cidx, err := idxr.GetColumnIndex(ci)
		if err != nil || cidx == nil {
			t.Fatalf("arrow: no column index: %v", err)
		}
		oidx, err := idxr.GetOffsetIndex(ci)
		if err != nil || oidx == nil {
			t.Fatalf("arrow: no offset index: %v", err)
		}
		typed := cidx.(*metadata.TypedColumnIndex[pq.ByteArray])
		mins, maxs, locs := typed.MinValues(), typed.MaxValues(), oidx.GetPageLocations()
		if len(mins) != len(locs) {
			t.Fatalf("arrow: %d column index pages, %d page locations", len(mins), len(locs))
		}
		for p := range locs {
			if cidx.GetNullPages()[p] || target < string(mins[p]) || target > string(maxs[p]) {
				continue
			}
			first := locs[p].FirstRowIndex
			end := rgr.NumRows()
			if p+1 < len(locs) {
				end = locs[p+1].FirstRowIndex
			}
			cr, err := rgr.Column(ci)
			if err != nil {
				t.Fatal(err)
			}
			br := cr.(*file.ByteArrayColumnChunkReader)
			if err := br.SeekToRow(first); err != nil {
				t.Fatalf("arrow: seek to row %d of row group %d: %v", first, rgi, err)
			}
			n := end - first
			vals := make([]pq.ByteArray, n)
			def := make([]int16, n)
			total, nvals, err := br.ReadBatch(n, vals, def, nil)
			if err != nil || total != n {
				t.Fatalf("arrow: read %d of %d rows of page %d: %v", total, n, p, err)
			}
			maxDef := r.MetaData().Schema.Column(ci).MaxDefinitionLevel()
			v := 0
			for k := range total {
				if maxDef > 0 && def[k] < maxDef {
					continue // null
				}
				if string(vals[v]) == target {
					found = append(found, base+first+k)
				}
				v++
			}
			if v != nvals {
				t.Errorf("arrow: %d values for %d non-null levels", nvals, v)
			}
			cr.Close()
		}
		base += rgr.NumRows()
	}
	return found
}

// checkOffsetIndex reads the bytes each OffsetIndex entry points at and checks
// that they are exactly one data page: the bug seen in other Go writers was a
// CompressedPageSize without the header, or dictionary pages in the index.
func checkOffsetIndex(t *testing.T, data []byte, f *parquet.File, ci int) {
	t.Helper()
	for rgi, rg := range f.RowGroups() {
		oidx, err := rg.ColumnChunks()[ci].OffsetIndex()
		if err != nil {
			t.Fatal(err)
		}
		md := f.Metadata().RowGroups[rgi].Columns[ci].MetaData
		var total int64
		for p := range oidx.NumPages() {
			off, size := oidx.Offset(p), oidx.CompressedPageSize(p)
			where := fmt.Sprintf("row group %d page %d", rgi, p)
			if off < 0 || off+size > int64(len(data)) {
				t.Fatalf("%s: location %d+%d outside the file", where, off, size)
			}
			r := new(thrift.CompactProtocol).NewReaderFromBytes(data[off : off+size])
			var h format.PageHeader
			if err := thrift.NewDecoder(r).Decode(&h); err != nil {
				t.Fatalf("%s: no page header at offset %d: %v", where, off, err)
			}
			if h.Type != format.DataPageV2 && h.Type != format.DataPage {
				t.Errorf("%s: page type %v in the offset index, want a data page", where, h.Type)
			}
			if got := int64(r.BytesRead()) + int64(h.CompressedPageSize); got != size {
				t.Errorf("%s: header+data is %d bytes, offset index says %d", where, got, size)
			}
			if h.DataPageHeaderV2.Valid {
				end := rg.NumRows()
				if p+1 < oidx.NumPages() {
					end = oidx.FirstRowIndex(p + 1)
				}
				if got := int64(h.DataPageHeaderV2.V.NumRows); got != end-oidx.FirstRowIndex(p) {
					t.Errorf("%s: page has %d rows, offset index says %d", where, got, end-oidx.FirstRowIndex(p))
				}
			}
			if p == 0 && (oidx.FirstRowIndex(0) != 0 || off != md.DataPageOffset) {
				t.Errorf("%s: first page at row %d offset %d, want row 0 at data_page_offset %d", where, oidx.FirstRowIndex(0), off, md.DataPageOffset)
			}
			total += size
		}
		dict := int64(0)
		if md.DictionaryPageOffset != 0 {
			dict = md.DataPageOffset - md.DictionaryPageOffset
		}
		if total+dict != md.TotalCompressedSize {
			t.Errorf("row group %d: pages add up to %d bytes (+%d dictionary), column chunk says %d", rgi, total, dict, md.TotalCompressedSize)
		}
	}
}
