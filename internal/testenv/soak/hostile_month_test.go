package soak_test

import (
	"bytes"
	"flag"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/parquet-go/parquet-go"

	"github.com/dsync-export/dsync-export/internal/testenv/awstest"
	"github.com/dsync-export/dsync-export/internal/testenv/snapshottest"
	"github.com/dsync-export/dsync-export/internal/testenv/workostest"
	"github.com/dsync-export/dsync-export/pkg/export"
	"github.com/dsync-export/dsync-export/pkg/objstore"
	"github.com/dsync-export/dsync-export/pkg/schema"
	"github.com/dsync-export/dsync-export/pkg/snapshot"
	"github.com/dsync-export/dsync-export/pkg/verify"
	"github.com/dsync-export/dsync-export/pkg/workos"
)

var (
	hostileDirs   = flag.Int("hostile-dirs", 3, "directories of the hostile month soak (make soak passes 20)")
	hostileUsers  = flag.Int("hostile-users", 200, "users per directory of the hostile month soak (make soak passes 2000)")
	hostileDays   = flag.Int("hostile-days", 8, "simulated days of the hostile month soak (make soak passes 30)")
	hostileChurn  = flag.Float64("hostile-churn", 0.03, "fraction of users changed per simulated day in the hostile month soak (make soak passes 0.01)")
	hostileSeed   = flag.Int64("hostile-seed", 18, "seed of the hostile month soak's dataset, churn and hostile draws")
	hostileStrict = flag.Bool("hostile-strict", false, "fail the hostile month soak on a directory whose silent create and delete cancel in its metadata counts (no check but a full walk sees them)")
)

// hostileRate is the hostile month's rate of directory activations, and of
// deletions, per simulated day: a few of each in a month, so that events of
// directories coming and going are spoiled too.
const hostileRate = 0.15

// hostileModes are the hostile month's Events API modes: every page's last
// two events swapped, the cursor's event repeated at the top of the next
// page, 5% of events served a day early, 1% undecodable, 5% of user creates
// and deletes silent (no event), and 3% of events served twice.
func hostileModes(seed int64) workostest.Hostile {
	return workostest.Hostile{
		Seed: seed, SwapInPage: true, RepeatCursor: true,
		EarlyCreatedAt: 0.05, Undecodable: 0.01, Silent: 0.05, DoubleEmit: 0.03,
	}
}

// TestSoakHostileMonth is the incremental month with the Events API made
// hostile (hostileModes) on top of the soak's 17% faults, every third day run
// as plan, resumed chunks and commit. It shows, every day:
//
//   - the snapshot equals the fake's state row for row, per directory; a
//     directory that differs fails the test, with the silent changes made in
//     it since its last full walk (the only changes no event tells of);
//   - every directory the day's quarantined events name, and every directory
//     whose silent changes since the base changed its user count, was walked
//     in full, and the manifest says why (ModeReason);
//   - the snapshot verifies;
//
// and at the end: directory_events holds every decodable event exactly once
// and no undecodable one; every undecodable event was quarantined exactly
// once, naming its directory.
//
// The export keeps its default EventsSettle (2 minutes): before each run the
// fake's clock moves on past the settle with no change, so the events read
// (up to now − settle) are every change made, and the state at the run's
// instant is what the snapshot must hold. Setting EventsSettle to 0 would
// do as well with the fake, which holds nothing back, but would leave the
// settle's read bound (range_end) out of the test.
func TestSoakHostileMonth(t *testing.T) {
	if *hostileDirs < 1 || *hostileUsers < 10 || *hostileDays < 1 {
		t.Fatalf("-hostile-dirs %d -hostile-users %d -hostile-days %d: want at least 1, 10 and 1", *hostileDirs, *hostileUsers, *hostileDays)
	}
	start := time.Now()
	seed := *hostileSeed
	fake, tl, url := startFake(t, workostest.Config{
		Seed: seed, Directories: *hostileDirs, UsersPerDirectory: *hostileUsers, GroupsPerDirectory: max(2, *hostileUsers/100),
		Faults: faultsFor(seed), Hostile: hostileModes(seed), Metadata: workostest.MetadataAll,
	})
	client := newClient(t, url)
	s3srv := awstest.StartS3(t)
	s3srv.CreateBucket(t, "hostile")
	dst := openS3(t, s3srv, "s3://hostile/workos")
	cfg := export.DefaultConfig()
	cfg.PerDirectoryRate, cfg.GlobalRate = 0, 0
	cfg.DeadlineMargin = time.Second
	settle := cfg.EventsSettle
	ex := &export.Exporter{Client: client, Store: dst, Config: cfg, Now: fake.Now}
	ctx := t.Context()
	first := len(fake.Events())

	var (
		sum      hostileSummary
		lastFull = map[string]time.Time{} // directory -> the time of its latest full walk
		prevAt   time.Time
		quarAll  = map[string]snapshot.QuarantinedEvent{}
		// maskedFrom: directory -> since when it has differed by
		// count-masked silent changes
		maskedFrom = map[string]time.Time{}
	)
	sum.reasons, sum.maskedDirs = map[string]int{}, map[string]bool{}
	day := func(n int) {
		t.Helper()
		begin := time.Now()
		d := fake.Now().UTC().Format(schema.PartitionFormat)
		at := fake.Now().UTC().Truncate(time.Millisecond)
		var res *export.Result
		var err error
		steps := n%3 == 2
		if steps {
			res, err = stepsRun(ctx, ex, d, at)
		} else {
			res, err = ex.Run(ctx, export.Target{Date: d, Time: at, Trigger: "soak"})
		}
		if err != nil {
			t.Fatalf("day %d (%s, seed %d): %v", n, d, seed, err)
		}
		m := res.Manifest
		dirs := map[string]*snapshot.DirectoryManifest{}
		for i := range m.Directories {
			dirs[m.Directories[i].ID] = &m.Directories[i]
		}

		// The changes no event tells of since the last run, and since each
		// directory's last full walk.
		truth := fake.HostileTruth()
		silentDay := map[string][]workostest.HostileChange{}
		silentSinceFull := map[string][]workostest.HostileChange{}
		for _, c := range truth.Silent {
			if c.At.After(prevAt) && !c.At.After(at) {
				silentDay[c.DirectoryID] = append(silentDay[c.DirectoryID], c)
			}
			if c.At.After(lastFull[c.DirectoryID]) && !c.At.After(at) {
				silentSinceFull[c.DirectoryID] = append(silentSinceFull[c.DirectoryID], c)
			}
		}

		// Every day equals the fake's state, directory by directory. The one
		// difference no check of the export can see without a full walk: a
		// silent create and a silent delete in an incremental directory
		// since its last full walk cancel in its metadata counts, so the
		// drift check passes. Such a directory is reported, not failed
		// (unless -hostile-strict): it must equal again at its next full
		// walk (its weekly reconcile at the latest), which is checked
		// exactly like every full walk.
		diffs := diffByDirectory(t, dst, m, snapshottest.ExpectedRows(fake, at))
		maskedToday := 0
		for _, id := range slices.Sorted(maps.Keys(diffs)) {
			dm := dirs[id]
			mode, reason := "absent from the manifest", ""
			if dm != nil {
				mode, reason = dm.Mode, dm.ModeReason
			}
			msg := fmt.Sprintf("day %d (%s, seed %d, %s): directory %s (mode %s %q, drift %s) differs from the fake: %s; silent changes since its last full walk (%s): %s",
				n, d, seed, runKind(steps), id, mode, reason, driftString(dm), diffs[id],
				lastFull[id].Format(time.RFC3339), silentString(silentSinceFull[id]))
			if dm != nil && dm.Mode == schema.SnapshotModeIncremental && !*hostileStrict && diffs[id].maskedBy(silentSinceFull[id]) {
				t.Logf("count-masked (undetectable by the drift check, left to the next full walk): %s", msg)
				maskedToday++
				sum.maskedDirs[id] = true
				if _, ok := maskedFrom[id]; !ok {
					maskedFrom[id] = at
				}
				if wrong := at.Sub(maskedFrom[id]); wrong > cfg.FullEvery {
					t.Errorf("day %d (%s): directory %s has differed since %s, longer than FullEvery %s: the reconcile did not repair it", n, d, id, maskedFrom[id].Format(time.RFC3339), cfg.FullEvery)
				}
				continue
			}
			t.Error(msg)
		}
		sum.maskedDays += maskedToday
		for id, since := range maskedFrom {
			if _, still := diffs[id]; !still {
				sum.maskedLongest = max(sum.maskedLongest, at.Sub(since))
				delete(maskedFrom, id)
				t.Logf("day %d (%s): directory %s equals the fake again (walked %s, %q), after %s", n, d, id, modeOf(dirs[id]), reasonOf(dirs[id]), at.Sub(since).Round(time.Minute))
			}
		}

		// The directories it had to walk in full, it walked in full.
		var q []snapshot.QuarantinedEvent
		if m.Events != nil {
			q = m.Events.Quarantined
		}
		for _, e := range q {
			if _, dup := quarAll[e.ID]; dup {
				t.Errorf("day %d (%s): event %s was quarantined again", n, d, e.ID)
			}
			quarAll[e.ID] = e
			for id, dm := range dirs {
				if (e.DirectoryID == "" || e.DirectoryID == id) && dm.Mode != schema.SnapshotModeFull {
					t.Errorf("day %d (%s): event %s (%s) of directory %q was quarantined, but directory %s was built %s", n, d, e.ID, e.Event, e.DirectoryID, id, dm.Mode)
				}
			}
		}
		for id, cs := range silentDay {
			dm := dirs[id]
			if dm == nil {
				continue // deleted since
			}
			net := silentNet(cs)
			switch {
			case net != 0 && dm.Mode != schema.SnapshotModeFull:
				t.Errorf("day %d (%s): %d silent changes (net %+d users) in directory %s, but it was built %s (drift %s)", n, d, len(cs), net, id, dm.Mode, driftString(dm))
			case net != 0 && n > 0 && dm.ModeReason != export.ReasonNewDirectory:
				sum.countable++ // the drift check could see these
			}
		}

		// What the day did, and why.
		modes := map[string]int{}
		drift := 0
		for _, dm := range m.Directories {
			modes[dm.Mode]++
			if dm.Mode == schema.SnapshotModeFull {
				lastFull[dm.ID] = at
				sum.reasons[reasonName(dm.ModeReason)]++
			}
			if dm.Drift != nil && dm.Drift.Result == snapshot.DriftFound {
				drift++
			}
		}
		var dups int64
		if m.Events != nil {
			dups = m.Events.Duplicates
		}
		checkValid(t, ctx, dst, d, verify.Options{MaxDrop: 0.6})
		sum.days++
		sum.requests += m.API.Requests
		sum.duplicates += dups
		sum.quarantined += len(q)
		sum.drift += drift
		sum.logged += eventsOf(m)
		t.Logf("day %d %s (%s): %s, directories %d incremental / %d full %s, %d events logged, %d duplicates dropped, %d quarantined, %d drift, %d silent changes, %d directories count-masked, %d requests, %s",
			n, d, runKind(steps), m.Mode, modes[schema.SnapshotModeIncremental], modes[schema.SnapshotModeFull], reasonsOf(m),
			eventsOf(m), dups, len(q), drift, countChanges(silentDay), maskedToday, m.API.Requests, time.Since(begin).Round(time.Millisecond))
		prevAt = at
	}

	day(0)
	for n := 1; n <= *hostileDays; n++ {
		fake.AdvanceWith(24*time.Hour, workostest.AdvanceOptions{Churn: *hostileChurn, DirectoryRate: hostileRate})
		// Past the settle with no change: the events up to now − settle
		// are every change made.
		fake.Advance(settle+time.Second, 0)
		day(n)
	}
	// A directory left differing by count-masked silent changes is
	// repaired by its next full walk: quiet days (no change) until then.
	for extra := 1; len(maskedFrom) > 0; extra++ {
		if extra > int(cfg.FullEvery/(24*time.Hour))+1 {
			t.Errorf("%d directories still differ %d quiet days after the month: no full walk repaired them", len(maskedFrom), extra-1)
			break
		}
		fake.Advance(24*time.Hour, 0)
		day(*hostileDays + extra)
		sum.repairDays++
	}

	// directory_events holds every decodable event exactly once, and no
	// undecodable one; every undecodable event was quarantined once.
	truth := fake.HostileTruth()
	bad := map[string]workostest.HostileChange{}
	for _, c := range truth.Undecodable {
		bad[c.ID] = c
	}
	var want []workos.Event
	all := fake.Events()[first:]
	for _, e := range all {
		if _, ok := bad[e.ID]; !ok {
			want = append(want, e)
		}
	}
	snapshottest.CheckEventsOnce(t, dst, want)
	logged := snapshottest.LoggedEvents(t, dst)
	for _, id := range logged {
		if _, ok := bad[id]; ok {
			t.Errorf("directory_events holds the undecodable event %s", id)
		}
	}
	if len(logged) != len(want) {
		t.Errorf("directory_events holds %d events, want the fake's %d decodable ones", len(logged), len(want))
	}
	checkEventDates(t, dst, want)
	for id, c := range bad {
		q, ok := quarAll[id]
		switch {
		case !ok:
			t.Errorf("the undecodable event %s (%s of %s) was never quarantined", id, c.Event, c.DirectoryID)
		case q.DirectoryID != c.DirectoryID || q.Event != c.Event:
			t.Errorf("quarantined event %s: %s of directory %q, want %s of %q", id, q.Event, q.DirectoryID, c.Event, c.DirectoryID)
		}
	}
	for id := range quarAll {
		if _, ok := bad[id]; !ok {
			t.Errorf("event %s was quarantined, but the fake served it decodable", id)
		}
	}

	// The month must have been hostile in every way, or it proves little.
	if len(truth.Undecodable) == 0 || len(truth.Silent) == 0 || len(truth.DoubleEmitted) == 0 || len(truth.EarlyCreatedAt) == 0 || sum.duplicates == 0 {
		t.Errorf("undecodable %d, silent %d, double emitted %d, early %d, duplicates dropped %d: every hostile mode must have acted",
			len(truth.Undecodable), len(truth.Silent), len(truth.DoubleEmitted), len(truth.EarlyCreatedAt), sum.duplicates)
	}
	if sum.countable > 0 && sum.drift == 0 {
		t.Errorf("%d directories had silent changes that changed their user count, but no drift was detected", sum.countable)
	}

	line := fmt.Sprintf("hostile month soak (seed %d, %s): %d directories x %d users, churn %g, %d days, %d events (%d undecodable, %d double emitted, %d served early, %d silent changes), %d events logged, %d duplicates dropped, %d quarantined, %d drift detections, %d directory-days count-masked (%d directories; silent create + delete cancel in the counts, left to the next full walk; repaired after %s at most, %d quiet days run after the month for that), full walks by reason %s, requests per day %.1f on average, faults injected %s, wall %s",
		seed, hostileModes(seed), *hostileDirs, *hostileUsers, *hostileChurn, sum.days, len(all), len(truth.Undecodable), len(truth.DoubleEmitted), len(truth.EarlyCreatedAt), len(truth.Silent),
		sum.logged, sum.duplicates, sum.quarantined, sum.drift, sum.maskedDays, len(sum.maskedDirs), sum.maskedLongest.Round(time.Minute), sum.repairDays, reasonsString(sum.reasons), float64(sum.requests)/float64(sum.days), tl.snapshot(), time.Since(start).Round(time.Millisecond))
	t.Log(line)
	fmt.Println(line)
}

// hostileSummary adds up the hostile month.
type hostileSummary struct {
	days                         int
	requests, duplicates, logged int64
	quarantined, drift           int
	maskedDays                   int             // directory-days that differed only by count-masked silent changes
	maskedDirs                   map[string]bool // their directories
	maskedLongest                time.Duration   // the longest a directory differed before a full walk repaired it
	repairDays                   int             // quiet days after the month until the last one was repaired
	countable                    int             // directory-days with silent changes that changed the user count
	reasons                      map[string]int  // full walks by reason
}

// rowDiff is what differs in one table of one directory: the keys of the
// rows missing from the snapshot, extra in it, held twice, or with other
// values (with the diff).
type rowDiff struct{ missing, extra, twice, changed []string }

// dirDiff is what differs in one directory, by table.
type dirDiff map[string]*rowDiff

func (dd dirDiff) String() string {
	var out []string
	for _, table := range slices.Sorted(maps.Keys(dd)) {
		rd := dd[table]
		var parts []string
		for _, p := range []struct {
			what string
			keys []string
		}{{"missing", rd.missing}, {"extra", rd.extra}, {"twice", rd.twice}, {"changed", rd.changed}} {
			if len(p.keys) > 0 {
				parts = append(parts, fmt.Sprintf("%d %s %.600s", len(p.keys), p.what, strings.Join(p.keys, ", ")))
			}
		}
		out = append(out, table+": "+strings.Join(parts, ", "))
	}
	return strings.Join(out, "; ")
}

// maskedBy reports whether the difference is exactly what silent changes
// that cancel in the user count leave in an incremental directory: users
// silently created missing (with their memberships), users silently deleted
// still there (with theirs), nothing else.
func (dd dirDiff) maskedBy(cs []workostest.HostileChange) bool {
	if len(cs) == 0 || silentNet(cs) != 0 {
		return false
	}
	created, deleted := map[string]bool{}, map[string]bool{}
	for _, c := range cs {
		switch c.Event {
		case workos.EventUserCreated:
			created[c.ObjectID] = true
		case workos.EventUserDeleted:
			deleted[c.ObjectID] = true
		}
	}
	user := func(k string) string { _, u, _ := strings.Cut(k, "|"); return u }
	for table, rd := range dd {
		if len(rd.twice) > 0 || len(rd.changed) > 0 {
			return false
		}
		for _, k := range rd.missing {
			switch {
			case table == schema.TableDirectoryUsers && created[k]:
			case table == schema.TableMemberships && created[user(k)]:
			default:
				return false
			}
		}
		for _, k := range rd.extra {
			switch {
			case table == schema.TableDirectoryUsers && deleted[k]:
			case table == schema.TableMemberships && deleted[user(k)]:
			default:
				return false
			}
		}
	}
	return true
}

// diffByDirectory compares the snapshot's rows with the fake's, table by
// table, and returns what differs per directory (nothing when equal).
func diffByDirectory(t *testing.T, dst objstore.Store, m *snapshot.Manifest, want snapshottest.Expected) map[string]dirDiff {
	t.Helper()
	if len(want.Users) == 0 || len(want.Memberships) == 0 {
		t.Fatal("the fake dataset is empty: the comparison would prove nothing")
	}
	out := map[string]dirDiff{}
	diffRowsByDir(out, schema.TableDirectories, want.Dirs, snapshottest.ReadTable[schema.Directory](t, dst, m, schema.TableDirectories),
		func(r schema.Directory) string { return r.ID }, func(r schema.Directory) string { return r.ID })
	diffRowsByDir(out, schema.TableDirectoryUsers, want.Users, snapshottest.ReadTable[schema.DirectoryUser](t, dst, m, schema.TableDirectoryUsers),
		func(r schema.DirectoryUser) string { return r.ID }, func(r schema.DirectoryUser) string { return r.DirectoryID })
	diffRowsByDir(out, schema.TableDirectoryGroups, want.Groups, snapshottest.ReadTable[schema.DirectoryGroup](t, dst, m, schema.TableDirectoryGroups),
		func(r schema.DirectoryGroup) string { return r.ID }, func(r schema.DirectoryGroup) string { return r.DirectoryID })
	diffRowsByDir(out, schema.TableMemberships, want.Memberships, snapshottest.ReadTable[schema.DirectoryGroupMembership](t, dst, m, schema.TableMemberships),
		snapshottest.MembershipKey, func(r schema.DirectoryGroupMembership) string { return r.DirectoryID })
	return out
}

// diffRowsByDir adds to out, per directory, the rows of table missing from
// got, extra in it, held twice, or with other values.
func diffRowsByDir[T any](out map[string]dirDiff, table string, want, got []T, key, dir func(T) string) {
	at := func(d string) *rowDiff {
		if out[d] == nil {
			out[d] = dirDiff{}
		}
		if out[d][table] == nil {
			out[d][table] = &rowDiff{}
		}
		return out[d][table]
	}
	w := make(map[string]T, len(want))
	for _, r := range want {
		w[key(r)] = r
	}
	seen := make(map[string]bool, len(got))
	for _, r := range got {
		k := key(r)
		if seen[k] {
			at(dir(r)).twice = append(at(dir(r)).twice, k)
			continue
		}
		seen[k] = true
		wr, ok := w[k]
		switch {
		case !ok:
			at(dir(r)).extra = append(at(dir(r)).extra, k)
		case !reflect.DeepEqual(wr, r) && !cmp.Equal(wr, r):
			at(dir(r)).changed = append(at(dir(r)).changed, k+" "+cmp.Diff(wr, r))
		}
	}
	for k, r := range w {
		if !seen[k] {
			at(dir(r)).missing = append(at(dir(r)).missing, k)
		}
	}
	for _, dd := range out {
		if rd := dd[table]; rd != nil {
			for _, keys := range [][]string{rd.missing, rd.extra, rd.twice, rd.changed} {
				sort.Strings(keys)
			}
		}
	}
}

// checkEventDates checks that every logged event sits in the
// directory_events partition of its created_at as served (a day early for
// some): the change log keeps the stream's own times.
func checkEventDates(t *testing.T, dst objstore.Store, want []workos.Event) {
	t.Helper()
	served := make(map[string]time.Time, len(want))
	for _, e := range want {
		served[e.ID] = e.CreatedAt.UTC().Truncate(time.Millisecond)
	}
	objs, err := dst.List(t.Context(), schema.TableEvents+"/")
	if err != nil {
		t.Fatal(err)
	}
	wrong := 0
	for _, o := range objs {
		b, err := dst.Get(t.Context(), o.Key)
		if err != nil {
			t.Fatal(err)
		}
		rows := readEventRows(t, o.Key, b)
		for _, r := range rows {
			at, ok := served[r.ID]
			if !ok {
				continue
			}
			part := "dt=" + at.Format(schema.PartitionFormat) + "/"
			if !r.CreatedAt.Equal(at) || !strings.Contains(o.Key, part) {
				if wrong < 5 {
					t.Errorf("event %s: created_at %s in %s, want %s in a %s partition", r.ID, r.CreatedAt, o.Key, at, part)
				}
				wrong++
			}
		}
	}
	if wrong > 0 {
		t.Errorf("%d events logged with another created_at or partition than served", wrong)
	}
}

// runKind names how a day was run.
func runKind(steps bool) string {
	if steps {
		return "steps"
	}
	return "run"
}

// silentNet is the change in user count the silent changes made.
func silentNet(cs []workostest.HostileChange) int {
	net := 0
	for _, c := range cs {
		switch c.Event {
		case workos.EventUserCreated:
			net++
		case workos.EventUserDeleted:
			net--
		}
	}
	return net
}

func silentString(cs []workostest.HostileChange) string {
	if len(cs) == 0 {
		return "none"
	}
	var parts []string
	for _, c := range cs {
		parts = append(parts, fmt.Sprintf("%s %s at %s", c.Event, c.ObjectID, c.At.Format(time.RFC3339)))
	}
	return fmt.Sprintf("%d (net %+d users): %s", len(cs), silentNet(cs), strings.Join(parts, ", "))
}

func countChanges(m map[string][]workostest.HostileChange) int {
	n := 0
	for _, cs := range m {
		n += len(cs)
	}
	return n
}

func driftString(dm *snapshot.DirectoryManifest) string {
	if dm == nil || dm.Drift == nil {
		return "none"
	}
	dc := dm.Drift
	return fmt.Sprintf("%s: users %d expected / %d listed, groups %d / %d", dc.Result, dc.ExpectedUsers, dc.ListedUsers, dc.ExpectedGroups, dc.ListedGroups)
}

// reasonName shortens a full walk's ModeReason for the logs.
func reasonName(reason string) string {
	switch reason {
	case export.ReasonQuarantined:
		return "quarantined"
	case export.ReasonDrift:
		return "drift"
	case export.ReasonReconcile:
		return "reconcile"
	case export.ReasonNoBase:
		return "no-base"
	case export.ReasonNewDirectory:
		return "new-directory"
	case export.ReasonUnread:
		return "events-unread"
	case "":
		return "unspecified"
	}
	return reason
}

// reasonsOf lists a manifest's full walks by reason.
func reasonsOf(m *snapshot.Manifest) string {
	r := map[string]int{}
	for _, dm := range m.Directories {
		if dm.Mode == schema.SnapshotModeFull {
			r[reasonName(dm.ModeReason)]++
		}
	}
	return reasonsString(r)
}

func reasonsString(r map[string]int) string {
	if len(r) == 0 {
		return "{}"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(r)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, r[k]))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// readEventRows reads a directory_events file.
func readEventRows(t *testing.T, key string, b []byte) []schema.DirectoryEvent {
	t.Helper()
	rows, err := parquet.Read[schema.DirectoryEvent](bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return rows
}

func modeOf(dm *snapshot.DirectoryManifest) string {
	if dm == nil {
		return "absent"
	}
	return dm.Mode
}

func reasonOf(dm *snapshot.DirectoryManifest) string {
	if dm == nil {
		return ""
	}
	return reasonName(dm.ModeReason)
}

// TestSoakSilentChangesCancel is the hostile month's one difference made
// small: in a directory built from events, a user created without an event
// and another deleted without one between two runs leave its metadata counts
// as the base plus the events say, so the drift check passes, the directory
// is not walked in full, and the snapshot misses the new user and keeps the
// deleted one until its next full walk. Every create and delete is silent
// here, with no reconcile; the test runs days until one has as many silent
// creates as deletes. It logs the difference, and fails on it only with
// -hostile-strict: no check of counts can see it.
func TestSoakSilentChangesCancel(t *testing.T) {
	const seed = 7
	fake, _, url := startFake(t, workostest.Config{
		Seed: seed, Directories: 1, UsersPerDirectory: 300, GroupsPerDirectory: 3,
		Hostile: workostest.Hostile{Seed: seed, Silent: 1}, Metadata: workostest.MetadataAll,
	})
	dst, err := objstore.Open(t.Context(), t.TempDir(), objstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := export.DefaultConfig()
	cfg.PerDirectoryRate, cfg.GlobalRate = 0, 0
	cfg.FullEvery = 0 // no reconcile: only the drift check could see a silent change
	ex := &export.Exporter{Client: newClient(t, url), Store: dst, Config: cfg, Now: fake.Now}
	run := func() (*snapshot.Manifest, time.Time) {
		t.Helper()
		at := fake.Now().UTC().Truncate(time.Millisecond)
		res, err := ex.Run(t.Context(), export.Target{Date: at.Format(schema.PartitionFormat), Time: at, Trigger: "soak"})
		if err != nil {
			t.Fatal(err)
		}
		return res.Manifest, at
	}
	_, prev := run()
	for n := 1; n <= 30; n++ {
		fake.AdvanceWith(24*time.Hour, workostest.AdvanceOptions{Churn: 0.05, DirectoryRate: -1})
		fake.Advance(cfg.EventsSettle+time.Second, 0)
		m, at := run()
		var day []workostest.HostileChange
		for _, c := range fake.SilentChanges() {
			if c.At.After(prev) && !c.At.After(at) {
				day = append(day, c)
			}
		}
		prev = at
		dm := m.Directories[0]
		if dm.Mode != schema.SnapshotModeIncremental {
			if silentNet(day) == 0 && len(day) > 0 {
				t.Fatalf("day %d: %s, walked %s (%q): want an incremental directory", n, silentString(day), dm.Mode, dm.ModeReason)
			}
			continue // drift caught the silent changes: walked in full
		}
		if len(day) == 0 || silentNet(day) != 0 {
			t.Fatalf("day %d: %s, but the directory was built incremental (drift %s)", n, silentString(day), driftString(&dm))
		}
		diffs := diffByDirectory(t, dst, m, snapshottest.ExpectedRows(fake, at))
		if len(diffs) == 0 {
			t.Fatalf("day %d (seed %d): %s, yet the snapshot equals the fake", n, seed, silentString(day))
		}
		msg := fmt.Sprintf("day %d %s (seed %d): directory %s built incremental (drift %s) differs from the fake: %s; silent changes since the last run: %s",
			n, m.SnapshotDate, seed, dm.ID, driftString(&dm), diffs[dm.ID], silentString(day))
		if *hostileStrict {
			t.Fatal(msg)
		}
		t.Log(msg)
		return
	}
	t.Fatal("no day of 30 had as many silent creates as deletes: choose another seed")
}
