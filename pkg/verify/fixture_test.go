package verify

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dsync-export/dsync-export/pkg/objstore"
	"github.com/dsync-export/dsync-export/pkg/parquetfile"
	"github.com/dsync-export/dsync-export/pkg/schema"
	"github.com/dsync-export/dsync-export/pkg/snapshot"
	"github.com/dsync-export/dsync-export/pkg/version"
)

const testDate = "2026-11-28"

// testRun is the run id of the test snapshots; laterRun is a later run of the same date.
const (
	testRun  = "20261128T020000.000Z-0a1b2c"
	laterRun = "20261128T030000.000Z-0d0e0f"
)

var exportedAt = time.Date(2026, 11, 28, 2, 0, 0, 0, time.UTC)

// fixture is the content of a snapshot, written with pkg/parquetfile's Writer the
// way the export writes it. Tests change it before write to make it bad.
type fixture struct {
	dirs    []schema.Directory
	users   []schema.DirectoryUser
	groups  []schema.DirectoryGroup
	members []schema.DirectoryGroupMembership
	// events are the run's slice of the change log, written one file per
	// event date in the order given; nil: the manifest has no events record.
	events []schema.DirectoryEvent
	// writer options; a small MaxFileBytes gives several parts per table.
	opts parquetfile.Options
}

// newFixture builds nDirs directories (two per organization) with
// usersPerDir users and groupsPerDir groups each; user i of a directory is a
// member of group i%groupsPerDir, and of group (i+1)%groupsPerDir too when i
// is even.
func newFixture(nDirs, usersPerDir, groupsPerDir int) *fixture {
	fx := &fixture{}
	t0 := time.Date(2025, 1, 15, 12, 0, 0, 0, time.UTC)
	for d := range nDirs {
		dirID := fmt.Sprintf("directory_%02d", d)
		org := fmt.Sprintf("org_%02d", d/2)
		fx.dirs = append(fx.dirs, schema.Directory{
			ID: dirID, OrganizationID: org, ExternalKey: "ext_" + dirID, Type: "okta scim v2.0",
			State: "linked", Name: "Directory " + dirID, CreatedAt: t0, UpdatedAt: t0, ExportedAt: exportedAt,
		})
		for g := range groupsPerDir {
			fx.groups = append(fx.groups, schema.DirectoryGroup{
				ID: fmt.Sprintf("directory_group_%02d_%04d", d, g), IdpID: fmt.Sprintf("idp-g-%d", g),
				DirectoryID: dirID, OrganizationID: org, Name: fmt.Sprintf("Group %d", g),
				CreatedAt: t0, UpdatedAt: t0, ExportedAt: exportedAt,
			})
		}
		for u := range usersPerDir {
			userID := fmt.Sprintf("directory_user_%02d_%06d", d, u)
			email := fmt.Sprintf("user%d@d%d.example.com", u, d)
			fx.users = append(fx.users, schema.DirectoryUser{
				ID: userID, DirectoryID: dirID, OrganizationID: org, IdpID: fmt.Sprintf("idp-u-%d", u),
				Email: &email, State: "active", CreatedAt: t0, UpdatedAt: t0.Add(time.Duration(u) * time.Second),
				ExportedAt: exportedAt,
			})
			if groupsPerDir > 0 {
				gs := []int{u % groupsPerDir}
				if u%2 == 0 && groupsPerDir > 1 {
					gs = append(gs, (u+1)%groupsPerDir)
				}
				for _, g := range gs {
					fx.members = append(fx.members, schema.DirectoryGroupMembership{
						DirectoryID: dirID, OrganizationID: org,
						GroupID: fmt.Sprintf("directory_group_%02d_%04d", d, g), UserID: userID, ExportedAt: exportedAt,
					})
				}
			}
		}
	}
	fx.events = newEvents(6)
	return fx
}

// newEvents returns n events in cursor order, over the snapshot date and the
// day before, as the first slice of the change log.
func newEvents(n int) []schema.DirectoryEvent {
	var events []schema.DirectoryEvent
	t0 := exportedAt.Add(-26 * time.Hour)
	for i := range n {
		dir := "directory_00"
		events = append(events, schema.DirectoryEvent{
			ID: fmt.Sprintf("event_01JD%06d", i+1), Event: "dsync.user.updated",
			CreatedAt: t0.Add(time.Duration(i) * 5 * time.Hour), DirectoryID: &dir,
			ObjectID: fmt.Sprintf("directory_user_00_%06d", i), ObjectType: "directory_user",
			Data: `{"object":"directory_user"}`, SnapshotDate: testDate,
		})
	}
	return events
}

// withAttributes gives every user a custom_attributes JSON of about n bytes,
// so that the id columns are a small part of the file, as in real snapshots.
func (fx *fixture) withAttributes(n int) *fixture {
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := range fx.users {
		notes := make([]byte, n/2)
		for j := range notes {
			notes[j] = byte(rnd.Uint32())
		}
		a := fmt.Sprintf(`{"department":"Engineering %d","cost_center":"%d","notes":"%x"}`, i%17, i, notes)
		fx.users[i].CustomAttributes = &a
	}
	return fx
}

// written describes a written snapshot.
type written struct {
	manifest *snapshot.Manifest
	keys     map[string][]string // table -> part keys
}

// write writes the fixture as the snapshot of testDate to s and returns the
// manifest it committed.
func (fx *fixture) write(t testing.TB, s objstore.Store) *written {
	t.Helper()
	ctx := context.Background()
	m := &snapshot.Manifest{
		RunID:         testRun,
		FormatVersion: snapshot.FormatVersion, SnapshotDate: testDate, SnapshotTime: exportedAt,
		StartedAt: exportedAt, FinishedAt: exportedAt.Add(time.Minute),
		DsyncExportVersion: version.Version, SchemaVersion: schema.Version, Trigger: "test",
		Tables: map[string]snapshot.TableManifest{},
	}
	w := &written{manifest: m, keys: map[string][]string{}}
	writeTable(t, ctx, s, fx.opts, schema.TableDirectories, fx.dirs, w)
	writeTable(t, ctx, s, fx.opts, schema.TableDirectoryUsers, fx.users, w)
	writeTable(t, ctx, s, fx.opts, schema.TableDirectoryGroups, fx.groups, w)
	writeTable(t, ctx, s, fx.opts, schema.TableMemberships, fx.members, w)
	if fx.events != nil {
		writeEvents(t, ctx, s, fx.opts, fx.events, w)
	}

	counts := map[string]*snapshot.DirectoryManifest{}
	for _, d := range fx.dirs {
		dm := &snapshot.DirectoryManifest{ID: d.ID, OrganizationID: d.OrganizationID, Name: d.Name, Status: snapshot.DirectoryOK, MembershipRoute: snapshot.RouteByGroup}
		counts[d.ID] = dm
	}
	get := func(id string) *snapshot.DirectoryManifest {
		if counts[id] == nil { // a row of an unknown directory: count it anyway
			counts[id] = &snapshot.DirectoryManifest{ID: id, Status: snapshot.DirectoryOK}
		}
		return counts[id]
	}
	for _, u := range fx.users {
		get(u.DirectoryID).Users++
	}
	for _, g := range fx.groups {
		get(g.DirectoryID).Groups++
	}
	for _, mb := range fx.members {
		get(mb.DirectoryID).Memberships++
	}
	for _, d := range fx.dirs {
		m.Directories = append(m.Directories, *counts[d.ID])
	}
	putManifest(t, s, m)
	return w
}

func writeTable[T any](t testing.TB, ctx context.Context, s objstore.Store, opts parquetfile.Options, table string, rows []T, w *written) {
	t.Helper()
	wr, err := parquetfile.NewWriter[T](func(part int) (io.WriteCloser, error) {
		return s.Create(ctx, snapshot.PartKey(table, testDate, testRun, part), "application/vnd.apache.parquet")
	}, opts)
	if err != nil {
		t.Fatal(err)
	}
	for len(rows) > 0 {
		n := min(len(rows), 100)
		if err := wr.Write(rows[:n]); err != nil {
			t.Fatal(err)
		}
		rows = rows[n:]
	}
	parts, err := wr.Close()
	if err != nil {
		t.Fatal(err)
	}
	var tm snapshot.TableManifest
	for _, p := range parts {
		key := snapshot.PartKey(table, testDate, testRun, p.Index)
		tm.Files = append(tm.Files, snapshot.File{Key: key, Bytes: p.Bytes, Rows: p.Rows, SHA256: p.SHA256})
		tm.Rows += p.Rows
		w.keys[table] = append(w.keys[table], key)
	}
	w.manifest.Tables[table] = tm
}

// writeEvents writes events into the directory_events partitions of their
// dates, in the order given, and records them as the run's slice of the
// change log: the first (a restart), read through the greatest id.
func writeEvents(t testing.TB, ctx context.Context, s objstore.Store, opts parquetfile.Options, events []schema.DirectoryEvent, w *written) {
	t.Helper()
	e := &snapshot.EventsManifest{
		Restart: "first", RangeStart: exportedAt.Add(-30 * 24 * time.Hour),
		From: snapshot.EventCursor{CheckedAt: exportedAt.Add(-30 * 24 * time.Hour)},
	}
	byDate := map[string][]schema.DirectoryEvent{}
	var dates []string
	for _, ev := range events {
		d := ev.CreatedAt.UTC().Format(schema.PartitionFormat)
		if byDate[d] == nil {
			dates = append(dates, d)
		}
		byDate[d] = append(byDate[d], ev)
		if ev.ID > e.Through.After {
			e.Through = snapshot.EventCursor{After: ev.ID, AfterTime: ev.CreatedAt, CheckedAt: exportedAt}
		}
	}
	for _, d := range dates {
		wr, err := parquetfile.NewWriter[schema.DirectoryEvent](func(part int) (io.WriteCloser, error) {
			return s.Create(ctx, snapshot.PartKey(schema.TableEvents, d, testRun, part), "application/vnd.apache.parquet")
		}, opts)
		if err != nil {
			t.Fatal(err)
		}
		if err := wr.Write(byDate[d]); err != nil {
			t.Fatal(err)
		}
		parts, err := wr.Close()
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range parts {
			key := snapshot.PartKey(schema.TableEvents, d, testRun, p.Index)
			e.Files = append(e.Files, snapshot.File{Key: key, Bytes: p.Bytes, Rows: p.Rows, SHA256: p.SHA256})
			e.Events += p.Rows
			w.keys[schema.TableEvents] = append(w.keys[schema.TableEvents], key)
		}
	}
	w.manifest.Events = e
}

func putManifest(t testing.TB, s objstore.Store, m *snapshot.Manifest) {
	t.Helper()
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(context.Background(), snapshot.ManifestKey(testDate), b, "application/json"); err != nil {
		t.Fatal(err)
	}
	putSnapshotRow(t, s, m, snapshotRowOf(m))
}

// snapshotRowOf returns the snapshots table's row that the export writes for
// the committed manifest m.
func snapshotRowOf(m *snapshot.Manifest) schema.Snapshot {
	row := schema.Snapshot{
		RunID: m.RunID, ExportedAt: m.SnapshotTime, CommittedAt: m.FinishedAt,
		Mode: cmp.Or(m.Mode, schema.SnapshotModeFull), Trigger: m.Trigger, Demo: m.Demo,
		Directories:    m.Tables[schema.TableDirectories].Rows,
		DirectoryUsers: m.Tables[schema.TableDirectoryUsers].Rows,
		Groups:         m.Tables[schema.TableDirectoryGroups].Rows,
		Memberships:    m.Tables[schema.TableMemberships].Rows,
	}
	for _, t := range m.Tables {
		row.Files += int64(len(t.Files))
		for _, f := range t.Files {
			row.Bytes += f.Bytes
		}
	}
	return row
}

// putSnapshotRow writes row as the snapshots table's row of m's run, which
// the export writes right after the manifest.
func putSnapshotRow(t testing.TB, s objstore.Store, m *snapshot.Manifest, row schema.Snapshot) {
	t.Helper()
	if m.RunID == "" {
		return
	}
	w, err := parquetfile.NewWriter[schema.Snapshot](func(int) (io.WriteCloser, error) {
		return s.Create(context.Background(), snapshot.SnapshotRowKey(m.SnapshotDate, m.RunID), "application/vnd.apache.parquet")
	}, parquetfile.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write([]schema.Snapshot{row}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// localSink opens a sink on a new temporary folder and returns it with the
// folder, for tests that tamper with files directly.
func localSink(t testing.TB) (objstore.Store, string) {
	t.Helper()
	dir := t.TempDir()
	s, err := objstore.Open(context.Background(), dir, objstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s, dir
}

func filePath(root, key string) string { return filepath.Join(root, filepath.FromSlash(key)) }

// mustVerify runs Verify and fails the test on an error.
func mustVerify(t testing.TB, s Source, opts Options) *Report {
	t.Helper()
	if opts.CleanupWait == 0 {
		opts.CleanupWait = 100 * time.Millisecond // the fixtures have no cleanup in flight
	}
	r, err := Verify(context.Background(), s, testDate, opts)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if testing.Verbose() {
		t.Logf("report:\n%s", r.JSONLines())
	}
	return r
}

// wantFailure asserts that r is invalid, that check failed, and that one of
// its errors contains every one of parts (the object, column or ID at fault).
func wantFailure(t testing.TB, r *Report, check string, parts ...string) {
	t.Helper()
	if r.Valid {
		t.Fatalf("report is valid, want %s to fail:\n%s", check, r.JSONLines())
	}
	c, ok := r.Check(check)
	if !ok {
		t.Fatalf("no %s check in the report:\n%s", check, r.JSONLines())
	}
	if c.OK || c.Skipped {
		t.Fatalf("%s: ok=%v skipped=%v, want a failure:\n%s", check, c.OK, c.Skipped, r.JSONLines())
	}
	for _, e := range c.Errors {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(e, p)
		}
		if all {
			return
		}
	}
	t.Fatalf("%s: no error mentions all of %q; errors:\n%s", check, parts, strings.Join(c.Errors, "\n"))
}

// wantOnlyFailures asserts that exactly the named checks failed (skipped
// checks count as failed).
func wantOnlyFailures(t testing.TB, r *Report, names ...string) {
	t.Helper()
	got := r.Failed()
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Fatalf("failed checks = %q, want %q:\n%s", got, names, r.JSONLines())
	}
}

// rewrite replaces the bytes of the local file of key with f(old).
func rewrite(t testing.TB, root, key string, f func([]byte) []byte) {
	t.Helper()
	p := filePath(root, key)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, f(b), 0o644); err != nil {
		t.Fatal(err)
	}
}
