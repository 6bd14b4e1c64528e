package export_test

// Issue 18: the change log holds every event WorkOS sent exactly once, and
// each day's snapshot equals WorkOS's state, whatever the Events API sends.
// Each test is named for the behaviour it pins; the hostile month in
// internal/testenv/soak proves the whole.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/dsync-export/dsync-export/internal/testenv/snapshottest"
	"github.com/dsync-export/dsync-export/internal/testenv/workostest"
	"github.com/dsync-export/dsync-export/pkg/export"
	"github.com/dsync-export/dsync-export/pkg/objstore"
	"github.com/dsync-export/dsync-export/pkg/schema"
	"github.com/dsync-export/dsync-export/pkg/snapshot"
	"github.com/dsync-export/dsync-export/pkg/workos"
)

// hostileSetup is reviewSetup on a fake whose Events API misbehaves.
func hostileSetup(t *testing.T, seed int64, cfg export.Config, h workostest.Hostile, md workostest.MetadataMode) (*workostest.Server, *export.Exporter, objstore.Store) {
	t.Helper()
	fake, client := startFake(t, workostest.Config{Seed: seed, Directories: 3, UsersPerDirectory: 200, GroupsPerDirectory: 5, Hostile: h, Metadata: md}, nil)
	dst := localStore(t)
	return fake, &export.Exporter{Client: client, Store: dst, Config: cfg, Now: fake.Now}, dst
}

// runToday runs the export of the fake's date at its time, without
// comparing the snapshot with the fake (see dayRun).
func runToday(t *testing.T, ex *export.Exporter, fake *workostest.Server) *snapshot.Manifest {
	t.Helper()
	res, err := ex.Run(context.Background(), export.Snapshot{Date: fakeDate(fake), Time: fake.Now(), Trigger: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return res.Manifest
}

// localStore opens a store in a fresh local folder.
func localStore(t *testing.T) objstore.Store {
	t.Helper()
	s, err := objstore.Open(context.Background(), t.TempDir(), objstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

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

// Item 3: the snapshots row says what the manifest says, mode included
// (it was always "full").
func TestSnapshotsRowIsTheManifests(t *testing.T) {
	fake, ex, dst := reviewSetup(t, 85, testConfig())
	dayRun(t, ex, fake, dst, fakeDate(fake))
	quietDay(fake)
	m, _ := dayRun(t, ex, fake, dst, fakeDate(fake))
	if m.Mode != schema.SnapshotModeIncremental {
		t.Fatalf("day 1 mode %q, want incremental", m.Mode)
	}
	checkSnapshotRow(t, dst, m)
}

// Item 5: a base written with another schema_version is not built on.
func TestBaseOfAnotherSchemaVersionIsWalkedInFull(t *testing.T) {
	fake, ex, dst := reviewSetup(t, 87, testConfig())
	m0, _ := dayRun(t, ex, fake, dst, fakeDate(fake))
	m0.SchemaVersion = "0"
	body, _ := m0.Marshal()
	if err := dst.Put(context.Background(), snapshot.ManifestKey(m0.SnapshotDate), body, "application/json"); err != nil {
		t.Fatal(err)
	}
	quietDay(fake)
	m1, _ := dayRun(t, ex, fake, dst, fakeDate(fake))
	for _, d := range m1.Directories {
		if d.Mode != schema.SnapshotModeFull || d.ModeReason != export.ReasonSchema {
			t.Errorf("%s: mode %s (%s), want a full walk: %s", d.ID, d.Mode, d.ModeReason, export.ReasonSchema)
		}
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

// hookStore calls onPut after each Put that stored its object.
type hookStore struct {
	objstore.Store
	onPut func(key string)
}

func (s *hookStore) Put(ctx context.Context, key string, body []byte, ct string) error {
	if err := s.Store.Put(ctx, key, body, ct); err != nil {
		return err
	}
	if s.onPut != nil {
		s.onPut(key)
	}
	return nil
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
	pa, err := ex.Plan(ctx, export.Snapshot{Date: fakeDate(fake), Time: fake.Now(), Trigger: "test"}, export.PlanOptions{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	quietDay(fake)
	forgetInFlight(t, dst) // past the in-flight check: the chain link is the last line
	pb, err := ex.Plan(ctx, export.Snapshot{Date: fakeDate(fake), Time: fake.Now(), Trigger: "test"}, export.PlanOptions{Workers: 1})
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

// Item 11: a snapshot that verify rejected is not a base: the directories
// the rejection names (all, when it names none) are walked in full.
func TestRejectedBaseIsWalkedInFull(t *testing.T) {
	fake, ex, dst := reviewSetup(t, 95, testConfig())
	m0, _ := dayRun(t, ex, fake, dst, fakeDate(fake))
	reject := func(m *snapshot.Manifest, dirs ...string) {
		b, _ := json.Marshal(snapshot.Rejected{SnapshotDate: m.SnapshotDate, RunID: m.RunID, RejectedAt: time.Now(), Checks: []string{"volume"}, Directories: dirs})
		if err := dst.Put(context.Background(), snapshot.RejectedKey(m.SnapshotDate), b, "application/json"); err != nil {
			t.Fatal(err)
		}
	}
	reject(m0, m0.Directories[1].ID)
	quietDay(fake)
	m1, _ := dayRun(t, ex, fake, dst, fakeDate(fake))
	for _, d := range m1.Directories {
		rejected := d.ID == m0.Directories[1].ID
		if rejected != (d.ModeReason == export.ReasonRejected) {
			t.Errorf("%s (rejected %v): mode %s (%s)", d.ID, rejected, d.Mode, d.ModeReason)
		}
	}
	reject(m1)
	quietDay(fake)
	m2, _ := dayRun(t, ex, fake, dst, fakeDate(fake))
	for _, d := range m2.Directories {
		if d.ModeReason != export.ReasonRejected {
			t.Errorf("%s: mode %s (%s), want a full walk: the whole base was rejected", d.ID, d.Mode, d.ModeReason)
		}
	}
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

// Item 14: a change that emitted no event (a silent create or delete) shows
// in the directory's metadata counts: the plan walks that directory in full
// the same day, and the snapshot equals WorkOS's state. Directories listed
// without metadata are not checked.
func TestDriftWalksTheDirectoryInFull(t *testing.T) {
	fake, ex, dst := hostileSetup(t, 99, testConfig(), workostest.Hostile{}, workostest.MetadataAll)
	ex.Config.FullEvery = 0
	dayRun(t, ex, fake, dst, fakeDate(fake))
	fake.SetHostile(workostest.Hostile{Seed: 4, Silent: 0.5})
	quietDay(fake)
	silent := map[string]bool{}
	for _, c := range fake.SilentChanges() {
		silent[c.DirectoryID] = true
	}
	if len(silent) == 0 {
		t.Fatal("no silent change")
	}
	m, _ := dayRun(t, ex, fake, dst, fakeDate(fake)) // exact against the fake
	for _, d := range m.Directories {
		if d.Drift == nil {
			t.Fatalf("%s: no drift check recorded", d.ID)
		}
		if silent[d.ID] != (d.Drift.Result == snapshot.DriftFound) || silent[d.ID] != (d.ModeReason == export.ReasonDrift) {
			t.Errorf("%s (silent change %v): drift %+v, mode %s (%s)", d.ID, silent[d.ID], d.Drift, d.Mode, d.ModeReason)
		}
	}
	fake.SetHostile(workostest.Hostile{})
	fake.SetMetadata(workostest.MetadataNone)
	quietDay(fake)
	m, _ = dayRun(t, ex, fake, dst, fakeDate(fake))
	for _, d := range m.Directories {
		if d.Drift == nil || d.Drift.Result != snapshot.DriftNoMetadata || d.Mode != schema.SnapshotModeIncremental {
			t.Errorf("%s without metadata: drift %+v, mode %s (%s): want not checked, incremental", d.ID, d.Drift, d.Mode, d.ModeReason)
		}
	}
}

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
	p1, err := ex.Plan(ctx, export.Snapshot{Date: date, Time: fake.Now(), Trigger: "test"}, export.PlanOptions{Workers: 1})
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
	res, err := ex.Run(ctx, export.Snapshot{Date: date, Time: fake.Now(), Trigger: "test"})
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

// gateStore holds the first Create of key until release is closed, after
// telling reached.
type gateStore struct {
	objstore.Store
	key              string
	once             sync.Once
	reached, release chan struct{}
}

func (s *gateStore) Create(ctx context.Context, key, ct string) (objstore.Object, error) {
	if key == s.key {
		s.once.Do(func() {
			close(s.reached)
			<-s.release
		})
	}
	return s.Store.Create(ctx, key, ct)
}

// Item 18: a stale chunk attempt A (an invocation that went on after the
// state machine retried it) rolls a part over after the retry B finished
// the unit and the run committed. A and B share part keys, so A's rolled
// part would overwrite a committed file: it must not be committed.
func TestStaleAttemptNeverOverwritesACommittedPart(t *testing.T) {
	fake, client := startFake(t, workostest.Config{Seed: 103, Directories: 1, UsersPerDirectory: 2500, GroupsPerDirectory: 3}, nil)
	local := localStore(t)
	cfg := testConfig()
	cfg.ProgressEvery = 0 // no progress check: only the part's own check stops A
	cfg.Writer.MaxFileBytes = 32 << 10
	ex := &export.Exporter{Client: client, Store: local, Config: cfg, Now: fake.Now}
	ctx := context.Background()
	p, err := ex.Plan(ctx, export.Snapshot{Date: fakeDate(fake), Time: fake.Now(), Trigger: "test"}, export.PlanOptions{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	unit := p.UnitIDs()[0]
	gate := &gateStore{Store: local, key: snapshot.ChunkPartKey(schema.TableDirectoryUsers, p.SnapshotDate, p.RunID, unit, 0, 1),
		reached: make(chan struct{}), release: make(chan struct{})}
	exA := *ex
	exA.Store = gate
	var aErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, aErr = exA.RunChunk(ctx, p.SnapshotDate, p.RunID, unit)
	}()
	<-gate.reached
	// The state machine retried A: B walks changed data, finishes the unit,
	// and the run commits.
	fake.AdvanceWith(time.Hour, workostest.AdvanceOptions{Churn: 0.2, DirectoryRate: -1})
	res, err := ex.RunChunk(ctx, p.SnapshotDate, p.RunID, unit)
	if err != nil || !res.Done {
		t.Fatalf("attempt B: %+v, %v", res, err)
	}
	c, err := ex.Commit(ctx, p.SnapshotDate, p.RunID)
	if err != nil {
		t.Fatal(err)
	}
	close(gate.release)
	<-done
	t.Logf("A: %v; users parts %d", aErr, len(c.Manifest.Tables[schema.TableDirectoryUsers].Files))
	if !errors.Is(aErr, export.ErrChunkTakenOver) {
		t.Errorf("attempt A: %v, want ErrChunkTakenOver", aErr)
	}
	if len(c.Manifest.Tables[schema.TableDirectoryUsers].Files) < 3 {
		t.Fatalf("users in %d parts: the test needs rolled-over parts", len(c.Manifest.Tables[schema.TableDirectoryUsers].Files))
	}
	verifyOK(t, local, p.SnapshotDate)
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
	res, err := ex.Run(context.Background(), export.Snapshot{Date: date, Time: fake.Now(), Trigger: "test"})
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
	res, err := ex.Run(ctx, export.Snapshot{Date: d1, Time: fake.Now(), Trigger: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("rerun from %+v through %+v", res.Manifest.Events.From, res.Manifest.Events.Through)
	quietDay(fake)
	for i := 0; i < 2; i++ {
		_, err = ex.Run(ctx, export.Snapshot{Date: fakeDate(fake), Time: fake.Now(), Trigger: "test"})
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
	px, err := ex.Plan(ctx, export.Snapshot{Date: date, Time: fake.Now(), Trigger: "test"}, export.PlanOptions{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	runUnits(t, ex, px, time.Minute, func(error) bool { return false })
	ex.Store = &linkHook{Store: dir, link: px.Events.Link, after: func() {
		exz := *ex
		exz.Store = dir
		var err error
		if pz, err = exz.Plan(ctx, export.Snapshot{Date: date, Time: fake.Now(), Trigger: "test"}, export.PlanOptions{Workers: 1}); err != nil {
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

// From review: a create/delete between the cursor's checked_at and the walk of a
// directory is in the full-walked base AND in the next slice's events, so
// the drift check (base count + net events) expects it twice and walks the
// directory in full again -- every day for a directory with churn during
// its walk or the settle window; an EXPORT_MODE=incremental run fails.
func TestDriftFalsePositiveFromWalkOverlap(t *testing.T) {
	cfg := testConfig()
	cfg.EventsSettle = 2 * time.Minute
	cfg.FullEvery = 0
	fake, ex, dst := hostileSetup(t, 207, cfg, workostest.Hostile{}, workostest.MetadataAll)
	run := func() *snapshot.Manifest { return runToday(t, ex, fake) }
	run()
	quietDay(fake)
	// Churn in the minute before the plan: after now-settle, seen by the walk.
	fake.AdvanceWith(time.Minute, workostest.AdvanceOptions{Churn: 50, DirectoryRate: -1})
	m2 := run() // incremental day
	for _, d := range m2.Directories {
		if d.Drift != nil && d.Drift.Result == snapshot.DriftFound {
			t.Errorf("incremental day %s: drift %+v: the listing counts now, the events stop at now-settle", d.ID, d.Drift)
		}
	}
	ex.Config.Mode = export.ModeFull
	fake.AdvanceWith(time.Hour, workostest.AdvanceOptions{Churn: 0, DirectoryRate: -1})
	fake.AdvanceWith(time.Minute, workostest.AdvanceOptions{Churn: 50, DirectoryRate: -1})
	run() // a full walk that sees the last minute's changes
	ex.Config.Mode = export.ModeAuto
	fake.AdvanceWith(24*time.Hour, workostest.AdvanceOptions{Churn: 0, DirectoryRate: -1})
	m := run()
	for _, d := range m.Directories {
		if d.Drift != nil && d.Drift.Result == snapshot.DriftFound {
			t.Errorf("%s: drift %+v with no missed event: walked in full (%s)", d.ID, d.Drift, d.ModeReason)
		}
	}
	verifyOK(t, dst, m.SnapshotDate)
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
	pw, err := ex.Plan(ctx, export.Snapshot{Date: fakeDate(fake), Time: fake.Now(), Trigger: "test"}, export.PlanOptions{Workers: 1})
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
