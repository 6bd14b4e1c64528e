package export_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dsync-export/dsync-export/internal/testenv/snapshottest"
	"github.com/dsync-export/dsync-export/internal/testenv/workostest"
	"github.com/dsync-export/dsync-export/pkg/export"
	"github.com/dsync-export/dsync-export/pkg/objstore"
	"github.com/dsync-export/dsync-export/pkg/schema"
	"github.com/dsync-export/dsync-export/pkg/snapshot"
	"github.com/dsync-export/dsync-export/pkg/workos"
)

func TestExportToS3WithFaultsMatchesDatasetExactly(t *testing.T) {
	fake, client := startFake(t, workostest.Config{
		Seed: 7, Directories: 3, UsersPerDirectory: 450, GroupsPerDirectory: 9,
		Faults: workostest.Faults{Seed: 3, ServerError: 0.10, RateLimited: 0.05, Reset: 0.01, Truncate: 0.01},
	}, nil)
	dst, _ := newS3Sink(t)
	ex := &export.Exporter{Client: client, Store: dst, Config: testConfig()}
	res, err := ex.Run(context.Background(), export.Target{Date: "2026-11-28", Time: snapTime, Trigger: "test"})
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
	res, err := ex.Run(ctx, export.Target{Date: "2026-11-28", Time: snapTime})
	if err != nil {
		t.Fatal(err)
	}
	before, err := dst.Get(ctx, res.ManifestKey)
	if err != nil {
		t.Fatal(err)
	}
	down.Store(true)
	if _, err := ex.Run(ctx, export.Target{Date: "2026-11-28", Time: snapTime}); err == nil {
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
	res2, err := ex.Run(ctx, export.Target{Date: "2026-11-28", Time: snapTime})
	if err != nil {
		t.Fatalf("rerun after recovery: %v", err)
	}
	snapshottest.CheckExact(t, dst, res2.Manifest, snapshottest.ExpectedRows(fake, snapTime))
	snapshottest.CheckObjectsAreManifest(t, dst, res2.Manifest)
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
	_, err = ex.Run(ctx, export.Target{Date: "2026-11-28", Time: snapTime})
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
	_, err = ex.Run(context.Background(), export.Target{Date: "2026-11-28", Time: snapTime})
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
	_, err = ex.Run(context.Background(), export.Target{Date: "2026-11-28", Time: snapTime})
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

// TestIncrementalMonthEqualsFullWalk is the exactness test at small scale
// (make soak runs it large): 30 simulated days of churn with injected
// faults. Every day's incremental snapshot equals a full walk of the same
// state row for row, verify passes, and directory_events holds every event
// the fake emitted exactly once. It also covers a gap longer than the
// retention, a deleted directory, the weekly reconcile, and reruns.
func TestIncrementalMonthEqualsFullWalk(t *testing.T) {
	fake, client := startFake(t, workostest.Config{
		Seed: 11, Directories: 4, UsersPerDirectory: 240, GroupsPerDirectory: 8,
		Faults: workostest.Faults{Seed: 5, ServerError: 0.05, RateLimited: 0.03, Reset: 0.01},
	}, nil)
	dst, err := objstore.Open(context.Background(), t.TempDir(), objstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	ex := &export.Exporter{Client: client, Store: dst, Config: cfg, Now: fake.Now}
	date := func() string { return fake.Now().UTC().Format(schema.PartitionFormat) }
	firstEvent := len(fake.Events())

	m, fullReq := dayRun(t, ex, fake, dst, date())
	if m.Mode != schema.SnapshotModeFull || m.Events == nil || m.Events.Restart != export.RestartFirst {
		t.Fatalf("day 0: mode %q, events %+v: want a full snapshot that starts the chain", m.Mode, m.Events)
	}
	var incReq []int64
	incDays, reconciles := 0, 0
	for day := 1; day <= 30; day++ {
		fake.Advance(24*time.Hour, 0.04)
		if day == 12 {
			// A directory deleted at WorkOS: gone from the next snapshot.
			gone := fake.Directories()[1].ID
			if !fake.DeleteDirectory(gone) {
				t.Fatal("no directory deleted")
			}
		}
		m, req := dayRun(t, ex, fake, dst, date())
		if m.Mode == schema.SnapshotModeIncremental {
			incDays++
			incReq = append(incReq, req)
		}
		for _, d := range m.Directories {
			if d.ModeReason == export.ReasonReconcile {
				reconciles++
			}
		}
		if day == 12 {
			for _, d := range m.Directories {
				if d.Status != snapshot.DirectoryOK {
					t.Errorf("day 12: directory %s status %s", d.ID, d.Status)
				}
			}
		}
	}
	if incDays < 20 {
		t.Errorf("%d of 30 days were incremental, want most (the weekly reconcile walks the rest)", incDays)
	}
	if reconciles == 0 {
		t.Error("no directory got its weekly full reconcile in 30 days")
	}
	slices.Sort(incReq)
	if med := incReq[len(incReq)/2]; med*5 > fullReq {
		t.Errorf("an incremental day sent %d requests (median), a full walk %d: want far fewer", med, fullReq)
	}
	if fake.Stats().FaultsInjected == 0 {
		t.Error("no faults were injected: the test proves nothing about retries")
	}
	t.Logf("30 days: %d incremental, %d directory reconciles, %d events; requests: full walk %d, incremental median %d",
		incDays, reconciles, len(fake.Events())-firstEvent, fullReq, incReq[len(incReq)/2])

	// Every event the fake emitted since the first run's range is logged
	// exactly once.
	checkEventsOnce := func(from int) { t.Helper(); snapshottest.CheckEventsOnce(t, dst, fake.Events()[from:]) }
	checkEventsOnce(firstEvent)

	// A rerun of a past date walks in full and keeps that date's events.
	past := fake.Now().Add(-10 * 24 * time.Hour).UTC().Format(schema.PartitionFormat)
	before := snapshottest.LoggedEvents(t, dst)
	pm, _ := dayRun(t, ex, fake, dst, past)
	if pm.Mode != schema.SnapshotModeFull || pm.Directories[0].ModeReason != export.ReasonPastDate {
		t.Errorf("rerun of %s: mode %q (%s), want a full walk of a past date", past, pm.Mode, pm.Directories[0].ModeReason)
	}
	if after := snapshottest.LoggedEvents(t, dst); len(after) != len(before) {
		t.Errorf("the rerun of a past date changed directory_events from %d to %d events", len(before), len(after))
	}
	// A rerun of the latest date builds on its own snapshot and takes its
	// events over.
	fake.Advance(6*time.Hour, 0.04)
	hm, _ := dayRun(t, ex, fake, dst, date())
	if hm.Events == nil || hm.Events.CarriedFrom == "" {
		t.Errorf("rerun of the latest date: events %+v, want the earlier run's events taken over", hm.Events)
	}
	checkEventsOnce(firstEvent)

	// Idle for longer than the retention: a full walk restarts the chain.
	fake.Advance(35*24*time.Hour, 0.002)
	gm, _ := dayRun(t, ex, fake, dst, date())
	if gm.Mode != schema.SnapshotModeFull || gm.Events == nil || gm.Events.Restart != export.RestartRetention {
		t.Errorf("after a 35-day gap: mode %q, events %+v: want a full walk that restarts the chain", gm.Mode, gm.Events)
	}
	// The next day is incremental again.
	fake.Advance(24*time.Hour, 0.04)
	if nm, _ := dayRun(t, ex, fake, dst, date()); nm.Mode != schema.SnapshotModeIncremental {
		t.Errorf("the day after the restart: mode %q, want incremental", nm.Mode)
	}
}
