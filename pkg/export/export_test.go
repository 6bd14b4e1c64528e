package export_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/parquet-go/parquet-go"

	"github.com/dsync-export/dsync-export/internal/testenv/awstest"
	"github.com/dsync-export/dsync-export/internal/testenv/snapshottest"
	"github.com/dsync-export/dsync-export/internal/testenv/workostest"
	"github.com/dsync-export/dsync-export/pkg/export"
	"github.com/dsync-export/dsync-export/pkg/objstore"
	"github.com/dsync-export/dsync-export/pkg/schema"
	"github.com/dsync-export/dsync-export/pkg/snapshot"
	"github.com/dsync-export/dsync-export/pkg/workos"
)

const testKey = "sk_test_export_e2e"

var snapTime = time.Date(2026, 11, 28, 2, 0, 0, 123_000_000, time.UTC)

// startFake starts the WorkOS fake on loopback, wrapped by wrap if not nil,
// and returns it with a client tuned for tests: fast backoff, short
// Retry-After cap, no client pacing.
func startFake(t *testing.T, cfg workostest.Config, wrap func(http.Handler) http.Handler) (*workostest.Server, *workos.Client) {
	t.Helper()
	cfg.APIKey = testKey
	var wraps []func(http.Handler) http.Handler
	if wrap != nil {
		wraps = append(wraps, wrap)
	}
	fake, base := workostest.Start(t, cfg, wraps...)
	return fake, newClient(t, base, testKey)
}

func newClient(t *testing.T, baseURL, key string) *workos.Client {
	t.Helper()
	c, err := workos.NewClient(key,
		workos.WithBaseURL(baseURL),
		workos.WithRateLimits(workos.RateLimits{}),
		workos.WithBackoff(time.Millisecond, 20*time.Millisecond),
		workos.WithRetryAfterCap(20*time.Millisecond),
		workos.WithMaxAttempts(12),
	)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newS3Sink(t *testing.T) (objstore.Store, *awstest.S3Server) {
	t.Helper()
	s3srv := awstest.StartS3(t)
	s3srv.CreateBucket(t, "lake")
	dst, err := objstore.Open(context.Background(), "s3://lake/exports/workos", objstore.Options{S3Client: s3srv.Client(t), PartSize: 5 << 20})
	if err != nil {
		t.Fatal(err)
	}
	return dst, s3srv
}

func testConfig() export.Config {
	cfg := export.DefaultConfig()
	cfg.Concurrency = 4
	cfg.DeadlineMargin = 0
	cfg.PerDirectoryRate, cfg.GlobalRate = 0, 0
	// The fake holds no event back: snapshots equal its state at the
	// instant (TestEventsSettle reads with the default settle).
	cfg.EventsSettle = 0
	return cfg
}

func TestExportToS3WithFaultsMatchesDatasetExactly(t *testing.T) {
	fake, client := startFake(t, workostest.Config{
		Seed: 7, Directories: 3, UsersPerDirectory: 450, GroupsPerDirectory: 9,
		Faults: workostest.Faults{Seed: 3, ServerError: 0.10, RateLimited: 0.05, Reset: 0.01, Truncate: 0.01},
	}, nil)
	dst, _ := newS3Sink(t)
	ex := &export.Exporter{Client: client, Store: dst, Config: testConfig()}
	res, err := ex.Run(context.Background(), export.Snapshot{Date: "2026-11-28", Time: snapTime, Trigger: "test"})
	if err != nil {
		t.Fatal(err)
	}
	fs := fake.Stats()
	if fs.FaultsInjected == 0 {
		t.Fatal("no faults were injected: the test proves nothing about retries")
	}
	if res.Manifest.API.Retries == 0 || res.Manifest.API.RateLimited == 0 {
		t.Errorf("manifest API stats %+v: want retries and 429s recorded", res.Manifest.API)
	}
	snapshottest.CheckExact(t, dst, res.Manifest, snapshottest.ExpectedRows(fake, snapTime))

	// The manifest is the commit record and lists exactly the stored objects.
	if res.ManifestKey != "_manifests/dt=2026-11-28/manifest.json" {
		t.Errorf("manifest key %q", res.ManifestKey)
	}
	b, err := dst.Get(context.Background(), res.ManifestKey)
	if err != nil {
		t.Fatal(err)
	}
	m, err := snapshot.Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	got := snapshottest.ListSnapshot(t, dst, "2026-11-28")
	want := m.Keys()
	sort.Strings(want)
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("stored objects differ from the manifest (-manifest +stored):\n%s", d)
	}
	for _, dm := range m.Directories {
		users, groups, mems := fake.Counts(dm.ID)
		if dm.Users != int64(users) || dm.Groups != int64(groups) || dm.Memberships != int64(mems) || dm.Status != snapshot.DirectoryOK {
			t.Errorf("directory %s manifest %+v, fake has %d users %d groups %d memberships", dm.ID, dm, users, groups, mems)
		}
	}
	t.Logf("faults injected %d, retries %d, 429s %d, requests %d", fs.FaultsInjected, m.API.Retries, m.API.RateLimited, m.API.Requests)
}

func TestMembershipRoutesAgree(t *testing.T) {
	for _, mode := range []string{snapshot.RouteByGroup, snapshot.RouteByUser, snapshot.RouteLegacy, export.MembershipAuto} {
		t.Run(mode, func(t *testing.T) {
			fake, client := startFake(t, workostest.Config{Seed: 11, Directories: 2, UsersPerDirectory: 230, GroupsPerDirectory: 6, LegacyGroups: mode == snapshot.RouteLegacy}, nil)
			dst, err := objstore.Open(context.Background(), t.TempDir(), objstore.Options{})
			if err != nil {
				t.Fatal(err)
			}
			cfg := testConfig()
			cfg.MembershipMode = mode
			ex := &export.Exporter{Client: client, Store: dst, Config: cfg}
			res, err := ex.Run(context.Background(), export.Snapshot{Date: "2026-01-02", Time: snapTime})
			if err != nil {
				t.Fatal(err)
			}
			snapshottest.CheckExact(t, dst, res.Manifest, snapshottest.ExpectedRows(fake, snapTime))
			for _, dm := range res.Manifest.Directories {
				if mode != export.MembershipAuto && dm.MembershipRoute != mode {
					t.Errorf("directory %s route %q, want %q", dm.ID, dm.MembershipRoute, mode)
				}
				if mode == export.MembershipAuto && (dm.EstimateByGroupSec <= 0 || dm.EstimateByUserSec <= 0) {
					t.Errorf("auto mode recorded no estimates: %+v", dm)
				}
			}
		})
	}
}

func TestAutoRouteChoosesByUserForManySmallGroups(t *testing.T) {
	// 20 users in 150 groups: one request per user beats one per group.
	fake, client := startFake(t, workostest.Config{Seed: 5, Directories: 1, UsersPerDirectory: 20, GroupsPerDirectory: 150}, nil)
	dst, err := objstore.Open(context.Background(), t.TempDir(), objstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.PerDirectoryRate, cfg.GlobalRate = 4, 100 // the estimates use the real limits
	ex := &export.Exporter{Client: client, Store: dst, Config: cfg}
	res, err := ex.Run(context.Background(), export.Snapshot{Date: "2026-01-02", Time: snapTime})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Manifest.Directories[0].MembershipRoute; got != snapshot.RouteByUser {
		t.Errorf("route %q, want by_user (%+v)", got, res.Manifest.Directories[0])
	}
	snapshottest.CheckExact(t, dst, res.Manifest, snapshottest.ExpectedRows(fake, snapTime))
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
		res, err := ex.Run(ctx, export.Snapshot{Date: "2026-11-28", Time: snapTime})
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

// A rerun that fails (WorkOS down) must leave the committed snapshot whole:
// same manifest, every file readable and exact.
func TestFailedRerunKeepsTheCommittedSnapshot(t *testing.T) {
	var down atomic.Bool
	fake, client := startFake(t, workostest.Config{Seed: 5, Directories: 2, UsersPerDirectory: 150, GroupsPerDirectory: 4}, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if down.Load() {
				http.Error(w, "<html>502 Bad Gateway</html>", http.StatusBadGateway)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	dst, _ := newS3Sink(t)
	ctx := context.Background()
	cfg := testConfig()
	ex := &export.Exporter{Client: client, Store: dst, Config: cfg}
	res, err := ex.Run(ctx, export.Snapshot{Date: "2026-11-28", Time: snapTime})
	if err != nil {
		t.Fatal(err)
	}
	before, err := dst.Get(ctx, res.ManifestKey)
	if err != nil {
		t.Fatal(err)
	}
	down.Store(true)
	if _, err := ex.Run(ctx, export.Snapshot{Date: "2026-11-28", Time: snapTime}); err == nil {
		t.Fatal("a rerun against a WorkOS that answers 502 succeeded")
	}
	after, err := dst.Get(ctx, res.ManifestKey)
	if err != nil {
		t.Fatalf("the failed rerun withdrew the committed manifest: %v", err)
	}
	if !bytes.Equal(before, after) {
		t.Error("the failed rerun changed the committed manifest")
	}
	snapshottest.CheckExact(t, dst, res.Manifest, snapshottest.ExpectedRows(fake, snapTime))
	down.Store(false)
	res2, err := ex.Run(ctx, export.Snapshot{Date: "2026-11-28", Time: snapTime})
	if err != nil {
		t.Fatalf("rerun after recovery: %v", err)
	}
	snapshottest.CheckExact(t, dst, res2.Manifest, snapshottest.ExpectedRows(fake, snapTime))
	snapshottest.CheckObjectsAreManifest(t, dst, res2.Manifest)
}

// Two exports of the same date at once: the later one takes the lease and
// commits; the earlier one fails with ErrSuperseded, commits nothing and
// deletes nothing of the later one.
func TestConcurrentRunsOfADateTheLaterOneWins(t *testing.T) {
	slowFake, slow := startFake(t, workostest.Config{Seed: 6, Directories: 2, UsersPerDirectory: 400, GroupsPerDirectory: 4, Latency: 15 * time.Millisecond}, nil)
	_, fast := startFake(t, workostest.Config{Seed: 6, Directories: 2, UsersPerDirectory: 400, GroupsPerDirectory: 4}, nil)
	dst, _ := newS3Sink(t)
	ctx := context.Background()
	cfg := testConfig()
	cfg.ProgressEvery = 50 * time.Millisecond // the earlier run checks its lease this often
	earlier := &export.Exporter{Client: slow, Store: dst, Config: cfg}
	later := &export.Exporter{Client: fast, Store: dst, Config: cfg}

	errc := make(chan error, 1)
	go func() {
		_, err := earlier.Run(ctx, export.Snapshot{Date: "2026-11-28", Time: snapTime})
		errc <- err
	}()
	// Wait until the earlier run holds the lease.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := dst.Get(ctx, snapshot.LeaseKey("2026-11-28")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the earlier run never took the lease")
		}
		time.Sleep(5 * time.Millisecond)
	}
	res, err := later.Run(ctx, export.Snapshot{Date: "2026-11-28", Time: snapTime})
	if err != nil {
		t.Fatalf("the later run failed: %v", err)
	}
	err = <-errc
	if !errors.Is(err, export.ErrSuperseded) || !strings.Contains(err.Error(), res.Manifest.RunID) {
		t.Fatalf("the earlier run: err %v, want ErrSuperseded naming the later run %s", err, res.Manifest.RunID)
	}
	m := snapshottest.ReadManifest(t, dst, "2026-11-28")
	if m.RunID != res.Manifest.RunID {
		t.Errorf("committed run %s, want the later run %s", m.RunID, res.Manifest.RunID)
	}
	snapshottest.CheckExact(t, dst, m, snapshottest.ExpectedRows(slowFake, snapTime))
	snapshottest.CheckObjectsAreManifest(t, dst, m)
}

func TestRunReportsProgress(t *testing.T) {
	_, client := startFake(t, workostest.Config{Seed: 7, Directories: 3, UsersPerDirectory: 300, GroupsPerDirectory: 4, Latency: 2 * time.Millisecond}, nil)
	dst, err := objstore.Open(context.Background(), t.TempDir(), objstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seen []export.Status
	var logs bytes.Buffer
	cfg := testConfig()
	cfg.ProgressEvery = 20 * time.Millisecond
	cfg.PerDirectoryRate, cfg.GlobalRate = 4, 100 // the ETA's bound (the client is not paced)
	ex := &export.Exporter{Client: client, Store: dst, Config: cfg,
		Log:        slog.New(slog.NewJSONHandler(&syncWriter{w: &logs}, nil)),
		WatchEvery: 5 * time.Millisecond,
		Watch: func(s export.Status) {
			mu.Lock()
			seen = append(seen, s)
			mu.Unlock()
		}}
	res, err := ex.Run(context.Background(), export.Snapshot{Date: "2026-11-28", Time: snapTime})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	last := seen[len(seen)-1]
	if len(seen) < 3 || !last.Final || last.DirectoriesDone != 3 || last.DirectoriesTotal != 3 || last.UsersExpected != 900 {
		t.Fatalf("progress %d calls, last %+v: want several, the last final with 3 of 3 directories and 900 users expected", len(seen), last)
	}
	if last.Rows[schema.TableDirectoryUsers] != res.Manifest.Tables[schema.TableDirectoryUsers].Rows || last.Requests == 0 {
		t.Errorf("final progress rows %v requests %d, manifest %d users", last.Rows, last.Requests, res.Manifest.Tables[schema.TableDirectoryUsers].Rows)
	}
	if first := seen[0]; first.DirectoriesDone != 0 || first.ETA <= 0 {
		t.Errorf("first progress %+v: want nothing done and a positive ETA from the counts", first)
	}
	for i := 1; i < len(seen); i++ {
		if seen[i].DirectoriesDone < seen[i-1].DirectoriesDone || seen[i].RowsTotal() < seen[i-1].RowsTotal() {
			t.Fatalf("progress went backwards: %+v then %+v", seen[i-1], seen[i])
		}
	}
	if !strings.Contains(logs.String(), `"msg":"export progress"`) || !strings.Contains(logs.String(), `"eta"`) || !strings.Contains(logs.String(), `"rate_limited"`) {
		t.Errorf("no progress log line with eta and rate_limited:\n%s", logs.String())
	}
}

type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func TestDeadlineStopsBeforeTimeoutWithoutManifest(t *testing.T) {
	_, client := startFake(t, workostest.Config{Seed: 3, Directories: 2, UsersPerDirectory: 20000, GroupsPerDirectory: 5, Latency: 20 * time.Millisecond}, nil)
	dst, err := objstore.Open(context.Background(), t.TempDir(), objstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.DeadlineMargin = time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	ex := &export.Exporter{Client: client, Store: dst, Config: cfg}
	start := time.Now()
	_, err = ex.Run(ctx, export.Snapshot{Date: "2026-11-28", Time: snapTime})
	elapsed := time.Since(start)
	if !errors.Is(err, export.ErrDeadline) {
		t.Fatalf("err = %v, want ErrDeadline", err)
	}
	var pe *export.ProgressError
	if !errors.As(err, &pe) || pe.DirectoriesTotal != 2 || pe.RowsWritten == 0 || !strings.Contains(pe.Error(), "timeout") {
		t.Errorf("progress error %#v (%v): want totals, rows written and a hint", pe, err)
	}
	if ctx.Err() != nil {
		t.Errorf("the export returned after the caller's deadline (%s): it must stop before", elapsed)
	}
	if _, err := dst.Get(context.Background(), snapshot.ManifestKey("2026-11-28")); !errors.Is(err, objstore.ErrNotExist) {
		t.Errorf("manifest exists after a failed run (err %v)", err)
	}
	if got := snapshottest.ListSnapshot(t, dst, "2026-11-28"); len(got) != 0 {
		t.Errorf("aborted run left committed objects: %v", got)
	}
}

func TestWrongKeyStopsAtOnceWithoutRetries(t *testing.T) {
	fake, _ := startFake(t, workostest.Config{Seed: 1, Directories: 2, UsersPerDirectory: 10, GroupsPerDirectory: 2}, nil)
	srv := httptest.NewServer(fake)
	defer srv.Close()
	client := newClient(t, srv.URL, "sk_test_wrong_key_value")
	dst, err := objstore.Open(context.Background(), t.TempDir(), objstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ex := &export.Exporter{Client: client, Store: dst, Config: testConfig()}
	_, err = ex.Run(context.Background(), export.Snapshot{Date: "2026-11-28", Time: snapTime})
	if !workos.IsUnauthorized(err) {
		t.Fatalf("err = %v, want a 401", err)
	}
	if strings.Contains(err.Error(), "sk_test_wrong_key_value") {
		t.Errorf("the error leaks the API key: %v", err)
	}
	if s := client.Stats(); s.Requests != 1 || s.Retries != 0 {
		t.Errorf("client stats %+v: a 401 must not be retried", s)
	}
	if _, err := dst.Get(context.Background(), snapshot.ManifestKey("2026-11-28")); !errors.Is(err, objstore.ErrNotExist) {
		t.Errorf("manifest written after a 401 (err %v)", err)
	}
}

// TestDirectoryDeletedMidExportIsRecordedAndOthersComplete deletes one
// directory at WorkOS during each phase of its walk: the manifest must record
// it as deleted (keeping the rows fetched before), never as ok with missing
// memberships, and the other directories must be complete.
func TestDirectoryDeletedMidExportIsRecordedAndOthersComplete(t *testing.T) {
	for _, tc := range []struct {
		name, mode string
		trigger    func(r *http.Request, victim string, victimUsers map[string]bool) bool
	}{
		{"users walk", snapshot.RouteByGroup, func(r *http.Request, v string, _ map[string]bool) bool {
			q := r.URL.Query()
			return r.URL.Path == "/directory_users" && q.Get("directory") == v && q.Get("group") == "" && q.Get("after") != ""
		}},
		{"by_group member walks", snapshot.RouteByGroup, func(r *http.Request, v string, _ map[string]bool) bool {
			q := r.URL.Query()
			return r.URL.Path == "/directory_users" && q.Get("directory") == v && q.Get("group") != ""
		}},
		{"by_user member walks", snapshot.RouteByUser, func(r *http.Request, _ string, users map[string]bool) bool {
			return r.URL.Path == "/directory_groups" && users[r.URL.Query().Get("user")]
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var fake *workostest.Server
			var victim atomic.Value
			var victimUsers map[string]bool
			var once sync.Once
			wrap := func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if id, _ := victim.Load().(string); id != "" && tc.trigger(r, id, victimUsers) {
						once.Do(func() { fake.DeleteDirectory(id) })
					}
					next.ServeHTTP(w, r)
				})
			}
			f, client := startFake(t, workostest.Config{Seed: 9, Directories: 3, UsersPerDirectory: 350, GroupsPerDirectory: 4}, wrap)
			fake = f
			dirs := fake.Directories()
			victimUsers = map[string]bool{}
			for u := range fake.Users(dirs[1].ID) {
				victimUsers[u.ID] = true
			}
			counts := map[string][3]int{}
			for _, d := range dirs {
				u, g, m := fake.Counts(d.ID)
				counts[d.ID] = [3]int{u, g, m}
			}
			victim.Store(dirs[1].ID)
			dst, err := objstore.Open(context.Background(), t.TempDir(), objstore.Options{})
			if err != nil {
				t.Fatal(err)
			}
			cfg := testConfig()
			cfg.MembershipMode = tc.mode
			ex := &export.Exporter{Client: client, Store: dst, Config: cfg}
			res, err := ex.Run(context.Background(), export.Snapshot{Date: "2026-11-28", Time: snapTime})
			if err != nil {
				t.Fatal(err)
			}
			users := snapshottest.ReadTable[schema.DirectoryUser](t, dst, res.Manifest, schema.TableDirectoryUsers)
			perDir := map[string]int64{}
			for _, u := range users {
				perDir[u.DirectoryID]++
			}
			if n := res.Manifest.Tables[schema.TableDirectories].Rows; n != 3 {
				t.Errorf("directories table has %d rows, want all 3 (the deleted one as last seen)", n)
			}
			for _, dm := range res.Manifest.Directories {
				want := counts[dm.ID]
				if dm.ID == dirs[1].ID {
					if dm.Status != snapshot.DirectoryDeleted || dm.Error == "" {
						t.Errorf("victim recorded as %+v, want status deleted with a note", dm)
					}
					if perDir[dm.ID] != dm.Users {
						t.Errorf("victim: %d user rows kept, manifest says %d", perDir[dm.ID], dm.Users)
					}
					continue
				}
				if dm.Status != snapshot.DirectoryOK || dm.Error != "" ||
					dm.Users != int64(want[0]) || dm.Groups != int64(want[1]) || dm.Memberships != int64(want[2]) || perDir[dm.ID] != int64(want[0]) {
					t.Errorf("directory %s: %+v (%d user rows), want ok with %v users/groups/memberships", dm.ID, dm, perDir[dm.ID], want)
				}
			}
		})
	}
}

func TestConfigValidateNamesEveryProblem(t *testing.T) {
	cfg := export.DefaultConfig()
	cfg.Concurrency = 0
	cfg.MembershipMode = "sometimes"
	cfg.DirectoryIDs = []string{"directory_user_01ABC"}
	err := cfg.Validate()
	if err == nil {
		t.Fatal("want an error")
	}
	for _, want := range []string{"Concurrency: 0", `"sometimes"`, "directory_user_01ABC"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}

// TestMalformedAPIJSONFailsWithRequestID answers one users page with JSON of
// the wrong shape: the export must fail (not retry forever, not commit) and
// name the request id so WorkOS support can find the response.
func TestMalformedAPIJSONFailsWithRequestID(t *testing.T) {
	var served atomic.Int32
	wrap := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/directory_users" && r.URL.Query().Get("group") == "" && served.Add(1) == 1 {
				w.Header().Set("Content-Type", "application/json")
				w.Header().Set("X-Request-ID", "req_malformed_0042")
				_, _ = w.Write([]byte(`{"object":"list","data":{"not":"an array"},"list_metadata":{"before":null,"after":null}}`))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
	_, client := startFake(t, workostest.Config{Seed: 1, Directories: 1, UsersPerDirectory: 50, GroupsPerDirectory: 2}, wrap)
	dst, err := objstore.Open(context.Background(), t.TempDir(), objstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ex := &export.Exporter{Client: client, Store: dst, Config: testConfig()}
	_, err = ex.Run(context.Background(), export.Snapshot{Date: "2026-11-28", Time: snapTime})
	if err == nil || !strings.Contains(err.Error(), "req_malformed_0042") {
		t.Fatalf("err = %v, want a failure naming the request id", err)
	}
	if s := client.Stats(); s.Retries != 0 {
		t.Errorf("a complete but malformed body was retried %d times", s.Retries)
	}
	if snapshottest.ReadManifest(t, dst, "2026-11-28") != nil {
		t.Error("a manifest was written after malformed API JSON")
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

// A run that fails after some of its parts rolled over (and were committed
// as objects) deletes them, so Athena's raw tables never read a failed run.
func TestFailedRunRemovesItsRolledOverParts(t *testing.T) {
	var users atomic.Int32
	_, client := startFake(t, workostest.Config{Seed: 10, Directories: 1, UsersPerDirectory: 3000, GroupsPerDirectory: 2}, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/directory_users" && r.URL.Query().Get("group") == "" && users.Add(1) > 25 {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnauthorized)
				_, _ = w.Write([]byte(`{"message":"Unauthorized"}`))
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	dst, err := objstore.Open(context.Background(), t.TempDir(), objstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.Writer.MaxFileBytes = 64 << 10 // roll over every 64 KiB: parts are committed objects before the failure
	cfg.Writer.MaxRowsPerRowGroup = 200
	var logs bytes.Buffer
	ex := &export.Exporter{Client: client, Store: dst, Config: cfg, Log: slog.New(slog.NewJSONHandler(&syncWriter{w: &logs}, nil))}
	if _, err := ex.Run(context.Background(), export.Snapshot{Date: "2026-11-28", Time: snapTime}); !workos.IsUnauthorized(err) {
		t.Fatalf("err %v, want the 401", err)
	}
	if !strings.Contains(logs.String(), "failed run's files deleted") {
		t.Errorf("no part rolled over before the failure, so the test proves nothing:\n%s", logs.String())
	}
	if got := snapshottest.ListSnapshot(t, dst, "2026-11-28"); len(got) != 0 {
		t.Errorf("the failed run left %v", got)
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
	if _, err := ex.Run(context.Background(), export.Snapshot{Date: "2026-11-28", Time: snapTime}); err == nil {
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
