package export_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/dsync-export/dsync-export/internal/testenv/snapshottest"
	"github.com/dsync-export/dsync-export/internal/testenv/workostest"
	"github.com/dsync-export/dsync-export/pkg/export"
	"github.com/dsync-export/dsync-export/pkg/objstore"
	"github.com/dsync-export/dsync-export/pkg/schema"
	"github.com/dsync-export/dsync-export/pkg/snapshot"
	"github.com/dsync-export/dsync-export/pkg/verify"
	"github.com/dsync-export/dsync-export/pkg/workos"
)

// checkEventPartitions fails for an event file whose rows are not all of
// its partition's date.
func checkEventPartitions(t *testing.T, dst objstore.Store) {
	t.Helper()
	objs, err := dst.List(context.Background(), schema.TableEvents+"/")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		b, err := dst.Get(context.Background(), o.Key)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := parquet.Read[schema.DirectoryEvent](bytes.NewReader(b), int64(len(b)))
		if err != nil {
			t.Fatalf("read %s: %v", o.Key, err)
		}
		for _, e := range rows {
			if d := e.CreatedAt.UTC().Format(schema.PartitionFormat); !strings.Contains(o.Key, "/dt="+d+"/") {
				t.Errorf("event %s of %s is in %s", e.ID, d, o.Key)
			}
		}
	}
}

// Item 1: events whose dates are not in cursor order (a created_at a day
// early, read after later days' events) are all written, each in its own
// date's partition; before, the date's writer reopened at part 0 and
// overwrote the earlier part.
func TestEventsOutOfDateOrderAreAllWritten(t *testing.T) {
	fake, ex, dst := hostileSetup(t, 81, testConfig(), workostest.Hostile{Seed: 1, EarlyCreatedAt: 0.3}, workostest.MetadataMixed)
	dayRun(t, ex, fake, dst, fakeDate(fake))
	for range 3 {
		quietDay(fake)
		dayRun(t, ex, fake, dst, fakeDate(fake))
	}
	if len(fake.HostileTruth().EarlyCreatedAt) == 0 {
		t.Fatal("the fake served no early event")
	}
	snapshottest.CheckEventsOnce(t, dst, fake.Events())
	checkEventPartitions(t, dst)
}

// Item 2: pages whose events are swapped, whose first event repeats the
// cursor's, and events emitted twice: every event is logged once, the
// cursor is the greatest id read, and the repeats are counted.
func TestSwappedAndRepeatedEventsAreLoggedOnce(t *testing.T) {
	fake, ex, dst := hostileSetup(t, 83, testConfig(), workostest.Hostile{Seed: 2, SwapInPage: true, RepeatCursor: true, DoubleEmit: 0.05}, workostest.MetadataMixed)
	dayRun(t, ex, fake, dst, fakeDate(fake))
	var dups int64
	for range 3 {
		quietDay(fake)
		m, _ := dayRun(t, ex, fake, dst, fakeDate(fake))
		dups += m.Events.Duplicates
		var greatest string
		for _, e := range snapshottest.ReadEvents(t, dst, m.Events.Files) {
			greatest = max(greatest, e.ID)
		}
		if greatest != "" && m.Events.Through.After != greatest {
			t.Errorf("%s: cursor %s, want the greatest id read %s", m.SnapshotDate, m.Events.Through.After, greatest)
		}
	}
	snapshottest.CheckEventsOnce(t, dst, fake.Events())
	if n := countDuplicates(allEventFiles(t, dst)); n > 0 {
		t.Errorf("%d events stored twice", n)
	}
	if dups == 0 {
		t.Error("no repeated event was dropped: the hostile modes did not reach the export")
	}
}

// Item 9: an event that does not decode is quarantined (recorded in the
// manifest, not logged), the cursor moves past it, the directory it names
// is walked in full, and neither the day nor a "mode: full" run fails.
func TestUndecodableEventIsQuarantined(t *testing.T) {
	fake, ex, dst := hostileSetup(t, 89, testConfig(), workostest.Hostile{}, workostest.MetadataMixed)
	dayRun(t, ex, fake, dst, fakeDate(fake))
	fake.SetHostile(workostest.Hostile{Seed: 3, Undecodable: 0.02})
	quietDay(fake)
	bad := fake.HostileTruth().Undecodable
	if len(bad) == 0 {
		t.Fatal("the fake made no undecodable event")
	}
	m, _ := dayRun(t, ex, fake, dst, fakeDate(fake))
	quarantined := map[string]bool{}
	for _, q := range m.Events.Quarantined {
		quarantined[q.ID] = true
		if q.Reason == "" || strings.Contains(q.Reason, "not-an-array") {
			t.Errorf("quarantined %s: reason %q: want the decode error without the payload's values", q.ID, q.Reason)
		}
	}
	named := map[string]bool{}
	for _, c := range bad {
		if !quarantined[c.ID] {
			t.Errorf("undecodable event %s is not quarantined", c.ID)
		}
		named[c.DirectoryID] = true
	}
	for _, d := range m.Directories {
		if named[d.ID] && d.ModeReason != export.ReasonQuarantined {
			t.Errorf("%s named by a quarantined event: mode %s (%s), want a full walk", d.ID, d.Mode, d.ModeReason)
		}
	}
	if m.Events.Through.After < bad[len(bad)-1].ID {
		t.Errorf("the cursor %s did not move past the quarantined %s", m.Events.Through.After, bad[len(bad)-1].ID)
	}
	var decodable []workos.Event
	for _, e := range fake.Events() {
		if !quarantined[e.ID] {
			decodable = append(decodable, e)
		}
	}
	// The next day, in full mode too, builds without the quarantined events.
	fake.SetHostile(workostest.Hostile{})
	quietDay(fake)
	ex.Config.Mode = export.ModeFull
	dayRun(t, ex, fake, dst, fakeDate(fake))
	ex.Config.Mode = export.ModeAuto
	quietDay(fake)
	dayRun(t, ex, fake, dst, fakeDate(fake))
	decodable = decodable[:0]
	for _, e := range fake.Events() {
		if !slicesContainsID(bad, e.ID) {
			decodable = append(decodable, e)
		}
	}
	snapshottest.CheckEventsOnce(t, dst, decodable)
	for _, id := range snapshottest.LoggedEvents(t, dst) {
		if slicesContainsID(bad, id) {
			t.Errorf("quarantined event %s is in directory_events", id)
		}
	}
}

func slicesContainsID(cs []workostest.HostileChange, id string) bool {
	for _, c := range cs {
		if c.ID == id {
			return true
		}
	}
	return false
}

// Item 9: a full walk never depends on reading events. With /events
// refused, the day still commits, every directory walked in full, and the
// chain stays where it was, so the next day logs the missed events.
func TestFullWalkNeverDependsOnEvents(t *testing.T) {
	var refuse sync.Mutex
	refusing := false
	fake, client := startFake(t, workostest.Config{Seed: 91, Directories: 3, UsersPerDirectory: 150, GroupsPerDirectory: 4}, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			refuse.Lock()
			no := refusing && strings.HasSuffix(r.URL.Path, "/events")
			refuse.Unlock()
			if no {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnprocessableEntity)
				_ = json.NewEncoder(w).Encode(map[string]string{"code": "invalid_request", "message": "events are unavailable"})
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	dst := localStore(t)
	cfg := testConfig()
	cfg.FullEvery = 0 // no reconcile day: every full walk is the read's
	ex := &export.Exporter{Client: client, Store: dst, Config: cfg, Now: fake.Now}
	m0, _ := dayRun(t, ex, fake, dst, fakeDate(fake))
	quietDay(fake)
	refuse.Lock()
	refusing = true
	refuse.Unlock()
	m1, _ := dayRun(t, ex, fake, dst, fakeDate(fake))
	refuse.Lock()
	refusing = false
	refuse.Unlock()
	if m1.Events == nil || m1.Events.ReadError == "" || m1.Events.Through != m0.Events.Through || len(m1.Events.Files) != 0 {
		t.Fatalf("day 1 events %+v: want an empty slice at the base's cursor with the read error", m1.Events)
	}
	for _, d := range m1.Directories {
		if d.ModeReason != export.ReasonUnread {
			t.Errorf("%s: mode %s (%s), want a full walk: %s", d.ID, d.Mode, d.ModeReason, export.ReasonUnread)
		}
	}
	quietDay(fake)
	dayRun(t, ex, fake, dst, fakeDate(fake))
	snapshottest.CheckEventsOnce(t, dst, fake.Events())
}

// Item 10: two dates committing at once extend the chain from the same
// cursor. The second commit passes the early "latest snapshot" check (the
// first's manifest is not written yet), but the chain link lets only one
// of them log the events.
func TestChainLinkLetsOneRunExtendACursor(t *testing.T) {
	fake, client := startFake(t, workostest.Config{Seed: 93, Directories: 3, UsersPerDirectory: 150, GroupsPerDirectory: 4}, nil)
	dir := localStore(t)
	dst := &hookStore{Store: dir}
	ex := &export.Exporter{Client: client, Store: dst, Config: testConfig(), Now: fake.Now}
	ctx := context.Background()
	dayRun(t, ex, fake, dst, fakeDate(fake))
	quietDay(fake)
	pa, err := ex.Plan(ctx, export.Target{Date: fakeDate(fake), Time: fake.Now(), Trigger: "test"}, export.PlanOptions{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	quietDay(fake)
	forgetInFlight(t, dst) // past the in-flight check: the chain link is the last line
	pb, err := ex.Plan(ctx, export.Target{Date: fakeDate(fake), Time: fake.Now(), Trigger: "test"}, export.PlanOptions{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	runUnits(t, ex, pa, time.Minute, func(error) bool { return false })
	runUnits(t, ex, pb, time.Minute, func(error) bool { return false })
	var errB error
	once := sync.Once{}
	// b commits while a is between its chain link and its manifest PUT.
	inner := dst.Store
	dst.Store = &linkHook{Store: inner, after: func() { once.Do(func() { _, errB = ex.Commit(ctx, pb.SnapshotDate, pb.RunID) }) }, link: pa.Events.Link}
	if _, err := ex.Commit(ctx, pa.SnapshotDate, pa.RunID); err != nil {
		t.Fatalf("commit of %s: %v", pa.SnapshotDate, err)
	}
	if !errors.Is(errB, export.ErrEventsRaced) {
		t.Fatalf("commit of %s while %s held the cursor: %v, want ErrEventsRaced", pb.SnapshotDate, pa.SnapshotDate, errB)
	}
	dst.Store = inner
	if _, err := ex.Abort(ctx, pb.SnapshotDate, pb.RunID); err != nil {
		t.Fatal(err)
	}
	dayRun(t, ex, fake, dst, pb.SnapshotDate)
	snapshottest.CheckEventsOnce(t, dst, fake.Events())
	if dup := countDuplicates(allEventFiles(t, dst)); dup > 0 {
		t.Errorf("%d events logged twice", dup)
	}
}

// linkHook calls after once the chain link key is created.
type linkHook struct {
	objstore.Store
	link  string
	after func()
}

func (s *linkHook) PutIfAbsent(ctx context.Context, key string, body []byte, ct string) error {
	err := s.Store.PutIfAbsent(ctx, key, body, ct)
	if err == nil && key == s.link {
		s.after()
	}
	return err
}

// Item 13: events are read up to now minus EventsSettle, and that moment is
// the cursor's checked_at: an event of the last minutes is logged by the
// next run, not skipped.
func TestEventsSettleLeavesTheTailToTheNextRun(t *testing.T) {
	cfg := testConfig()
	cfg.EventsSettle = 2 * time.Minute
	fake, ex, dst := reviewSetup(t, 97, cfg)
	run := func() *snapshot.Manifest { return runToday(t, ex, fake) }
	run()
	quietDay(fake)
	fake.AdvanceWith(time.Minute, workostest.AdvanceOptions{Churn: 0.05, DirectoryRate: -1})
	m := run()
	if want := fake.Now().Add(-2 * time.Minute).UTC().Truncate(time.Millisecond); !m.Events.Through.CheckedAt.Equal(want) {
		t.Errorf("checked_at %s, want now - settle %s", m.Events.Through.CheckedAt, want)
	}
	tail := 0
	logged := map[string]bool{}
	for _, id := range snapshottest.LoggedEvents(t, dst) {
		logged[id] = true
	}
	for _, e := range fake.Events() {
		if e.CreatedAt.After(m.Events.Through.CheckedAt) {
			tail++
			if logged[e.ID] {
				t.Errorf("event %s of the unsettled tail was logged", e.ID)
			}
		}
	}
	if tail == 0 {
		t.Fatal("no event in the last two minutes: the test proves nothing")
	}
	fake.AdvanceWith(time.Hour, workostest.AdvanceOptions{Churn: 0, DirectoryRate: -1})
	run()
	snapshottest.CheckEventsOnce(t, dst, fake.Events())
}

// From review: a retention restart on a quiet account (no event in the last 30
// days) writes From={CheckedAt: range_start} (no After) but keeps the old
// chain's After in Through: verify rejects "the slice has no events, but
// its cursor moved".
func TestQuietRetentionRestartPassesVerify(t *testing.T) {
	fake, ex, dst := reviewSetup(t, 201, testConfig())
	dayRun(t, ex, fake, dst, fakeDate(fake))
	quietDay(fake) // some events: the cursor has an After
	dayRun(t, ex, fake, dst, fakeDate(fake))
	fake.AdvanceWith(31*24*time.Hour, workostest.AdvanceOptions{Churn: 0, DirectoryRate: -1})
	date := fakeDate(fake)
	res, err := ex.Run(context.Background(), export.Target{Date: date, Time: fake.Now(), Trigger: "test"})
	if err != nil {
		t.Fatal(err)
	}
	e := res.Manifest.Events
	t.Logf("restart %q from %+v through %+v events %d", e.Restart, e.From, e.Through, e.Events)
	verifyOK(t, dst, date)
}

// From review: a rerun of the latest date whose read window does not move past the
// base's checked_at (EventsSettle raised, a clock a little behind, or the
// same instant) and reads no event ends at exactly the cursor it began
// with. Its link is ChainLinkKey(that cursor); the next date's run reads
// from the same cursor, finds the link held by a committed run, and fails
// with ErrEventsRaced -- and so does every later run (and every rerun),
// until the cursor ages into a retention restart.
func TestEmptySliceDoesNotWedgeTheChain(t *testing.T) {
	fake, ex, dst := reviewSetup(t, 203, testConfig())
	ctx := context.Background()
	dayRun(t, ex, fake, dst, fakeDate(fake))
	quietDay(fake)
	d1 := fakeDate(fake)
	dayRun(t, ex, fake, dst, d1)
	// One minute later the operator reruns the latest date after raising
	// EXPORT_EVENTS_SETTLE to its default (2m); no event in that minute.
	fake.AdvanceWith(time.Minute, workostest.AdvanceOptions{Churn: 0, DirectoryRate: -1})
	ex.Config.EventsSettle = 2 * time.Minute
	res, err := ex.Run(ctx, export.Target{Date: d1, Time: fake.Now(), Trigger: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("rerun from %+v through %+v", res.Manifest.Events.From, res.Manifest.Events.Through)
	quietDay(fake)
	for i := 0; i < 2; i++ {
		_, err = ex.Run(ctx, export.Target{Date: fakeDate(fake), Time: fake.Now(), Trigger: "test"})
		if errors.Is(err, export.ErrEventsRaced) {
			t.Errorf("run %d of %s: %v", i, fakeDate(fake), err)
		} else if err != nil {
			t.Fatal(err)
		}
		fake.AdvanceWith(time.Hour, workostest.AdvanceOptions{Churn: 0.05, DirectoryRate: -1})
	}
}

// supersededAfterLink runs day 0, then a run X of day 1 that links the
// chain and writes its events files, but finds at its manifest that a rerun
// Z of the date took it over (Z is planned, not run); X is aborted.
func supersededAfterLink(t *testing.T, seed int64) (fake *workostest.Server, ex *export.Exporter, dir objstore.Store, date string, pz *export.Plan) {
	t.Helper()
	fake, client := startFake(t, workostest.Config{Seed: seed, Directories: 3, UsersPerDirectory: 150, GroupsPerDirectory: 4}, nil)
	dir = localStore(t)
	ex = &export.Exporter{Client: client, Store: dir, Config: testConfig(), Now: fake.Now}
	ctx := context.Background()
	dayRun(t, ex, fake, dir, fakeDate(fake))
	quietDay(fake)
	date = fakeDate(fake)
	px, err := ex.Plan(ctx, export.Target{Date: date, Time: fake.Now(), Trigger: "test"}, export.PlanOptions{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	runUnits(t, ex, px, time.Minute, func(error) bool { return false })
	ex.Store = &linkHook{Store: dir, link: px.Events.Link, after: func() {
		exz := *ex
		exz.Store = dir
		var err error
		if pz, err = exz.Plan(ctx, export.Target{Date: date, Time: fake.Now(), Trigger: "test"}, export.PlanOptions{Workers: 1}); err != nil {
			t.Error(err)
		}
	}}
	_, err = ex.Commit(ctx, date, px.RunID)
	ex.Store = dir
	if !errors.Is(err, export.ErrSuperseded) {
		t.Fatalf("commit of X: %v, want superseded", err)
	}
	if _, err := ex.Abort(ctx, date, px.RunID); err != nil {
		t.Fatal(err)
	}
	return fake, ex, dir, date, pz
}

// From review: run X of D commits its link and events files, then finds a rerun Z
// took the date; Abort(X) keeps X's events files (superseded). Z then
// fails and is aborted too, nobody reruns D. The next date's run takes
// X's dead link over and logs the same events: X's files stay in the
// directory_events partitions forever (only a commit of D removes them).
func TestSupersededRunsEventsFilesAreNotOrphaned(t *testing.T) {
	fake, ex, dir, date, pz := supersededAfterLink(t, 205)
	ctx := context.Background()
	if _, err := ex.Abort(ctx, date, pz.RunID); err != nil {
		t.Fatal(err)
	}
	quietDay(fake)
	dayRun(t, ex, fake, dir, fakeDate(fake))
	if n := countDuplicates(allEventFiles(t, dir)); n > 0 {
		t.Errorf("%d events are stored twice in directory_events (X's orphaned files)", n)
	}
}

// putHook calls before once before the first PutIfAbsent of key.
type putHook struct {
	objstore.Store
	key    string
	once   sync.Once
	before func()
}

func (s *putHook) PutIfAbsent(ctx context.Context, key string, body []byte, ct string) error {
	if key == s.key {
		s.once.Do(s.before)
	}
	return s.Store.PutIfAbsent(ctx, key, body, ct)
}

// From review: two runs take over the same dead link at once (a rerun Z of
// the dead run's date and the next date's run W). Both find it dead; the
// takeover is the link's next generation, created only if absent, so one
// of them extends the chain and the other fails with ErrEventsRaced (an
// unconditional delete of the dead link let both commit).
func TestDeadLinkTakeoverIsAtomic(t *testing.T) {
	fake, ex, dir, d1, pz := supersededAfterLink(t, 209)
	ctx := context.Background()
	quietDay(fake)
	forgetInFlight(t, dir) // past the in-flight check: the chain link is the last line
	pw, err := ex.Plan(ctx, export.Target{Date: fakeDate(fake), Time: fake.Now(), Trigger: "test"}, export.PlanOptions{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	runUnits(t, ex, pz, time.Minute, func(error) bool { return false })
	runUnits(t, ex, pw, time.Minute, func(error) bool { return false })
	if pz.Events.Link != pw.Events.Link {
		t.Fatalf("links %s and %s", pz.Events.Link, pw.Events.Link)
	}
	var errZ error
	exw := *ex
	// W found X's link dead; right before W creates the link's next
	// generation, Z (which found it dead too) commits in full.
	exw.Store = &putHook{Store: dir, key: strings.TrimSuffix(pw.Events.Link, ".json") + ".g2.json", before: func() {
		_, errZ = ex.Commit(ctx, d1, pz.RunID)
	}}
	_, errW := exw.Commit(ctx, pw.SnapshotDate, pw.RunID)
	t.Logf("Z (%s): %v; W (%s): %v", d1, errZ, pw.SnapshotDate, errW)
	if errZ == nil && errW == nil {
		t.Errorf("both runs extended the chain from %s", pw.Events.Link)
	}
	if n := countDuplicates(allEventFiles(t, dir)); n > 0 {
		t.Errorf("%d events logged twice", n)
	}
}

// Regression (fixed; incremental.go readEvents, the past-date guard at the top, and
// findBase returning b.m == nil): a backfill of a date BEFORE the first
// committed snapshot is a past date (r.snap.Date < b.head), but findBase
// finds no base on or before it, so b.m is nil and readEvents skips the
// "past date: carry, read nothing" branch. It falls through to the chain
// restart and reads (and commits) every event still in the Events API's
// retention again: directory_events then holds those events twice.
func TestBackfillBeforeFirstSnapshotLogsNoEvents(t *testing.T) {
	fake, ex, dst := reviewSetup(t, 41, testConfig())
	d0 := fakeDate(fake)
	dayRun(t, ex, fake, dst, d0)
	quietDay(fake)
	dayRun(t, ex, fake, dst, fakeDate(fake))
	snapshottest.CheckEventsOnce(t, dst, fake.Events()) // passes: the chain is fine so far

	// Backfill the day before the first snapshot.
	t0, _ := snapshot.ParseDate(d0)
	back := t0.Add(-24 * time.Hour).Format(schema.PartitionFormat)
	bm, _ := dayRun(t, ex, fake, dst, back)
	if bm.Events != nil {
		t.Errorf("backfill of %s (before the first snapshot %s): events record %+v (restart %q, %d events), want none: later snapshots hold those events",
			back, d0, bm.Events.From, bm.Events.Restart, bm.Events.Events)
	}
	snapshottest.CheckEventsOnce(t, dst, fake.Events())
}

// Regression (fixed; no serialisation across dates: plan.go Plan/findBase and commit.go
// Commit): two runs of different dates in flight at once (a day's run still
// going when the next day's starts, or a manual run) both take the same
// committed snapshot as their base, so both event slices start at its
// cursor and both commits log the same events. Nothing at commit checks
// that the base is still the latest snapshot, and verify passes both
// (each slice joins its base), so directory_events silently holds every
// event of the overlap twice.
func TestRacingDatesLogEventsOnce(t *testing.T) {
	fake, ex, dst := reviewSetup(t, 43, testConfig())
	ctx := context.Background()
	dayRun(t, ex, fake, dst, fakeDate(fake))
	quietDay(fake)
	pa, err := ex.Plan(ctx, export.Target{Date: fakeDate(fake), Time: fake.Now(), Trigger: "test"}, export.PlanOptions{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	quietDay(fake)
	forgetInFlight(t, dst) // past the in-flight check: the chain link is the last line
	pb, err := ex.Plan(ctx, export.Target{Date: fakeDate(fake), Time: fake.Now(), Trigger: "test"}, export.PlanOptions{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range []*export.Plan{pa, pb} {
		runUnits(t, ex, p, time.Minute, func(error) bool { return false })
		_, err := ex.Commit(ctx, p.SnapshotDate, p.RunID)
		if i == 0 && err != nil {
			t.Fatalf("commit of %s: %v", p.SnapshotDate, err)
		}
		if i == 1 && !errors.Is(err, export.ErrEventsRaced) {
			t.Fatalf("commit of %s after %s committed: %v, want ErrEventsRaced", p.SnapshotDate, pa.SnapshotDate, err)
		}
	}
	if _, err := ex.Abort(ctx, pb.SnapshotDate, pb.RunID); err != nil {
		t.Fatal(err)
	}
	// Exported again, the date continues the latest snapshot.
	dayRun(t, ex, fake, dst, pb.SnapshotDate)
	snapshottest.CheckEventsOnce(t, dst, fake.Events())
	if dup := countDuplicates(snapshottest.LoggedEvents(t, dst)); dup > 0 {
		t.Errorf("runs of %s and %s, in flight together, committed %d events twice to directory_events", pa.SnapshotDate, pb.SnapshotDate, dup)
	}
}

// Regression (fixed; commit.go Commit for a past date / verify events.go base link): a
// rerun of a past date D commits a new run id for D and carries D's events
// record, but the next date's events record (and manifest) still names D's
// OLD run as its base (BaseRunID). verify of D+1, which passed before the
// rerun, now fails its events check ("the events continue run X of D, but
// that date's snapshot is now run Y"), which breaks invariant 3 (verify
// passes for every committed date) after an ordinary backfill.
func TestPastDateRerunKeepsNextDayValid(t *testing.T) {
	fake, ex, dst := reviewSetup(t, 47, testConfig())
	dayRun(t, ex, fake, dst, fakeDate(fake))
	quietDay(fake)
	d1 := fakeDate(fake)
	dayRun(t, ex, fake, dst, d1)
	quietDay(fake)
	d2 := fakeDate(fake)
	dayRun(t, ex, fake, dst, d2) // verified OK here
	dayRun(t, ex, fake, dst, d1) // rerun of a past date: verified OK
	verifyOK(t, dst, d2)         // fails: d2 names d1's replaced run
	snapshottest.CheckEventsOnce(t, dst, fake.Events())
}

// filterExpected keeps the expected rows of dirs.
func filterExpected(e snapshottest.Expected, dirs map[string]bool) snapshottest.Expected {
	var out snapshottest.Expected
	for _, r := range e.Dirs {
		if dirs[r.ID] {
			out.Dirs = append(out.Dirs, r)
		}
	}
	for _, r := range e.Users {
		if dirs[r.DirectoryID] {
			out.Users = append(out.Users, r)
		}
	}
	for _, r := range e.Groups {
		if dirs[r.DirectoryID] {
			out.Groups = append(out.Groups, r)
		}
	}
	for _, r := range e.Memberships {
		if dirs[r.DirectoryID] {
			out.Memberships = append(out.Memberships, r)
		}
	}
	return out
}

// TestFilteredRunLogsEveryEvent: incremental days with organization and
// directory filters, the filters changed between runs (widened: the new
// directory is walked in full; narrowed), each day equal to the filtered
// state. The change log is the account's: a filtered run logs every event
// it reads, so no other directory's event is lost (issue 18, item 4: before,
// a filtered run moved the shared cursor past them without logging them).
func TestFilteredRunLogsEveryEvent(t *testing.T) {
	fake, client := startFake(t, workostest.Config{Seed: 67, Directories: 4, UsersPerDirectory: 150, GroupsPerDirectory: 4}, nil)
	dst, err := objstore.Open(context.Background(), t.TempDir(), objstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ds := fake.Directories()
	ctx := context.Background()
	day := func(cfg export.Config, scope ...workos.Directory) *snapshot.Manifest {
		t.Helper()
		ex := &export.Exporter{Client: client, Store: dst, Config: cfg, Now: fake.Now}
		at := fake.Now().UTC().Truncate(time.Millisecond)
		res, err := ex.Run(ctx, export.Target{Date: fakeDate(fake), Time: at, Trigger: "test"})
		if err != nil {
			t.Fatal(err)
		}
		in := map[string]bool{}
		for _, d := range scope {
			in[d.ID] = true
		}
		snapshottest.CheckExact(t, dst, res.Manifest, filterExpected(snapshottest.ExpectedRows(fake, at), in))
		verifyOK(t, dst, res.Manifest.SnapshotDate)
		return res.Manifest
	}
	orgCfg := testConfig()
	orgCfg.FullEvery = 0 // no reconcile day: isolate the filters
	orgCfg.OrganizationIDs = []string{ds[0].OrganizationID, ds[1].OrganizationID}
	day(orgCfg, ds[0], ds[1])
	quietDay(fake)
	if m := day(orgCfg, ds[0], ds[1]); m.Mode != schema.SnapshotModeIncremental {
		t.Errorf("org-filtered day 1: mode %s", m.Mode)
	}
	quietDay(fake)
	dirCfg := testConfig()
	dirCfg.FullEvery = 0
	dirCfg.DirectoryIDs = []string{ds[1].ID, ds[2].ID}
	m := day(dirCfg, ds[1], ds[2])
	for _, d := range m.Directories {
		if d.ID == ds[2].ID && d.ModeReason != export.ReasonNewDirectory {
			t.Errorf("widened filter: %s mode %s (%s), want a full walk of a new directory", d.ID, d.Mode, d.ModeReason)
		}
		if d.ID == ds[1].ID && d.Mode != schema.SnapshotModeIncremental {
			t.Errorf("widened filter: %s mode %s (%s), want incremental", d.ID, d.Mode, d.ModeReason)
		}
	}
	quietDay(fake)
	dirCfg.DirectoryIDs = []string{ds[2].ID}
	day(dirCfg, ds[2])
	// Every event of every directory, in scope or not, is logged once.
	snapshottest.CheckEventsOnce(t, dst, fake.Events())
}

// Check (no bug found): a quiet account whose last
// event left the retention while daily snapshots went on (the cursor's
// After expired, its CheckedAt did not): the run reads from range_start =
// CheckedAt - 5 min, skipping ids up to After, and logs each event once.
func TestQuietAccountCursor(t *testing.T) {
	cfg := testConfig()
	fake, ex, dst := reviewSetup(t, 71, cfg)
	dayRun(t, ex, fake, dst, fakeDate(fake))
	quietDay(fake)
	dayRun(t, ex, fake, dst, fakeDate(fake))
	var last *snapshot.Manifest
	for range 32 {
		fake.AdvanceWith(24*time.Hour, workostest.AdvanceOptions{Churn: 0, DirectoryRate: -1})
		last, _ = dayRun(t, ex, fake, dst, fakeDate(fake))
	}
	if fake.Now().Sub(last.Events.Through.AfterTime) < 30*24*time.Hour {
		t.Fatalf("the cursor's After is still in the retention")
	}
	quietDay(fake)
	dayRun(t, ex, fake, dst, fakeDate(fake))
	all := fake.Events()
	snapshottest.CheckEventsOnce(t, dst, all)
}

// TestVerifyCatchesBrokenEventChains: verify fails a snapshot whose events
// slice does not join its base's, holds an event twice, or lost a file.
func TestVerifyCatchesBrokenEventChains(t *testing.T) {
	fake, client := startFake(t, workostest.Config{Seed: 21, Directories: 2, UsersPerDirectory: 150, GroupsPerDirectory: 4}, nil)
	dst, err := objstore.Open(context.Background(), t.TempDir(), objstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ex := &export.Exporter{Client: client, Store: dst, Config: testConfig(), Now: fake.Now}
	date := func() string { return fake.Now().UTC().Format(schema.PartitionFormat) }
	dayRun(t, ex, fake, dst, date())
	fake.AdvanceWith(24*time.Hour, workostest.AdvanceOptions{Churn: 0.05, DirectoryRate: -1})
	m, _ := dayRun(t, ex, fake, dst, date())
	if m.Events == nil || m.Events.Events == 0 || len(m.Events.Files) == 0 {
		t.Fatalf("day 1 logged no events: %+v", m.Events)
	}
	good := *m
	events := *m.Events
	good.Events = &events
	tamper := func(name string, edit func(m *snapshot.Manifest), want string) {
		t.Helper()
		bad := good
		e := *good.Events
		e.Files = slices.Clone(good.Events.Files)
		bad.Events = &e
		edit(&bad)
		body, err := bad.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if err := dst.Put(ctx, snapshot.ManifestKey(m.SnapshotDate), body, "application/json"); err != nil {
			t.Fatal(err)
		}
		rep, err := verify.Verify(ctx, dst, m.SnapshotDate, verify.Options{})
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, c := range rep.Checks {
			if c.Name == verify.CheckEvents && !c.OK && strings.Contains(strings.Join(c.Errors, "\n"), want) {
				found = true
			}
		}
		if found == rep.Valid || !found {
			t.Errorf("%s: verify valid=%v, want the events check to fail with %q: %+v", name, rep.Valid, want, rep.Checks)
		}
	}
	tamper("gap", func(m *snapshot.Manifest) { m.Events.From.After = "event_01ZZZZZZZZZZZZZZZZZZZZZZZZ" }, "a gap or an overlap")
	tamper("count", func(m *snapshot.Manifest) { m.Events.Events++ }, "the manifest says")
	tamper("twice", func(m *snapshot.Manifest) {
		m.Events.Files = append(m.Events.Files, m.Events.Files[0])
		m.Events.Events += m.Events.Files[0].Rows
	}, "appears twice")
	tamper("lost file", func(m *snapshot.Manifest) {
		m.Events.Files[0].Key = snapshot.PartKey(schema.TableEvents, "2020-01-01", m.RunID, 9)
	}, "missing")
}

// TestChangeDuringWalkIsNotLost: changes made while day 0's full walk runs
// are read by day 1 (the cursor is taken before the walk), so day 1's
// incremental snapshot equals the state, whatever the walk saw.
func TestChangeDuringWalkIsNotLost(t *testing.T) {
	var fake *workostest.Server
	var pending atomic.Int32
	pending.Store(3)
	mid := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/directory_users" && pending.Add(-1) >= 0 {
				fake.AdvanceWith(2*time.Hour, workostest.AdvanceOptions{Churn: 0.2, DirectoryRate: -1})
			}
			next.ServeHTTP(w, r)
		})
	}
	fake, client := startFake(t, workostest.Config{Seed: 17, Directories: 3, UsersPerDirectory: 400, GroupsPerDirectory: 5}, mid)
	dst, err := objstore.Open(context.Background(), t.TempDir(), objstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ex := &export.Exporter{Client: client, Store: dst, Config: testConfig(), Now: fake.Now}
	ctx := context.Background()
	start := fake.Now()
	d0, err := ex.Run(ctx, export.Target{Date: start.UTC().Format(schema.PartitionFormat), Time: start, Trigger: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if moved := fake.Now().Sub(start); moved < 6*time.Hour {
		t.Fatalf("the fake moved %s during the walk, want three changes", moved)
	}
	if d0.Manifest.Events.Through.CheckedAt.After(start.Add(time.Minute)) {
		t.Errorf("day 0's cursor was checked at %s, after the walk's changes began (%s)", d0.Manifest.Events.Through.CheckedAt, start)
	}
	fake.AdvanceWith(24*time.Hour, workostest.AdvanceOptions{Churn: 0.02, DirectoryRate: -1})
	dayRun(t, ex, fake, dst, fake.Now().UTC().Format(schema.PartitionFormat))
}
