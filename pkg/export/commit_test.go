package export_test

import (
	"bytes"
	"context"
	"errors"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/parquet-go/parquet-go"

	"github.com/dsync-export/dsync-export/internal/testenv/snapshottest"
	"github.com/dsync-export/dsync-export/internal/testenv/workostest"
	"github.com/dsync-export/dsync-export/pkg/export"
	"github.com/dsync-export/dsync-export/pkg/objstore"
	"github.com/dsync-export/dsync-export/pkg/schema"
	"github.com/dsync-export/dsync-export/pkg/snapshot"
)

// Item 3: the snapshots row says what the manifest says, mode included
// (it was always "full").
func TestSnapshotsRowIsTheManifests(t *testing.T) {
	fake, ex, dst := reviewSetup(t, 85, testConfig())
	dayRun(t, ex, fake, dst, fakeDate(fake))
	quietDay(fake)
	m, _ := dayRun(t, ex, fake, dst, fakeDate(fake))
	if m.Mode != schema.SnapshotModeIncremental {
		t.Fatalf("day 1 mode %q, want incremental", m.Mode)
	}
	checkSnapshotRow(t, dst, m)
}

// The state machine retries a commit whose manifest PUT lost its answer
// (Export.Retryable). The retry finds the run's manifest, writes the
// snapshots row that is missing and deletes the stale objects.
func TestRetriedCommitWritesTheSnapshotRowAndCleansUp(t *testing.T) {
	_, client := startFake(t, workostest.Config{Seed: 11, Directories: 2, UsersPerDirectory: 60, GroupsPerDirectory: 2}, nil)
	local, err := objstore.Open(context.Background(), t.TempDir(), objstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ex := &export.Exporter{Client: client, Store: local, Config: testConfig()}
	p, err := ex.Plan(context.Background(), export.Target{Date: "2026-11-28", Time: snapTime}, export.PlanOptions{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	runUnits(t, ex, p, time.Minute, retryCrashes)
	lost := &export.Exporter{Client: client, Store: lostAnswerStore{local}, Config: testConfig()}
	if _, err := lost.Commit(context.Background(), p.SnapshotDate, p.RunID); err == nil {
		t.Fatal("want the lost answer error")
	}
	res, err := ex.Commit(context.Background(), p.SnapshotDate, p.RunID) // the state machine's retry
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	if _, err := local.Get(context.Background(), snapshot.SnapshotRowKey(p.SnapshotDate, p.RunID)); err != nil {
		t.Errorf("retried commit returned success (manifest %s) but the snapshots row is missing: %v", res.ManifestKey, err)
	}
	objs, _ := local.List(context.Background(), snapshot.RunsPrefix(p.SnapshotDate))
	if len(objs) > 0 {
		t.Errorf("retried commit left %d plan/checkpoint objects", len(objs))
	}
}

func TestRerunReplacesTheSnapshotAndRemovesEarlierRuns(t *testing.T) {
	fake, client := startFake(t, workostest.Config{Seed: 2, Directories: 2, UsersPerDirectory: 120, GroupsPerDirectory: 4}, nil)
	dst, _ := newS3Sink(t)
	ctx := context.Background()
	// Leftovers of earlier attempts at the same date: a key without a run id
	// (written before run ids) and one of an earlier failed run.
	stale := []string{
		snapshot.PartitionPrefix(schema.TableDirectoryUsers, "2026-11-28") + "part-00007.parquet",
		snapshot.PartKey(schema.TableMemberships, "2026-11-28", "20261128T010000.000Z-0a0b0c", 3),
		snapshot.SnapshotRowKey("2026-11-28", "20261128T010000.000Z-0a0b0c"),
	}
	// A run that sorts later may have taken the date after the committing
	// run's last lease check: its files stay (its own abort, or the next
	// commit, deletes them).
	later := snapshot.PartKey(schema.TableDirectoryGroups, "2026-11-28", "20991231T000000.000Z-0a0b0c", 0)
	for _, k := range append(stale, later) {
		if err := dst.Put(ctx, k, []byte("stale"), "application/octet-stream"); err != nil {
			t.Fatal(err)
		}
	}
	// Another date's objects must be left alone.
	other := snapshot.PartKey(schema.TableDirectoryUsers, "2026-11-27", "20261127T020000.000Z-0a0b0c", 0)
	if err := dst.Put(ctx, other, []byte("other day"), "application/octet-stream"); err != nil {
		t.Fatal(err)
	}
	ex := &export.Exporter{Client: client, Store: dst, Config: testConfig()}
	var prev *snapshot.Manifest
	for run := range 2 {
		res, err := ex.Run(ctx, export.Target{Date: "2026-11-28", Time: snapTime})
		if err != nil {
			t.Fatal(err)
		}
		wantDeleted := stale
		if run == 1 {
			// The rerun wrote keys of its own and, after its commit, deleted
			// exactly the first run's files.
			wantDeleted = append(prev.Keys(), snapshot.SnapshotRowKey("2026-11-28", prev.RunID))
			if res.Manifest.RunID == prev.RunID {
				t.Fatalf("both runs have run id %s", prev.RunID)
			}
		}
		if d := cmp.Diff(snapshottest.SortByKey(wantDeleted, func(s string) string { return s }), snapshottest.SortByKey(res.StaleDeleted, func(s string) string { return s })); d != "" {
			t.Errorf("run %d: deleted (-want +got):\n%s", run, d)
		}
		for _, k := range res.Manifest.Keys() {
			if snapshot.RunOfKey(k) != res.Manifest.RunID {
				t.Errorf("run %d: key %s does not carry the run id %s", run, k, res.Manifest.RunID)
			}
		}
		got := snapshottest.ListSnapshot(t, dst, "2026-11-28")
		want := append(res.Manifest.Keys(), later)
		sort.Strings(want)
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("run %d: stored objects differ from the manifest (-manifest +stored):\n%s", run, d)
		}
		snapshottest.CheckExact(t, dst, res.Manifest, snapshottest.ExpectedRows(fake, snapTime))
		checkSnapshotRow(t, dst, res.Manifest)
		prev = res.Manifest
	}
	if _, err := dst.Get(ctx, other); err != nil {
		t.Errorf("another date's object was touched: %v", err)
	}
}

// checkSnapshotRow reads the snapshots table's row of a committed snapshot
// and compares it with the manifest.
func checkSnapshotRow(t *testing.T, dst objstore.Store, m *snapshot.Manifest) {
	t.Helper()
	key := snapshot.SnapshotRowKey(m.SnapshotDate, m.RunID)
	b, err := dst.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("snapshots row: %v", err)
	}
	rows, err := parquet.Read[schema.Snapshot](bytes.NewReader(b), int64(len(b)))
	if err != nil || len(rows) != 1 {
		t.Fatalf("snapshots row %s: %d rows, %v", key, len(rows), err)
	}
	got := rows[0]
	var files, nbytes int64
	for _, tm := range m.Tables {
		files += int64(len(tm.Files))
		for _, f := range tm.Files {
			nbytes += f.Bytes
		}
	}
	want := schema.Snapshot{
		RunID: m.RunID, ExportedAt: m.SnapshotTime, CommittedAt: got.CommittedAt, Mode: modeOr(m.Mode), Trigger: m.Trigger, Demo: m.Demo,
		Directories: m.Tables[schema.TableDirectories].Rows, DirectoryUsers: m.Tables[schema.TableDirectoryUsers].Rows,
		Groups: m.Tables[schema.TableDirectoryGroups].Rows, Memberships: m.Tables[schema.TableMemberships].Rows,
		Files: files, Bytes: nbytes,
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("snapshots row (-want +got):\n%s", d)
	}
	if got.CommittedAt.Before(m.FinishedAt.Truncate(time.Millisecond)) {
		t.Errorf("committed_at %s is before the manifest's finished_at %s", got.CommittedAt, m.FinishedAt)
	}
}

// lostAnswerStore stores the manifest but answers its PUT with an error, as
// when S3's response is lost: the run must not delete the files that the
// manifest, committed after all, lists.
type lostAnswerStore struct{ objstore.Store }

func (s lostAnswerStore) Put(ctx context.Context, key string, body []byte, contentType string) error {
	if err := s.Store.Put(ctx, key, body, contentType); err != nil {
		return err
	}
	if strings.HasPrefix(key, snapshot.ManifestsDir+"/") {
		return errors.New("connection reset after the request was sent")
	}
	return nil
}

func TestLostManifestAnswerKeepsTheFiles(t *testing.T) {
	fake, client := startFake(t, workostest.Config{Seed: 11, Directories: 2, UsersPerDirectory: 60, GroupsPerDirectory: 2}, nil)
	local, err := objstore.Open(context.Background(), t.TempDir(), objstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ex := &export.Exporter{Client: client, Store: lostAnswerStore{local}, Config: testConfig()}
	if _, err := ex.Run(context.Background(), export.Target{Date: "2026-11-28", Time: snapTime}); err == nil {
		t.Fatal("the manifest write failed, yet the run succeeded")
	}
	m := snapshottest.ReadManifest(t, local, "2026-11-28")
	if m == nil {
		t.Fatal("the manifest did not land")
	}
	snapshottest.CheckExact(t, local, m, snapshottest.ExpectedRows(fake, snapTime))
}

// modeOr is a manifest's mode as the snapshots row must say it.
func modeOr(m string) string {
	if m == "" {
		return schema.SnapshotModeFull
	}
	return m
}

// manifestFailStore fails the first manifest PUT of date without writing
// it, as when the PUT's connection drops before the object lands.
type manifestFailStore struct {
	objstore.Store
	date string
	n    atomic.Int32
}

func (s *manifestFailStore) Put(ctx context.Context, key string, body []byte, ct string) error {
	if key == snapshot.ManifestKey(s.date) && s.n.Add(1) == 1 {
		return errors.New("connection reset while writing the manifest")
	}
	return s.Store.Put(ctx, key, body, ct)
}

// Regression (fixed; commit.go deleteStale, and Commit's keepFiles path): when the
// manifest PUT fails, the run keeps its files ("the next run cleans up"),
// including the directory_events files writeEvents just wrote. But
// deleteStale only lists schema.Tables() partitions, which do not include
// directory_events (nor would the snapshot date's partition cover the
// earlier event dates). The failed run's event files stay forever, unlisted
// by any manifest, and the next run logs the same events again: the
// directory_events table (all files of its partitions) holds them twice.
func TestFailedManifestWriteLeavesNoEventFiles(t *testing.T) {
	fake, client := startFake(t, workostest.Config{Seed: 53, Directories: 3, UsersPerDirectory: 200, GroupsPerDirectory: 5}, nil)
	dir, err := objstore.Open(context.Background(), t.TempDir(), objstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st := &manifestFailStore{Store: dir}
	ex := &export.Exporter{Client: client, Store: st, Config: testConfig(), Now: fake.Now}
	dayRun(t, ex, fake, dir, fakeDate(fake))
	quietDay(fake)
	st.date = fakeDate(fake)
	if _, err := ex.Run(context.Background(), export.Target{Date: st.date, Time: fake.Now(), Trigger: "test"}); err == nil {
		t.Fatal("the run with a failed manifest PUT succeeded")
	}
	// The next attempt of the date (the scheduler's retry, or tomorrow).
	dayRun(t, ex, fake, dir, st.date)
	quietDay(fake)
	dayRun(t, ex, fake, dir, fakeDate(fake))
	snapshottest.CheckEventsOnce(t, dir, fake.Events()) // flags the unlisted files
	if dup := countDuplicates(allEventFiles(t, dir)); dup > 0 {
		t.Errorf("the directory_events table holds %d events twice", dup)
	}
}

// TestStepsFailedUnitCommitsNothingAndLaterRunWins: a unit that never
// finishes blocks the commit, abort leaves the date's committed snapshot
// whole, a second run supersedes the first one's chunks and commits.
func TestStepsFailedUnitCommitsNothingAndLaterRunWins(t *testing.T) {
	fake, client := startFake(t, workostest.Config{Seed: 12, Directories: 3, UsersPerDirectory: 300, GroupsPerDirectory: 4}, nil)
	dst, err := objstore.Open(context.Background(), t.TempDir(), objstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cfg := testConfig()
	cfg.Mode = export.ModeFull // units that walk: an incremental rerun has one delta unit
	ex := &export.Exporter{Client: client, Store: dst, Config: cfg}
	first, err := ex.Run(ctx, export.Target{Date: "2026-11-28", Time: snapTime})
	if err != nil {
		t.Fatal(err)
	}
	want := snapshottest.ExpectedRows(fake, snapTime)

	// Run A: one chunk of one unit, then the commit is refused.
	a, err := ex.Plan(ctx, export.Target{Date: "2026-11-28", Time: snapTime}, export.PlanOptions{Workers: 3})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ex.RunChunk(ctx, a.SnapshotDate, a.RunID, a.Units[0].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := ex.Commit(ctx, a.SnapshotDate, a.RunID); !errors.Is(err, export.ErrUnitNotDone) {
		t.Fatalf("commit with units left: %v, want ErrUnitNotDone", err)
	}
	if err := ex.RecordFailure(ctx, a.SnapshotDate, a.RunID, a.Units[1].ID, export.Failure{Error: "Export.Failed", Cause: "unit 1 broke"}); err != nil {
		t.Fatal(err)
	}
	if ar, err := ex.Abort(ctx, a.SnapshotDate, a.RunID); err != nil || ar.Deleted == 0 || ar.Superseded != nil || len(ar.Failures) != 1 || ar.Failures[0].Cause != "unit 1 broke" {
		t.Fatalf("abort: %+v, %v; want the run's part and plan deleted and unit 1's failure", ar, err)
	}
	m := snapshottest.ReadManifest(t, dst, "2026-11-28")
	if m.RunID != first.Manifest.RunID {
		t.Fatalf("manifest run %s, want the committed %s", m.RunID, first.Manifest.RunID)
	}
	snapshottest.CheckExact(t, dst, m, want)
	snapshottest.CheckObjectsAreManifest(t, dst, m)

	// Runs B then C of the same date: C takes the lease, B's chunks stop.
	b, err := ex.Plan(ctx, export.Target{Date: "2026-11-28", Time: snapTime}, export.PlanOptions{Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	c, err := ex.Plan(ctx, export.Target{Date: "2026-11-28", Time: snapTime}, export.PlanOptions{Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ex.RunChunk(ctx, b.SnapshotDate, b.RunID, b.Units[0].ID); !errors.Is(err, export.ErrSuperseded) || !strings.Contains(err.Error(), c.RunID) {
		t.Fatalf("earlier run's chunk: %v, want ErrSuperseded naming %s", err, c.RunID)
	}
	runUnits(t, ex, c, time.Minute, retryCrashes)
	res, err := ex.Commit(ctx, c.SnapshotDate, c.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ex.Commit(ctx, b.SnapshotDate, b.RunID); !errors.Is(err, export.ErrSuperseded) {
		t.Errorf("earlier run's commit: %v, want ErrSuperseded", err)
	}
	if ar, err := ex.Abort(ctx, b.SnapshotDate, b.RunID); err != nil || !errors.Is(ar.Superseded, export.ErrSuperseded) {
		t.Errorf("earlier run's abort: %+v, %v; want it to report the supersession", ar, err)
	}
	snapshottest.CheckExact(t, dst, res.Manifest, want)
	snapshottest.CheckObjectsAreManifest(t, dst, res.Manifest)
}
