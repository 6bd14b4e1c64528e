// Package snapshottest checks an exported snapshot against the WorkOS fake's
// dataset exactly: every file read back with a Parquet reader and checked
// against the manifest (bytes, rows, SHA-256), every ID once, every value
// equal. It is imported by tests only (pkg/export, internal/testenv/soak).
package snapshottest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/parquet-go/parquet-go"

	"github.com/dsync-export/dsync-export/internal/testenv/workostest"
	"github.com/dsync-export/dsync-export/pkg/objstore"
	"github.com/dsync-export/dsync-export/pkg/schema"
	"github.com/dsync-export/dsync-export/pkg/snapshot"
	"github.com/dsync-export/dsync-export/pkg/workos"
)

// Expected is the fake's dataset mapped through pkg/schema: the rows a perfect
// export contains.
type Expected struct {
	Dirs        []schema.Directory
	Users       []schema.DirectoryUser
	Groups      []schema.DirectoryGroup
	Memberships []schema.DirectoryGroupMembership
}

// Rows is the number of expected rows in all tables.
func (e Expected) Rows() int {
	return len(e.Dirs) + len(e.Users) + len(e.Groups) + len(e.Memberships)
}

// ExpectedRows maps the fake's whole dataset through pkg/schema with exported_at = at.
func ExpectedRows(fake *workostest.Server, at time.Time) Expected {
	var e Expected
	for _, d := range fake.Directories() {
		e.Dirs = append(e.Dirs, schema.FromDirectory(&d, at))
		for u := range fake.Users(d.ID) {
			e.Users = append(e.Users, schema.FromDirectoryUser(&u, at))
		}
		for g := range fake.Groups(d.ID) {
			e.Groups = append(e.Groups, schema.FromDirectoryGroup(&g, at))
		}
		for gid, uid := range fake.Memberships(d.ID) {
			e.Memberships = append(e.Memberships, schema.NewMembership(&d, gid, uid, at))
		}
	}
	return e
}

// ReadTable reads every file of a table listed by the manifest, checking each
// file's size, row count and SHA-256 against the manifest.
func ReadTable[T any](t testing.TB, dst objstore.Store, m *snapshot.Manifest, table string) []T {
	t.Helper()
	tm, ok := m.Tables[table]
	if !ok {
		t.Fatalf("manifest has no table %s", table)
	}
	var out []T
	for _, f := range tm.Files {
		b, err := dst.Get(context.Background(), f.Key)
		if err != nil {
			t.Fatalf("get %s: %v", f.Key, err)
		}
		if int64(len(b)) != f.Bytes {
			t.Errorf("%s: %d bytes, manifest says %d", f.Key, len(b), f.Bytes)
		}
		if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != f.SHA256 {
			t.Errorf("%s: sha256 %x, manifest says %s", f.Key, sum, f.SHA256)
		}
		rows, err := parquet.Read[T](bytes.NewReader(b), int64(len(b)))
		if err != nil {
			t.Fatalf("read %s: %v", f.Key, err)
		}
		if int64(len(rows)) != f.Rows {
			t.Errorf("%s: %d rows, manifest says %d", f.Key, len(rows), f.Rows)
		}
		out = append(out, rows...)
	}
	if int64(len(out)) != tm.Rows {
		t.Errorf("%s: %d rows, manifest says %d", table, len(out), tm.Rows)
	}
	return out
}

// SortByKey returns a copy of rows sorted by key.
func SortByKey[T any](rows []T, key func(T) string) []T {
	s := slices.Clone(rows)
	sort.SliceStable(s, func(i, j int) bool { return key(s[i]) < key(s[j]) })
	return s
}

// diffRows compares two row sets in key order. reflect.DeepEqual settles the
// usual case fast; go-cmp (slow under -race on tens of thousands of rows, but
// aware of time.Time.Equal) has the last word and writes the diff.
func diffRows[T any](want, got []T, key func(T) string) string {
	want, got = SortByKey(want, key), SortByKey(got, key)
	if reflect.DeepEqual(want, got) {
		return ""
	}
	return cmp.Diff(want, got)
}

// MembershipKey identifies a membership row.
func MembershipKey(m schema.DirectoryGroupMembership) string { return m.GroupID + "|" + m.UserID }

// CheckExact compares an exported snapshot with the fake's dataset, every ID
// once and every value equal, and returns the number of rows compared.
func CheckExact(t testing.TB, dst objstore.Store, m *snapshot.Manifest, want Expected) int {
	t.Helper()
	dirs := ReadTable[schema.Directory](t, dst, m, schema.TableDirectories)
	users := ReadTable[schema.DirectoryUser](t, dst, m, schema.TableDirectoryUsers)
	groups := ReadTable[schema.DirectoryGroup](t, dst, m, schema.TableDirectoryGroups)
	ms := ReadTable[schema.DirectoryGroupMembership](t, dst, m, schema.TableMemberships)
	if len(want.Users) == 0 || len(want.Memberships) == 0 {
		t.Fatal("the fake dataset is empty: the comparison would prove nothing")
	}
	if d := diffRows(want.Dirs, dirs, func(r schema.Directory) string { return r.ID }); d != "" {
		t.Errorf("directories differ (-want +got):\n%.3000s", d)
	}
	if d := diffRows(want.Users, users, func(r schema.DirectoryUser) string { return r.ID }); d != "" {
		t.Errorf("directory_users differ (-want +got):\n%.3000s", d)
	}
	if d := diffRows(want.Groups, groups, func(r schema.DirectoryGroup) string { return r.ID }); d != "" {
		t.Errorf("directory_groups differ (-want +got):\n%.3000s", d)
	}
	if d := diffRows(want.Memberships, ms, MembershipKey); d != "" {
		t.Errorf("memberships differ (-want +got):\n%.3000s", d)
	}
	return want.Rows()
}

// ListSnapshot lists every object in the snapshot's table partitions, sorted.
func ListSnapshot(t testing.TB, dst objstore.Store, date string) []string {
	t.Helper()
	var keys []string
	for _, tb := range schema.Tables() {
		objs, err := dst.List(context.Background(), snapshot.PartitionPrefix(tb.Name, date))
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			keys = append(keys, o.Key)
		}
	}
	sort.Strings(keys)
	return keys
}

// ReadManifest returns the committed manifest of date, or nil when there is none.
func ReadManifest(t testing.TB, dst objstore.Store, date string) *snapshot.Manifest {
	t.Helper()
	b, err := dst.Get(context.Background(), snapshot.ManifestKey(date))
	if errors.Is(err, objstore.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatalf("read manifest: %v", err)
	}
	m, err := snapshot.Unmarshal(b)
	if err != nil {
		t.Fatalf("manifest: %v", err)
	}
	return m
}

// CheckObjectsAreManifest fails unless the snapshot's partitions hold exactly
// the manifest's objects (no stray object, none missing).
func CheckObjectsAreManifest(t testing.TB, dst objstore.Store, m *snapshot.Manifest) {
	t.Helper()
	want := m.Keys()
	sort.Strings(want)
	stored := ListSnapshot(t, dst, m.SnapshotDate)
	if m.Events != nil {
		// The change log's files live in their events' date partitions:
		// every file there of the runs the manifest names must be listed.
		runs, parts := map[string]bool{}, map[string]bool{}
		for _, f := range m.Events.Files {
			runs[snapshot.RunOfKey(f.Key)] = true
			parts[f.Key[:strings.LastIndexByte(f.Key, '/')+1]] = true
		}
		for p := range parts {
			objs, err := dst.List(context.Background(), p)
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range objs {
				if runs[snapshot.RunOfKey(o.Key)] {
					stored = append(stored, o.Key)
				}
			}
		}
		sort.Strings(stored)
	}
	if d := cmp.Diff(want, stored); d != "" {
		t.Errorf("stored objects differ from the manifest (-manifest +stored):\n%s", d)
	}
}

// ReadEvents reads directory_events files, checking each against its
// manifest entry like ReadTable.
func ReadEvents(t testing.TB, dst objstore.Store, files []snapshot.File) []schema.DirectoryEvent {
	t.Helper()
	m := &snapshot.Manifest{Tables: map[string]snapshot.TableManifest{schema.TableEvents: {Files: files}}}
	for _, f := range files {
		tm := m.Tables[schema.TableEvents]
		tm.Rows += f.Rows
		m.Tables[schema.TableEvents] = tm
	}
	return ReadTable[schema.DirectoryEvent](t, dst, m, schema.TableEvents)
}

// LoggedEvents reads the directory_events files of every committed snapshot
// and returns the event ids in them, duplicates included. Every file of the
// table must be listed by a committed manifest.
func LoggedEvents(t testing.TB, dst objstore.Store) []string {
	t.Helper()
	ctx := context.Background()
	objs, err := dst.List(ctx, snapshot.ManifestsDir+"/")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	listed := map[string]bool{}
	for _, o := range objs {
		_, date, ok := snapshot.ParseManifestKey(o.Key)
		if !ok {
			continue
		}
		m := ReadManifest(t, dst, date)
		if m.Events == nil {
			continue
		}
		for _, f := range m.Events.Files {
			if listed[f.Key] {
				continue // a rerun of a date keeps that date's files
			}
			listed[f.Key] = true
			for _, e := range ReadEvents(t, dst, []snapshot.File{f}) {
				ids = append(ids, e.ID)
			}
		}
	}
	files, err := dst.List(ctx, schema.TableEvents+"/")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if !listed[f.Key] {
			t.Errorf("%s is in directory_events but no committed snapshot lists it", f.Key)
		}
	}
	return ids
}

// CheckEventsOnce checks that directory_events holds each of want exactly
// once, and nothing twice.
func CheckEventsOnce(t testing.TB, dst objstore.Store, want []workos.Event) {
	t.Helper()
	got := LoggedEvents(t, dst)
	slices.Sort(got)
	if uniq := slices.Compact(slices.Clone(got)); len(uniq) != len(got) {
		t.Errorf("directory_events holds %d duplicate events", len(got)-len(uniq))
	}
	have := make(map[string]bool, len(got))
	for _, id := range got {
		have[id] = true
	}
	missing := 0
	for _, e := range want {
		if !have[e.ID] {
			missing++
		}
	}
	if missing > 0 || len(want) == 0 {
		t.Errorf("directory_events misses %d of the fake's %d events", missing, len(want))
	}
}
