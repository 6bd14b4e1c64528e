package export

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/dsync-export/dsync-export/pkg/schema"
	"github.com/dsync-export/dsync-export/pkg/snapshot"
	"github.com/dsync-export/dsync-export/pkg/workos"
)

// membershipBatch is how many membership rows the by_user route gathers before
// handing them to the writer.
const membershipBatch = 512

// dirRun is the state of one directory's export.
type dirRun struct {
	r   *run
	d   *workos.Directory
	dm  snapshot.DirectoryManifest
	ctx context.Context

	users, groups, memberships, pages atomic.Int64
	skippedGroups, skippedUsers       atomic.Int64

	// rejected counts the rows accept refused; sampleID and sampleReason
	// describe the first of them.
	rejected               atomic.Int64
	sampleOnce             sync.Once
	sampleID, sampleReason string
}

// exportDirectory walks one directory's users, groups and memberships.
//
// The users walk and the groups walk run at once: only /directory_users is
// limited per directory, so the groups walk costs no user budget. On the
// by_group route the member walks start when the groups are known and share
// the directory's 4 req/s with the users walk; on the by_user route the users
// walk feeds user IDs to UserRouteParallelism /directory_groups?user= walkers,
// which only the global limit bounds. The first error cancels the others.
func (r *run) exportDirectory(ctx context.Context, d *workos.Directory, total int) (snapshot.DirectoryManifest, error) {
	start := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	dr := &dirRun{r: r, d: d, ctx: gctx}
	dr.dm = snapshot.DirectoryManifest{ID: d.ID, OrganizationID: d.OrganizationID, Name: d.Name, Status: snapshot.DirectoryOK}
	dr.chooseRoute(total)

	var userIDs chan string
	if dr.dm.MembershipRoute == snapshot.RouteByUser {
		userIDs = make(chan string, 1024)
		for range r.cfg.UserRouteParallelism {
			g.Go(func() error { return dr.walkByUser(userIDs) })
		}
	}
	g.Go(func() error {
		if userIDs != nil {
			defer close(userIDs)
		}
		return dr.walkUsers(userIDs)
	})
	g.Go(dr.walkGroups)
	firstErr := g.Wait()

	dr.dm.Users = dr.users.Load()
	dr.dm.Groups = dr.groups.Load()
	dr.dm.Memberships = dr.memberships.Load()
	dr.dm.Requests = dr.pages.Load()
	dr.dm.RowsRejected = dr.rejected.Load()
	dr.dm.DurationMillis = time.Since(start).Milliseconds()
	var skipped []string
	if n := dr.skippedGroups.Load(); n > 0 {
		skipped = append(skipped, fmt.Sprintf("%d groups were deleted during the export; their memberships are missing", n))
	}
	if n := dr.skippedUsers.Load(); n > 0 {
		skipped = append(skipped, fmt.Sprintf("%d users were deleted during the export; their memberships are missing", n))
	}
	if n := dr.dm.RowsRejected; n > 0 {
		skipped = append(skipped, fmt.Sprintf("%d rows were skipped: a malformed id, or a directory_id of another directory (e.g. %s)", n, strconv.Quote(dr.sampleID)))
		r.log.Warn("rows rejected: malformed id or another directory's row",
			"directory_id", d.ID, "rows_rejected", n, "sample_id", strconv.Quote(dr.sampleID), "reason", dr.sampleReason)
	}
	dr.dm.Error = strings.Join(skipped, "; ")

	if firstErr != nil {
		if workos.IsNotFound(firstErr) && ctx.Err() == nil {
			// Was the directory itself deleted while we walked it?
			if _, err := r.ex.Client.GetDirectory(ctx, d.ID); workos.IsNotFound(err) {
				dr.dm.Status = snapshot.DirectoryDeleted
				dr.dm.Error = "deleted at WorkOS during the export (404); rows fetched before the deletion are kept"
				r.dirsDone.Add(1)
				r.log.Warn("directory deleted during export", "directory_id", d.ID, "users", dr.dm.Users, "groups", dr.dm.Groups)
				return dr.dm, nil
			}
		}
		return dr.dm, fmt.Errorf("directory %s (%s): %w", d.ID, d.Name, firstErr)
	}
	done := r.dirsDone.Add(1)
	r.log.Info("directory exported",
		"directory_id", d.ID, "organization_id", d.OrganizationID,
		"users", dr.dm.Users, "groups", dr.dm.Groups, "memberships", dr.dm.Memberships,
		"membership_route", dr.dm.MembershipRoute, "requests", dr.dm.Requests,
		"duration_ms", dr.dm.DurationMillis, "done", done, "total", total)
	return dr.dm, nil
}

// chooseRoute picks how memberships are fetched. In auto mode it estimates,
// from the counts in the directory's metadata, how long each route takes:
//
//   - by_group costs the directory's user pages plus at least one page per
//     group (plus overflow pages of big groups), all at the per-directory
//     /directory_users rate;
//   - by_user costs one /directory_groups request per user at this
//     directory's share of the global rate, overlapped with the users walk.
//
// It takes the faster one; without counts it takes by_group, which never
// costs more than one request per group beyond the users walk.
func (dr *dirRun) chooseRoute(total int) {
	cfg := dr.r.cfg
	switch cfg.MembershipMode {
	case snapshot.RouteByGroup:
		dr.dm.MembershipRoute = snapshot.RouteByGroup
		return
	case snapshot.RouteByUser:
		dr.dm.MembershipRoute = snapshot.RouteByUser
		return
	case snapshot.RouteLegacy:
		dr.dm.MembershipRoute = snapshot.RouteLegacy
		return
	}
	dr.dm.MembershipRoute = snapshot.RouteByGroup
	md := dr.d.Metadata
	if md == nil {
		return
	}
	users := float64(md.Users.Active + md.Users.Inactive)
	groups := float64(md.Groups)
	perDir := rateOr(cfg.PerDirectoryRate)
	share := rateOr(cfg.GlobalRate) / float64(max(1, min(cfg.Concurrency, total)))
	userPages := math.Max(1, math.Ceil(users/100))
	byGroup := (userPages + groups + math.Ceil(users/100)) / perDir
	byUser := math.Max(userPages/perDir, users/share)
	dr.dm.EstimateByGroupSec = round2(byGroup)
	dr.dm.EstimateByUserSec = round2(byUser)
	if byUser < byGroup {
		dr.dm.MembershipRoute = snapshot.RouteByUser
	}
}

func rateOr(r float64) float64 {
	if r <= 0 {
		return 1000 // unlimited: bound by latency instead
	}
	return r
}

func round2(f float64) float64 { return math.Round(f*100) / 100 }

// walkUsers pages through the directory's users and streams them. On the
// by_user route it hands every user ID to the member walkers; on the legacy
// route it takes memberships from the deprecated groups array.
func (dr *dirRun) walkUsers(userIDs chan<- string) error {
	opts := &workos.ListDirectoryUsersOptions{ListOptions: workos.ListOptions{Order: dr.r.cfg.Order}, Directory: dr.d.ID}
	legacy := dr.dm.MembershipRoute == snapshot.RouteLegacy
	at := dr.r.snap.Time
	for page, err := range dr.r.ex.Client.DirectoryUserPages(dr.ctx, opts) {
		if err != nil {
			return fmt.Errorf("list users: %w", err)
		}
		dr.pages.Add(1)
		rows := make([]schema.DirectoryUser, 0, len(page.Data))
		var ms []schema.DirectoryGroupMembership
		var ids []string
		for i := range page.Data {
			u := &page.Data[i]
			if !dr.accept(u.ID, u.DirectoryID, workos.CheckDirectoryUserID) {
				continue
			}
			rows = append(rows, schema.FromDirectoryUser(u, at))
			if userIDs != nil {
				ids = append(ids, u.ID)
			}
			if legacy {
				for _, g := range u.Groups {
					if dr.accept(g.ID, g.DirectoryID, workos.CheckDirectoryGroupID) {
						ms = append(ms, schema.NewMembership(dr.d, g.ID, u.ID, at))
					}
				}
			}
		}
		if err := dr.r.users.send(dr.ctx, rows); err != nil {
			return err
		}
		dr.users.Add(int64(len(rows)))
		if len(ms) > 0 {
			if err := dr.r.memberships.send(dr.ctx, ms); err != nil {
				return err
			}
			dr.memberships.Add(int64(len(ms)))
		}
		for _, id := range ids {
			select {
			case userIDs <- id:
			case <-dr.ctx.Done():
				return context.Cause(dr.ctx)
			}
		}
	}
	return nil
}

// walkGroups pages through the directory's groups and, on the by_group route,
// walks each group's members.
func (dr *dirRun) walkGroups() error {
	opts := &workos.ListDirectoryGroupsOptions{ListOptions: workos.ListOptions{Order: dr.r.cfg.Order}, Directory: dr.d.ID}
	byGroup := dr.dm.MembershipRoute == snapshot.RouteByGroup
	var groupIDs []string
	for page, err := range dr.r.ex.Client.DirectoryGroupPages(dr.ctx, opts) {
		if err != nil {
			return fmt.Errorf("list groups: %w", err)
		}
		dr.pages.Add(1)
		rows := make([]schema.DirectoryGroup, 0, len(page.Data))
		for i := range page.Data {
			g := &page.Data[i]
			if !dr.accept(g.ID, g.DirectoryID, workos.CheckDirectoryGroupID) {
				continue
			}
			rows = append(rows, schema.FromDirectoryGroup(g, dr.r.snap.Time))
			if byGroup {
				groupIDs = append(groupIDs, g.ID)
			}
		}
		if err := dr.r.groups.send(dr.ctx, rows); err != nil {
			return err
		}
		dr.groups.Add(int64(len(rows)))
	}
	for _, g := range groupIDs {
		if err := dr.walkGroupMembers(g); err != nil {
			return err
		}
	}
	return nil
}

// walkGroupMembers walks GET /directory_users?directory=D&group=G. A group
// deleted since the groups walk saw it is counted and skipped.
func (dr *dirRun) walkGroupMembers(groupID string) error {
	opts := &workos.ListDirectoryUsersOptions{ListOptions: workos.ListOptions{Order: dr.r.cfg.Order}, Directory: dr.d.ID, Group: groupID}
	c := dr.r.ex.Client
	for page, err := range c.DirectoryUserPages(dr.ctx, opts) {
		if err != nil {
			if workos.IsNotFound(err) && !dr.directoryGone() {
				if _, gerr := c.GetDirectoryGroup(dr.ctx, groupID); workos.IsNotFound(gerr) {
					dr.skippedGroups.Add(1) // the group was deleted mid-export
					return nil
				}
			}
			return fmt.Errorf("list members of group %s: %w", groupID, err)
		}
		dr.pages.Add(1)
		ms := make([]schema.DirectoryGroupMembership, 0, len(page.Data))
		for i := range page.Data {
			u := &page.Data[i]
			if dr.accept(u.ID, u.DirectoryID, workos.CheckDirectoryUserID) {
				ms = append(ms, schema.NewMembership(dr.d, groupID, u.ID, dr.r.snap.Time))
			}
		}
		if err := dr.r.memberships.send(dr.ctx, ms); err != nil {
			return err
		}
		dr.memberships.Add(int64(len(ms)))
	}
	return nil
}

// walkByUser takes user IDs and walks GET /directory_groups?user=U for each,
// handing the membership rows to the writer in batches of membershipBatch.
func (dr *dirRun) walkByUser(userIDs <-chan string) error {
	var batch []schema.DirectoryGroupMembership
	for uid := range userIDs {
		var err error
		if batch, err = dr.walkUserGroups(uid, batch); err != nil {
			return err
		}
		if len(batch) >= membershipBatch {
			if err := dr.sendMemberships(batch); err != nil {
				return err
			}
			batch = nil
		}
	}
	if err := context.Cause(dr.ctx); err != nil {
		return err
	}
	return dr.sendMemberships(batch)
}

// walkUserGroups appends the memberships of user uid to batch. A user deleted
// since the users walk saw it is counted and skipped.
func (dr *dirRun) walkUserGroups(uid string, batch []schema.DirectoryGroupMembership) ([]schema.DirectoryGroupMembership, error) {
	c := dr.r.ex.Client
	opts := &workos.ListDirectoryGroupsOptions{ListOptions: workos.ListOptions{Order: dr.r.cfg.Order}, User: uid}
	for page, err := range c.DirectoryGroupPages(dr.ctx, opts) {
		if err != nil {
			if workos.IsNotFound(err) && !dr.directoryGone() {
				if _, uerr := c.GetDirectoryUser(dr.ctx, uid); workos.IsNotFound(uerr) {
					dr.skippedUsers.Add(1) // deleted after the users walk saw it
					return batch, nil
				}
			}
			return batch, fmt.Errorf("list groups of user %s: %w", uid, err)
		}
		dr.pages.Add(1)
		for i := range page.Data {
			g := &page.Data[i]
			if dr.accept(g.ID, g.DirectoryID, workos.CheckDirectoryGroupID) {
				batch = append(batch, schema.NewMembership(dr.d, g.ID, uid, dr.r.snap.Time))
			}
		}
	}
	return batch, nil
}

func (dr *dirRun) sendMemberships(ms []schema.DirectoryGroupMembership) error {
	if len(ms) == 0 {
		return nil
	}
	if err := dr.r.memberships.send(dr.ctx, ms); err != nil {
		return err
	}
	dr.memberships.Add(int64(len(ms)))
	return nil
}

// accept reports whether a row may be written: its id passes check (the
// prefix of its kind, then a safe character set) and its directory_id is the
// directory being walked. Every route applies it to every row, so a hostile or
// broken answer is skipped the same way everywhere; a rejected row is counted
// and the first one kept as the sample of the directory's warning.
func (dr *dirRun) accept(id, directoryID string, check func(string) error) bool {
	err := check(id)
	if err == nil && directoryID != dr.d.ID {
		err = fmt.Errorf("row %s has directory_id %s, not the directory being exported", strconv.Quote(id), strconv.Quote(directoryID))
	}
	if err == nil {
		return true
	}
	dr.rejected.Add(1)
	// The sample goes to the log and the manifest: a server that echoes the
	// API key into an id must not get it there.
	c := dr.r.ex.Client
	dr.sampleOnce.Do(func() { dr.sampleID, dr.sampleReason = c.Redact(id), c.Redact(err.Error()) })
	return false
}

// directoryGone reports whether the directory itself answers 404 now: then a
// 404 on one of its groups or users means the whole directory was deleted,
// not just that group or user.
func (dr *dirRun) directoryGone() bool {
	_, err := dr.r.ex.Client.GetDirectory(dr.ctx, dr.d.ID)
	return workos.IsNotFound(err)
}
