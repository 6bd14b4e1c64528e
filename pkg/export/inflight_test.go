package export_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dsync-export/dsync-export/internal/testenv/workostest"
	"github.com/dsync-export/dsync-export/pkg/export"
	"github.com/dsync-export/dsync-export/pkg/objstore"
	"github.com/dsync-export/dsync-export/pkg/snapshot"
)

// One date at a time: a plan of another date while a run is in flight
// fails with ErrBusy before it sends a WorkOS request and writes nothing;
// once the run commits, it plans. A run stopped without its abort (an
// execution stopped by hand) stops counting InFlightStale after its last
// write, and an aborted one at once.
func TestOneDateInFlightAtATime(t *testing.T) {
	fake, client := startFake(t, workostest.Config{Seed: 229, Directories: 3, UsersPerDirectory: 200, GroupsPerDirectory: 5}, nil)
	root := t.TempDir()
	dst, err := objstore.Open(context.Background(), root, objstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ex := &export.Exporter{Client: client, Store: dst, Config: testConfig(), Now: fake.Now}
	ctx := context.Background()
	d1 := fakeDate(fake)
	pa, err := ex.Plan(ctx, export.Target{Date: d1, Time: fake.Now(), Trigger: "test"}, export.PlanOptions{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	quietDay(fake)
	d2 := fakeDate(fake)
	before := fake.Stats().Requests
	runB := snapshot.NewRunID(time.Now())
	_, err = ex.Plan(ctx, export.Target{Date: d2, Time: fake.Now(), Trigger: "test", RunID: runB}, export.PlanOptions{Workers: 1})
	if !errors.Is(err, export.ErrBusy) || !strings.Contains(err.Error(), pa.RunID) || !strings.Contains(err.Error(), d1) {
		t.Fatalf("plan of %s while %s runs: %v, want ErrBusy naming run %s", d2, d1, err, pa.RunID)
	}
	if n := fake.Stats().Requests - before; n != 0 {
		t.Errorf("the refused plan sent %d WorkOS requests", n)
	}
	if left := runObjects(t, dst, d2, runB); len(left) > 0 {
		t.Errorf("the refused plan left %v", left)
	}
	// The run of d1 commits: d2 plans, from d1's snapshot.
	runUnits(t, ex, pa, time.Minute, func(error) bool { return false })
	if _, err := ex.Commit(ctx, d1, pa.RunID); err != nil {
		t.Fatal(err)
	}
	pb, err := ex.Plan(ctx, export.Target{Date: d2, Time: fake.Now(), Trigger: "test"}, export.PlanOptions{Workers: 1})
	if err != nil {
		t.Fatalf("plan of %s after %s committed: %v", d2, d1, err)
	}
	if pb.Base == nil || pb.Base.RunID != pa.RunID {
		t.Errorf("the plan of %s builds on %+v, want %s's run %s", d2, pb.Base, d1, pa.RunID)
	}
	// pb stops without an abort: it blocks d3 until its last write is
	// InFlightStale old.
	quietDay(fake)
	d3 := fakeDate(fake)
	if _, err := ex.Plan(ctx, export.Target{Date: d3, Time: fake.Now(), Trigger: "test"}, export.PlanOptions{Workers: 1}); !errors.Is(err, export.ErrBusy) {
		t.Fatalf("plan of %s while %s's run is fresh: %v, want ErrBusy", d3, d2, err)
	}
	old := time.Now().Add(-export.InFlightStale - time.Minute)
	for _, prefix := range []string{snapshot.RunPrefix(d2, pb.RunID), snapshot.ActiveDir} {
		err := filepath.WalkDir(filepath.Join(root, filepath.FromSlash(prefix)), func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			return os.Chtimes(p, old, old)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	pc, err := ex.Plan(ctx, export.Target{Date: d3, Time: fake.Now(), Trigger: "test"}, export.PlanOptions{Workers: 1})
	if err != nil {
		t.Fatalf("plan of %s after %s's run went stale: %v", d3, d2, err)
	}
	// The stale run keeps its plan and lease (a commit of its date removes
	// them); its marker is gone.
	for _, k := range runObjects(t, dst, d2, pb.RunID) {
		if strings.HasPrefix(k, snapshot.ActiveDir) {
			t.Errorf("the stale run's in-flight marker %s is left", k)
		}
	}
	// An aborted run stops counting at once.
	if _, err := ex.Abort(ctx, d3, pc.RunID); err != nil {
		t.Fatal(err)
	}
	quietDay(fake)
	if _, err := ex.Plan(ctx, export.Target{Date: fakeDate(fake), Time: fake.Now(), Trigger: "test"}, export.PlanOptions{Workers: 1}); err != nil {
		t.Fatalf("plan after the run in flight was aborted: %v", err)
	}
}

// Two plans of different dates at once: at most one starts a run (each
// marks itself in flight, then checks again, so the later of the two sees
// the other); the other fails with ErrBusy and leaves nothing.
func TestPlansOfTwoDatesAtOnceStartOneRun(t *testing.T) {
	fake, ex, dst := reviewSetup(t, 233, testConfig())
	ctx := context.Background()
	d1 := fakeDate(fake)
	dayRun(t, ex, fake, dst, d1)
	d0 := fake.Now().Add(-24 * time.Hour).UTC().Format("2006-01-02")
	for range 5 {
		var plans [2]*export.Plan
		var errs [2]error
		runs := [2]string{snapshot.NewRunID(time.Now()), snapshot.NewRunID(time.Now())}
		var wg sync.WaitGroup
		for i, date := range []string{d0, d1} {
			wg.Go(func() {
				plans[i], errs[i] = ex.Plan(ctx, export.Target{Date: date, Time: fake.Now(), Trigger: "test", RunID: runs[i]}, export.PlanOptions{Workers: 1})
			})
		}
		wg.Wait()
		if errs[0] == nil && errs[1] == nil {
			t.Fatalf("runs of %s and %s both started", d0, d1)
		}
		for i, date := range []string{d0, d1} {
			if errs[i] != nil {
				if !errors.Is(errs[i], export.ErrBusy) {
					t.Fatalf("plan of %s: %v, want ErrBusy", date, errs[i])
				}
				if left := runObjects(t, dst, date, runs[i]); len(left) > 0 {
					t.Errorf("the plan that waits left %v", left)
				}
				continue
			}
			if _, err := ex.Abort(ctx, date, plans[i].RunID); err != nil {
				t.Fatal(err)
			}
		}
	}
}
