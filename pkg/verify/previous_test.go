package verify

import (
	"cmp"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/dsync-export/dsync-export/pkg/schema"
	"github.com/dsync-export/dsync-export/pkg/snapshot"
)

// putPrevious commits, as the snapshot of date, a copy of m changed by edit.
// Only its manifest is written: the comparison reads nothing else.
func putPrevious(t *testing.T, s interface {
	Put(context.Context, string, []byte, string) error
}, m *snapshot.Manifest, date string, edit func(*snapshot.Manifest)) {
	t.Helper()
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	p, err := snapshot.Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	p.SnapshotDate = date
	if edit != nil {
		edit(p)
	}
	if b, err = p.Marshal(); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(context.Background(), snapshot.ManifestKey(date), b, "application/json"); err != nil {
		t.Fatal(err)
	}
}

func setRows(m *snapshot.Manifest, table string, rows int64) {
	tm := m.Tables[table]
	tm.Rows = rows
	m.Tables[table] = tm
}

// wantWarning asserts that check has a warning containing every part.
func wantWarning(t *testing.T, r *Report, check string, parts ...string) {
	t.Helper()
	c, _ := r.Check(check)
	for _, w := range c.Warnings {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(w, p)
		}
		if all {
			return
		}
	}
	t.Fatalf("%s: no warning mentions all of %q:\n%s", check, parts, r.JSONLines())
}

// EXPORT_ORGANIZATION_IDS=org_doesnotexist committed a 0-row snapshot that
// verified valid.
func TestEmptySnapshotAfterRows(t *testing.T) {
	t.Parallel()
	s, _ := localSink(t)
	full := newFixture(2, 20, 2).write(t, s)
	putPrevious(t, s, full.manifest, "2026-11-27", nil)
	newFixture(0, 0, 0).write(t, s) // today: nothing

	r := mustVerify(t, s, Options{})
	wantFailure(t, r, CheckPrevious, "snapshot 2026-11-28 is empty", "previous snapshot 2026-11-27 has")
	wantFailure(t, r, CheckPrevious, schema.TableDirectoryUsers, "a drop of 100.0%")
	wantWarning(t, r, CheckPrevious, "directory directory_00", "not in this one")
	wantOnlyFailures(t, r, CheckPrevious)
}

func TestTotalAndDirectoryDrop(t *testing.T) {
	t.Parallel()
	s, _ := localSink(t)
	w := newFixture(2, 150, 3).write(t, s) // 150 users and 225 memberships per directory
	putPrevious(t, s, w.manifest, "2026-11-27", func(p *snapshot.Manifest) {
		setRows(p, schema.TableDirectoryUsers, 600) // now 300: -50%
		p.Directories[0].Users = 300                // now 150: -50%, above the floor
		p.Directories[1].Memberships = 321          // now 225: -29.9%
	})
	r := mustVerify(t, s, Options{})
	wantFailure(t, r, CheckPrevious, "directory_users has 300 rows, 600 in the previous snapshot 2026-11-27", "a drop of 50.0%", "more than the 20% allowed")
	wantFailure(t, r, CheckPrevious, "directory directory_00", "150 rows in directory_users, 300 in the previous snapshot")
	wantFailure(t, r, CheckPrevious, "directory directory_01", "225 rows in directory_group_memberships, 321")
	if c, _ := r.Check(CheckPrevious); c.ErrorCount != 3 {
		t.Errorf("want 3 findings:\n%s", r.JSONLines())
	}
	wantOnlyFailures(t, r, CheckPrevious)

	// A larger allowance lets the same drops pass.
	r = mustVerify(t, s, Options{MaxDrop: 0.5})
	if !r.Valid {
		t.Errorf("drops of at most 50%% fail with MaxDrop 0.5:\n%s", r.JSONLines())
	}
}

// The per-directory rule applies from MinDropBase rows in the previous
// snapshot: below, a directory of a few users may halve without an alarm.
func TestSmallDirectoryDropIsNotAFailure(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		was  int64
		fail bool
	}{{MinDropBase - 1, false}, {MinDropBase, true}} {
		s, _ := localSink(t)
		w := newFixture(2, 50, 2).write(t, s)
		putPrevious(t, s, w.manifest, "2026-11-27", func(p *snapshot.Manifest) { p.Directories[1].Users = tc.was })
		r := mustVerify(t, s, Options{})
		if tc.fail {
			wantFailure(t, r, CheckPrevious, "directory directory_01", "50 rows in directory_users")
		} else if !r.Valid {
			t.Errorf("a directory of %d users falling to 50 fails:\n%s", tc.was, r.JSONLines())
		}
	}
}

func TestDirectoryDisappeared(t *testing.T) {
	t.Parallel()
	s, _ := localSink(t)
	w := newFixture(2, 20, 2).write(t, s)
	putPrevious(t, s, w.manifest, "2026-11-27", func(p *snapshot.Manifest) {
		p.Directories = append(p.Directories,
			snapshot.DirectoryManifest{ID: "directory_gone", Name: "Gone", OrganizationID: "org_9", Status: snapshot.DirectoryOK, Users: 3},
			snapshot.DirectoryManifest{ID: "directory_deleted", OrganizationID: "org_9", Status: snapshot.DirectoryDeleted, Users: 3})
	})
	r := mustVerify(t, s, Options{})
	if !r.Valid {
		t.Fatalf("invalid:\n%s", r.JSONLines())
	}
	wantWarning(t, r, CheckPrevious, "directory directory_gone", "org_9", "no deleted status")
	if c, _ := r.Check(CheckPrevious); c.WarningCount != 1 {
		t.Errorf("a directory recorded as deleted must not be a warning:\n%s", r.JSONLines())
	}
}

// The previous snapshot is the latest committed one before this date: not a
// later one, not an older one.
func TestPreviousIsLatestEarlier(t *testing.T) {
	t.Parallel()
	s, _ := localSink(t)
	w := newFixture(2, 20, 2).write(t, s)
	huge := func(p *snapshot.Manifest) { setRows(p, schema.TableDirectoryUsers, 1_000_000) }
	putPrevious(t, s, w.manifest, "2026-11-20", huge)
	putPrevious(t, s, w.manifest, "2026-11-27", nil)
	putPrevious(t, s, w.manifest, "2026-11-29", huge)
	// A stray object under _manifests/ is not a manifest.
	if err := s.Put(context.Background(), "_manifests/dt=2026-11-27x/manifest.json", []byte("{}"), "application/json"); err != nil {
		t.Fatal(err)
	}
	r := mustVerify(t, s, Options{})
	c, _ := r.Check(CheckPrevious)
	if !r.Valid || !strings.Contains(c.Detail, "(none has passed verify yet), 2026-11-27:") {
		t.Errorf("previous_snapshot %+v:\n%s", c, r.JSONLines())
	}
}

// An unreadable previous manifest is not this snapshot's fault: a warning.
func TestPreviousUnreadable(t *testing.T) {
	t.Parallel()
	s, _ := localSink(t)
	newFixture(1, 5, 1).write(t, s)
	if err := s.Put(context.Background(), snapshot.ManifestKey("2026-11-27"), []byte("{"), "application/json"); err != nil {
		t.Fatal(err)
	}
	r := mustVerify(t, s, Options{})
	if !r.Valid {
		t.Errorf("invalid:\n%s", r.JSONLines())
	}
	wantWarning(t, r, CheckPrevious, "_manifests/dt=2026-11-27/manifest.json cannot be read")
}

func TestMaxDropOption(t *testing.T) {
	t.Parallel()
	s, _ := localSink(t)
	for _, bad := range []float64{-0.1, 1.5} {
		if _, err := Verify(context.Background(), s, testDate, Options{MaxDrop: bad}); err == nil || !strings.Contains(err.Error(), "MaxDrop") {
			t.Errorf("MaxDrop %g: err = %v", bad, err)
		}
	}
}

// putVerified writes verify's marker for date, naming run.
func putVerified(t *testing.T, s interface {
	Put(context.Context, string, []byte, string) error
}, date, run string) {
	t.Helper()
	b, _ := json.Marshal(snapshot.Verified{SnapshotDate: date, RunID: run, VerifiedAt: time.Now().UTC()})
	if err := s.Put(context.Background(), snapshot.VerifiedKey(date), b, "application/json"); err != nil {
		t.Fatal(err)
	}
}

// A collapse that failed verify yesterday must not become today's baseline:
// the comparison is with the latest snapshot that passed verify, whose
// marker still names the run of its manifest.
func TestPreviousIsLatestVerified(t *testing.T) {
	t.Parallel()
	collapse := func(p *snapshot.Manifest) {
		setRows(p, schema.TableDirectoryUsers, 1)
		for i := range p.Directories {
			p.Directories[i].Users = 1
		}
	}
	for name, tc := range map[string]struct {
		today      func(*snapshot.Manifest)
		markerRun  string // run named by 2026-11-26's marker ("" for the manifest's)
		wantValid  bool
		wantDetail string
	}{
		"collapsed again, compared with the verified day": {today: collapse, wantValid: false, wantDetail: "2026-11-26"},
		"recovered, compared with the verified day":       {wantValid: true, wantDetail: "the latest earlier snapshot that passed verify, 2026-11-26"},
		"marker of a replaced run is ignored":             {today: collapse, markerRun: "20261126T090000.000Z-0f0f0f", wantValid: true, wantDetail: "(none has passed verify yet), 2026-11-27"},
	} {
		t.Run(name, func(t *testing.T) {
			s, _ := localSink(t)
			w := newFixture(2, 200, 2).write(t, s)
			putPrevious(t, s, w.manifest, "2026-11-26", nil)
			putVerified(t, s, "2026-11-26", cmp.Or(tc.markerRun, w.manifest.RunID))
			putPrevious(t, s, w.manifest, "2026-11-27", collapse) // failed verify: no marker
			if tc.today != nil {
				// Today's manifest says what a collapsed export would.
				m := *w.manifest
				tc.today(&m)
				putManifest(t, s, &m)
			}
			r := mustVerify(t, s, Options{})
			c, _ := r.Check(CheckPrevious)
			if tc.today != nil {
				// The stand-in manifest's counts disagree with the files, so
				// only the previous_snapshot check is judged here.
				if c.OK == tc.wantValid && strings.Contains(c.Detail, tc.wantDetail) {
					return
				}
			} else if r.Valid == tc.wantValid && strings.Contains(c.Detail, tc.wantDetail) {
				return
			}
			t.Errorf("previous_snapshot %+v, want ok %v and %q:\n%s", c, tc.wantValid, tc.wantDetail, r.JSONLines())
		})
	}
}

// A failure about particular directories names them, so that the export can
// walk those in full rather than every directory; a failure about the whole
// snapshot (a total drop) names none.
func TestDirectoryDropNamesTheDirectory(t *testing.T) {
	t.Parallel()
	s, _ := localSink(t)
	w := newFixture(2, 150, 3).write(t, s)
	putPrevious(t, s, w.manifest, "2026-11-27", func(p *snapshot.Manifest) { p.Directories[1].Users = 300 })
	r := mustVerify(t, s, Options{})
	wantOnlyFailures(t, r, CheckPrevious)
	if got := r.FailedDirectories(); strings.Join(got, ",") != "directory_01" {
		t.Errorf("FailedDirectories() = %q, want directory_01", got)
	}

	putPrevious(t, s, w.manifest, "2026-11-27", func(p *snapshot.Manifest) {
		p.Directories[1].Users = 300
		setRows(p, schema.TableDirectoryUsers, 600)
	})
	r = mustVerify(t, s, Options{})
	if got := r.FailedDirectories(); got != nil {
		t.Errorf("with a total drop too, FailedDirectories() = %q, want none: the whole snapshot is suspect", got)
	}
}

// A customer offboarding: the previous snapshot had a directory that is gone
// from this one, and the totals fell by more than MaxDrop only because of it.
// The fall it accounts for is explained, naming it; the drop rule applies to
// the other directories, and a fall there that nothing explains still fails.
func TestDeletedDirectoryExplainsDrop(t *testing.T) {
	t.Parallel()
	gone := snapshot.DirectoryManifest{ID: "directory_gone", Name: "Offboarded", OrganizationID: "org_9",
		Status: snapshot.DirectoryOK, Users: 200, Memberships: 300}
	for _, tc := range []struct {
		name               string
		deleted            bool  // the previous snapshot has directory_gone
		users, memberships int64 // the previous snapshot's totals; now 600 and 900
		fail               string
	}{
		// -25% users and -25% memberships, all of it directory_gone's.
		{name: "explained", deleted: true, users: 800, memberships: 1200},
		// The same fall without any deletion.
		{name: "no deletion", users: 800, memberships: 1200,
			fail: "directory_users has 600 rows, 800 in the previous snapshot 2026-11-27: a drop of 25.0%"},
		// directory_gone's 200 users, and 200 more (-25%) in the others.
		{name: "deletion and unexplained", deleted: true, users: 1000, memberships: 1200,
			fail: "directory_users has 600 rows outside the deleted directories, 800 in the previous snapshot 2026-11-27: a drop of 25.0% that no deletion explains"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, _ := localSink(t)
			w := newFixture(4, 150, 3).write(t, s) // 600 users, 900 memberships
			putPrevious(t, s, w.manifest, "2026-11-27", func(p *snapshot.Manifest) {
				if tc.deleted {
					p.Directories = append(p.Directories, gone)
				}
				setRows(p, schema.TableDirectoryUsers, tc.users)
				setRows(p, schema.TableMemberships, tc.memberships)
			})
			r := mustVerify(t, s, Options{})
			if tc.fail != "" {
				wantFailure(t, r, CheckPrevious, tc.fail)
				wantOnlyFailures(t, r, CheckPrevious)
			} else if !r.Valid {
				t.Fatalf("a drop the deleted directory accounts for fails:\n%s", r.JSONLines())
			}
			if tc.deleted {
				wantWarning(t, r, CheckPrevious, "explained drop", "directory_users fell from", "200 of the fall", "directory_gone", "Offboarded", "org_9")
			}
			if tc.name == "explained" {
				wantWarning(t, r, CheckPrevious, "explained drop", "directory_group_memberships", "300 of the fall", "directory_gone")
			}
		})
	}
}

// A directory deleted while the export ran (status deleted, the users fetched
// before kept) explains the fall from its previous count to its current one.
func TestDeletedStatusExplainsDrop(t *testing.T) {
	t.Parallel()
	s, _ := localSink(t)
	w := newFixture(4, 150, 3).write(t, s) // 600 users
	w.manifest.Directories[3].Status = snapshot.DirectoryDeleted
	putManifest(t, s, w.manifest)
	putPrevious(t, s, w.manifest, "2026-11-27", func(p *snapshot.Manifest) {
		p.Directories[3].Status = snapshot.DirectoryOK
		p.Directories[3].Users = 350 // now 150: the other three keep their 450
		setRows(p, schema.TableDirectoryUsers, 800)
	})
	r := mustVerify(t, s, Options{})
	if !r.Valid {
		t.Fatalf("a drop the deleted directory accounts for fails:\n%s", r.JSONLines())
	}
	wantWarning(t, r, CheckPrevious, "explained drop", "200 of the fall", "directory_03", "status deleted")
}
