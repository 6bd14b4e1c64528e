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

// Issue 22: every failure path ends clean, and one bad run never costs a
// good one.

// runObjects lists the objects of run under the runs' prefix, its in-flight
// marker and the date's lease if it names run.
func runObjects(t *testing.T, dst objstore.Store, date, run string) []string {
	t.Helper()
	ctx := context.Background()
	var keys []string
	for _, prefix := range []string{snapshot.RunPrefix(date, run), snapshot.ActiveDir + "/"} {
		objs, err := dst.List(ctx, prefix)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			if strings.Contains(o.Key, run) {
				keys = append(keys, o.Key)
			}
		}
	}
	if b, err := dst.Get(ctx, snapshot.LeaseKey(date)); err == nil && strings.Contains(string(b), run) {
		keys = append(keys, snapshot.LeaseKey(date))
	}
	return keys
}

func leaseRun(t *testing.T, dst objstore.Store, date string) string {
	t.Helper()
	b, err := dst.Get(context.Background(), snapshot.LeaseKey(date))
	if err != nil {
		t.Fatalf("the lease on %s: %v", date, err)
	}
	_, after, _ := strings.Cut(string(b), `"run_id":"`)
	run, _, _ := strings.Cut(after, `"`)
	return run
}

// A plan that fails (a mistyped directory id: 404) while a run of the same
// date is going takes no lease and leaves nothing, and the running run
// commits.
func TestFailedPlanLeavesTheRunningRunAlone(t *testing.T) {
	fake, ex, dst := reviewSetup(t, 221, testConfig())
	ctx := context.Background()
	date := fakeDate(fake)
	pa, err := ex.Plan(ctx, export.Snapshot{Date: date, Time: fake.Now(), Trigger: "scheduler"}, export.PlanOptions{Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	typo := *ex
	typo.Config.DirectoryIDs = []string{"directory_01TYPO0000000000000000000"}
	runB := snapshot.NewRunID(time.Now())
	_, err = typo.Plan(ctx, export.Snapshot{Date: date, Time: fake.Now(), Trigger: "manual", RunID: runB}, export.PlanOptions{Workers: 2})
	if err == nil || !strings.Contains(err.Error(), "directory_01TYPO") {
		t.Fatalf("plan with a mistyped directory id: %v, want the 404 naming it", err)
	}
	if left := runObjects(t, dst, date, runB); len(left) > 0 {
		t.Errorf("the failed plan left %v", left)
	}
	if got := leaseRun(t, dst, date); got != pa.RunID {
		t.Errorf("the lease names %s, want the running run %s", got, pa.RunID)
	}
	runUnits(t, ex, pa, time.Minute, func(error) bool { return false })
	if _, err := ex.Commit(ctx, date, pa.RunID); err != nil {
		t.Fatalf("the running run's commit: %v", err)
	}
	verifyOK(t, dst, date)
}

// failPlanPut fails the PUT of every plan, after the events were staged.
type failPlanPut struct{ objstore.Store }

func (s failPlanPut) PutIfAbsent(ctx context.Context, key string, body []byte, ct string) error {
	if strings.HasSuffix(key, "/plan.json") {
		return errors.New("injected: the plan's PUT failed")
	}
	return s.Store.PutIfAbsent(ctx, key, body, ct)
}

// A plan that fails after it staged its events deletes them: a failed plan
// leaves no objects.
func TestFailedPlanDeletesItsStagedEvents(t *testing.T) {
	fake, ex, dst := reviewSetup(t, 223, testConfig())
	ctx := context.Background()
	dayRun(t, ex, fake, dst, fakeDate(fake))
	quietDay(fake)
	date := fakeDate(fake)
	bad := *ex
	bad.Store = failPlanPut{dst}
	run := snapshot.NewRunID(time.Now())
	if _, err := bad.Plan(ctx, export.Snapshot{Date: date, Time: fake.Now(), Trigger: "test", RunID: run}, export.PlanOptions{Workers: 1}); err == nil {
		t.Fatal("the plan succeeded without its PUT")
	}
	if left := runObjects(t, dst, date, run); len(left) > 0 {
		t.Errorf("the failed plan left %v", left)
	}
	// The same plan, stored: it staged events (so the check above saw them go).
	p, err := ex.Plan(ctx, export.Snapshot{Date: date, Time: fake.Now(), Trigger: "test", RunID: run}, export.PlanOptions{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	if p.Events == nil || len(p.Events.Staged) == 0 {
		t.Fatalf("the plan staged no events: the test shows nothing")
	}
}

// Two invocations of one run's plan at once (Step Functions retried the
// plan while the first still ran): both answer with the same plan, only its
// staged events stay, and the run owns the lease.
func TestPlanInvokedTwiceIsOnePlan(t *testing.T) {
	fake, ex, dst := reviewSetup(t, 227, testConfig())
	ctx := context.Background()
	dayRun(t, ex, fake, dst, fakeDate(fake))
	quietDay(fake)
	date := fakeDate(fake)
	run := snapshot.ExecutionRunID(time.Now(), "arn:aws:states:us-east-1:123456789012:execution:x:retried")
	var plans [2]*export.Plan
	var errs [2]error
	var wg sync.WaitGroup
	for i := range plans {
		wg.Go(func() {
			plans[i], errs[i] = ex.Plan(ctx, export.Snapshot{Date: date, Time: fake.Now(), Trigger: "scheduler", RunID: run}, export.PlanOptions{Workers: 2})
		})
	}
	wg.Wait()
	for i := range plans {
		if errs[i] != nil {
			t.Fatalf("plan invocation %d: %v", i, errs[i])
		}
	}
	if plans[0].Attempt != plans[1].Attempt || plans[0].RunID != run {
		t.Fatalf("the invocations returned plans of attempts %s and %s (run %s)", plans[0].Attempt, plans[1].Attempt, plans[0].RunID)
	}
	objs, err := dst.List(ctx, snapshot.RunPrefix(date, run))
	if err != nil {
		t.Fatal(err)
	}
	var staged int
	for _, o := range objs {
		if strings.Contains(o.Key, "/events-") {
			staged++
			if !strings.Contains(o.Key, "/events-"+plans[0].Attempt+"-") {
				t.Errorf("%s: staged by the invocation whose plan lost", o.Key)
			}
		}
	}
	if staged != len(plans[0].Events.Staged) || staged == 0 {
		t.Errorf("%d staged files, want the plan's %d", staged, len(plans[0].Events.Staged))
	}
	if got := leaseRun(t, dst, date); got != run {
		t.Errorf("the lease names %s, want %s", got, run)
	}
	runUnits(t, ex, plans[1], time.Minute, func(error) bool { return false })
	if _, err := ex.Commit(ctx, date, run); err != nil {
		t.Fatal(err)
	}
	verifyOK(t, dst, date)
}

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
	pa, err := ex.Plan(ctx, export.Snapshot{Date: d1, Time: fake.Now(), Trigger: "test"}, export.PlanOptions{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	quietDay(fake)
	d2 := fakeDate(fake)
	before := fake.Stats().Requests
	runB := snapshot.NewRunID(time.Now())
	_, err = ex.Plan(ctx, export.Snapshot{Date: d2, Time: fake.Now(), Trigger: "test", RunID: runB}, export.PlanOptions{Workers: 1})
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
	pb, err := ex.Plan(ctx, export.Snapshot{Date: d2, Time: fake.Now(), Trigger: "test"}, export.PlanOptions{Workers: 1})
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
	if _, err := ex.Plan(ctx, export.Snapshot{Date: d3, Time: fake.Now(), Trigger: "test"}, export.PlanOptions{Workers: 1}); !errors.Is(err, export.ErrBusy) {
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
	pc, err := ex.Plan(ctx, export.Snapshot{Date: d3, Time: fake.Now(), Trigger: "test"}, export.PlanOptions{Workers: 1})
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
	if _, err := ex.Plan(ctx, export.Snapshot{Date: fakeDate(fake), Time: fake.Now(), Trigger: "test"}, export.PlanOptions{Workers: 1}); err != nil {
		t.Fatalf("plan after the run in flight was aborted: %v", err)
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
				plans[i], errs[i] = ex.Plan(ctx, export.Snapshot{Date: date, Time: fake.Now(), Trigger: "test", RunID: runs[i]}, export.PlanOptions{Workers: 1})
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
