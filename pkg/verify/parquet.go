package verify

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/parquet-go/parquet-go"

	"github.com/dsync-export/dsync-export/pkg/objstore"
)

// readBufferSize is the size of parquet-go's buffered reads of column chunks:
// a column chunk is fetched in ranged reads of at most this many bytes, so a
// large chunk costs one request per MiB rather than one per 4 KiB (the
// library default). The footer is read exactly, not with this buffer.
const readBufferSize = 1 << 20

// fileOptions are the options every data file is opened with: no optimistic
// read (it would fetch the last readBufferSize bytes, the whole of a small
// file), and no bloom filters (the export writes none). The page index is
// read: it is small, and Athena relies on it being intact.
var fileOptions = []parquet.FileOption{
	parquet.SkipBloomFilters(true),
	parquet.OptimisticRead(false),
	parquet.ReadBufferSize(readBufferSize),
}

// countingReaderAt counts the bytes and reads that pass through it, and
// remembers the first error of the underlying reader so that a storage
// failure is not mistaken for a corrupt file.
type countingReaderAt struct {
	r     objstore.RangeReader
	bytes *atomic.Int64
	reads *atomic.Int64

	mu  sync.Mutex
	err error
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.bytes.Add(int64(n))
	c.reads.Add(1)
	if err != nil && !errors.Is(err, io.EOF) {
		c.mu.Lock()
		if c.err == nil {
			c.err = err
		}
		c.mu.Unlock()
	}
	return n, err
}

// storageErr returns the first error of the underlying reader, if any.
func (c *countingReaderAt) storageErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// column is one node of a flattened Parquet schema.
type column struct {
	path string // dotted path: "roles.list.element"
	desc string // "optional binary (STRING)", "optional group (LIST)"
}

// flatten lists every node below the root of s, depth first, in file order.
func flatten(s *parquet.Schema) []column {
	var cols []column
	var walk func(n parquet.Node, path string)
	walk = func(n parquet.Node, path string) {
		for _, f := range n.Fields() {
			p := f.Name()
			if path != "" {
				p = path + "." + p
			}
			cols = append(cols, column{path: p, desc: describe(f)})
			walk(f, p)
		}
	}
	walk(s, "")
	return cols
}

// describe prints a node the way the Parquet schema text does:
// repetition, physical type (or "group") and logical type.
func describe(n parquet.Node) string {
	rep := "required"
	switch {
	case n.Optional():
		rep = "optional"
	case n.Repeated():
		rep = "repeated"
	}
	typ := "group"
	if n.Leaf() {
		typ = physicalType(n.Type())
	}
	s := rep + " " + typ
	if lt := n.Type().LogicalType(); lt != nil {
		s += " (" + lt.String() + ")"
	}
	return s
}

// physicalType names a leaf type as the Parquet schema text does.
func physicalType(t parquet.Type) string {
	switch t.Kind() {
	case parquet.ByteArray:
		return "binary"
	case parquet.FixedLenByteArray:
		return fmt.Sprintf("fixed_len_byte_array(%d)", t.Length())
	default:
		return strings.ToLower(t.Kind().String())
	}
}

// diffSchema compares a file's schema with the expected one and describes
// every difference, naming the column. It returns nil when they are equal.
func diffSchema(got, want *parquet.Schema) []string {
	g, w := flatten(got), flatten(want)
	gm := make(map[string]string, len(g))
	for _, c := range g {
		gm[c.path] = c.desc
	}
	wm := make(map[string]string, len(w))
	for _, c := range w {
		wm[c.path] = c.desc
	}
	var diffs []string
	for _, c := range w {
		d, ok := gm[c.path]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("column %s is missing (want %s)", c.path, c.desc))
		case d != c.desc:
			diffs = append(diffs, fmt.Sprintf("column %s is %s, want %s", c.path, d, c.desc))
		}
	}
	for _, c := range g {
		if _, ok := wm[c.path]; !ok {
			diffs = append(diffs, fmt.Sprintf("unexpected column %s (%s)", c.path, c.desc))
		}
	}
	if diffs == nil && len(g) == len(w) {
		for i := range g {
			if g[i].path != w[i].path {
				diffs = append(diffs, fmt.Sprintf("columns are out of order: column %d is %s, want %s", i, g[i].path, w[i].path))
				break
			}
		}
	}
	return diffs
}
