package export_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

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
	for _, mode := range []string{export.MembershipByGroup, export.MembershipByUser, export.MembershipLegacy, export.MembershipAuto} {
		t.Run(mode, func(t *testing.T) {
			fake, client := startFake(t, workostest.Config{Seed: 11, Directories: 2, UsersPerDirectory: 230, GroupsPerDirectory: 6, LegacyGroups: mode == export.MembershipLegacy}, nil)
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

func TestRerunRemovesStalePartsAndIsIdempotent(t *testing.T) {
	fake, client := startFake(t, workostest.Config{Seed: 2, Directories: 2, UsersPerDirectory: 120, GroupsPerDirectory: 4}, nil)
	dst, _ := newS3Sink(t)
	ctx := context.Background()
	// Leftovers of an earlier failed attempt at the same date.
	stale := []string{
		snapshot.PartKey(schema.TableDirectoryUsers, "2026-11-28", 7),
		snapshot.PartitionPrefix(schema.TableMemberships, "2026-11-28") + "part-00003.parquet",
	}
	for _, k := range stale {
		if err := dst.Put(ctx, k, []byte("stale"), "application/octet-stream"); err != nil {
			t.Fatal(err)
		}
	}
	// Another date's objects must be left alone.
	other := snapshot.PartKey(schema.TableDirectoryUsers, "2026-11-27", 0)
	if err := dst.Put(ctx, other, []byte("other day"), "application/octet-stream"); err != nil {
		t.Fatal(err)
	}
	ex := &export.Exporter{Client: client, Store: dst, Config: testConfig()}
	var first []string
	for run := range 2 {
		res, err := ex.Run(ctx, export.Snapshot{Date: "2026-11-28", Time: snapTime})
		if err != nil {
			t.Fatal(err)
		}
		if run == 0 {
			if d := cmp.Diff(snapshottest.SortByKey(stale, func(s string) string { return s }), snapshottest.SortByKey(res.StaleDeleted, func(s string) string { return s })); d != "" {
				t.Errorf("stale deleted (-want +got):\n%s", d)
			}
		} else if len(res.StaleDeleted) != 0 {
			t.Errorf("second run deleted %v, want nothing", res.StaleDeleted)
		}
		got := snapshottest.ListSnapshot(t, dst, "2026-11-28")
		want := res.Manifest.Keys()
		sort.Strings(want)
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("run %d: stored objects differ from the manifest (-manifest +stored):\n%s", run, d)
		}
		if run == 0 {
			first = got
		} else if d := cmp.Diff(first, got); d != "" {
			t.Errorf("re-run changed the object set:\n%s", d)
		}
		snapshottest.CheckExact(t, dst, res.Manifest, snapshottest.ExpectedRows(fake, snapTime))
	}
	if _, err := dst.Get(ctx, other); err != nil {
		t.Errorf("another date's object was touched: %v", err)
	}
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
		{"users walk", export.MembershipByGroup, func(r *http.Request, v string, _ map[string]bool) bool {
			q := r.URL.Query()
			return r.URL.Path == "/directory_users" && q.Get("directory") == v && q.Get("group") == "" && q.Get("after") != ""
		}},
		{"by_group member walks", export.MembershipByGroup, func(r *http.Request, v string, _ map[string]bool) bool {
			q := r.URL.Query()
			return r.URL.Path == "/directory_users" && q.Get("directory") == v && q.Get("group") != ""
		}},
		{"by_user member walks", export.MembershipByUser, func(r *http.Request, _ string, users map[string]bool) bool {
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

// TestFailedRerunWithdrawsTheCommittedManifest re-runs a committed date and
// lets the re-run fail: the old manifest must not survive to describe files
// the re-run replaced, and the next good run commits cleanly.
func TestFailedRerunWithdrawsTheCommittedManifest(t *testing.T) {
	fake, client := startFake(t, workostest.Config{Seed: 6, Directories: 2, UsersPerDirectory: 8000, GroupsPerDirectory: 4, Latency: 10 * time.Millisecond}, nil)
	dst, err := objstore.Open(context.Background(), t.TempDir(), objstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.DirectoryIDs = []string{fake.Directories()[0].ID}
	ex := &export.Exporter{Client: client, Store: dst, Config: cfg}
	if _, err := ex.Run(context.Background(), export.Snapshot{Date: "2026-11-28", Time: snapTime}); err != nil {
		t.Fatal(err)
	}
	if snapshottest.ReadManifest(t, dst, "2026-11-28") == nil {
		t.Fatal("first run wrote no manifest")
	}
	// The re-run covers both directories and cannot finish before its deadline.
	ex.Config.DirectoryIDs = nil
	ex.Config.DeadlineMargin = 500 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	if _, err := ex.Run(ctx, export.Snapshot{Date: "2026-11-28", Time: snapTime.Add(time.Hour)}); !errors.Is(err, export.ErrDeadline) {
		t.Fatalf("re-run: err %v, want ErrDeadline", err)
	}
	if m := snapshottest.ReadManifest(t, dst, "2026-11-28"); m != nil {
		t.Fatalf("the first run's manifest survived a failed re-run (finished %s)", m.FinishedAt)
	}
	// A good run commits again, with exactly its own objects.
	ex.Config.DeadlineMargin = 0
	ex.Config.DirectoryIDs = cfg.DirectoryIDs
	res, err := ex.Run(context.Background(), export.Snapshot{Date: "2026-11-28", Time: snapTime})
	if err != nil {
		t.Fatal(err)
	}
	snapshottest.CheckObjectsAreManifest(t, dst, res.Manifest)
}

func TestBlankFiltersInInputAreRefused(t *testing.T) {
	cfg := export.DefaultConfig()
	for _, in := range []export.Input{{DirectoryIDs: []string{"", " "}}, {OrganizationIDs: []string{"  "}}} {
		if err := in.Apply(&cfg); err == nil || !strings.Contains(err.Error(), "blank") {
			t.Errorf("Apply(%+v) = %v, want a blank-entries error", in, err)
		}
	}
	in := export.Input{DirectoryIDs: []string{" directory_01ABC "}, MembershipMode: "by_user"}
	if err := in.Apply(&cfg); err != nil || cfg.DirectoryIDs[0] != "directory_01ABC" || cfg.MembershipMode != "by_user" {
		t.Errorf("Apply: %v, cfg %+v", err, cfg)
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
	for _, want := range []string{"concurrency 0", `"sometimes"`, "directory_user_01ABC"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}

func TestInputResolve(t *testing.T) {
	now := time.Date(2026, 11, 28, 23, 59, 0, 0, time.UTC)
	for _, tc := range []struct {
		in          export.Input
		date, trig  string
		wantErrPart string
	}{
		{in: export.Input{SnapshotDate: "2026-01-05", ScheduledTime: "2026-02-01T00:00:00Z"}, date: "2026-01-05", trig: export.TriggerManual},
		{in: export.Input{ScheduledTime: "2026-02-01T02:00:00Z", Time: "2026-03-01T00:00:00Z"}, date: "2026-02-01", trig: export.TriggerScheduler},
		{in: export.Input{DetailType: "Scheduled Event", Time: "2026-03-01T23:30:00Z"}, date: "2026-03-01", trig: export.TriggerEventBridge},
		{in: export.Input{}, date: "2026-11-28", trig: export.TriggerNow},
		{in: export.Input{SnapshotDate: "2026-13-01"}, wantErrPart: "2026-13-01"},
		{in: export.Input{ScheduledTime: "tomorrow"}, wantErrPart: "scheduled_time"},
	} {
		date, trig, err := tc.in.Resolve(now)
		if tc.wantErrPart != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErrPart) {
				t.Errorf("%+v: err %v, want mention of %q", tc.in, err, tc.wantErrPart)
			}
			continue
		}
		if err != nil || date != tc.date || trig != tc.trig {
			t.Errorf("%+v: got %q %q %v, want %q %q", tc.in, date, trig, err, tc.date, tc.trig)
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
