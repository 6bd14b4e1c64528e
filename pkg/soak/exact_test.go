package soak_test

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

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/google/go-cmp/cmp"
	"github.com/parquet-go/parquet-go"

	"github.com/dsync-export/dsync-export/pkg/schema"
	"github.com/dsync-export/dsync-export/pkg/sink"
	"github.com/dsync-export/dsync-export/pkg/snapshot"
	"github.com/dsync-export/dsync-export/pkg/verify"
	"github.com/dsync-export/dsync-export/pkg/workos/workostest"
)

// The exact comparison of a snapshot with the fake's dataset, after the one in
// pkg/export/export_test.go (checkExact, expectedRows).

// expected is the fake's dataset mapped through pkg/schema: the rows a perfect
// export contains.
type expected struct {
	dirs        []schema.Directory
	users       []schema.DirectoryUser
	groups      []schema.DirectoryGroup
	memberships []schema.DirectoryGroupMembership
}

func (e expected) rows() int {
	return len(e.dirs) + len(e.users) + len(e.groups) + len(e.memberships)
}

func expectedRows(fake *workostest.Server, at time.Time) expected {
	var e expected
	for _, d := range fake.Directories() {
		e.dirs = append(e.dirs, schema.FromDirectory(&d, at))
		for u := range fake.Users(d.ID) {
			e.users = append(e.users, schema.FromDirectoryUser(&u, at))
		}
		for g := range fake.Groups(d.ID) {
			e.groups = append(e.groups, schema.FromDirectoryGroup(&g, at))
		}
		for gid, uid := range fake.Memberships(d.ID) {
			e.memberships = append(e.memberships, schema.DirectoryGroupMembership{
				DirectoryID: d.ID, OrganizationID: d.OrganizationID, GroupID: gid, UserID: uid, ExportedAt: at,
			})
		}
	}
	return e
}

// readTable reads every file of a table listed by the manifest, checking each
// file's size, row count and SHA-256 against the manifest.
func readTable[T any](t *testing.T, dst sink.Sink, m *snapshot.Manifest, table string) []T {
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

func sortByKey[T any](rows []T, key func(T) string) []T {
	s := slices.Clone(rows)
	sort.SliceStable(s, func(i, j int) bool { return key(s[i]) < key(s[j]) })
	return s
}

// diffRows compares two row sets in key order. reflect.DeepEqual settles the
// usual case fast; go-cmp (slow under -race on tens of thousands of rows, but
// aware of time.Time.Equal) has the last word and writes the diff.
func diffRows[T any](want, got []T, key func(T) string) string {
	want, got = sortByKey(want, key), sortByKey(got, key)
	if reflect.DeepEqual(want, got) {
		return ""
	}
	return cmp.Diff(want, got)
}

func memKey(m schema.DirectoryGroupMembership) string { return m.GroupID + "|" + m.UserID }

// checkExact compares an exported snapshot with the fake's dataset, every ID
// once and every value equal, and returns the number of rows compared.
func checkExact(t *testing.T, dst sink.Sink, m *snapshot.Manifest, want expected) int {
	t.Helper()
	dirs := readTable[schema.Directory](t, dst, m, schema.TableDirectories)
	users := readTable[schema.DirectoryUser](t, dst, m, schema.TableDirectoryUsers)
	groups := readTable[schema.DirectoryGroup](t, dst, m, schema.TableDirectoryGroups)
	ms := readTable[schema.DirectoryGroupMembership](t, dst, m, schema.TableMemberships)
	if len(want.users) == 0 || len(want.memberships) == 0 {
		t.Fatal("the fake dataset is empty: the comparison would prove nothing")
	}
	if d := diffRows(want.dirs, dirs, func(r schema.Directory) string { return r.ID }); d != "" {
		t.Errorf("directories differ (-want +got):\n%.3000s", d)
	}
	if d := diffRows(want.users, users, func(r schema.DirectoryUser) string { return r.ID }); d != "" {
		t.Errorf("directory_users differ (-want +got):\n%.3000s", d)
	}
	if d := diffRows(want.groups, groups, func(r schema.DirectoryGroup) string { return r.ID }); d != "" {
		t.Errorf("directory_groups differ (-want +got):\n%.3000s", d)
	}
	if d := diffRows(want.memberships, ms, memKey); d != "" {
		t.Errorf("memberships differ (-want +got):\n%.3000s", d)
	}
	return want.rows()
}

// listSnapshot lists every object in the snapshot's table partitions, sorted.
func listSnapshot(t *testing.T, dst sink.Sink, date string) []string {
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

// readManifest returns the committed manifest of date, or nil when there is none.
func readManifest(t *testing.T, dst sink.Sink, date string) *snapshot.Manifest {
	t.Helper()
	b, err := dst.Get(context.Background(), snapshot.ManifestKey(date))
	if errors.Is(err, sink.ErrNotExist) {
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

// checkObjectsAreManifest fails unless the snapshot's partitions hold exactly
// the manifest's objects (no stray object, none missing).
func checkObjectsAreManifest(t *testing.T, dst sink.Sink, m *snapshot.Manifest) {
	t.Helper()
	want := m.Keys()
	sort.Strings(want)
	if d := cmp.Diff(want, listSnapshot(t, dst, m.SnapshotDate)); d != "" {
		t.Errorf("stored objects differ from the manifest (-manifest +stored):\n%s", d)
	}
}

// checkValid runs pkg/verify on the snapshot and fails unless it is valid.
func checkValid(t *testing.T, ctx context.Context, dst sink.Sink, date string, opts verify.Options) *verify.Report {
	t.Helper()
	rep, err := verify.Verify(ctx, dst, date, opts)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if !rep.Valid {
		t.Errorf("verify: snapshot %s is not valid: failed %v", date, rep.Failed())
		for _, c := range rep.Checks {
			if !c.OK {
				t.Errorf("  %s: %s; %s", c.Name, c.Detail, strings.Join(c.Errors, "; "))
			}
		}
	}
	return rep
}

// checkUncommitted fails unless verify reports the snapshot of date invalid
// because its manifest is missing: an interrupted export must never look
// committed.
func checkUncommitted(t *testing.T, ctx context.Context, dst sink.Sink, date string) {
	t.Helper()
	if m := readManifest(t, dst, date); m != nil {
		t.Fatalf("a manifest was written by an export that did not finish (written at %s)", m.FinishedAt)
	}
	rep, err := verify.Verify(ctx, dst, date, verify.Options{})
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if c, ok := rep.Check(verify.CheckManifest); rep.Valid || !ok || c.OK {
		t.Errorf("verify of an uncommitted snapshot: valid %v, manifest check %+v: want invalid because the manifest is missing", rep.Valid, c)
	}
}

// multipartUploads returns the keys of the multipart uploads in progress in
// bucket: a dead or aborted export must not leave any behind (they are billed
// storage that no listing shows).
func multipartUploads(t *testing.T, ctx context.Context, client *s3.Client, bucket string) []string {
	t.Helper()
	out, err := client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatalf("list multipart uploads of %s: %v", bucket, err)
	}
	var keys []string
	for _, u := range out.Uploads {
		keys = append(keys, aws.ToString(u.Key))
	}
	return keys
}
