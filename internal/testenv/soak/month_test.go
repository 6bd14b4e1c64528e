package soak_test

import (
	"context"
	"flag"
	"fmt"
	"testing"
	"time"

	"github.com/dsync-export/dsync-export/internal/testenv/awstest"
	"github.com/dsync-export/dsync-export/internal/testenv/snapshottest"
	"github.com/dsync-export/dsync-export/internal/testenv/workostest"
	"github.com/dsync-export/dsync-export/pkg/export"
	"github.com/dsync-export/dsync-export/pkg/schema"
	"github.com/dsync-export/dsync-export/pkg/snapshot"
	"github.com/dsync-export/dsync-export/pkg/verify"
)

var (
	monthDirs  = flag.Int("month-dirs", 3, "directories of the incremental month soak (make soak passes 20)")
	monthUsers = flag.Int("month-users", 200, "users per directory of the incremental month soak (make soak passes 2000)")
	monthDays  = flag.Int("month-days", 8, "simulated days of the incremental month soak (make soak passes 30)")
)

// TestSoakIncrementalMonth is the exactness test at scale: simulated days of
// 1% churn (with directories activated and deleted) under the soak's 17%
// faults, exported to S3 (versitygw), every third day run as plan, resumed
// chunks and commit. Every day's snapshot equals a full walk of the state
// row for row and verifies; directory_events holds every event once; then
// a gap longer than the retention forces a full walk that restarts the
// chain, and a rerun of a past date changes no event.
func TestSoakIncrementalMonth(t *testing.T) {
	start := time.Now()
	fake, tl, url := startFake(t, workostest.Config{
		Seed: 99, Directories: *monthDirs, UsersPerDirectory: *monthUsers, GroupsPerDirectory: max(2, *monthUsers/100),
		Faults: faultsFor(99),
	})
	client := newClient(t, url)
	s3srv := awstest.StartS3(t)
	s3srv.CreateBucket(t, "month")
	dst := openS3(t, s3srv, "s3://month/workos")
	cfg := export.DefaultConfig()
	cfg.PerDirectoryRate, cfg.GlobalRate = 0, 0
	cfg.DeadlineMargin = time.Second
	// The fake holds no event back, and each day is compared with its state
	// at the instant (TestSoakHostileMonth keeps the default settle).
	cfg.EventsSettle = 0
	ex := &export.Exporter{Client: client, Store: dst, Config: cfg, Now: fake.Now}
	ctx := t.Context()
	first := len(fake.Events())
	day := func(n int) *snapshot.Manifest {
		t.Helper()
		begin := time.Now()
		d := fake.Now().UTC().Format(schema.PartitionFormat)
		at := fake.Now().UTC().Truncate(time.Millisecond)
		var res *export.Result
		var err error
		if n%3 == 2 {
			res, err = stepsRun(ctx, ex, d, at)
		} else {
			res, err = ex.Run(ctx, export.Target{Date: d, Time: at, Trigger: "soak"})
		}
		if err != nil {
			t.Fatalf("day %d (%s): %v", n, d, err)
		}
		snapshottest.CheckExact(t, dst, res.Manifest, snapshottest.ExpectedRows(fake, at))
		checkValid(t, ctx, dst, d, verify.Options{MaxDrop: 0.6})
		t.Logf("day %d %s: %s, %d requests, %d events logged, %s", n, d, res.Manifest.Mode, res.Manifest.API.Requests, eventsOf(res.Manifest), time.Since(begin).Round(time.Millisecond))
		return res.Manifest
	}
	var full, inc int64
	incDays := 0
	m := day(0)
	full = m.API.Requests
	for n := 1; n <= *monthDays; n++ {
		fake.Advance(24*time.Hour, 0.01)
		m := day(n)
		if m.Mode == schema.SnapshotModeIncremental {
			incDays++
			inc += m.API.Requests
		}
	}
	snapshottest.CheckEventsOnce(t, dst, fake.Events()[first:])
	if incDays == 0 {
		t.Fatal("no day was incremental")
	}
	before := len(snapshottest.LoggedEvents(t, dst))
	past := fake.Now().Add(-48 * time.Hour).UTC().Format(schema.PartitionFormat)
	if _, err := ex.Run(ctx, export.Target{Date: past, Trigger: "soak"}); err != nil {
		t.Fatalf("rerun of %s: %v", past, err)
	}
	if after := len(snapshottest.LoggedEvents(t, dst)); after != before {
		t.Errorf("the rerun of %s changed directory_events from %d to %d events", past, before, after)
	}
	fake.Advance(35*24*time.Hour, 0.001)
	if g := day(*monthDays + 1); g.Mode != schema.SnapshotModeFull || g.Events == nil || g.Events.Restart != export.RestartRetention {
		t.Errorf("after a 35-day gap: mode %q, events %+v, want a full walk restarting the chain", g.Mode, g.Events)
	}
	st := tl.snapshot()
	line := fmt.Sprintf("incremental month soak: %d directories x %d users, %d days (%d incremental), %d events, requests full day %d vs incremental day %.1f on average, faults injected %s, wall %s",
		*monthDirs, *monthUsers, *monthDays, incDays, len(fake.Events())-first, full, float64(inc)/float64(incDays), st, time.Since(start).Round(time.Millisecond))
	t.Log(line)
	fmt.Println(line)
}

// stepsRun runs one export as plan, every unit in short chunks (a chunk
// that overran its deadline is retried from the checkpoint), and commit.
func stepsRun(ctx context.Context, ex *export.Exporter, date string, at time.Time) (*export.Result, error) {
	p, err := ex.Plan(ctx, export.Target{Date: date, Time: at, Trigger: "soak"}, export.PlanOptions{Workers: 3})
	if err != nil {
		return nil, err
	}
	// Chunks long enough for a base file of the delta unit under -race.
	sc := scenario{workers: 3, chunkTime: 5 * time.Second}
	return finishSteps(ctx, ex, p, sc)
}

// eventsOf is the number of events in a manifest's change-log slice.
func eventsOf(m *snapshot.Manifest) int64 {
	if m.Events == nil {
		return 0
	}
	return m.Events.Events
}
