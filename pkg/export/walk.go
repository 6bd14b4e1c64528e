package export

import (
	"context"
	"errors"
	"fmt"
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

// dirState is where one directory's walk stands. It is stored in its unit's
// checkpoint after every chunk, so the next chunk resumes it at a page
// boundary: the rows of every page before a lane's cursor are in the parts
// the checkpoint lists, and none after.
//
// A directory is walked in two lanes at once, each resumable on its own: the
// users lane (the users pages; on the by_user route the groups of each page's
// users, on the legacy route their groups arrays) and the groups lane (the
// groups pages; on the by_group route the members of each page's groups).
// Only /directory_users is limited per directory, so the groups lane's own
// pages cost none of the directory's 4 req/s.
type dirState struct {
	ID     string `json:"id"`
	Users  lane   `json:"users"`
	Groups lane   `json:"groups"`
	// Manifest holds the counts so far, the route and the status.
	Manifest snapshot.DirectoryManifest `json:"manifest"`
	// SkippedGroups and SkippedUsers count members' owners deleted mid-walk.
	SkippedGroups int64 `json:"skipped_groups,omitempty"`
	SkippedUsers  int64 `json:"skipped_users,omitempty"`
	// SampleID and SampleReason describe the first rejected row.
	SampleID     string `json:"sample_id,omitempty"`
	SampleReason string `json:"sample_reason,omitempty"`
}

// lane is where one list of a directory's walk stands.
type lane struct {
	// Cursor is the after cursor of the list's next page ("" at the start).
	Cursor string `json:"cursor,omitempty"`
	// Last is set when the list has no page after Cursor's: only Pending
	// remains.
	Last bool `json:"last,omitempty"`
	// Pending lists the ids whose memberships the page before Cursor still
	// owes: users on the by_user route, groups on the by_group route.
	Pending []string `json:"pending,omitempty"`
	// PendingCursor is the cursor in the members of Pending[0] (by_group).
	PendingCursor string `json:"pending_cursor,omitempty"`
	Done          bool   `json:"done,omitempty"`
}

// done reports whether the directory's walk has ended.
func (st *dirState) done() bool { return st.Users.Done && st.Groups.Done }

// newDirState starts the walk of d, one of parallel directories walked at
// once by a worker.
func newDirState(d *workos.Directory, cfg Config, parallel int) dirState {
	st := dirState{ID: d.ID}
	st.Manifest = snapshot.DirectoryManifest{ID: d.ID, OrganizationID: d.OrganizationID, Name: d.Name, Status: snapshot.DirectoryOK}
	chooseRoute(&st.Manifest, d, cfg, parallel)
	return st
}

// dirWalk walks one directory in one chunk.
type dirWalk struct {
	c  *chunk
	d  *workos.Directory
	st *dirState
	// ctx is for the writers, fctx for the WorkOS requests: fctx ends at
	// the chunk's stop time, ctx only when the chunk fails.
	ctx, fctx context.Context
	// stop is closed when the chunk must end: the walk stops at the next
	// page boundary.
	stop <-chan struct{}

	users, groups, memberships  atomic.Int64
	skippedUsers, skippedGroups atomic.Int64
	rejected                    atomic.Int64
	sampleOnce                  sync.Once
	pages                       atomic.Int64
}

func (w *dirWalk) stopped() bool {
	select {
	case <-w.stop:
		return true
	default:
		return false
	}
}

// walk advances both lanes of the directory until they are done or the chunk
// stops, then folds the chunk's counts into the directory's state.
func (w *dirWalk) walk() error {
	start := time.Now()
	defer func() {
		m := &w.st.Manifest
		m.DurationMillis += time.Since(start).Milliseconds()
		m.Requests += w.pages.Load()
		m.RowsRejected += w.rejected.Load()
		m.Users += w.users.Load()
		m.Groups += w.groups.Load()
		m.Memberships += w.memberships.Load()
		w.st.SkippedUsers += w.skippedUsers.Load()
		w.st.SkippedGroups += w.skippedGroups.Load()
		m.Error = w.warnings()
		if !w.st.done() {
			return
		}
		if n := m.RowsRejected; n > 0 {
			w.c.log.Warn("rows rejected: malformed id or another directory's row",
				"directory_id", w.d.ID, "rows_rejected", n, "sample_id", strconv.Quote(w.st.SampleID), "reason", w.st.SampleReason)
		}
		w.c.log.Info("directory exported",
			"directory_id", w.d.ID, "organization_id", w.d.OrganizationID,
			"users", m.Users, "groups", m.Groups, "memberships", m.Memberships,
			"membership_route", m.MembershipRoute, "requests", m.Requests)
	}()
	g, gctx := errgroup.WithContext(w.fctx)
	if !w.st.Users.Done {
		g.Go(func() error { return w.advance(gctx, &w.st.Users, w.walkUsers) })
	}
	if !w.st.Groups.Done {
		g.Go(func() error { return w.advance(gctx, &w.st.Groups, w.walkGroups) })
	}
	err := g.Wait()
	if err != nil && errors.Is(context.Cause(w.fctx), errStop) && w.ctx.Err() == nil {
		return nil // stopped mid-fetch: each lane's state is that of its last page done
	}
	if err == nil || !workos.IsNotFound(err) || w.ctx.Err() != nil {
		return err
	}
	// Was the directory itself deleted while we walked it?
	_, gerr := w.c.ex.Client.GetDirectory(w.fctx, w.d.ID)
	if gerr != nil && !workos.IsNotFound(gerr) {
		if errors.Is(context.Cause(w.fctx), errStop) && w.ctx.Err() == nil {
			return nil // stopped while confirming: the next chunk asks again
		}
		return fmt.Errorf("confirm that directory %s was deleted after a 404: %w", w.d.ID, gerr)
	}
	if gerr != nil {
		w.st.Users, w.st.Groups = lane{Done: true}, lane{Done: true}
		w.st.Manifest.Status = snapshot.DirectoryDeleted
		w.c.log.Warn("directory deleted during export", "directory_id", w.d.ID)
		return nil
	}
	return err
}

// advance walks one lane: its pending memberships first, then its list from
// the cursor, until the list and its pending memberships are done or the
// chunk stops.
func (w *dirWalk) advance(ctx context.Context, l *lane, list func(context.Context, *lane) error) error {
	for !l.Done {
		if err := w.drainPending(ctx, l); err != nil {
			return err
		}
		if len(l.Pending) > 0 || w.stopped() {
			return nil
		}
		if l.Last {
			*l = lane{Done: true}
			continue
		}
		if err := list(ctx, l); err != nil {
			return err
		}
		if w.stopped() && !l.Last {
			return nil
		}
	}
	return nil
}

// page records a fetched page's cursor: the next one, or the end of the list.
func (w *dirWalk) page(l *lane, next string, ok bool) {
	w.pages.Add(1)
	if ok {
		l.Cursor = next
	} else {
		l.Cursor, l.Last = "", true
	}
}

// walkUsers pages through the users from the lane's cursor until the list
// ends, the chunk stops, or a page leaves memberships pending (by_user),
// which are fetched before the next page.
func (w *dirWalk) walkUsers(ctx context.Context, l *lane) error {
	cfg := w.c.plan
	opts := &workos.ListDirectoryUsersOptions{ListOptions: workos.ListOptions{Order: cfg.Order, After: l.Cursor}, Directory: w.d.ID}
	route := w.st.Manifest.MembershipRoute
	at := cfg.SnapshotTime
	for page, err := range w.c.ex.Client.DirectoryUserPages(ctx, opts) {
		if err != nil {
			return fmt.Errorf("list users: %w", err)
		}
		rows := make([]schema.DirectoryUser, 0, len(page.Data))
		var ms []schema.DirectoryGroupMembership
		var ids []string
		for i := range page.Data {
			u := &page.Data[i]
			if !w.accept(u.ID, u.DirectoryID, workos.CheckDirectoryUserID) {
				continue
			}
			rows = append(rows, schema.FromDirectoryUser(u, at))
			switch route {
			case snapshot.RouteByUser:
				ids = append(ids, u.ID)
			case snapshot.RouteLegacy:
				for _, g := range u.Groups {
					if w.accept(g.ID, g.DirectoryID, workos.CheckDirectoryGroupID) {
						ms = append(ms, schema.NewMembership(w.d, g.ID, u.ID, at))
					}
				}
			}
		}
		if err := w.c.users.send(w.ctx, rows); err != nil {
			return err
		}
		w.users.Add(int64(len(rows)))
		if err := w.sendMemberships(ms); err != nil {
			return err
		}
		next, ok := page.NextAfter()
		w.page(l, next, ok)
		l.Pending = ids
		if err := w.drainPending(ctx, l); err != nil {
			return err
		}
		if len(l.Pending) > 0 || w.stopped() {
			return nil
		}
	}
	return nil
}

// walkGroups pages through the groups from the lane's cursor; on the
// by_group route each page's groups become pending and their members are
// walked before the next page.
func (w *dirWalk) walkGroups(ctx context.Context, l *lane) error {
	cfg := w.c.plan
	opts := &workos.ListDirectoryGroupsOptions{ListOptions: workos.ListOptions{Order: cfg.Order, After: l.Cursor}, Directory: w.d.ID}
	byGroup := w.st.Manifest.MembershipRoute == snapshot.RouteByGroup
	for page, err := range w.c.ex.Client.DirectoryGroupPages(ctx, opts) {
		if err != nil {
			return fmt.Errorf("list groups: %w", err)
		}
		rows := make([]schema.DirectoryGroup, 0, len(page.Data))
		var ids []string
		for i := range page.Data {
			g := &page.Data[i]
			if !w.accept(g.ID, g.DirectoryID, workos.CheckDirectoryGroupID) {
				continue
			}
			rows = append(rows, schema.FromDirectoryGroup(g, cfg.SnapshotTime))
			if byGroup {
				ids = append(ids, g.ID)
			}
		}
		if err := w.c.groups.send(w.ctx, rows); err != nil {
			return err
		}
		w.groups.Add(int64(len(rows)))
		next, ok := page.NextAfter()
		w.page(l, next, ok)
		l.Pending, l.PendingCursor = ids, ""
		if err := w.drainPending(ctx, l); err != nil {
			return err
		}
		if len(l.Pending) > 0 || w.stopped() {
			return nil
		}
	}
	return nil
}

// drainPending fetches the lane's pending memberships until none are left or
// the chunk stops.
func (w *dirWalk) drainPending(ctx context.Context, l *lane) error {
	for len(l.Pending) > 0 && !w.stopped() {
		var err error
		if w.st.Manifest.MembershipRoute == snapshot.RouteByUser {
			err = w.userGroupsBatch(ctx, l)
		} else {
			err = w.groupMembers(ctx, l)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// groupMembers walks GET /directory_users?directory=D&group=G for the first
// pending group from its cursor, a page at a time, stopping with the chunk.
// A group deleted since the groups walk saw it is counted and skipped.
func (w *dirWalk) groupMembers(ctx context.Context, l *lane) error {
	groupID := l.Pending[0]
	opts := &workos.ListDirectoryUsersOptions{ListOptions: workos.ListOptions{Order: w.c.plan.Order, After: l.PendingCursor}, Directory: w.d.ID, Group: groupID}
	c := w.c.ex.Client
	for page, err := range c.DirectoryUserPages(ctx, opts) {
		if err != nil {
			if workos.IsNotFound(err) {
				gone, cerr := w.ownerGone(ctx, func(ctx context.Context) error { _, err := c.GetDirectoryGroup(ctx, groupID); return err })
				if cerr != nil {
					return fmt.Errorf("list members of group %s: %w", groupID, cerr)
				}
				if gone {
					w.skippedGroups.Add(1) // the group was deleted mid-export
					l.Pending, l.PendingCursor = l.Pending[1:], ""
					return nil
				}
			}
			return fmt.Errorf("list members of group %s: %w", groupID, err)
		}
		w.pages.Add(1)
		ms := make([]schema.DirectoryGroupMembership, 0, len(page.Data))
		for i := range page.Data {
			u := &page.Data[i]
			if w.accept(u.ID, u.DirectoryID, workos.CheckDirectoryUserID) {
				ms = append(ms, schema.NewMembership(w.d, groupID, u.ID, w.c.plan.SnapshotTime))
			}
		}
		if err := w.sendMemberships(ms); err != nil {
			return err
		}
		next, ok := page.NextAfter()
		if !ok {
			break
		}
		l.PendingCursor = next
		if w.stopped() {
			return nil
		}
	}
	l.Pending, l.PendingCursor = l.Pending[1:], ""
	return nil
}

// userGroupsBatch walks GET /directory_groups?user=U for up to
// UserRouteParallelism pending users at once, each to its end, then writes
// their memberships and drops them from Pending. A user deleted since the
// users walk saw it is counted and skipped.
func (w *dirWalk) userGroupsBatch(ctx context.Context, l *lane) error {
	n := min(len(l.Pending), w.c.cfg.UserRouteParallelism)
	batch := l.Pending[:n]
	out := make([][]schema.DirectoryGroupMembership, n)
	var skipped, rejected atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	for i, uid := range batch {
		g.Go(func() error {
			ms, gone, err := w.userGroups(gctx, uid, &rejected)
			if gone {
				skipped.Add(1)
			}
			out[i] = ms
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	var ms []schema.DirectoryGroupMembership
	for _, o := range out {
		ms = append(ms, o...)
	}
	if err := w.sendMemberships(ms); err != nil {
		return err
	}
	w.skippedUsers.Add(skipped.Load())
	w.rejected.Add(rejected.Load())
	l.Pending = l.Pending[n:]
	return nil
}

// userGroups walks the groups of user uid to their end; the rows it refuses
// are counted into rejected.
func (w *dirWalk) userGroups(ctx context.Context, uid string, rejected *atomic.Int64) (ms []schema.DirectoryGroupMembership, gone bool, err error) {
	c := w.c.ex.Client
	opts := &workos.ListDirectoryGroupsOptions{ListOptions: workos.ListOptions{Order: w.c.plan.Order}, User: uid}
	for page, err := range c.DirectoryGroupPages(ctx, opts) {
		if err != nil {
			if workos.IsNotFound(err) {
				gone, cerr := w.ownerGone(ctx, func(ctx context.Context) error { _, err := c.GetDirectoryUser(ctx, uid); return err })
				if cerr != nil {
					return nil, false, fmt.Errorf("list groups of user %s: %w", uid, cerr)
				}
				if gone {
					return nil, true, nil // deleted after the users walk saw it
				}
			}
			return nil, false, fmt.Errorf("list groups of user %s: %w", uid, err)
		}
		w.pages.Add(1)
		for i := range page.Data {
			g := &page.Data[i]
			if w.acceptInto(rejected, g.ID, g.DirectoryID, workos.CheckDirectoryGroupID) {
				ms = append(ms, schema.NewMembership(w.d, g.ID, uid, w.c.plan.SnapshotTime))
			}
		}
	}
	return ms, false, nil
}

func (w *dirWalk) sendMemberships(ms []schema.DirectoryGroupMembership) error {
	if len(ms) == 0 {
		return nil
	}
	if err := w.c.memberships.send(w.ctx, ms); err != nil {
		return err
	}
	w.memberships.Add(int64(len(ms)))
	return nil
}

// warnings describes what the walk skipped, for the manifest.
func (w *dirWalk) warnings() string {
	var skipped []string
	if w.st.Manifest.Status == snapshot.DirectoryDeleted {
		skipped = append(skipped, "deleted at WorkOS during the export (404); rows fetched before the deletion are kept")
	}
	if n := w.st.SkippedGroups; n > 0 {
		skipped = append(skipped, fmt.Sprintf("%d groups were deleted during the export; their memberships are missing", n))
	}
	if n := w.st.SkippedUsers; n > 0 {
		skipped = append(skipped, fmt.Sprintf("%d users were deleted during the export; their memberships are missing", n))
	}
	if n := w.st.Manifest.RowsRejected; n > 0 {
		skipped = append(skipped, fmt.Sprintf("%d rows were skipped: a malformed id, or a directory_id of another directory (e.g. %s)", n, strconv.Quote(w.st.SampleID)))
	}
	return strings.Join(skipped, "; ")
}

// accept reports whether a row may be written: its id passes check (the
// prefix of its kind, then a safe character set) and its directory_id is the
// directory being walked. Every route applies it to every row, so a hostile or
// broken answer is skipped the same way everywhere; a rejected row is counted
// and the first one kept as the sample of the directory's warning.
func (w *dirWalk) accept(id, directoryID string, check func(string) error) bool {
	return w.acceptInto(&w.rejected, id, directoryID, check)
}

// acceptInto is accept counting a rejected row into rejected: a by_user
// batch counts its own, and adds them only when its memberships are written.
func (w *dirWalk) acceptInto(rejected *atomic.Int64, id, directoryID string, check func(string) error) bool {
	err := check(id)
	if err == nil && directoryID != w.d.ID {
		err = fmt.Errorf("row %s has directory_id %s, not the directory being exported", strconv.Quote(id), strconv.Quote(directoryID))
	}
	if err == nil {
		return true
	}
	rejected.Add(1)
	// The sample goes to the log and the manifest: a server that echoes the
	// API key into an id must not get it there.
	c := w.c.ex.Client
	w.sampleOnce.Do(func() {
		if w.st.SampleID == "" {
			w.st.SampleID, w.st.SampleReason = c.Redact(id), c.Redact(err.Error())
		}
	})
	return false
}

// ownerGone settles a 404 on a group's members or a user's groups: it
// reports whether the owner itself (get returns its 404) was deleted while
// the directory still exists. When the whole directory answers 404 it
// reports false, so the 404 goes up to walk, which records the directory as
// deleted. A failure of either check is returned (retryable), never taken
// for a deletion.
func (w *dirWalk) ownerGone(ctx context.Context, get func(context.Context) error) (bool, error) {
	_, err := w.c.ex.Client.GetDirectory(ctx, w.d.ID)
	switch {
	case workos.IsNotFound(err):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("confirm a 404: %w", err)
	}
	switch err := get(ctx); {
	case workos.IsNotFound(err):
		return true, nil
	case err != nil:
		return false, fmt.Errorf("confirm a 404: %w", err)
	}
	return false, nil
}
