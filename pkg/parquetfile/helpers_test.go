package parquetfile

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/dsync-export/dsync-export/pkg/schema"
	"github.com/dsync-export/dsync-export/pkg/workos"
)

// The row types and table names of pkg/schema, by their short names.
type (
	Directory                = schema.Directory
	DirectoryUser            = schema.DirectoryUser
	DirectoryGroup           = schema.DirectoryGroup
	DirectoryGroupMembership = schema.DirectoryGroupMembership
)

const (
	TableDirectories     = schema.TableDirectories
	TableDirectoryUsers  = schema.TableDirectoryUsers
	TableDirectoryGroups = schema.TableDirectoryGroups
	TableMemberships     = schema.TableMemberships
)

// exportedAt is the snapshot time used by the tests: it has sub-millisecond
// digits, which the files must drop. exportedAtMillis is exportedAt as stored.
var (
	exportedAt       = time.Date(2026, 7, 1, 3, 4, 5, 678_901_234, time.FixedZone("CEST", 2*3600))
	exportedAtMillis = time.Date(2026, 7, 1, 1, 4, 5, 678_000_000, time.UTC)
)

// fixtureDir holds the WorkOS list pages that pkg/schema's mapping tests use.
const fixtureDir = "../schema/testdata"

// listPage is the wire shape of a WorkOS list response.
type listPage[T any] struct {
	Data []T `json:"data"`
}

func loadFixture[T any](t *testing.T, name string) []T {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtureDir, name))
	if err != nil {
		t.Fatal(err)
	}
	var page listPage[T]
	if err := json.Unmarshal(b, &page); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if len(page.Data) == 0 {
		t.Fatalf("%s: no data", name)
	}
	return page.Data
}

func fixtureUsers(t *testing.T) []DirectoryUser {
	var rows []DirectoryUser
	for _, u := range loadFixture[workos.DirectoryUser](t, "directory_users.json") {
		rows = append(rows, schema.FromDirectoryUser(&u, exportedAt))
	}
	return rows
}

func fixtureDirectories(t *testing.T) []Directory {
	var rows []Directory
	for _, d := range loadFixture[workos.Directory](t, "directories.json") {
		rows = append(rows, schema.FromDirectory(&d, exportedAt))
	}
	return rows
}

func fixtureGroups(t *testing.T) []DirectoryGroup {
	var rows []DirectoryGroup
	for _, g := range loadFixture[workos.DirectoryGroup](t, "directory_groups.json") {
		rows = append(rows, schema.FromDirectoryGroup(&g, exportedAt))
	}
	return rows
}

func fixtureMemberships(t *testing.T) []DirectoryGroupMembership {
	groups := loadFixture[workos.DirectoryGroup](t, "directory_groups.json")
	var rows []DirectoryGroupMembership
	for i := range groups {
		for _, u := range []string{"directory_user_01E1JG7J09H96KYP8HM9B0G5SJ", "directory_user_01HZZZZZZZZZZZZZZZZZZZZZZZ"}[:i%2+1] {
			d := workos.Directory{ID: groups[i].DirectoryID, OrganizationID: groups[i].OrganizationID}
			rows = append(rows, schema.NewMembership(&d, groups[i].ID, u, exportedAt))
		}
	}
	return rows
}

// structField returns the field of row type T that holds column.
func structField[T any](column string) (reflect.StructField, bool) {
	rt := reflect.TypeFor[T]()
	for i := range rt.NumField() {
		f := rt.Field(i)
		if tag, _, _ := strings.Cut(f.Tag.Get("parquet"), ","); tag == column {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// memPart is an in-memory part destination that records how it was closed.
type memPart struct {
	bytes.Buffer
	closed     int
	closeErr   error // returned by Close
	abortedErr error // argument of CloseWithError
	writeErr   error // returned by Write once set
}

func (p *memPart) Write(b []byte) (int, error) {
	if p.writeErr != nil {
		return 0, p.writeErr
	}
	return p.Buffer.Write(b)
}

func (p *memPart) Close() error { p.closed++; return p.closeErr }

func (p *memPart) CloseWithError(err error) error {
	if err == nil {
		err = errors.New("nil error")
	}
	p.abortedErr = err
	return nil
}

// memStore opens memParts in order.
type memStore struct {
	t     testing.TB
	parts []*memPart
}

func (s *memStore) open(n int) (io.WriteCloser, error) {
	if n != len(s.parts) {
		s.t.Errorf("opened part %d, want part %d", n, len(s.parts))
	}
	p := new(memPart)
	s.parts = append(s.parts, p)
	return p, nil
}

// writeAll writes rows through a Writer into memory and returns the parts.
func writeAll[T any](t *testing.T, opts Options, batches ...[]T) (*memStore, []Part) {
	t.Helper()
	store := &memStore{t: t}
	w, err := NewWriter[T](store.open, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range batches {
		if err := w.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	parts, err := w.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != len(store.parts) {
		t.Fatalf("Close returned %d parts, %d were opened", len(parts), len(store.parts))
	}
	for i, p := range store.parts {
		if p.closed != 1 || p.abortedErr != nil {
			t.Errorf("part %d: closed %d times, aborted with %v; want committed once", i, p.closed, p.abortedErr)
		}
	}
	return store, parts
}

// readRows reads every row of a Parquet file with parquet-go.
func readRows[T any](t *testing.T, data []byte) []T {
	t.Helper()
	rows, err := parquet.Read[T](bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func openFile(t *testing.T, data []byte) *parquet.File {
	t.Helper()
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func sp(s string) *string { return &s }
