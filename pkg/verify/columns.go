package verify

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
)

// valueBatch is the number of values decoded at a time.
const valueBatch = 512

// columnIndex returns the leaf index of the top-level column name.
func columnIndex(f *parquet.File, name string) (int, error) {
	leaf, ok := f.Schema().Lookup(name)
	if !ok {
		return 0, fmt.Errorf("column %s is missing", name)
	}
	return leaf.ColumnIndex, nil
}

// streamColumn decodes the required byte-array column idx of rg and calls fn
// for each value with its row index in the row group. b is only valid during
// the call. It fails when the column holds nulls or more or fewer values than
// the row group has rows. Only the pages of this column are read: from memory
// when scanRowGroup retained them, else from storage.
func streamColumn(rg parquet.RowGroup, idx int, fn func(row int, b []byte) error) error {
	chunk := rg.ColumnChunks()[idx]
	pages := chunk.Pages()
	defer pages.Close()
	buf := make([]parquet.Value, valueBatch)
	row := 0
	for {
		p, err := pages.ReadPage()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("reading page: %w", err)
		}
		err = func() error {
			defer parquet.Release(p)
			vr := p.Values()
			for {
				n, err := vr.ReadValues(buf)
				for _, v := range buf[:n] {
					if int64(row) >= rg.NumRows() {
						return fmt.Errorf("has more values than the row group's %d rows", rg.NumRows())
					}
					if v.IsNull() {
						return fmt.Errorf("row %d is null in a required column", row)
					}
					if err := fn(row, v.ByteArray()); err != nil {
						return err
					}
					row++
				}
				if errors.Is(err, io.EOF) {
					return nil
				}
				if err != nil {
					return fmt.Errorf("decoding values: %w", err)
				}
			}
		}()
		if err != nil {
			return err
		}
	}
	if int64(row) != rg.NumRows() {
		return fmt.Errorf("has %d values for %d rows", row, rg.NumRows())
	}
	return nil
}

// readInterned decodes the required byte-array column idx of rg into one
// string per row, interned through intern: columns of repeated values
// (directory_id, organization_id, group_id) then cost a string header per
// row, not a copy of the value.
func readInterned(rg parquet.RowGroup, idx int, intern map[string]string) ([]string, error) {
	out := make([]string, 0, rg.NumRows())
	err := streamColumn(rg, idx, func(_ int, b []byte) error {
		s, ok := intern[string(b)] // no allocation for the lookup
		if !ok {
			s = string(b)
			intern[s] = s
		}
		out = append(out, s)
		return nil
	})
	return out, err
}

// scanRowGroup decodes every page of every column of row group rgi of df, in
// file order, so that each page's CRC is checked and the file is hashed in
// the same pass (see fileReader). The column chunks of keep (leaf indexes)
// are retained for the data checks that read them next. A page that does not
// decode is recorded as a columns finding (errFileDone is returned).
func (v *verifier) scanRowGroup(df *dataFile, rgi int, rg parquet.RowGroup, keep ...int) error {
	var md []format.ColumnChunk
	if rgs := df.f.Metadata().RowGroups; rgi < len(rgs) {
		md = rgs[rgi].Columns
	}
	var ranges [][2]int64
	for _, i := range keep {
		if i < len(md) {
			m := md[i].MetaData
			off := m.DataPageOffset
			if m.DictionaryPageOffset != 0 {
				off = m.DictionaryPageOffset
			}
			ranges = append(ranges, [2]int64{off, m.TotalCompressedSize})
		}
	}
	df.rd.retain(ranges)
	for ci, chunk := range rg.ColumnChunks() {
		name := columnPath(df.f, ci)
		rows, err := decodePages(chunk)
		if err == nil && rows != rg.NumRows() {
			err = fmt.Errorf("its pages hold %d rows, the row group %d", rows, rg.NumRows())
		}
		if err != nil {
			return v.columnErr(df, name, rgi, err)
		}
	}
	return nil
}

// decodePages reads and decodes every page of a column chunk (parquet-go
// checks each page's CRC as it reads it) and returns the rows they hold.
func decodePages(chunk parquet.ColumnChunk) (int64, error) {
	pages := chunk.Pages()
	defer pages.Close()
	var rows int64
	for {
		p, err := pages.ReadPage()
		if errors.Is(err, io.EOF) {
			return rows, nil
		}
		if err != nil {
			return rows, fmt.Errorf("reading page: %w", err)
		}
		rows += p.NumRows()
		parquet.Release(p)
	}
}

// columnPath names leaf column i of f ("roles.list.element").
func columnPath(f *parquet.File, i int) string {
	cols := f.Metadata().RowGroups
	if len(cols) > 0 && i < len(cols[0].Columns) {
		return strings.Join(cols[0].Columns[i].MetaData.PathInSchema, ".")
	}
	return fmt.Sprintf("#%d", i)
}
