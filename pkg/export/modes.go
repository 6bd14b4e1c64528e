package export

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/dsync-export/dsync-export/pkg/objstore"
	"github.com/dsync-export/dsync-export/pkg/schema"
	"github.com/dsync-export/dsync-export/pkg/snapshot"
	"github.com/dsync-export/dsync-export/pkg/workos"
)

// Export modes (Config.Mode, EXPORT_MODE).
const (
	// ModeAuto builds a directory incrementally where that is safe and walks
	// it in full where it is not (see fullReason).
	ModeAuto = "auto"
	// ModeFull walks every directory.
	ModeFull = "full"
	// ModeIncremental is ModeAuto that fails where a full walk is needed.
	ModeIncremental = "incremental"
)

// Modes lists the valid export modes.
var Modes = []string{ModeAuto, ModeFull, ModeIncremental}

// Reasons a directory is walked in full (DirectoryManifest.ModeReason).
const (
	ReasonRequested    = "full mode requested"
	ReasonNoBase       = "no earlier committed snapshot"
	ReasonPastDate     = "a date before the latest committed snapshot"
	ReasonBaseNoEvents = "the base snapshot has no event cursor"
	ReasonRetention    = "the base snapshot's event cursor is older than the Events API's retention allows"
	ReasonReconcile    = "the periodic full reconcile is due"
	ReasonNewDirectory = "a directory not in the base snapshot"
	ReasonBaseNotOK    = "the directory was not exported whole in the base snapshot"
	ReasonDemoBase     = "the base snapshot is demo data"
	ReasonSchema       = "the base snapshot was written with another schema_version"
	ReasonRejected     = "verify rejected the base snapshot"
	ReasonQuarantined  = "an event of the directory could not be decoded (quarantined), so a change was missed"
	ReasonUnread       = "the Events API could not be read"
	ReasonDrift        = "the directory's metadata counts disagree with the base plus the events: an event was missed"
)

// ErrFullWalkNeeded is wrapped by the plan's error in ModeIncremental when a
// directory needs a full walk.
var ErrFullWalkNeeded = errors.New("a full walk is needed")

// DirMode is how a plan exports one directory.
type DirMode struct {
	Mode   string `json:"mode"`
	Reason string `json:"reason,omitempty"`
	// LastFull is the date of the directory's latest full walk.
	LastFull string `json:"last_full"`
	// Drift is the plan's drift check of the directory (see checkDrift).
	Drift *snapshot.DriftCheck `json:"drift,omitempty"`
}

// base is a committed snapshot that an incremental run builds on.
type base struct {
	m *snapshot.Manifest
	// head is the latest committed snapshot date of the prefix.
	head string
	// dirs indexes m.Directories by id.
	dirs map[string]*snapshot.DirectoryManifest
	// rejected is verify's rejection of m (nil: none).
	rejected *snapshot.Rejected
}

// findBase returns the latest committed snapshot dated on or before date,
// or nil, with the latest committed date of all.
func (r *run) findBase(ctx context.Context) (*base, error) {
	objs, err := r.ex.Store.List(ctx, snapshot.ManifestsDir+"/")
	if err != nil {
		return nil, fmt.Errorf("list the committed snapshots: %w", err)
	}
	var dates []string
	for _, o := range objs {
		if _, d, ok := snapshot.ParseManifestKey(o.Key); ok {
			dates = append(dates, d)
		}
	}
	if len(dates) == 0 {
		return nil, nil
	}
	slices.Sort(dates)
	b := &base{head: dates[len(dates)-1]}
	i, found := slices.BinarySearch(dates, r.snap.Date)
	if !found {
		i--
	}
	if i < 0 {
		return b, nil
	}
	body, err := r.ex.Store.Get(ctx, snapshot.ManifestKey(dates[i]))
	if err != nil {
		return nil, fmt.Errorf("read the base snapshot %s: %w", dates[i], err)
	}
	m, err := snapshot.Unmarshal(body)
	if err != nil {
		return nil, fmt.Errorf("read the base snapshot %s: %w", dates[i], err)
	}
	b.m = m
	b.dirs = make(map[string]*snapshot.DirectoryManifest, len(m.Directories))
	for j := range m.Directories {
		b.dirs[m.Directories[j].ID] = &m.Directories[j]
	}
	// A snapshot verify rejected is never built on: its directories (those
	// the rejection names, or all) are walked in full.
	var rej snapshot.Rejected
	switch err := getJSON(ctx, r.ex.Store, snapshot.RejectedKey(m.SnapshotDate), &rej); {
	case err == nil:
		if rej.RunID == m.RunID {
			b.rejected = &rej
		}
	case !errors.Is(err, objstore.ErrNotExist):
		return nil, fmt.Errorf("read verify's rejection of the base snapshot %s: %w", m.SnapshotDate, err)
	}
	return b, nil
}

// lastFull is the date of a base directory's latest full walk.
func lastFull(m *snapshot.Manifest, d *snapshot.DirectoryManifest) string {
	if d.LastFullDate != "" {
		return d.LastFullDate
	}
	return m.SnapshotDate // written before modes: every walk was full
}

// chooseModes decides how each listed directory is exported. mode is the
// run's mode (Config.Mode, or the input's); requireIncremental then fails a
// ModeIncremental run that needs a full walk.
func (r *run) chooseModes(b *base, dirs []workos.Directory, mode string, now time.Time) map[string]DirMode {
	runWide := ""
	switch {
	case mode == ModeFull:
		runWide = ReasonRequested
	case r.pastDate(b):
		runWide = ReasonPastDate
	case b == nil || b.m == nil:
		runWide = ReasonNoBase
	case b.m.Events == nil:
		runWide = ReasonBaseNoEvents
	case now.Sub(b.m.Events.Through.CheckedAt) > workos.EventRetention-r.cfg.EventsMargin:
		runWide = ReasonRetention
	case b.m.Demo != r.snap.Demo:
		runWide = ReasonDemoBase
	case b.m.SchemaVersion != schema.Version:
		runWide = ReasonSchema
	case b.rejected != nil && len(b.rejected.Directories) == 0:
		runWide = ReasonRejected
	}
	out := make(map[string]DirMode, len(dirs))
	for i := range dirs {
		d := &dirs[i]
		dm := DirMode{Mode: schema.SnapshotModeFull, Reason: runWide, LastFull: r.snap.Date}
		if runWide == "" {
			bd := b.dirs[d.ID]
			switch {
			case bd == nil:
				dm.Reason = ReasonNewDirectory
			case bd.Status != snapshot.DirectoryOK:
				dm.Reason = ReasonBaseNotOK
			case slices.Contains(b.rejected.DirectoriesOrNil(), d.ID):
				dm.Reason = ReasonRejected
			default:
				lf := lastFull(b.m, bd)
				if due(d.ID, lf, r.snap.Date, r.cfg.FullEvery) {
					dm.Reason = ReasonReconcile
				} else {
					dm = DirMode{Mode: schema.SnapshotModeIncremental, LastFull: lf}
				}
			}
		}
		out[d.ID] = dm
	}
	return out
}

func abs(n int64) int64 { return max(n, -n) }

// walkInFull turns the incremental directories that pick selects (all when
// pick is nil) into full walks for reason.
func walkInFull(modes map[string]DirMode, date, reason string, pick func(id string) bool) {
	for id, m := range modes {
		if m.Mode == schema.SnapshotModeIncremental && (pick == nil || pick(id)) {
			modes[id] = DirMode{Mode: schema.SnapshotModeFull, Reason: reason, LastFull: date}
		}
	}
}

// requireIncremental fails a ModeIncremental run in which a directory needs
// a full walk, naming them and why.
func requireIncremental(modes map[string]DirMode, mode string) error {
	if mode != ModeIncremental {
		return nil
	}
	var needFull []string
	for _, id := range slices.Sorted(maps.Keys(modes)) {
		if dm := modes[id]; dm.Mode == schema.SnapshotModeFull {
			needFull = append(needFull, fmt.Sprintf("%s (%s)", id, dm.Reason))
		}
	}
	if len(needFull) == 0 {
		return nil
	}
	const show = 5
	n, more := len(needFull), ""
	if n > show {
		more = fmt.Sprintf(" and %d more", n-show)
		needFull = needFull[:show]
	}
	return fmt.Errorf("export: %w: EXPORT_MODE is incremental, but %d directories need a full walk: %s%s; run with EXPORT_MODE=auto (or \"mode\": \"full\" in the input) to walk them",
		ErrFullWalkNeeded, n, strings.Join(needFull, ", "), more)
}

// checkDrift compares each incremental directory's base counts plus the
// events' net creates and deletes with the counts its listing carries, and
// walks in full, in this run, each one where they disagree: an event was
// missed, found the day it happens. Directories listed without metadata
// are not checked. Each directory's check is recorded in its mode.
func (r *run) checkDrift(b *base, dirs []workos.Directory, modes map[string]DirMode, ep *EventsPlan) {
	record := func(id string, dc *snapshot.DriftCheck) {
		dm := modes[id]
		dm.Drift = dc
		modes[id] = dm
	}
	for i := range dirs {
		d := &dirs[i]
		if modes[d.ID].Mode != schema.SnapshotModeIncremental {
			continue
		}
		if d.Metadata == nil {
			record(d.ID, &snapshot.DriftCheck{Result: snapshot.DriftNoMetadata})
			continue
		}
		bd := b.dirs[d.ID]
		dc := &snapshot.DriftCheck{
			Result:         snapshot.DriftOK,
			ExpectedUsers:  bd.Users,
			ExpectedGroups: bd.Groups,
			ListedUsers:    d.Metadata.Users.Active + d.Metadata.Users.Inactive,
			ListedGroups:   d.Metadata.Groups,
		}
		if n := ep.net[d.ID]; n != nil {
			dc.ExpectedUsers += n.users
			dc.ExpectedGroups += n.groups
		}
		// Only a base walked in full may already hold some events' changes.
		var slack netCount
		if a := ep.ambiguous[d.ID]; a != nil && bd.Mode != schema.SnapshotModeIncremental {
			slack = *a
		}
		if abs(dc.ExpectedUsers-dc.ListedUsers) > slack.users || abs(dc.ExpectedGroups-dc.ListedGroups) > slack.groups {
			dc.Result = snapshot.DriftFound
			walkInFull(modes, r.snap.Date, ReasonDrift, func(id string) bool { return id == d.ID })
			r.log.Warn("drift: the directory's counts disagree with the base plus the events; it is walked in full",
				"directory_id", d.ID, "expected_users", dc.ExpectedUsers, "listed_users", dc.ListedUsers,
				"expected_groups", dc.ExpectedGroups, "listed_groups", dc.ListedGroups)
		}
		record(d.ID, dc)
	}
}

// pastDate reports whether the run's date is before the latest committed
// snapshot's: the state APIs only show today, and later snapshots hold the
// events since then.
func (r *run) pastDate(b *base) bool {
	return b != nil && b.head != "" && r.snap.Date < b.head
}

// due reports whether directory id's full reconcile, last done on
// lastFull, is due on date. Each directory has its own reconcile day in
// every cycle of every (in whole days), derived from its id, so about
// 1/cycle of the account is walked in full each day instead of all of it on
// one day; a directory whose day was missed is walked once a whole cycle
// has passed.
func due(id, lastFull, date string, every time.Duration) bool {
	if every <= 0 {
		return false
	}
	lf, err1 := snapshot.ParseDate(lastFull)
	d, err2 := snapshot.ParseDate(date)
	if err1 != nil || err2 != nil {
		return true
	}
	if d.Sub(lf) >= every {
		return true
	}
	cycle := int64(max(1, (every+24*time.Hour-1)/(24*time.Hour)))
	day := d.Unix() / 86400
	return d.After(lf) && day%cycle == reconcileDay(id, cycle)
}

// reconcileDay is directory id's day in a reconcile cycle of cycle days.
func reconcileDay(id string, cycle int64) int64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(id))
	return int64(h.Sum64() % uint64(cycle))
}

// incrementalCount counts the directories built from events.
func incrementalCount(modes map[string]DirMode) int {
	n := 0
	for _, m := range modes {
		if m.Mode == schema.SnapshotModeIncremental {
			n++
		}
	}
	return n
}

// adjustModes walks in full what the events read cannot be trusted for:
// every directory when the Events API could not be read or the chain
// restarted, the directories a quarantined event names (all, when one names
// none), and those whose counts drifted; it records each drift check.
func (r *run) adjustModes(b *base, dirs []workos.Directory, modes map[string]DirMode, events *EventsPlan) {
	switch {
	case events.Unchanged:
		walkInFull(modes, r.snap.Date, ReasonUnread, nil)
	case events.Restarted:
		// Defensive: Config.Check keeps EventsMargin above the read's own
		// safety, so a restart always comes with full walks.
		walkInFull(modes, r.snap.Date, ReasonRetention, nil)
	default:
		named := map[string]bool{}
		for _, q := range events.newQuarantined {
			named[q.DirectoryID] = true
		}
		if named[""] {
			walkInFull(modes, r.snap.Date, ReasonQuarantined, nil)
		} else if len(named) > 0 {
			walkInFull(modes, r.snap.Date, ReasonQuarantined, func(id string) bool { return named[id] })
		}
		if !events.Carried {
			r.checkDrift(b, dirs, modes, events)
		}
	}
}
