package verify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/parquet-go/parquet-go"

	"github.com/dsync-export/dsync-export/pkg/objstore"
	"github.com/dsync-export/dsync-export/pkg/schema"
	"github.com/dsync-export/dsync-export/pkg/snapshot"
)

var allChecks = []string{
	CheckManifest, CheckPrevious, CheckObjects, CheckStrayObjects, CheckSnapshotRow, CheckFooters, CheckSchema, CheckRowCounts,
	CheckColumns, CheckChecksums, CheckEvents, CheckUniqueIDs, CheckReferences, CheckDirectoryCounts,
}

func checkNames(r *Report) []string {
	var names []string
	for _, c := range r.Checks {
		names = append(names, c.Name)
	}
	return names
}

func TestValidSnapshot(t *testing.T) {
	t.Parallel()
	s, _ := localSink(t)
	fx := newFixture(4, 150, 7).withAttributes(400)
	fx.opts.MaxFileBytes = 64 << 10 // several parts per table
	w := fx.write(t, s)
	if n := len(w.keys[schema.TableDirectoryUsers]); n < 3 {
		t.Fatalf("fixture wrote %d user parts, want several", n)
	}

	r := mustVerify(t, s, Options{})
	if !r.Valid {
		t.Fatalf("valid snapshot reported invalid:\n%s", r.JSONLines())
	}
	if diff := cmp.Diff(allChecks, checkNames(r)); diff != "" {
		t.Errorf("checks (-want +got):\n%s", diff)
	}
	for _, c := range r.Checks {
		if !c.OK || c.Skipped || len(c.Errors) > 0 {
			t.Errorf("check %s: %+v", c.Name, c)
		}
	}
	var files int
	for _, k := range w.keys {
		files += len(k)
	}
	if r.Stats.Files != files || r.Stats.Rows != int64(len(fx.dirs)+len(fx.users)+len(fx.groups)+len(fx.members)+len(fx.events)) {
		t.Errorf("stats = %+v, want %d files", r.Stats, files)
	}
	// Every byte is hashed and every page decoded, in one pass: each byte is
	// fetched exactly once (the footer read to open a file is hashed from
	// memory, and the id columns are decoded again from memory).
	if r.Stats.BytesFetched != r.Stats.BytesTotal {
		t.Errorf("fetched %d of %d bytes, want each byte once", r.Stats.BytesFetched, r.Stats.BytesTotal)
	}
	if c, _ := r.Check(CheckPrevious); !strings.Contains(c.Detail, "nothing to compare with") {
		t.Errorf("previous_snapshot without a previous snapshot: %+v", c)
	}
}

func TestEmptyTables(t *testing.T) {
	t.Parallel()
	// A snapshot of an environment without directories still has one
	// (empty) file per table, and is valid.
	s, _ := localSink(t)
	newFixture(0, 0, 0).write(t, s)
	r := mustVerify(t, s, Options{})
	if !r.Valid {
		t.Fatalf("empty snapshot invalid:\n%s", r.JSONLines())
	}
}

func TestMissingManifest(t *testing.T) {
	t.Parallel()
	s, _ := localSink(t)
	r := mustVerify(t, s, Options{})
	wantFailure(t, r, CheckManifest, "_manifests/dt=2026-11-28/manifest.json", "missing")
	for _, c := range r.Checks[1:] {
		if !c.Skipped {
			t.Errorf("check %s ran without a manifest", c.Name)
		}
	}
	if diff := cmp.Diff(allChecks, checkNames(r)); diff != "" {
		t.Errorf("checks (-want +got):\n%s", diff)
	}
}

// deniedMissing answers AccessDenied for missing keys, as S3 does when the
// caller's s3:ListBucket is conditioned on a prefix.
type deniedMissing struct{ objstore.Store }

func (d deniedMissing) Get(ctx context.Context, key string) ([]byte, error) {
	b, err := d.Store.Get(ctx, key)
	if errors.Is(err, objstore.ErrNotExist) {
		return nil, fmt.Errorf("access denied on %s: %w", key, objstore.ErrAccessDenied)
	}
	return b, err
}

func TestMissingManifestBehindAccessDenied(t *testing.T) {
	t.Parallel()
	s, _ := localSink(t)
	r := mustVerify(t, deniedMissing{s}, Options{})
	wantFailure(t, r, CheckManifest, "_manifests/dt=2026-11-28/manifest.json", "missing")

	// A real access-denied on an existing manifest stays an error.
	newFixture(1, 3, 1).write(t, s)
	if _, err := Verify(context.Background(), alwaysDenied{s}, "2026-11-28", Options{}); !errors.Is(err, objstore.ErrAccessDenied) {
		t.Errorf("err %v, want access denied", err)
	}
}

type alwaysDenied struct{ objstore.Store }

func (alwaysDenied) Get(ctx context.Context, key string) ([]byte, error) {
	return nil, fmt.Errorf("access denied on %s: %w", key, objstore.ErrAccessDenied)
}

func TestUnreadableManifest(t *testing.T) {
	t.Parallel()
	s, _ := localSink(t)
	if err := s.Put(context.Background(), snapshot.ManifestKey(testDate), []byte(`{"format_version":1,`), "application/json"); err != nil {
		t.Fatal(err)
	}
	r := mustVerify(t, s, Options{})
	wantFailure(t, r, CheckManifest, "_manifests/dt=2026-11-28/manifest.json", "not valid JSON")
}

func TestMissingFile(t *testing.T) {
	t.Parallel()
	s, _ := localSink(t)
	fx := newFixture(2, 100, 3)
	fx.opts.MaxFileBytes = 4 << 10
	w := fx.write(t, s)
	key := w.keys[schema.TableDirectoryUsers][1]
	if err := s.Delete(context.Background(), []string{key}); err != nil {
		t.Fatal(err)
	}
	r := mustVerify(t, s, Options{})
	wantFailure(t, r, CheckObjects, key, "missing")
	// The files that are there are still decoded and hashed.
	wantOnlyFailures(t, r, CheckObjects, CheckUniqueIDs, CheckReferences, CheckDirectoryCounts)
	if c, _ := r.Check(CheckReferences); !c.Skipped {
		t.Errorf("references ran on an incomplete snapshot: %+v", c)
	}
}

func TestTruncatedFile(t *testing.T) {
	t.Parallel()
	s, root := localSink(t)
	w := newFixture(2, 100, 3).write(t, s)
	key := w.keys[schema.TableMemberships][0]
	rewrite(t, root, key, func(b []byte) []byte { return b[:len(b)/2] })

	r := mustVerify(t, s, Options{})
	wantFailure(t, r, CheckObjects, key, "bytes, the manifest says")
	wantFailure(t, r, CheckFooters, key, "not a readable Parquet file")
}

func TestCorruptFooter(t *testing.T) {
	t.Parallel()
	s, root := localSink(t)
	w := newFixture(2, 100, 3).write(t, s)
	key := w.keys[schema.TableDirectoryGroups][0]
	// Same size, garbage footer: only the footer check can tell.
	rewrite(t, root, key, func(b []byte) []byte {
		for i := len(b) - 200; i < len(b)-8; i++ {
			b[i] = 0xEE
		}
		return b
	})
	r := mustVerify(t, s, Options{})
	wantFailure(t, r, CheckFooters, key, "not a readable Parquet file")
	wantFailure(t, r, CheckChecksums, key, "SHA-256")
	wantOnlyFailures(t, r, CheckFooters, CheckChecksums, CheckUniqueIDs, CheckReferences, CheckDirectoryCounts)
}

func TestCorruptIDPage(t *testing.T) {
	t.Parallel()
	s, root := localSink(t)
	w := newFixture(2, 500, 3).write(t, s)
	key := w.keys[schema.TableDirectoryUsers][0]
	// Find the id column chunk and overwrite the middle of its data.
	b, err := os.ReadFile(filePath(root, key))
	if err != nil {
		t.Fatal(err)
	}
	f, err := parquet.OpenFile(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	md := f.Metadata().RowGroups[0].Columns[0].MetaData // column 0 is id
	if md.PathInSchema[0] != "id" {
		t.Fatalf("column 0 is %v", md.PathInSchema)
	}
	start := md.DataPageOffset + md.TotalCompressedSize/2
	rewrite(t, root, key, func(b []byte) []byte {
		for i := start; i < start+64; i++ {
			b[i] ^= 0x5A
		}
		return b
	})
	r := mustVerify(t, s, Options{})
	wantFailure(t, r, CheckColumns, key, "column id")
	wantOnlyFailures(t, r, CheckColumns, CheckChecksums, CheckUniqueIDs, CheckReferences, CheckDirectoryCounts)
}

func TestWrongRowCount(t *testing.T) {
	t.Parallel()
	s, _ := localSink(t)
	fx := newFixture(2, 100, 3)
	w := fx.write(t, s)
	// The manifest claims one more user in the file (and the table), as if
	// the export had lost a row.
	tm := w.manifest.Tables[schema.TableDirectoryUsers]
	tm.Files[0].Rows++
	tm.Rows++
	w.manifest.Tables[schema.TableDirectoryUsers] = tm
	putManifest(t, s, w.manifest)

	r := mustVerify(t, s, Options{})
	wantFailure(t, r, CheckRowCounts, tm.Files[0].Key, "has 200 rows, the manifest says 201")
	wantOnlyFailures(t, r, CheckRowCounts)
}

func TestManifestTableRowsDisagree(t *testing.T) {
	t.Parallel()
	s, _ := localSink(t)
	w := newFixture(1, 10, 2).write(t, s)
	tm := w.manifest.Tables[schema.TableDirectoryGroups]
	tm.Rows = 99
	w.manifest.Tables[schema.TableDirectoryGroups] = tm
	putManifest(t, s, w.manifest)
	r := mustVerify(t, s, Options{})
	wantFailure(t, r, CheckManifest, "table directory_groups has rows 99, but its files' rows add up to 2")
}

func TestDuplicateID(t *testing.T) {
	t.Parallel()
	s, _ := localSink(t)
	fx := newFixture(2, 100, 3)
	fx.opts.MaxFileBytes = 4 << 10 // the copies land in different parts
	dup := fx.users[10]
	fx.users = append(fx.users, dup)
	w := fx.write(t, s)
	if len(w.keys[schema.TableDirectoryUsers]) < 2 {
		t.Fatal("want several parts")
	}
	r := mustVerify(t, s, Options{})
	wantFailure(t, r, CheckUniqueIDs, "directory_users: id "+dup.ID+" appears 2 times",
		w.keys[schema.TableDirectoryUsers][0]+" row 10", w.keys[schema.TableDirectoryUsers][len(w.keys[schema.TableDirectoryUsers])-1])
	wantOnlyFailures(t, r, CheckUniqueIDs)
}

func TestDuplicateDirectoryAndMembership(t *testing.T) {
	t.Parallel()
	s, _ := localSink(t)
	fx := newFixture(2, 50, 3)
	fx.members = append(fx.members, fx.members[7])
	w := fx.write(t, s)
	// A second copy of directory_01's row, added after the manifest counts.
	fx.dirs = append(fx.dirs, fx.dirs[1])
	if err := s.Delete(context.Background(), w.keys[schema.TableDirectories]); err != nil {
		t.Fatal(err)
	}
	w2 := &written{manifest: w.manifest, keys: map[string][]string{}}
	writeTable(t, context.Background(), s, fx.opts, schema.TableDirectories, fx.dirs, w2)
	putManifest(t, s, w.manifest)

	r := mustVerify(t, s, Options{})
	m := fx.members[7]
	wantFailure(t, r, CheckUniqueIDs, "directory_group_memberships: (group_id "+m.GroupID+", user_id "+m.UserID+") appears 2 times")
	wantFailure(t, r, CheckUniqueIDs, "directories: id directory_01 appears more than once")
}

func TestDanglingMembership(t *testing.T) {
	t.Parallel()
	s, _ := localSink(t)
	fx := newFixture(3, 50, 3)
	fx.members = append(fx.members,
		// a user that was never exported
		schema.DirectoryGroupMembership{DirectoryID: "directory_00", OrganizationID: "org_00", GroupID: "directory_group_00_0001", UserID: "directory_user_ghost", ExportedAt: exportedAt},
		// a group that was never exported
		schema.DirectoryGroupMembership{DirectoryID: "directory_00", OrganizationID: "org_00", GroupID: "directory_group_ghost", UserID: "directory_user_00_000001", ExportedAt: exportedAt},
		// a user of another directory
		schema.DirectoryGroupMembership{DirectoryID: "directory_00", OrganizationID: "org_00", GroupID: "directory_group_00_0002", UserID: "directory_user_02_000003", ExportedAt: exportedAt},
	)
	fx.write(t, s)
	r := mustVerify(t, s, Options{})
	wantFailure(t, r, CheckReferences, "membership (group directory_group_00_0001, user directory_user_ghost)", "user directory_user_ghost, which is not in the directory_users table")
	wantFailure(t, r, CheckReferences, "membership (group directory_group_ghost, user directory_user_00_000001)", "group directory_group_ghost, which is not in the directory_groups table")
	wantFailure(t, r, CheckReferences, "membership (group directory_group_00_0002, user directory_user_02_000003) is in directory directory_00, but user directory_user_02_000003 is in directory directory_02")
	wantOnlyFailures(t, r, CheckReferences)
	if c, _ := r.Check(CheckReferences); c.ErrorCount != 3 {
		t.Errorf("references: %d errors, want 3: %q", c.ErrorCount, c.Errors)
	}
}

func TestUserOfUnexportedDirectory(t *testing.T) {
	t.Parallel()
	s, _ := localSink(t)
	fx := newFixture(2, 20, 2)
	fx.users[5].DirectoryID = "directory_gone"
	fx.groups[1].OrganizationID = "org_other"
	fx.write(t, s)
	r := mustVerify(t, s, Options{})
	wantFailure(t, r, CheckReferences, "user "+fx.users[5].ID+" references directory directory_gone, which is not in the directories table")
	wantFailure(t, r, CheckReferences, "group "+fx.groups[1].ID+" has organization_id org_other, but its directory directory_00 belongs to org_00")
}

func TestStrayFile(t *testing.T) {
	t.Parallel()
	s, _ := localSink(t)
	newFixture(2, 20, 2).write(t, s)
	stray := snapshot.PartKey(schema.TableDirectoryUsers, testDate, laterRun, 7)
	if err := s.Put(context.Background(), stray, []byte("PAR1 leftover"), "application/octet-stream"); err != nil {
		t.Fatal(err)
	}
	r := mustVerify(t, s, Options{})
	wantFailure(t, r, CheckStrayObjects, stray, "not listed in the manifest")
	wantOnlyFailures(t, r, CheckStrayObjects)
}

func TestDirectoryCounts(t *testing.T) {
	t.Parallel()
	s, _ := localSink(t)
	w := newFixture(3, 20, 2).write(t, s)
	w.manifest.Directories[1].Users = 19
	w.manifest.Directories = w.manifest.Directories[:2] // directory_02 dropped from the manifest
	putManifest(t, s, w.manifest)
	r := mustVerify(t, s, Options{})
	wantFailure(t, r, CheckDirectoryCounts, "directory directory_01 has 20 rows in directory_users, the manifest says 19")
	wantFailure(t, r, CheckDirectoryCounts, "directory directory_02 is in the directories table but not in the manifest")
	wantOnlyFailures(t, r, CheckDirectoryCounts)
	if got := r.FailedDirectories(); strings.Join(got, ",") != "directory_01,directory_02" {
		t.Errorf("FailedDirectories() = %q, want directory_01 and directory_02", got)
	}
}

// oldUser is a directory_users row of a different schema: email is
// required and the deprecated columns are gone.
type oldUser struct {
	ID             string    `parquet:"id"`
	DirectoryID    string    `parquet:"directory_id"`
	OrganizationID string    `parquet:"organization_id"`
	Email          string    `parquet:"email"`
	ExportedAt     time.Time `parquet:"exported_at,timestamp(millisecond:utc)"`
}

func TestSchemaMismatch(t *testing.T) {
	t.Parallel()
	s, _ := localSink(t)
	fx := newFixture(1, 5, 1)
	w := fx.write(t, s)
	key := w.keys[schema.TableDirectoryUsers][0]
	var rows []oldUser
	for _, u := range fx.users {
		rows = append(rows, oldUser{ID: u.ID, DirectoryID: u.DirectoryID, OrganizationID: u.OrganizationID, Email: *u.Email, ExportedAt: u.ExportedAt})
	}
	obj, err := s.Create(context.Background(), key, "application/vnd.apache.parquet")
	if err != nil {
		t.Fatal(err)
	}
	pw := parquet.NewGenericWriter[oldUser](obj)
	if _, err := pw.Write(rows); err != nil {
		t.Fatal(err)
	}
	if err := pw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := obj.Close(); err != nil {
		t.Fatal(err)
	}
	infos, err := s.List(context.Background(), key)
	if err != nil || len(infos) != 1 {
		t.Fatal(infos, err)
	}
	tm := w.manifest.Tables[schema.TableDirectoryUsers]
	tm.Files[0].Bytes = infos[0].Size
	w.manifest.Tables[schema.TableDirectoryUsers] = tm
	putManifest(t, s, w.manifest)

	r := mustVerify(t, s, Options{})
	wantFailure(t, r, CheckSchema, key, "column email is required binary (STRING), want optional binary (STRING)")
	wantFailure(t, r, CheckSchema, key, "column idp_id is missing")
	wantFailure(t, r, CheckSchema, key, "key-value metadata dsync_export.schema_version is (none), want "+schema.Version)
}

func TestDiffSchema(t *testing.T) {
	t.Parallel()
	users, _ := schema.TableByName(schema.TableDirectoryUsers)
	groups, _ := schema.TableByName(schema.TableDirectoryGroups)
	if d := diffSchema(users.Schema, users.Schema); d != nil {
		t.Errorf("identical schemas differ: %q", d)
	}
	type extra struct {
		schema.DirectoryGroup
		Extra *int64 `parquet:"extra,optional"`
	}
	d := diffSchema(parquet.SchemaOf(new(extra)), groups.Schema)
	if diff := cmp.Diff([]string{"unexpected column extra (optional int64 (INT(64,true)))"}, d); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	type swapped struct {
		IdpID string `parquet:"idp_id"`
		ID    string `parquet:"id"`
	}
	type plain struct {
		ID    string `parquet:"id"`
		IdpID string `parquet:"idp_id"`
	}
	d = diffSchema(parquet.SchemaOf(new(swapped)), parquet.SchemaOf(new(plain)))
	if len(d) != 1 || !strings.Contains(d[0], "out of order") {
		t.Errorf("diff = %q, want an order difference", d)
	}
}

func TestManifestProblems(t *testing.T) {
	t.Parallel()
	s, _ := localSink(t)
	w := newFixture(1, 5, 1).write(t, s)
	m := w.manifest
	m.SchemaVersion = "0"
	m.Tables["legacy_table"] = snapshot.TableManifest{}
	m.Directories = append(m.Directories, m.Directories[0])
	putManifest(t, s, m)
	r := mustVerify(t, s, Options{})
	wantFailure(t, r, CheckManifest, `schema_version is "0"`)
	wantFailure(t, r, CheckManifest, `unknown table "legacy_table"`)
	wantFailure(t, r, CheckManifest, "directory directory_00 is listed twice")
}

func TestReportOutput(t *testing.T) {
	t.Parallel()
	s, _ := localSink(t)
	fx := newFixture(1, 40, 2)
	for i := range 30 { // more problems than a check keeps
		fx.members = append(fx.members, schema.DirectoryGroupMembership{
			DirectoryID: "directory_00", OrganizationID: "org_00", GroupID: "directory_group_00_0000",
			UserID: "directory_user_missing_" + string(rune('a'+i)), ExportedAt: exportedAt,
		})
	}
	fx.write(t, s)
	r := mustVerify(t, s, Options{})
	c, _ := r.Check(CheckReferences)
	if c.ErrorCount != 30 || len(c.Errors) != MaxErrors || !strings.Contains(c.Detail, "30 problems, the first 20 listed") {
		t.Errorf("references: count %d, kept %d, detail %q", c.ErrorCount, len(c.Errors), c.Detail)
	}

	lines := strings.Split(strings.TrimSuffix(string(r.JSONLines()), "\n"), "\n")
	if len(lines) != len(r.Checks)+1 {
		t.Fatalf("%d lines for %d checks", len(lines), len(r.Checks))
	}
	for i, c := range r.Checks {
		var got struct {
			SnapshotDate string `json:"snapshot_date"`
			Check        string `json:"check"`
			OK           bool   `json:"ok"`
		}
		if err := json.Unmarshal([]byte(lines[i]), &got); err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		if got.SnapshotDate != testDate || got.Check != c.Name || got.OK != c.OK {
			t.Errorf("line %d = %+v, want check %s ok=%v", i, got, c.Name, c.OK)
		}
	}
	var sum struct {
		Summary bool     `json:"summary"`
		Valid   bool     `json:"valid"`
		Failed  []string `json:"failed_checks"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &sum); err != nil {
		t.Fatal(err)
	}
	if !sum.Summary || sum.Valid || cmp.Diff([]string{CheckReferences}, sum.Failed) != "" {
		t.Errorf("summary = %+v", sum)
	}
}

func TestVerifyArguments(t *testing.T) {
	t.Parallel()
	s, _ := localSink(t)
	ctx := context.Background()
	for name, tc := range map[string]struct {
		date string
		opts Options
		want string
	}{
		"bad date":       {"2026-13-01", Options{}, "not a calendar date"},
		"negative":       {testDate, Options{Sample: -1}, "Sample is -1"},
		"sample without": {testDate, Options{Sample: 3}, "no WorkOS client"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Verify(ctx, s, tc.date, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "verify: ") {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// failingSource fails every read after the manifest: a storage outage.
type failingSource struct {
	Source
	listErr, openErr error
	readErr          error
}

func (f failingSource) List(ctx context.Context, prefix string) ([]objstore.ObjectInfo, error) {
	if f.listErr != nil {
		return nil, f.listErr
	}
	return f.Source.List(ctx, prefix)
}

func (f failingSource) OpenRange(ctx context.Context, key string) (objstore.RangeReader, int64, error) {
	if f.openErr != nil {
		return nil, 0, f.openErr
	}
	r, n, err := f.Source.OpenRange(ctx, key)
	if err != nil || f.readErr == nil {
		return r, n, err
	}
	return failingReader{r, f.readErr}, n, nil
}

type failingReader struct {
	objstore.RangeReader
	err error
}

func (r failingReader) ReadAt(p []byte, off int64) (int, error) { return 0, r.err }

func TestStorageErrorsAreErrors(t *testing.T) {
	t.Parallel()
	s, _ := localSink(t)
	newFixture(1, 10, 2).write(t, s)
	outage := errors.New("sink: s3://b/p: connection reset")
	for name, src := range map[string]Source{
		"list": failingSource{Source: s, listErr: outage},
		"open": failingSource{Source: s, openErr: outage},
		"read": failingSource{Source: s, readErr: outage},
	} {
		t.Run(name, func(t *testing.T) {
			r, err := Verify(context.Background(), src, testDate, Options{})
			if !errors.Is(err, outage) || r != nil {
				t.Errorf("Verify = %v, %v; want the storage error, not a report", r, err)
			}
		})
	}
}

func TestCancelled(t *testing.T) {
	t.Parallel()
	s, _ := localSink(t)
	newFixture(2, 100, 2).write(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Verify(ctx, s, testDate, Options{}); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

// A hash collision between two different IDs must not be reported as a
// duplicate: the exact strings are compared.
func TestHashCollisionIsNotADuplicate(t *testing.T) {
	t.Parallel()
	s, _ := localSink(t)
	fx := newFixture(1, 10, 1)
	fx.write(t, s)
	v := newVerifier(s, testDate, Options{Concurrency: 1})
	if ok, err := v.loadManifest(context.Background()); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if err := v.listObjects(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := v.openFiles(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Pretend two users' hashes collided.
	dups := map[uint64]struct{}{v.hash.idString(fx.users[1].ID): {}, v.hash.idString(fx.users[2].ID): {}}
	if err := v.findDuplicates(context.Background(), schema.TableDirectoryUsers, dups); err != nil {
		t.Fatal(err)
	}
	if v.unique.failed() {
		t.Errorf("collision reported as duplicate: %q", v.unique.errs)
	}
	for _, df := range v.files {
		_ = df.rd.r.Close()
	}
}

// BenchmarkVerify verifies a valid snapshot of 10 directories with 100k and
// 1M users (1.5 memberships per user) on a local sink and reports the peak
// heap of Verify (sampled), the share of bytes fetched and the rows per second.
//
//	go test ./pkg/verify -run XXX -bench Verify -benchtime 1x
func BenchmarkVerify(b *testing.B) {
	for _, users := range []int{100_000, 1_000_000} {
		b.Run("users="+strconv.Itoa(users), func(b *testing.B) {
			s, _ := localSink(b)
			fx := newFixture(10, users/10, 50).withAttributes(200)
			fx.write(b, s)
			fx = nil
			for b.Loop() {
				peak, base := startPeakHeap()
				r, err := Verify(context.Background(), s, testDate, Options{})
				mib := peak()
				if err != nil || !r.Valid {
					b.Fatal(err, string(r.JSONLines()))
				}
				b.ReportMetric(mib, "peak-heap-MiB")
				b.ReportMetric(mib-base, "verify-heap-MiB")
				b.ReportMetric(float64(r.Stats.BytesFetched)/float64(r.Stats.BytesTotal)*100, "%fetched")
				b.ReportMetric(float64(r.Stats.BytesTotal)/(1<<20), "MiB-files")
				b.ReportMetric(float64(r.Stats.Rows)/(float64(r.Stats.DurationMillis)/1000), "rows/s")
			}
		})
	}
}

// startPeakHeap collects garbage, then samples the live heap every
// millisecond until the returned function is called, which returns the peak
// in MiB; base is the live heap at the start (the benchmark's own data).
func startPeakHeap() (peakMiB func() float64, base float64) {
	runtime.GC()
	runtime.GC() // a second cycle empties sync.Pools (parquet-go's buffers)
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(sample)
	base = float64(sample[0].Value.Uint64()) / (1 << 20)
	var peak atomic.Uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			metrics.Read(sample)
			if v := sample[0].Value.Uint64(); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	return func() float64 {
		close(stop)
		<-done
		return float64(peak.Load()) / (1 << 20)
	}, base
}

var _ io.ReaderAt = (*fileReader)(nil)

// TestEarlierRunStrayWaitsForCleanup: the export deletes the files of the
// date's earlier runs right after writing the manifest that starts verify,
// so verify waits a bounded time for them to go before calling them stray.
func TestEarlierRunStrayWaitsForCleanup(t *testing.T) {
	t.Parallel()
	s, _ := localSink(t)
	newFixture(2, 20, 2).write(t, s)
	ctx := context.Background()
	earlier := snapshot.PartKey(schema.TableDirectoryUsers, testDate, "20261128T010000.000Z-0a0a0a", 0)
	legacy := snapshot.PartitionPrefix(schema.TableDirectoryGroups, testDate) + "part-00000.parquet"
	for _, k := range []string{earlier, legacy} {
		if err := s.Put(ctx, k, []byte("PAR1 earlier run"), "application/octet-stream"); err != nil {
			t.Fatal(err)
		}
	}
	// Cleaned up while verify waits: valid.
	timer := time.AfterFunc(400*time.Millisecond, func() { _ = s.Delete(ctx, []string{earlier, legacy}) })
	defer timer.Stop()
	start := time.Now()
	r := mustVerify(t, s, Options{CleanupWait: 10 * time.Second})
	if !r.Valid {
		t.Fatalf("earlier run's files deleted during the wait, yet invalid:\n%s", r.JSONLines())
	}
	if d := time.Since(start); d < 400*time.Millisecond || d > 8*time.Second {
		t.Errorf("verify took %s: want it to wait for the cleanup, and no longer", d)
	}
	// Never cleaned up: stray after the wait.
	if err := s.Put(ctx, earlier, []byte("PAR1 earlier run"), "application/octet-stream"); err != nil {
		t.Fatal(err)
	}
	r = mustVerify(t, s, Options{CleanupWait: 300 * time.Millisecond})
	wantFailure(t, r, CheckStrayObjects, earlier, "not listed in the manifest")
}

// The snapshots table's row of an incremental snapshot said mode full, and
// verify only looked for the row: the _latest views misreported the mode.
func TestSnapshotRowThatDisagreesWithTheManifestFails(t *testing.T) {
	t.Parallel()
	s, _ := localSink(t)
	w := newFixture(1, 10, 1).write(t, s)
	w.manifest.Mode = schema.SnapshotModeIncremental
	putManifest(t, s, w.manifest)
	row := snapshotRowOf(w.manifest)
	row.Mode = schema.SnapshotModeFull
	row.Bytes++
	row.DirectoryUsers = 0
	putSnapshotRow(t, s, w.manifest, row)

	r := mustVerify(t, s, Options{})
	key := snapshot.SnapshotRowKey(testDate, testRun)
	wantFailure(t, r, CheckSnapshotRow, key, `mode is "full", the manifest says "incremental"`)
	wantFailure(t, r, CheckSnapshotRow, key, "bytes is")
	wantFailure(t, r, CheckSnapshotRow, key, "rows_directory_users is 0, the manifest says 10")
	wantOnlyFailures(t, r, CheckSnapshotRow)
}

// A snapshots row that is not Parquet fails: the export writes it with
// parquetfile, so Athena could not read it either.
func TestUnreadableSnapshotRowFails(t *testing.T) {
	t.Parallel()
	s, _ := localSink(t)
	newFixture(1, 10, 1).write(t, s)
	key := snapshot.SnapshotRowKey(testDate, testRun)
	if err := s.Put(context.Background(), key, []byte("PAR1 row PAR1"), "application/vnd.apache.parquet"); err != nil {
		t.Fatal(err)
	}
	r := mustVerify(t, s, Options{})
	wantFailure(t, r, CheckSnapshotRow, key, "not a readable Parquet file")
	wantOnlyFailures(t, r, CheckSnapshotRow)
}
