package export_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dsync-export/dsync-export/pkg/export"
	"github.com/dsync-export/dsync-export/pkg/objstore"
	"github.com/dsync-export/dsync-export/pkg/snapshot"
)

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
	pa, err := ex.Plan(ctx, export.Target{Date: date, Time: fake.Now(), Trigger: "scheduler"}, export.PlanOptions{Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	typo := *ex
	typo.Config.DirectoryIDs = []string{"directory_01TYPO0000000000000000000"}
	runB := snapshot.NewRunID(time.Now())
	_, err = typo.Plan(ctx, export.Target{Date: date, Time: fake.Now(), Trigger: "manual", RunID: runB}, export.PlanOptions{Workers: 2})
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
	if _, err := bad.Plan(ctx, export.Target{Date: date, Time: fake.Now(), Trigger: "test", RunID: run}, export.PlanOptions{Workers: 1}); err == nil {
		t.Fatal("the plan succeeded without its PUT")
	}
	if left := runObjects(t, dst, date, run); len(left) > 0 {
		t.Errorf("the failed plan left %v", left)
	}
	// The same plan, stored: it staged events (so the check above saw them go).
	p, err := ex.Plan(ctx, export.Target{Date: date, Time: fake.Now(), Trigger: "test", RunID: run}, export.PlanOptions{Workers: 1})
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
			plans[i], errs[i] = ex.Plan(ctx, export.Target{Date: date, Time: fake.Now(), Trigger: "scheduler", RunID: run}, export.PlanOptions{Workers: 2})
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
