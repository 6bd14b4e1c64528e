package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/dsync-export/dsync-export/internal/testenv/workostest"
	"github.com/dsync-export/dsync-export/pkg/export"
	"github.com/dsync-export/dsync-export/pkg/objstore"
	"github.com/dsync-export/dsync-export/pkg/schema"
	"github.com/dsync-export/dsync-export/pkg/workos"
)

// reconcileChurn is the daily churn of section 9.
const reconcileChurn = 0.01

// reconcileGoal is the largest day's requests over the mean day's that
// section 9 accepts.
const reconcileGoal = 1.5

// reconcileCycle is the reconcile cycle of section 9 in days: the default
// FullEvery.
const reconcileCycle = 7

// reconcileSet is the dataset of section 9 and its number of simulated days
// after day 0.
func reconcileSet(quick bool) (dataset, int) {
	if quick {
		return dataset{14, 100, 4}, 14
	}
	return dataset{40, 300, 10}, 28
}

// dayStat is one simulated day of section 9.
type dayStat struct {
	Day       int
	Date      string
	Mode      string // the snapshot's mode
	Events    int    // events the fake emitted since the previous day
	Requests  int64  // requests the fake saw during the export
	Reconcile int    // directories walked in full for the periodic reconcile
	OtherFull int    // directories walked in full for another reason
	Control   int64  // requests of the same day with no reconcile at all
}

// reconcileResult is what reconcileRun measured.
type reconcileResult struct {
	Days []dayStat // day 0 (the first full walk) first
	// PerDirectory counts each directory's reconcile walks over days 1..n.
	PerDirectory map[string]int
}

// reconcileSim is one account: a fake and an exporter to a local folder,
// advanced and exported day by day.
type reconcileSim struct {
	fake *workostest.Server
	ex   *export.Exporter
}

func newReconcileSim(ctx context.Context, d dataset, seed int64, dir string, fullEvery time.Duration) (*reconcileSim, error) {
	fake, base, err := startFake(d.fakeConfig(seed, 0, false))
	if err != nil {
		return nil, err
	}
	client, err := workos.NewClient(apiKey, workos.WithBaseURL(base), workos.WithRateLimits(workos.RateLimits{}))
	if err != nil {
		fake.Close()
		return nil, err
	}
	dst, err := objstore.Open(ctx, dir, objstore.Options{})
	if err != nil {
		fake.Close()
		return nil, err
	}
	cfg := export.DefaultConfig() // Mode auto
	cfg.PerDirectoryRate, cfg.GlobalRate = 0, 0
	cfg.EventsSettle = 0 // the fake holds no event back
	cfg.FullEvery = fullEvery
	return &reconcileSim{fake: fake, ex: &export.Exporter{Client: client, Store: dst, Config: cfg, Now: fake.Now}}, nil
}

// day exports the fake's state as the snapshot of its clock's date and
// returns the manifest's counts and the requests the fake saw.
func (s *reconcileSim) day(ctx context.Context, n int) (dayStat, map[string]bool, error) {
	before := s.fake.Stats().Requests
	at := s.fake.Now().UTC().Truncate(time.Millisecond)
	date := at.Format(schema.PartitionFormat)
	res, err := s.ex.Run(ctx, export.Target{Date: date, Time: at, Trigger: "bench"})
	if err != nil {
		return dayStat{}, nil, fmt.Errorf("day %d (%s): %w", n, date, err)
	}
	st := dayStat{Day: n, Date: date, Mode: res.Manifest.Mode, Requests: s.fake.Stats().Requests - before}
	reconciled := map[string]bool{}
	for _, d := range res.Manifest.Directories {
		switch {
		case d.ModeReason == export.ReasonReconcile:
			st.Reconcile++
			reconciled[d.ID] = true
		case d.Mode == schema.SnapshotModeFull:
			st.OtherFull++
		}
	}
	return st, reconciled, nil
}

// reconcileRun simulates days days after a first full walk of d, with the
// default FullEvery of 7 days (each directory on its own reconcile day) and,
// alongside, the same account with FullEvery 0 (never reconciled), whose
// days are the incremental cost alone.
func (b *bench) reconcileRun(ctx context.Context, d dataset, days int) (*reconcileResult, error) {
	dir, err := os.MkdirTemp("", "dsync-bench-rec-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	sim, err := newReconcileSim(ctx, d, b.seed, dir+"/reconcile", reconcileCycle*24*time.Hour)
	if err != nil {
		return nil, err
	}
	defer sim.fake.Close()
	ctl, err := newReconcileSim(ctx, d, b.seed, dir+"/control", 0)
	if err != nil {
		return nil, err
	}
	defer ctl.fake.Close()

	res := &reconcileResult{PerDirectory: map[string]int{}}
	for n := 0; n <= days; n++ {
		if n > 0 {
			adv := sim.fake.AdvanceWith(24*time.Hour, workostest.AdvanceOptions{Churn: reconcileChurn, DirectoryRate: -1})
			ctl.fake.AdvanceWith(24*time.Hour, workostest.AdvanceOptions{Churn: reconcileChurn, DirectoryRate: -1})
			res.Days = append(res.Days, dayStat{Events: adv.Events})
		} else {
			res.Days = append(res.Days, dayStat{})
		}
		st, reconciled, err := sim.day(ctx, n)
		if err != nil {
			return nil, err
		}
		cst, _, err := ctl.day(ctx, n)
		if err != nil {
			return nil, fmt.Errorf("control: %w", err)
		}
		st.Events, st.Control = res.Days[n].Events, cst.Requests
		res.Days[n] = st
		if n > 0 {
			for id := range reconciled {
				res.PerDirectory[id]++
			}
		}
		if n == 0 || n%7 == 0 || n == days {
			b.progress("reconcile: day %d, %s requests, %d reconcile walks", n, fmtInt(st.Requests), st.Reconcile)
		}
	}
	for _, dd := range sim.fake.Directories() {
		if _, ok := res.PerDirectory[dd.ID]; !ok {
			res.PerDirectory[dd.ID] = 0
		}
	}
	return res, nil
}

// reconcileSummary is the figures of the section's notes.
type reconcileSummary struct {
	Full                 int64   // day 0's requests (a full walk of everything)
	Mean, Max            float64 // requests per day over days 1..n
	MaxDay               int
	Ratio                float64
	OldMean, OldMax      float64 // the old rule's estimate
	OldRatio             float64
	IncMean              float64 // mean requests of the control's days
	MinRec, MaxRec       int     // reconcile walks per day
	MinPerDir, MaxPerDir int     // reconcile walks per directory
}

// summarize computes the section's figures. The old rule walked every
// directory on days 7, 14, 21, …: its estimate costs day 0's full walk on
// those days and the control's mean incremental day on the others.
func (r *reconcileResult) summarize() reconcileSummary {
	s := reconcileSummary{Full: r.Days[0].Requests, MinRec: -1, MinPerDir: -1}
	days := r.Days[1:]
	var sum, ctlSum float64
	var ctlN int
	for _, d := range days {
		sum += float64(d.Requests)
		if float64(d.Requests) > s.Max {
			s.Max, s.MaxDay = float64(d.Requests), d.Day
		}
		if d.Day%reconcileCycle != 0 {
			ctlSum += float64(d.Control)
			ctlN++
		}
		if s.MinRec < 0 || d.Reconcile < s.MinRec {
			s.MinRec = d.Reconcile
		}
		s.MaxRec = max(s.MaxRec, d.Reconcile)
	}
	for _, n := range r.PerDirectory {
		if s.MinPerDir < 0 || n < s.MinPerDir {
			s.MinPerDir = n
		}
		s.MaxPerDir = max(s.MaxPerDir, n)
	}
	s.Mean = sum / float64(len(days))
	s.Ratio = s.Max / s.Mean
	if ctlN > 0 {
		s.IncMean = ctlSum / float64(ctlN)
	}
	walks := len(days) / reconcileCycle
	s.OldMean = (float64(walks)*float64(s.Full) + float64(len(days)-walks)*s.IncMean) / float64(len(days))
	s.OldMax = max(float64(s.Full), s.IncMean)
	s.OldRatio = s.OldMax / s.OldMean
	return s
}

// oldRule is the old rule's estimated requests of day n.
func (s reconcileSummary) oldRule(n int) float64 {
	if n > 0 && n%reconcileCycle == 0 {
		return float64(s.Full)
	}
	return s.IncMean
}

// reconcile is section 9: the requests per day over simulated weeks with
// each directory on its own reconcile day.
func (b *bench) reconcile(ctx context.Context) *section {
	d, days := reconcileSet(b.quick)
	s := &section{title: "9. Reconcile spread over the week"}
	s.intro = []string{
		fmt.Sprintf("The fake (no rate limits, no latency: requests are counted, not timed) serves %s with %d groups each. The export runs in process with the defaults, `EXPORT_MODE=auto` and a full reconcile every %d days (`FullEvery`), into a local folder.", d, d.Groups, reconcileCycle),
		fmt.Sprintf("Day 0 is the first full walk; then %d simulated days, each %.0f%% churn (no directory activated or deleted) followed by one export of the fake's date.", days, reconcileChurn*100),
		fmt.Sprintf("Each directory's reconcile day is fnv64a(id) mod %d, so about 1/%d of the account is walked in full each day. Requests = what the fake saw during the day's export; reconcile = directories walked in full because their reconcile was due; other full = walked in full for another reason.", reconcileCycle, reconcileCycle),
		fmt.Sprintf("Old rule = the estimate for every directory reconciling on the same day: day 0's full walk on days %d, %d, …, and on the other days the mean of the same account exported alongside with `FullEvery=0` (incremental only).", reconcileCycle, 2*reconcileCycle),
	}
	b.progress("reconcile: %s, day 0 and %d simulated days", d, days)
	r, err := b.reconcileRun(ctx, d, days)
	if err != nil {
		s.failed = err
		return s
	}
	sum := r.summarize()
	t := newTable(">day", "date", "mode", ">events", ">requests", ">reconcile", ">other full", ">old rule")
	s.table = t
	for _, dd := range r.Days {
		day := strconv.Itoa(dd.Day)
		if dd.Day == 0 {
			day = "0 (first walk)"
		}
		old := fmtInt(int64(sum.oldRule(dd.Day) + 0.5))
		if dd.Day == 0 {
			old = fmtInt(sum.Full)
		}
		t.add(day, dd.Date, dd.Mode, fmtInt(int64(dd.Events)), fmtInt(dd.Requests), strconv.Itoa(dd.Reconcile), strconv.Itoa(dd.OtherFull), old)
	}
	n := len(r.Days) - 1
	s.notes = append(s.notes,
		fmt.Sprintf("Days 1–%d: **mean %s requests/day, largest day %s (day %d), max/mean %s** (goal ≤ %s). Reconcile walks per day: %d to %d (%s directories / %d = %.1f); each directory was reconciled %d to %d times in %d days (want %d).",
			n, fmtInt(int64(sum.Mean+0.5)), fmtInt(int64(sum.Max)), sum.MaxDay, fmtRatio(sum.Ratio), fmtRatio(reconcileGoal),
			sum.MinRec, sum.MaxRec, fmtInt(int64(d.Dirs)), reconcileCycle, float64(d.Dirs)/reconcileCycle,
			sum.MinPerDir, sum.MaxPerDir, n, n/reconcileCycle),
		fmt.Sprintf("Old rule (estimate): mean %s requests/day, largest day %s (a full walk of everything), **max/mean %s**; an incremental-only day costs %s requests on average.",
			fmtInt(int64(sum.OldMean+0.5)), fmtInt(sum.Full), fmtRatio(sum.OldRatio), fmtInt(int64(sum.IncMean+0.5))),
	)
	if sum.Ratio > reconcileGoal {
		s.notes = append(s.notes, fmt.Sprintf("FAILED: the largest day is %s the mean, above the goal of %s.", fmtRatio(sum.Ratio), fmtRatio(reconcileGoal)))
	}
	if sum.MinPerDir != n/reconcileCycle || sum.MaxPerDir != n/reconcileCycle {
		s.notes = append(s.notes, fmt.Sprintf("MISMATCH: each directory should be reconciled %d times in %d days, got %d to %d.", n/reconcileCycle, n, sum.MinPerDir, sum.MaxPerDir))
	}
	return s
}
