package verify

import (
	"errors"
	"fmt"
	"io"

	"github.com/parquet-go/parquet-go"
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
// the row group has rows. Only the pages of this column are fetched.
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
