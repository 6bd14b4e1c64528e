package export_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dsync-export/dsync-export/internal/testenv/snapshottest"
	"github.com/dsync-export/dsync-export/internal/testenv/workostest"
	"github.com/dsync-export/dsync-export/pkg/export"
	"github.com/dsync-export/dsync-export/pkg/objstore"
	"github.com/dsync-export/dsync-export/pkg/snapshot"
	"github.com/dsync-export/dsync-export/pkg/workos"
)

// Item 18: a late abort of run R1 (its commit failed after the manifest)
// between a rerun R2's manifest PUT and R2's cleanup must not delete the
// events files R2 took over from R1.
func TestLateAbortKeepsEventsARerunTookOver(t *testing.T) {
	fake, client := startFake(t, workostest.Config{Seed: 101, Directories: 3, UsersPerDirectory: 150, GroupsPerDirectory: 4}, nil)
	dir := localStore(t)
	dst := &hookStore{Store: dir}
	ex := &export.Exporter{Client: client, Store: dst, Config: testConfig(), Now: fake.Now}
	ctx := context.Background()
	dayRun(t, ex, fake, dst, fakeDate(fake))
	quietDay(fake)
	date := fakeDate(fake)
	p1, err := ex.Plan(ctx, export.Target{Date: date, Time: fake.Now(), Trigger: "test"}, export.PlanOptions{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	runUnits(t, ex, p1, time.Minute, func(error) bool { return false })
	// R1's manifest lands, then another run takes the date at once, so R1
	// skips its cleanup (its plan stays) and its execution goes on to fail.
	var r2 string
	dst.onPut = func(key string) {
		if key == snapshot.ManifestKey(date) && r2 == "" {
			r2 = "pending"
			b, _ := json.Marshal(map[string]any{"run_id": snapshot.NewRunID(time.Now()), "started_at": time.Now().UTC()})
			_ = dir.Put(ctx, snapshot.LeaseKey(date), b, "application/json")
		}
	}
	if _, err := ex.Commit(ctx, date, p1.RunID); err != nil {
		t.Fatal(err)
	}
	if _, err := dir.Get(ctx, snapshot.PlanKey(date, p1.RunID)); err != nil {
		t.Fatalf("R1's plan: %v; the test needs it kept", err)
	}
	// R2 reruns the date, taking R1's events over; R1's abort runs right
	// after R2's manifest PUT.
	dst.onPut = func(key string) {
		if key == snapshot.ManifestKey(date) {
			dst.onPut = nil
			if _, err := ex.Abort(ctx, date, p1.RunID); err != nil {
				t.Errorf("abort of R1: %v", err)
			}
		}
	}
	res, err := ex.Run(ctx, export.Target{Date: date, Time: fake.Now(), Trigger: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Manifest.Events.CarriedFrom != p1.RunID {
		t.Fatalf("R2 carried %q, want R1's events %s", res.Manifest.Events.CarriedFrom, p1.RunID)
	}
	snapshottest.CheckObjectsAreManifest(t, dir, res.Manifest)
	for _, f := range res.Manifest.Events.Files {
		if _, err := dir.Get(ctx, f.Key); err != nil {
			t.Errorf("R2's events file %s: %v", f.Key, err)
		}
	}
	snapshottest.CheckEventsOnce(t, dst, fake.Events())
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
	if _, err := ex.Run(context.Background(), export.Target{Date: "2026-11-28", Time: snapTime}); !workos.IsUnauthorized(err) {
		t.Fatalf("err %v, want the 401", err)
	}
	if !strings.Contains(logs.String(), "failed run's files deleted") {
		t.Errorf("no part rolled over before the failure, so the test proves nothing:\n%s", logs.String())
	}
	if got := snapshottest.ListSnapshot(t, dst, "2026-11-28"); len(got) != 0 {
		t.Errorf("the failed run left %v", got)
	}
}

// A chunk's failure that a retry may still fix is the unit's only; a unit's
// final failure is also the run's first (which ends its being in flight).
func TestOnlyAFinalFailureIsTheRuns(t *testing.T) {
	dst := localStore(t)
	ex := &export.Exporter{Store: dst, Config: testConfig()}
	ctx := context.Background()
	run := snapshot.NewRunID(time.Now())
	if err := ex.RecordFailure(ctx, "2026-12-08", run, "0001", export.Failure{Error: "Export.Retryable", Cause: "a 502, retried"}); err != nil {
		t.Fatal(err)
	}
	if _, err := dst.Get(ctx, snapshot.RunFailureKey("2026-12-08", run)); !errors.Is(err, objstore.ErrNotExist) {
		t.Errorf("a retryable chunk failure wrote the run's failure record (%v): the run would stop counting as in flight", err)
	}
	for _, f := range []export.Failure{{Error: "Runtime.OutOfMemory", Cause: "first"}, {Error: "Export.Failed", Cause: "second"}} {
		if err := ex.RecordUnitFailed(ctx, "2026-12-08", run, "0002", f); err != nil {
			t.Fatal(err)
		}
	}
	b, err := dst.Get(ctx, snapshot.RunFailureKey("2026-12-08", run))
	if err != nil || !strings.Contains(string(b), "Runtime.OutOfMemory") {
		t.Errorf("the run's failure record: %s %v, want the first final failure", b, err)
	}
}
