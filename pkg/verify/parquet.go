package verify

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
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
// read (the footer is read exactly: the schema checks need nothing else
// before the file is read in order), and no bloom filters (the export writes
// none). The page index is read: it is small, and Athena relies on it being
// intact.
var fileOptions = []parquet.FileOption{
	parquet.SkipBloomFilters(true),
	parquet.OptimisticRead(false),
	parquet.ReadBufferSize(readBufferSize),
}

// fileReader is the reader of one data file. It counts the bytes and reads
// that pass through it, remembers the first error of the underlying reader
// (so that a storage failure is not mistaken for a corrupt file), and, once
// hashing has started (startHashing), computes the file's SHA-256 in the same
// pass that decodes its pages:
//
//   - a read that continues the hashed prefix [0, hashed) extends it;
//   - a read past it first fetches and hashes the gap (in a well-formed file
//     only the 4-byte magic before the first column chunk);
//   - finish hashes what no read covered (the page index and footer, or the
//     whole file when its footer was unreadable).
//
// So every byte is hashed exactly once, in order, and nothing but a
// readBufferSize buffer is held per file. Nothing is fetched twice either:
// what OpenFile read before hashing started (magic, footer, page index) is
// kept (up to maxEarly bytes) and hashed from memory, and the column chunks
// named by retain are kept while they stream past, so the data checks decode
// them again from memory.
type fileReader struct {
	r     objstore.RangeReader
	size  int64
	bytes *atomic.Int64
	reads *atomic.Int64

	mu      sync.Mutex
	err     error
	hashing bool
	sum     hash.Hash
	hashed  int64   // bytes [0, hashed) are in sum
	done    bool    // finish ran: sum covers the whole file
	kept    []*span // retained column chunks of the row group being scanned
	early   []*span // reads done before hashing started
	nEarly  int     // bytes in early
}

// span is a retained byte range; data[:filled] has been read.
type span struct {
	off    int64
	data   []byte
	filled int
}

// maxRetained bounds the bytes of one retained column chunk: its size comes
// from the footer, which a corrupt file can make huge. A larger chunk is
// simply read again from storage.
const maxRetained = 64 << 20

// maxEarly bounds the bytes of a file kept from before hashing started.
const maxEarly = 4 << 20

func newFileReader(r objstore.RangeReader, size int64, bytes, reads *atomic.Int64) *fileReader {
	return &fileReader{r: r, size: size, bytes: bytes, reads: reads, sum: sha256.New()}
}

func (c *fileReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off > c.size {
		// A corrupt footer points outside the file: the file's fault, not
		// the storage's.
		return 0, fmt.Errorf("read at offset %d, outside the file's %d bytes", off, c.size)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.kept {
		if off >= s.off && off+int64(len(p)) <= s.off+int64(s.filled) {
			return copy(p, s.data[off-s.off:]), nil
		}
	}
	for _, s := range c.early {
		if off >= s.off && off+int64(len(p)) <= s.off+int64(s.filled) {
			return copy(p, s.data[off-s.off:]), nil
		}
	}
	if c.hashing && !c.done && off > c.hashed && off <= c.size {
		if err := c.hashUpTo(off); err != nil {
			return 0, err
		}
	}
	n, err := c.readAt(p, off)
	if !c.hashing && n > 0 && c.nEarly+n <= maxEarly {
		c.early = append(c.early, &span{off: off, data: append([]byte(nil), p[:n]...), filled: n})
		c.nEarly += n
	}
	if c.hashing && !c.done && off <= c.hashed && c.hashed < off+int64(n) {
		c.sum.Write(p[c.hashed-off : n])
		c.hashed = off + int64(n)
	}
	for _, s := range c.kept {
		if off <= s.off+int64(s.filled) && off+int64(n) > s.off+int64(s.filled) {
			from := s.off + int64(s.filled) // the first byte not yet kept
			s.filled += copy(s.data[s.filled:], p[from-off:n])
		}
	}
	return n, err
}

// readAt reads from storage, counting, and records a storage error.
func (c *fileReader) readAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.bytes.Add(int64(n))
	c.reads.Add(1)
	if err != nil && !errors.Is(err, io.EOF) && c.err == nil {
		c.err = err
	}
	return n, err
}

// hashUpTo fetches and hashes [hashed, end). The caller holds mu.
func (c *fileReader) hashUpTo(end int64) error {
	var buf []byte
	for c.hashed < end {
		if s := c.earlyAt(c.hashed); s != nil {
			b := s.data[c.hashed-s.off : min(int64(s.filled), end-s.off)]
			c.sum.Write(b)
			c.hashed += int64(len(b))
			continue
		}
		if buf == nil {
			buf = make([]byte, min(readBufferSize, end-c.hashed))
		}
		b := buf[:min(int64(len(buf)), end-c.hashed, c.nextEarly(c.hashed)-c.hashed)]
		n, err := c.readAt(b, c.hashed)
		c.sum.Write(b[:n])
		c.hashed += int64(n)
		if n < len(b) {
			if err == nil || errors.Is(err, io.EOF) {
				err = fmt.Errorf("the object ended at %d bytes, %d expected: %w", c.hashed, end, io.ErrUnexpectedEOF)
			}
			return err
		}
	}
	return nil
}

// earlyAt returns the early span holding byte off, or nil.
func (c *fileReader) earlyAt(off int64) *span {
	for _, s := range c.early {
		if off >= s.off && off < s.off+int64(s.filled) {
			return s
		}
	}
	return nil
}

// nextEarly returns the offset of the first early span after off, or the
// file's size.
func (c *fileReader) nextEarly(off int64) int64 {
	next := c.size
	for _, s := range c.early {
		if s.off > off && s.off < next {
			next = s.off
		}
	}
	return next
}

// startHashing turns hashing on: from now on reads are hashed in order.
func (c *fileReader) startHashing() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.hashing = true
}

// retain keeps the byte ranges of chunks (offset, length) as they are read,
// dropping the ranges kept before.
func (c *fileReader) retain(chunks [][2]int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.kept = c.kept[:0]
	for _, ch := range chunks {
		if ch[0] < 0 || ch[1] <= 0 || ch[1] > maxRetained || ch[0]+ch[1] > c.size {
			continue // impossible in a valid file: read it again from storage instead
		}
		c.kept = append(c.kept, &span{off: ch[0], data: make([]byte, ch[1])})
	}
}

// finish hashes the rest of the file and returns the hex SHA-256 of all of it
// and the number of bytes hashed. err is a storage error or an object shorter
// than its size.
func (c *fileReader) finish() (sum string, n int64, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.kept = nil
	if !c.done {
		c.hashing = true
		err = c.hashUpTo(c.size)
		c.done = err == nil
	}
	c.early, c.nEarly = nil, 0
	return hex.EncodeToString(c.sum.Sum(nil)), c.hashed, err
}

// storageErr returns the first error of the underlying reader, if any.
func (c *fileReader) storageErr() error {
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
