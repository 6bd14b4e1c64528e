package main

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/aws/aws-lambda-go/events"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dsync-export/dsync-export/pkg/objstore"
	"github.com/dsync-export/dsync-export/pkg/parquetfile"
	"github.com/dsync-export/dsync-export/pkg/schema"
	"github.com/dsync-export/dsync-export/pkg/snapshot"
	"github.com/dsync-export/dsync-export/pkg/verify"
	"github.com/dsync-export/dsync-export/pkg/version"
)

const testDate = "2026-11-28"

// testRun is the run id of the test snapshots; laterRun is a later run of the same date.
const (
	testRun  = "20261128T020000.000Z-0a1b2c"
	laterRun = "20261128T030000.000Z-0d0e0f"
)

var exportedAt = time.Date(2026, 11, 28, 2, 0, 0, 0, time.UTC)

// writeSnapshot writes a small valid snapshot of testDate (one directory, 3
// users, 2 groups, 3 memberships) to the folder dir.
func writeSnapshot(t *testing.T, dir string) {
	t.Helper()
	ctx := context.Background()
	s, err := objstore.Open(ctx, dir, objstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	m := &snapshot.Manifest{
		RunID:         testRun,
		FormatVersion: snapshot.FormatVersion, SnapshotDate: testDate, SnapshotTime: exportedAt,
		DsyncExportVersion: version.Version, SchemaVersion: schema.Version, Trigger: "test",
		Tables: map[string]snapshot.TableManifest{},
		Directories: []snapshot.DirectoryManifest{{ID: "directory_1", OrganizationID: "org_1", Status: snapshot.DirectoryOK,
			Users: 3, Groups: 2, Memberships: 3, MembershipRoute: snapshot.RouteByGroup}},
	}
	writeTable(t, s, m, schema.TableDirectories, []schema.Directory{{ID: "directory_1", OrganizationID: "org_1", Name: "D", State: "linked", CreatedAt: t0, UpdatedAt: t0, ExportedAt: exportedAt}})
	var users []schema.DirectoryUser
	for _, id := range []string{"directory_user_a", "directory_user_b", "directory_user_c"} {
		users = append(users, schema.DirectoryUser{ID: id, DirectoryID: "directory_1", OrganizationID: "org_1", State: "active", CreatedAt: t0, UpdatedAt: t0, ExportedAt: exportedAt})
	}
	writeTable(t, s, m, schema.TableDirectoryUsers, users)
	writeTable(t, s, m, schema.TableDirectoryGroups, []schema.DirectoryGroup{
		{ID: "directory_group_x", DirectoryID: "directory_1", OrganizationID: "org_1", Name: "X", CreatedAt: t0, UpdatedAt: t0, ExportedAt: exportedAt},
		{ID: "directory_group_y", DirectoryID: "directory_1", OrganizationID: "org_1", Name: "Y", CreatedAt: t0, UpdatedAt: t0, ExportedAt: exportedAt},
	})
	var members []schema.DirectoryGroupMembership
	for _, p := range [][2]string{{"directory_group_x", "directory_user_a"}, {"directory_group_x", "directory_user_b"}, {"directory_group_y", "directory_user_c"}} {
		members = append(members, schema.DirectoryGroupMembership{DirectoryID: "directory_1", OrganizationID: "org_1", GroupID: p[0], UserID: p[1], ExportedAt: exportedAt})
	}
	writeTable(t, s, m, schema.TableMemberships, members)
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, snapshot.ManifestKey(testDate), b, "application/json"); err != nil {
		t.Fatal(err)
	}
	// The export writes the snapshots table's row right after the manifest.
	row := schema.Snapshot{RunID: m.RunID, ExportedAt: m.SnapshotTime, CommittedAt: exportedAt, Mode: schema.SnapshotModeFull, Trigger: m.Trigger,
		Directories: 1, DirectoryUsers: 3, Groups: 2, Memberships: 3}
	for _, tm := range m.Tables {
		row.Files += int64(len(tm.Files))
		for _, f := range tm.Files {
			row.Bytes += f.Bytes
		}
	}
	w, err := parquetfile.NewWriter[schema.Snapshot](func(int) (io.WriteCloser, error) {
		return s.Create(ctx, snapshot.SnapshotRowKey(testDate, m.RunID), "application/vnd.apache.parquet")
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

func writeTable[T any](t *testing.T, s objstore.Store, m *snapshot.Manifest, table string, rows []T) {
	t.Helper()
	w, err := parquetfile.NewWriter[T](func(part int) (io.WriteCloser, error) {
		return s.Create(context.Background(), snapshot.PartKey(table, testDate, testRun, part), "application/vnd.apache.parquet")
	}, parquetfile.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rows); err != nil {
		t.Fatal(err)
	}
	parts, err := w.Close()
	if err != nil {
		t.Fatal(err)
	}
	tm := snapshot.TableManifest{}
	for _, p := range parts {
		tm.Files = append(tm.Files, snapshot.File{Key: snapshot.PartKey(table, testDate, testRun, p.Index), Bytes: p.Bytes, Rows: p.Rows, SHA256: p.SHA256})
		tm.Rows += p.Rows
	}
	m.Tables[table] = tm
}

// newTestHandler builds a handler on the folder dir from env (plus
// EXPORT_DESTINATION=dir unless set), printing to out.
func newTestHandler(t *testing.T, dir string, env map[string]string, out io.Writer) *handler {
	t.Helper()
	getenv := func(k string) string {
		if k == "EXPORT_DESTINATION" && env[k] == "" {
			return dir
		}
		return env[k]
	}
	h, err := newHandler(context.Background(), getenv, out, func(config) *slog.Logger { return slog.New(slog.DiscardHandler) })
	if err != nil {
		t.Fatal(err)
	}
	h.now = func() time.Time { return time.UnixMilli(1795000000000) }
	return h
}

// emfValue returns the SnapshotValid value of the EMF line in out, or -1.
func emfValue(t *testing.T, out string) int {
	t.Helper()
	for line := range strings.Lines(out) {
		if !strings.Contains(line, `"_aws"`) {
			continue
		}
		var v struct {
			AWS struct {
				Timestamp         int64
				CloudWatchMetrics []struct{ Namespace string }
			} `json:"_aws"`
			SnapshotValid int
		}
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("EMF line %q: %v", line, err)
		}
		if v.AWS.Timestamp <= 0 || len(v.AWS.CloudWatchMetrics) != 1 || v.AWS.CloudWatchMetrics[0].Namespace != "DsyncExport" {
			t.Errorf("EMF line = %s", line)
		}
		return v.SnapshotValid
	}
	return -1
}

func TestHandleValid(t *testing.T) {
	dir := t.TempDir()
	writeSnapshot(t, dir)
	var out bytes.Buffer
	h := newTestHandler(t, dir, nil, &out)
	rep, err := h.Handle(context.Background(), Input{SnapshotDate: testDate})
	if err != nil {
		t.Fatalf("Handle: %v\n%s", err, out.String())
	}
	if !rep.Valid || rep.SnapshotDate != testDate {
		t.Errorf("report = %+v", rep)
	}
	if got := emfValue(t, out.String()); got != 1 || !strings.Contains(out.String(), `"_aws":{"Timestamp":1795000000000,`) {
		t.Errorf("SnapshotValid = %d, want 1 at the handler's clock:\n%s", got, out.String())
	}
	// One JSON line per check, a summary, and the metric.
	if n := strings.Count(out.String(), "\n"); n != len(rep.Checks)+2 {
		t.Errorf("%d lines for %d checks:\n%s", n, len(rep.Checks), out.String())
	}
	// The snapshot is marked verified, naming its run: the next snapshot is
	// compared with it.
	b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(snapshot.VerifiedKey(testDate))))
	if err != nil {
		t.Fatalf("verified marker: %v", err)
	}
	var mark snapshot.Verified
	if err := json.Unmarshal(b, &mark); err != nil || mark.RunID != testRun || mark.SnapshotDate != testDate {
		t.Errorf("verified marker %s (%v), want run %s", b, err, testRun)
	}
}

func TestHandleInvalidFails(t *testing.T) {
	dir := t.TempDir()
	writeSnapshot(t, dir)
	stray := filepath.Join(dir, filepath.FromSlash(snapshot.PartKey("directory_users", testDate, laterRun, 1)))
	if err := os.WriteFile(stray, []byte("leftover"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	h := newTestHandler(t, dir, nil, &out)
	rep, err := h.Handle(context.Background(), Input{SnapshotDate: testDate})
	if err == nil || rep != nil {
		t.Fatalf("Handle = %v, %v; want an error", rep, err)
	}
	if !strings.Contains(err.Error(), "snapshot 2026-11-28 in "+dir+" is invalid: failed checks: stray_objects") {
		t.Errorf("err = %v", err)
	}
	if got := emfValue(t, out.String()); got != 0 {
		t.Errorf("SnapshotValid = %d, want 0", got)
	}
	if !strings.Contains(out.String(), "directory_users/dt=2026-11-28/"+laterRun+"-part-00001.parquet (8 bytes) is not listed in the manifest") {
		t.Errorf("report does not name the stray file:\n%s", out.String())
	}
	if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(snapshot.VerifiedKey(testDate)))); !os.IsNotExist(err) {
		t.Errorf("an invalid snapshot was marked verified (%v)", err)
	}
}

func TestHandleMissingManifest(t *testing.T) {
	var out bytes.Buffer
	h := newTestHandler(t, t.TempDir(), nil, &out)
	_, err := h.Handle(context.Background(), Input{SnapshotDate: "2026-11-27"})
	if err == nil || !strings.Contains(err.Error(), "failed checks: manifest,") {
		t.Errorf("err = %v", err)
	}
	if got := emfValue(t, out.String()); got != 0 {
		t.Errorf("SnapshotValid = %d, want 0", got)
	}
	if !strings.Contains(out.String(), "_manifests/dt=2026-11-27/manifest.json is missing") {
		t.Errorf("report:\n%s", out.String())
	}
}

// decodeStrict decodes b into an Input, refusing unknown fields.
func decodeStrict(b []byte) (Input, error) {
	var in Input
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	err := dec.Decode(&in)
	return in, err
}

// TestEventFiles decodes the events the function is invoked with (the same
// files feed sam local invoke) strictly, and round-trips them.
func TestEventFiles(t *testing.T) {
	for _, tc := range []struct {
		file, date string
	}{
		{"../../events/manifest-created.json", "2026-11-28"},
		{"../../events/verify-manual.json", "2026-11-28"},
		{"testdata/manifest-created-versioned.json", "2026-11-28"},
	} {
		t.Run(filepath.Base(tc.file), func(t *testing.T) {
			b, err := os.ReadFile(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			in, err := decodeStrict(b)
			if err != nil {
				t.Fatalf("%s does not decode into Input: %v", tc.file, err)
			}
			again, err := json.Marshal(in)
			if err != nil {
				t.Fatal(err)
			}
			// Every field of the file survives a round trip (the embedded
			// CloudWatchEvent adds its empty fields, which carry nothing).
			var want, got map[string]any
			if err := json.Unmarshal(b, &want); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(again, &got); err != nil {
				t.Fatal(err)
			}
			for k := range got {
				if _, inFile := want[k]; !inFile {
					delete(got, k)
				}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("round trip (-file +re-encoded):\n%s", diff)
			}
			h := &handler{cfg: config{Destination: "s3://dsync-export-local/workos", Bucket: "dsync-export-local", Prefix: "workos"}}
			date, err := h.resolve(in)
			if err != nil || date != tc.date {
				t.Errorf("resolve = %q, %v; want %s", date, err, tc.date)
			}
		})
	}
}

// The export's manual event carries export options; Lambda decodes
// leniently, so it verifies that date too.
func TestExportManualEventAccepted(t *testing.T) {
	b, err := os.ReadFile("../../events/manual.json")
	if err != nil {
		t.Fatal(err)
	}
	var in Input
	if err := json.Unmarshal(b, &in); err != nil {
		t.Fatal(err)
	}
	h := &handler{cfg: config{Destination: "/tmp/x"}}
	if date, err := h.resolve(in); err != nil || date != "2026-11-28" {
		t.Errorf("resolve = %q, %v", date, err)
	}
}

func s3Event(bucket, key string) Input {
	detail, err := json.Marshal(S3ObjectDetail{Bucket: S3Bucket{Name: bucket}, Object: S3Object{Key: key}})
	if err != nil {
		panic(err)
	}
	return Input{CloudWatchEvent: events.CloudWatchEvent{Version: "0", Source: "aws.s3", DetailType: "Object Created", Detail: detail}}
}

func TestResolve(t *testing.T) {
	s3h := &handler{cfg: config{Destination: "s3://exports/workos/dsync", Bucket: "exports", Prefix: "workos/dsync"}}
	rooth := &handler{cfg: config{Destination: "s3://exports", Bucket: "exports"}}
	localh := &handler{cfg: config{Destination: "/data/out"}}
	for name, tc := range map[string]struct {
		h    *handler
		in   Input
		date string // or want, an error substring
		want string
	}{
		"manual":             {s3h, Input{SnapshotDate: "2026-02-28"}, "2026-02-28", ""},
		"manual bad date":    {s3h, Input{SnapshotDate: "2026-02-30"}, "", "snapshot_date: snapshot: date \"2026-02-30\" is not a calendar date"},
		"event":              {s3h, s3Event("exports", "workos/dsync/_manifests/dt=2026-11-28/manifest.json"), "2026-11-28", ""},
		"event url-encoded":  {s3h, s3Event("exports", "workos/dsync/_manifests/dt%3D2026-11-28/manifest.json"), "2026-11-28", ""},
		"event bucket root":  {rooth, s3Event("exports", "_manifests/dt=2026-11-28/manifest.json"), "2026-11-28", ""},
		"other bucket":       {s3h, s3Event("other", "workos/dsync/_manifests/dt=2026-11-28/manifest.json"), "", `the event is for bucket "other" but EXPORT_DESTINATION is s3://exports/workos/dsync`},
		"other prefix":       {s3h, s3Event("exports", "staging/_manifests/dt=2026-11-28/manifest.json"), "", `is under prefix "staging" but EXPORT_DESTINATION is s3://exports/workos/dsync`},
		"not a manifest":     {s3h, s3Event("exports", "workos/dsync/directory_users/dt=2026-11-28/part-00000.parquet"), "", "is not a manifest"},
		"local destination":  {localh, s3Event("exports", "_manifests/dt=2026-11-28/manifest.json"), "", "not an S3 destination"},
		"both":               {s3h, func() Input { in := s3Event("exports", "x"); in.SnapshotDate = "2026-11-28"; return in }(), "", "both snapshot_date and an S3 event"},
		"neither":            {s3h, Input{}, "", `send {"snapshot_date":"YYYY-MM-DD"}`},
		"scheduled event":    {s3h, Input{CloudWatchEvent: events.CloudWatchEvent{Source: "aws.events", DetailType: "Scheduled Event"}}, "", `source "aws.events" and detail-type "Scheduled Event"`},
		"created w/o detail": {s3h, Input{CloudWatchEvent: events.CloudWatchEvent{Source: "aws.s3", DetailType: "Object Created"}}, "", "want an S3"},
	} {
		t.Run(name, func(t *testing.T) {
			date, err := tc.h.resolve(tc.in)
			if tc.want == "" {
				if err != nil || date != tc.date {
					t.Errorf("resolve = %q, %v; want %s", date, err, tc.date)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "verify: ") {
				t.Errorf("resolve = %q, %v; want an error containing %q", date, err, tc.want)
			}
		})
	}
}

// countingKeys is a keySource that counts Invalidate calls.
type countingKeys struct {
	key         string
	invalidated atomic.Int32
}

func (k *countingKeys) APIKey(context.Context) (string, error) { return k.key, nil }
func (k *countingKeys) Invalidate()                            { k.invalidated.Add(1) }

// A WorkOS 401 while sampling is not a verdict on the snapshot: the
// invocation fails without a metric, and the cached key is dropped so a
// rotated secret is re-read.
func TestHandleSamplingUnauthorized(t *testing.T) {
	dir := t.TempDir()
	writeSnapshot(t, dir)
	var calls atomic.Int32
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if r.Header.Get("Authorization") != "Bearer sk_test_verify" {
			t.Errorf("Authorization = %q", r.Header.Get("Authorization"))
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"message":"Unauthorized"}`))
	}))
	defer api.Close()
	var out bytes.Buffer
	h := newTestHandler(t, dir, map[string]string{"VERIFY_SAMPLE": "2", "WORKOS_API_KEY": "sk_test_verify", "WORKOS_BASE_URL": api.URL + "/"}, &out)
	keys := &countingKeys{key: "sk_test_verify"}
	h.keys = keys
	_, err := h.Handle(context.Background(), Input{SnapshotDate: testDate})
	if err == nil || !strings.Contains(err.Error(), "could not be verified") || !strings.Contains(err.Error(), "401") {
		t.Errorf("err = %v", err)
	}
	if strings.Contains(err.Error(), "sk_test_verify") {
		t.Errorf("the error shows the API key: %v", err)
	}
	if calls.Load() == 0 || keys.invalidated.Load() != 1 {
		t.Errorf("%d WorkOS calls, %d invalidations", calls.Load(), keys.invalidated.Load())
	}
	if got := emfValue(t, out.String()); got != -1 {
		t.Errorf("a metric was printed for an unverified snapshot:\n%s", out.String())
	}
}

func TestWorkOSClientCachedPerKey(t *testing.T) {
	keys := &countingKeys{key: "sk_test_one"}
	h := &handler{cfg: config{Sample: 1, BaseURL: "https://api.workos.com/"}, keys: keys, log: slog.New(slog.DiscardHandler)}
	a, err := h.workosClient(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := h.workosClient(context.Background())
	keys.key = "sk_test_two"
	c, _ := h.workosClient(context.Background())
	if a != b || a == c {
		t.Errorf("clients: same key %v, rotated key %v", a == b, a != c)
	}
}

var _ verify.Source = objstore.Store(nil)

// readMarker decodes the marker at key in the folder dir into v; false when
// there is none.
func readMarker(t *testing.T, dir, key string, v any) bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(key)))
	if os.IsNotExist(err) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	return true
}

// putMarker writes v as JSON at key in the folder dir.
func putMarker(t *testing.T, dir, key string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, filepath.FromSlash(key))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// A snapshot that failed verify became the next day's base: nothing recorded
// the failure where the export could see it. The rejected marker names the
// run and the failed checks; a verified marker of the same run (verified
// before, failing now) is removed, one of another run is left alone.
func TestFailedSnapshotWritesTheRejectedMarker(t *testing.T) {
	for _, tc := range []struct {
		name       string
		verifiedBy string // the run of a verified marker already there
		keep       bool
	}{{"no verified marker", "", false}, {"verified before", testRun, false}, {"another run verified", laterRun, true}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeSnapshot(t, dir)
			if tc.verifiedBy != "" {
				putMarker(t, dir, snapshot.VerifiedKey(testDate), snapshot.Verified{SnapshotDate: testDate, RunID: tc.verifiedBy})
			}
			stray := filepath.Join(dir, filepath.FromSlash(snapshot.PartKey("directory_users", testDate, laterRun, 1)))
			if err := os.WriteFile(stray, []byte("leftover"), 0o644); err != nil {
				t.Fatal(err)
			}
			h := newTestHandler(t, dir, nil, io.Discard)
			if _, err := h.Handle(context.Background(), Input{SnapshotDate: testDate}); err == nil {
				t.Fatal("Handle: no error for an invalid snapshot")
			}
			var rej snapshot.Rejected
			if !readMarker(t, dir, snapshot.RejectedKey(testDate), &rej) {
				t.Fatal("no rejected marker")
			}
			want := snapshot.Rejected{SnapshotDate: testDate, RunID: testRun, RejectedAt: h.now().UTC(), Checks: []string{verify.CheckStrayObjects}}
			if diff := cmp.Diff(want, rej); diff != "" {
				t.Errorf("rejected marker (-want +got):\n%s", diff)
			}
			var ver snapshot.Verified
			if got := readMarker(t, dir, snapshot.VerifiedKey(testDate), &ver); got != tc.keep || (got && ver.RunID != tc.verifiedBy) {
				t.Errorf("verified marker there: %v (%+v), want %v", got, ver, tc.keep)
			}
		})
	}
}

// A failure about one directory names it in the rejected marker: the export
// walks that directory in full rather than every one.
func TestRejectedMarkerNamesTheFailingDirectories(t *testing.T) {
	dir := t.TempDir()
	writeSnapshot(t, dir)
	ctx := context.Background()
	s, err := objstore.Open(ctx, dir, objstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := s.Get(ctx, snapshot.ManifestKey(testDate))
	if err != nil {
		t.Fatal(err)
	}
	m, err := snapshot.Unmarshal(raw)
	if err != nil {
		t.Fatal(err)
	}
	m.Directories[0].Users = 2 // the files hold 3
	if raw, err = m.Marshal(); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, snapshot.ManifestKey(testDate), raw, "application/json"); err != nil {
		t.Fatal(err)
	}
	h := newTestHandler(t, dir, nil, io.Discard)
	if _, err := h.Handle(ctx, Input{SnapshotDate: testDate}); err == nil {
		t.Fatal("Handle: no error for an invalid snapshot")
	}
	var rej snapshot.Rejected
	if !readMarker(t, dir, snapshot.RejectedKey(testDate), &rej) {
		t.Fatal("no rejected marker")
	}
	if strings.Join(rej.Checks, ",") != verify.CheckDirectoryCounts || strings.Join(rej.Directories, ",") != "directory_1" {
		t.Errorf("rejected marker %+v, want check %s and directory directory_1", rej, verify.CheckDirectoryCounts)
	}
}

// A rerun (or a re-verification) that passes clears the rejection, and marks
// the snapshot verified.
func TestPassingRerunRemovesTheRejectedMarker(t *testing.T) {
	dir := t.TempDir()
	writeSnapshot(t, dir)
	putMarker(t, dir, snapshot.RejectedKey(testDate), snapshot.Rejected{SnapshotDate: testDate, RunID: laterRun, Checks: []string{verify.CheckChecksums}})
	h := newTestHandler(t, dir, nil, io.Discard)
	if _, err := h.Handle(context.Background(), Input{SnapshotDate: testDate}); err != nil {
		t.Fatalf("Handle: %v", err)
	}
	var rej snapshot.Rejected
	if readMarker(t, dir, snapshot.RejectedKey(testDate), &rej) {
		t.Errorf("the rejected marker %+v is still there", rej)
	}
	var ver snapshot.Verified
	if !readMarker(t, dir, snapshot.VerifiedKey(testDate), &ver) || ver.RunID != testRun {
		t.Errorf("verified marker %+v, want run %s", ver, testRun)
	}
}
