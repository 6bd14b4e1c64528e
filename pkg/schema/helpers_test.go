package schema

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dsync-export/dsync-export/pkg/workos"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/ and COLUMNS.md")

// exportedAt is the snapshot time used by the tests: it has sub-millisecond
// digits, which the files must drop.
var exportedAt = time.Date(2026, 7, 1, 3, 4, 5, 678_901_234, time.FixedZone("CEST", 2*3600))

// golden compares got with the file at path, or rewrites it with -update.
func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./pkg/schema -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s is out of date (-want +got), run go test ./pkg/schema -update if the change is intended:\n%s", path, diff)
	}
}

// listPage is the wire shape of a WorkOS list response.
type listPage[T any] struct {
	Object       string              `json:"object"`
	Data         []T                 `json:"data"`
	ListMetadata workos.ListMetadata `json:"list_metadata"`
}

func loadFixture[T any](t *testing.T, name string) []T {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
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
		rows = append(rows, FromDirectoryUser(&u, exportedAt))
	}
	return rows
}

func fixtureDirectories(t *testing.T) []Directory {
	var rows []Directory
	for _, d := range loadFixture[workos.Directory](t, "directories.json") {
		rows = append(rows, FromDirectory(&d, exportedAt))
	}
	return rows
}

func fixtureGroups(t *testing.T) []DirectoryGroup {
	var rows []DirectoryGroup
	for _, g := range loadFixture[workos.DirectoryGroup](t, "directory_groups.json") {
		rows = append(rows, FromDirectoryGroup(&g, exportedAt))
	}
	return rows
}

func sp(s string) *string { return &s }
func ip(i int64) *int64   { return &i }
