package export

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

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
}

// exportDirectory walks one directory's users, groups and memberships.
//
// The users walk and the groups walk run at once: only /directory_users is
// limited per directory, so the groups walk costs no user budget. On the
// by_group route the member walks start when the groups are known and share
// the directory's 4 req/s with the users walk; on the by_user route the users
// walk feeds user IDs to parallel /directory_groups?user= walks, which only the
// global limit bounds.
func (r *run) exportDirectory(ctx context.Context, d *workos.Directory, total int) (snapshot.DirectoryManifest, error) {
	start := time.Now()
	dctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	dr := &dirRun{r: r, d: d, ctx: dctx}
	dr.dm = snapshot.DirectoryManifest{ID: d.ID, OrganizationID: d.OrganizationID, Name: d.Name, Status: snapshot.DirectoryOK}
	dr.chooseRoute(total)

	var (
		wg       sync.WaitGroup
		once     sync.Once
		firstErr error
	)
	fail := func(err error) {
		once.Do(func() {
			firstErr = err
			cancel(err)
		})
	}
	spawn := func(f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(); err != nil {
				fail(err)
			}
		}()
	}

	var userIDs chan string
	if dr.dm.MembershipRoute == snapshot.RouteByUser {
		userIDs = make(chan string, 1024)
		for range r.cfg.UserRouteParallelism {
			spawn(func() error { return dr.walkByUser(userIDs) })
		}
	}
	spawn(func() error {
		if userIDs != nil {
			defer close(userIDs)
		}
		return dr.walkUsers(userIDs)
	})
	spawn(dr.walkGroups)
	wg.Wait()

	dr.dm.Users = dr.users.Load()
	dr.dm.Groups = dr.groups.Load()
	dr.dm.Memberships = dr.memberships.Load()
	dr.dm.Requests = dr.pages.Load()
	dr.dm.DurationMillis = time.Since(start).Milliseconds()
	var skipped []string
	if n := dr.skippedGroups.Load(); n > 0 {
		skipped = append(skipped, fmt.Sprintf("%d groups were deleted during the export; their memberships are missing", n))
	}
	if n := dr.skippedUsers.Load(); n > 0 {
		skipped = append(skipped, fmt.Sprintf("%d users were deleted during the export; their memberships are missing", n))
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
	c := dr.r.ex.Client
	for {
		page, err := c.ListDirectoryUsers(dr.ctx, opts)
		if err != nil {
			return fmt.Errorf("list users: %w", err)
		}
		dr.pages.Add(1)
		rows := make([]schema.DirectoryUser, len(page.Data))
		var ms []schema.DirectoryGroupMembership
		for i := range page.Data {
			u := &page.Data[i]
			rows[i] = schema.FromDirectoryUser(u, dr.r.snap.Time)
			if legacy {
				for _, g := range u.Groups {
					ms = append(ms, dr.membership(g.ID, u.ID))
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
		if userIDs != nil {
			for i := range page.Data {
				select {
				case userIDs <- page.Data[i].ID:
				case <-dr.ctx.Done():
					return context.Cause(dr.ctx)
				}
			}
		}
		after, more := page.NextAfter()
		if !more || len(page.Data) == 0 {
			return nil
		}
		opts.After = after
	}
}

// walkGroups pages through the directory's groups and, on the by_group route,
// walks each group's members.
func (dr *dirRun) walkGroups() error {
	opts := &workos.ListDirectoryGroupsOptions{ListOptions: workos.ListOptions{Order: dr.r.cfg.Order}, Directory: dr.d.ID}
	byGroup := dr.dm.MembershipRoute == snapshot.RouteByGroup
	var groupIDs []string
	c := dr.r.ex.Client
	for {
		page, err := c.ListDirectoryGroups(dr.ctx, opts)
		if err != nil {
			return fmt.Errorf("list groups: %w", err)
		}
		dr.pages.Add(1)
		rows := make([]schema.DirectoryGroup, len(page.Data))
		for i := range page.Data {
			rows[i] = schema.FromDirectoryGroup(&page.Data[i], dr.r.snap.Time)
			if byGroup {
				groupIDs = append(groupIDs, page.Data[i].ID)
			}
		}
		if err := dr.r.groups.send(dr.ctx, rows); err != nil {
			return err
		}
		dr.groups.Add(int64(len(rows)))
		after, more := page.NextAfter()
		if !more || len(page.Data) == 0 {
			break
		}
		opts.After = after
	}
	for _, g := range groupIDs {
		if err := dr.walkGroupMembers(g); err != nil {
			return err
		}
	}
	return nil
}

// walkGroupMembers walks GET /directory_users?directory=D&group=G.
func (dr *dirRun) walkGroupMembers(groupID string) error {
	opts := &workos.ListDirectoryUsersOptions{ListOptions: workos.ListOptions{Order: dr.r.cfg.Order}, Directory: dr.d.ID, Group: groupID}
	c := dr.r.ex.Client
	for {
		page, err := c.ListDirectoryUsers(dr.ctx, opts)
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
		ms := make([]schema.DirectoryGroupMembership, len(page.Data))
		for i := range page.Data {
			ms[i] = dr.membership(groupID, page.Data[i].ID)
		}
		if err := dr.r.memberships.send(dr.ctx, ms); err != nil {
			return err
		}
		dr.memberships.Add(int64(len(ms)))
		after, more := page.NextAfter()
		if !more || len(page.Data) == 0 {
			return nil
		}
		opts.After = after
	}
}

// walkByUser takes user IDs and walks GET /directory_groups?user=U for each.
func (dr *dirRun) walkByUser(userIDs <-chan string) error {
	c := dr.r.ex.Client
	batch := make([]schema.DirectoryGroupMembership, 0, membershipBatch)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := dr.r.memberships.send(dr.ctx, batch); err != nil {
			return err
		}
		dr.memberships.Add(int64(len(batch)))
		batch = make([]schema.DirectoryGroupMembership, 0, membershipBatch)
		return nil
	}
	for uid := range userIDs {
		opts := &workos.ListDirectoryGroupsOptions{ListOptions: workos.ListOptions{Order: dr.r.cfg.Order}, User: uid}
		for {
			page, err := c.ListDirectoryGroups(dr.ctx, opts)
			if err != nil {
				if workos.IsNotFound(err) && !dr.directoryGone() {
					if _, uerr := c.GetDirectoryUser(dr.ctx, uid); workos.IsNotFound(uerr) {
						dr.skippedUsers.Add(1) // deleted after the users walk saw it
						break
					}
				}
				return fmt.Errorf("list groups of user %s: %w", uid, err)
			}
			dr.pages.Add(1)
			for i := range page.Data {
				batch = append(batch, dr.membership(page.Data[i].ID, uid))
			}
			if len(batch) >= membershipBatch {
				if err := flush(); err != nil {
					return err
				}
			}
			after, more := page.NextAfter()
			if !more || len(page.Data) == 0 {
				break
			}
			opts.After = after
		}
	}
	if err := context.Cause(dr.ctx); err != nil {
		return err
	}
	return flush()
}

// directoryGone reports whether the directory itself answers 404 now: then a
// 404 on one of its groups or users means the whole directory was deleted,
// not just that group or user.
func (dr *dirRun) directoryGone() bool {
	_, err := dr.r.ex.Client.GetDirectory(dr.ctx, dr.d.ID)
	return workos.IsNotFound(err)
}

func (dr *dirRun) membership(groupID, userID string) schema.DirectoryGroupMembership {
	return schema.DirectoryGroupMembership{
		DirectoryID:    dr.d.ID,
		OrganizationID: dr.d.OrganizationID,
		GroupID:        groupID,
		UserID:         userID,
		ExportedAt:     dr.r.snap.Time,
	}
}
