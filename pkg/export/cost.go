package export

import (
	"math"

	"github.com/dsync-export/dsync-export/pkg/snapshot"
	"github.com/dsync-export/dsync-export/pkg/workos"
)

// dirCost is a directory's cost at the rate-limit bound: its own time at the
// per-directory limit (sec) and the requests it sends on every endpoint.
type dirCost struct {
	index    int
	sec, req float64
	known    bool
}

// costOf estimates a directory's cost from the counts in its listing.
func costOf(i int, d *workos.Directory, perDir float64) dirCost {
	req, dirReq, ok := estimateRequests(d)
	return dirCost{index: i, sec: dirReq / perDir, req: req, known: ok}
}

// deltaRowsPerSecond is about how fast a delta unit reads and rewrites
// base rows (measured by make bench, with margin).
const deltaRowsPerSecond = 100_000

// deltaEstimate is the delta unit's time: every base row is read once.
func deltaEstimate(m *snapshot.Manifest) float64 {
	var rows int64
	for _, t := range deltaTables {
		rows += m.Tables[t].Rows
	}
	return round2(float64(rows) / deltaRowsPerSecond)
}

// estimateRequests estimates from a directory's counts the WorkOS requests
// its walk needs (all endpoints) and those on /directory_users, which the
// per-directory limit paces: the user pages, one page per group for its
// members (by_group) and the overflow pages of big groups.
func estimateRequests(d *workos.Directory) (total, directoryUsers float64, ok bool) {
	c, ok := countsOf(d)
	if !ok {
		return 0, 0, false
	}
	directoryUsers = c.byGroupRequests()
	total = directoryUsers + math.Max(1, math.Ceil(c.groups/100))
	return total, directoryUsers, true
}

// counts are a directory's listed users and groups.
type counts struct{ users, groups float64 }

// countsOf returns the counts in a directory's listing (false: none).
func countsOf(d *workos.Directory) (counts, bool) {
	if d.Metadata == nil {
		return counts{}, false
	}
	return counts{users: float64(d.Metadata.Users.Active + d.Metadata.Users.Inactive), groups: float64(d.Metadata.Groups)}, true
}

// userPages is the pages of the directory's users walk (at least one).
func (c counts) userPages() float64 { return math.Max(1, math.Ceil(c.users/100)) }

// byGroupRequests is the /directory_users requests of a by_group walk: the
// user pages, one page per group for its members, and the overflow pages
// of big groups (about one per 100 members, so one per 100 users).
func (c counts) byGroupRequests() float64 { return c.userPages() + c.groups + math.Ceil(c.users/100) }

// chooseRoute picks how memberships are fetched. In auto mode it estimates,
// from the counts in the directory's metadata, how long each route takes:
//
//   - by_group costs the directory's user pages plus at least one page per
//     group (plus overflow pages of big groups), all at the per-directory
//     /directory_users rate;
//   - by_user costs one /directory_groups request per user at this
//     directory's share of the worker's global rate (Config.GlobalRate, which
//     is already the worker's share), split among parallel directories.
//
// It takes the faster one; without counts it takes by_group, which never
// costs more than one request per group beyond the users walk.
func chooseRoute(dm *snapshot.DirectoryManifest, d *workos.Directory, cfg Config, parallel int) {
	switch cfg.MembershipMode {
	case snapshot.RouteByGroup, snapshot.RouteByUser, snapshot.RouteLegacy:
		dm.MembershipRoute = cfg.MembershipMode
		return
	}
	dm.MembershipRoute = snapshot.RouteByGroup
	c, ok := countsOf(d)
	if !ok {
		return
	}
	perDir := rateOr(cfg.PerDirectoryRate)
	share := rateOr(cfg.GlobalRate) / float64(max(1, parallel))
	byGroup := c.byGroupRequests() / perDir
	byUser := math.Max(c.userPages()/perDir, c.users/share)
	dm.EstimateByGroupSec = round2(byGroup)
	dm.EstimateByUserSec = round2(byUser)
	if byUser < byGroup {
		dm.MembershipRoute = snapshot.RouteByUser
	}
}

func rateOr(r float64) float64 {
	if r <= 0 {
		return 1000 // unlimited: bound by latency instead
	}
	return r
}

func round2(f float64) float64 { return math.Round(f*100) / 100 }
