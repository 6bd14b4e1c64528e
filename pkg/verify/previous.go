package verify

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/dsync-export/dsync-export/pkg/schema"
	"github.com/dsync-export/dsync-export/pkg/snapshot"
)

// Comparison with the previous snapshot.
//
// WorkOS keeps no history, so a snapshot that lost most of its rows (a wrong
// organization filter, an API key of another environment, a WorkOS outage
// answered with empty pages) is internally consistent and passes every other
// check. The previous snapshot is the latest earlier one that passed verify
// (its _verified/ marker names the run of its current manifest), so a
// collapse that failed yesterday is not today's baseline; without any such
// marker (a destination verified before markers existed) it is the latest
// manifest under _manifests/ with a date before this one. Its counts and this one's come
// from the manifests, whose agreement with the data the row_counts and
// directory_counts checks establish. The check fails when:
//
//   - this snapshot has no rows and the previous one had some;
//   - directory_users or directory_group_memberships fell by more than
//     Options.MaxDrop in total;
//   - they fell by more than Options.MaxDrop in a directory present in both
//     snapshots, with status ok in this one (a directory deleted during the
//     export keeps only what was fetched before), and with at least
//     MinDropBase of them in the previous snapshot: in a directory of 10
//     users, 3 leavers are a 30% drop and nothing to alarm anyone about.
//
// A directory of the previous snapshot (status ok there) that is missing from
// this one, without a deleted status, is a warning, not a failure: it is what
// a directory deleted at WorkOS between two exports, or an organization taken
// out of EXPORT_ORGANIZATION_IDS, looks like.
//
// A deleted directory explains a fall in the totals (a customer offboarding):
// one with status deleted in this snapshot, or one of the previous snapshot
// that is gone from this one, provided some directory of the previous
// snapshot is still here with status ok (a snapshot that shares no directory
// with the previous one is a wrong API key or organization filter, not a
// deletion). The fall they account for is a warning naming them, and the
// total drop rule applies to the rest: the previous total less the deleted
// directories' previous counts against this total less their current counts
// (nothing, for a directory gone). A drop nothing explains still fails.
// Without a previous snapshot the check passes with a note.

// DefaultMaxDrop is the default Options.MaxDrop: a 20% drop.
const DefaultMaxDrop = 0.2

// MinDropBase is the smallest previous count of users (or memberships) of a
// directory to which the per-directory drop rule applies.
const MinDropBase = 100

// comparePrevious runs the previous_snapshot check: it finds and reads the
// previous snapshot's manifest, then compares the totals and the
// directories' counts with it (see the comment above).
func (v *verifier) comparePrevious(ctx context.Context) error {
	var f findings
	prevDate, prev, err := v.readPrevious(ctx, &f)
	if prev == nil || err != nil {
		return err
	}
	limit := strconv.FormatFloat(v.opts.MaxDrop*100, 'f', -1, 64) + "%"
	totals := v.compareTotals(&f, prev, prevDate, limit, v.deletions(prev))
	both := v.compareDirectories(&f, prev, prevDate, limit)
	which := "the latest earlier snapshot that passed verify"
	if !v.previousVerified {
		which = "the latest earlier snapshot (none has passed verify yet)"
	}
	v.add(f.check(CheckPrevious, fmt.Sprintf("compared with %s, %s: %s; %d directories in both; drops over %s fail (per directory from %d rows)",
		which, prevDate, strings.Join(totals, ", "), both, limit, MinDropBase)))
	return nil
}

// readPrevious returns the date and the manifest of the previous snapshot.
// When there is none, or its manifest is gone or cannot be decoded, it adds
// the previous_snapshot check (passed, or with a warning in f) and returns a
// nil manifest; err is an error of the store.
func (v *verifier) readPrevious(ctx context.Context, f *findings) (string, *snapshot.Manifest, error) {
	prevDate, err := v.previousDate(ctx)
	if err != nil {
		return "", nil, err
	}
	if prevDate == "" {
		v.add(f.check(CheckPrevious, fmt.Sprintf("no snapshot before %s under %s/: nothing to compare with", v.date, snapshot.ManifestsDir)))
		return "", nil, nil
	}
	key := snapshot.ManifestKey(prevDate)
	raw, err := v.src.Get(ctx, key)
	if v.missing(ctx, key, err) {
		f.warnf("the previous snapshot's manifest %s disappeared while it was being read: not compared", key)
		v.add(f.check(CheckPrevious, "previous snapshot "+prevDate))
		return "", nil, nil
	}
	if err != nil {
		return "", nil, fmt.Errorf("verify: reading the previous manifest %s: %w", key, err)
	}
	prev, err := snapshot.Unmarshal(raw)
	if err != nil {
		f.warnf("the previous snapshot's manifest %s cannot be read (%v): not compared", key, err)
		v.add(f.check(CheckPrevious, "previous snapshot "+prevDate))
		return "", nil, nil
	}
	return prevDate, prev, nil
}

// deletion is a directory of the previous snapshot that explains a fall in
// the totals: prev is its entry there, cur its entry in this snapshot (zero
// when it is gone).
type deletion struct {
	prev, cur snapshot.DirectoryManifest
	gone      bool
}

// deletions returns the directories of the previous snapshot prev that were
// deleted (see the comment above): with status deleted in this snapshot, or
// gone from it while some directory of prev is still here with status ok.
func (v *verifier) deletions(prev *snapshot.Manifest) []deletion {
	current := make(map[string]snapshot.DirectoryManifest, len(v.m.Directories))
	for _, d := range v.m.Directories {
		current[d.ID] = d
	}
	var dels []deletion
	kept := false
	for _, p := range prev.Directories {
		d, ok := current[p.ID]
		switch {
		case !ok:
			dels = append(dels, deletion{prev: p, gone: true})
		case d.Status == snapshot.DirectoryDeleted:
			dels = append(dels, deletion{prev: p, cur: d})
		case d.Status == snapshot.DirectoryOK:
			kept = true
		}
	}
	if !kept {
		dels = slices.DeleteFunc(dels, func(d deletion) bool { return d.gone })
	}
	return dels
}

// maxNamed is the most deleted directories an explained drop names.
const maxNamed = 10

// names describes the deleted directories dels, for a warning.
func names(dels []deletion) string {
	var parts []string
	for i, d := range dels {
		if i == maxNamed {
			parts = append(parts, fmt.Sprintf("and %d more", len(dels)-maxNamed))
			break
		}
		how := "status deleted"
		if d.gone {
			how = "gone from this snapshot"
		}
		parts = append(parts, fmt.Sprintf("%s (%q, organization %s, %s)", d.prev.ID, d.prev.Name, d.prev.OrganizationID, how))
	}
	return strings.Join(parts, ", ")
}

// compareTotals reports in f a snapshot emptied since the previous one
// (prev, of prevDate) and a drop of directory_users or
// directory_group_memberships over the limit in what the deleted
// directories dels do not account for (the part they do account for is a
// warning), and returns the tables' totals, for the check's summary.
func (v *verifier) compareTotals(f *findings, prev *snapshot.Manifest, prevDate, limit string, dels []deletion) []string {
	cur := v.m
	if rows, prevRows := totalRows(cur), totalRows(prev); rows == 0 && prevRows > 0 {
		f.errorf("snapshot %s is empty, but the previous snapshot %s has %d rows: the export found nothing to export; check EXPORT_ORGANIZATION_IDS, that the WorkOS API key is of the right environment, and the export's log, and re-run the export for %s",
			v.date, prevDate, prevRows, v.date)
	}
	var totals []string
	for _, table := range []string{schema.TableDirectoryUsers, schema.TableMemberships} {
		was, now := prev.Tables[table].Rows, cur.Tables[table].Rows
		var wasDel, nowDel int64
		for _, d := range dels {
			if table == schema.TableDirectoryUsers {
				wasDel, nowDel = wasDel+d.prev.Users, nowDel+d.cur.Users
			} else {
				wasDel, nowDel = wasDel+d.prev.Memberships, nowDel+d.cur.Memberships
			}
		}
		if wasDel == 0 && nowDel == 0 {
			totals = append(totals, fmt.Sprintf("%s %d (was %d)", table, now, was))
			if d, ok := dropped(was, now, v.opts.MaxDrop); ok {
				f.errorf("%s has %d rows, %d in the previous snapshot %s: a drop of %.1f%%, more than the %s allowed (VERIFY_MAX_DROP); find out why before trusting snapshot %s",
					table, now, was, prevDate, 100*d, limit, v.date)
			}
			continue
		}
		totals = append(totals, fmt.Sprintf("%s %d (was %d, %d of them in deleted directories)", table, now, was, wasDel))
		if explained := min(was-now, wasDel-nowDel); explained > 0 {
			f.warnf("explained drop: %s fell from %d rows in the previous snapshot %s to %d; %d of the fall is the deleted directories' %s; the drop check applies to the other directories: %d rows, %d in the previous snapshot",
				table, was, prevDate, now, explained, names(dels), now-nowDel, was-wasDel)
		}
		if d, ok := dropped(was-wasDel, now-nowDel, v.opts.MaxDrop); ok {
			f.errorf("%s has %d rows outside the deleted directories, %d in the previous snapshot %s: a drop of %.1f%% that no deletion explains, more than the %s allowed (VERIFY_MAX_DROP); find out why before trusting snapshot %s",
				table, now-nowDel, was-wasDel, prevDate, 100*d, limit, v.date)
		}
	}
	return totals
}

// compareDirectories compares each directory of the previous snapshot
// (prev, of prevDate) with this one's: a directory gone without a deleted
// status is a warning in f, a drop over the limit in a directory with status
// ok and at least MinDropBase rows an error. It returns the number of
// directories in both snapshots.
func (v *verifier) compareDirectories(f *findings, prev *snapshot.Manifest, prevDate, limit string) (both int) {
	current := make(map[string]snapshot.DirectoryManifest, len(v.m.Directories))
	for _, d := range v.m.Directories {
		current[d.ID] = d
	}
	for _, p := range prev.Directories {
		d, ok := current[p.ID]
		if !ok {
			if p.Status == snapshot.DirectoryOK {
				f.warnf("directory %s (%q, organization %s) with %d users is in the previous snapshot %s but not in this one, and no deleted status records its deletion: check that it was deleted at WorkOS or that its organization was removed from EXPORT_ORGANIZATION_IDS",
					p.ID, p.Name, p.OrganizationID, p.Users, prevDate)
			}
			continue
		}
		both++
		if d.Status != snapshot.DirectoryOK {
			continue
		}
		for _, n := range []struct {
			table    string
			was, now int64
		}{
			{schema.TableDirectoryUsers, p.Users, d.Users},
			{schema.TableMemberships, p.Memberships, d.Memberships},
		} {
			if n.was < MinDropBase {
				continue
			}
			if drop, ok := dropped(n.was, n.now, v.opts.MaxDrop); ok {
				f.dirErrorf(d.ID, "directory %s (%q, organization %s) has %d rows in %s, %d in the previous snapshot %s: a drop of %.1f%%, more than the %s allowed (VERIFY_MAX_DROP)",
					d.ID, d.Name, d.OrganizationID, n.now, n.table, n.was, prevDate, 100*drop, limit)
			}
		}
	}
	return both
}

// previousDate returns the date of the snapshot to compare with (see the
// comment above), or "".
func (v *verifier) previousDate(ctx context.Context) (string, error) {
	markers, err := v.src.List(ctx, snapshot.VerifiedDir+"/")
	if err != nil {
		return "", fmt.Errorf("verify: listing %s/ to find the previous verified snapshot: %w", snapshot.VerifiedDir, err)
	}
	var verified []string
	for _, o := range markers {
		if date, ok := snapshot.ParseVerifiedKey(o.Key); ok && date < v.date {
			verified = append(verified, date)
		}
	}
	slices.Sort(verified)
	for i := len(verified) - 1; i >= 0; i-- {
		if v.stillVerified(ctx, verified[i]) {
			v.previousVerified = true
			return verified[i], nil
		}
	}
	infos, err := v.src.List(ctx, snapshot.ManifestsDir+"/")
	if err != nil {
		return "", fmt.Errorf("verify: listing %s/ to find the previous snapshot: %w", snapshot.ManifestsDir, err)
	}
	var latest string
	for _, o := range infos {
		prefix, date, ok := snapshot.ParseManifestKey(o.Key)
		if ok && prefix == "" && date < v.date && date > latest {
			latest = date
		}
	}
	return latest, nil
}

// stillVerified reports whether date's marker names the run of its current
// manifest: a rerun after the verification replaced what was verified.
func (v *verifier) stillVerified(ctx context.Context, date string) bool {
	raw, err := v.src.Get(ctx, snapshot.VerifiedKey(date))
	if err != nil {
		return false
	}
	var mark snapshot.Verified
	if json.Unmarshal(raw, &mark) != nil || mark.RunID == "" {
		return false
	}
	mraw, err := v.src.Get(ctx, snapshot.ManifestKey(date))
	if err != nil {
		return false
	}
	m, err := snapshot.Unmarshal(mraw)
	return err == nil && m.RunID == mark.RunID
}

// dropped returns the fall from was to now as a fraction of was, and whether
// it is more than limit.
func dropped(was, now int64, limit float64) (float64, bool) {
	if was <= 0 || now >= was {
		return 0, false
	}
	d := float64(was-now) / float64(was)
	return d, d > limit
}

func totalRows(m *snapshot.Manifest) int64 {
	var n int64
	for _, t := range m.Tables {
		n += t.Rows
	}
	return n
}
