package workostest

import (
	"iter"

	"github.com/dsync-export/dsync-export/pkg/workos"
)

// The accessors expose the dataset for exact comparisons in tests. They build
// the same records the HTTP API renders, on demand, so iterating a large
// directory holds one object at a time. They reflect the current state, with
// every change of Advance and DeleteDirectory applied. The iterators read
// the state one item at a time (holding no lock while the caller's loop body
// runs), so an Advance made during an iteration shows in the items that
// follow it; call Advance between iterations for a consistent picture.

// Directories returns the directories that are not deleted, in creation order.
func (s *Server) Directories() []workos.Directory {
	s.ds.mu.RLock()
	defer s.ds.mu.RUnlock()
	var out []workos.Directory
	for _, d := range s.ds.dirs {
		if !d.deleted.Load() {
			out = append(out, s.ds.directoryModel(d))
		}
	}
	return out
}

// liveDir returns the directory with the given ID unless it is unknown or
// deleted. Call with ds.mu held.
func (s *Server) liveDir(directoryID string) *dirData {
	d := s.ds.lookupDir(directoryID)
	if d == nil || d.deleted.Load() {
		return nil
	}
	return d
}

// Users yields the users of a directory in creation order, as the API serves
// them. It yields nothing for an unknown or deleted directory.
func (s *Server) Users(directoryID string) iter.Seq[workos.DirectoryUser] {
	return func(yield func(workos.DirectoryUser) bool) {
		for i := 0; ; i++ {
			s.ds.mu.RLock()
			d := s.liveDir(directoryID)
			for d != nil && i < d.nUsers() && d.userDeleted(i) {
				i++
			}
			if d == nil || i >= d.nUsers() {
				s.ds.mu.RUnlock()
				return
			}
			u := s.ds.user(d, i)
			m := s.ds.userModel(&u)
			s.ds.mu.RUnlock()
			if !yield(m) {
				return
			}
		}
	}
}

// Groups yields the groups of a directory in creation order. It yields
// nothing for an unknown or deleted directory.
func (s *Server) Groups(directoryID string) iter.Seq[workos.DirectoryGroup] {
	return func(yield func(workos.DirectoryGroup) bool) {
		for j := 0; ; j++ {
			s.ds.mu.RLock()
			d := s.liveDir(directoryID)
			for d != nil && j < d.nGroups() && d.groupDeleted(j) {
				j++
			}
			if d == nil || j >= d.nGroups() {
				s.ds.mu.RUnlock()
				return
			}
			g := s.ds.group(d, j)
			m := s.ds.groupModel(&g, true)
			s.ds.mu.RUnlock()
			if !yield(m) {
				return
			}
		}
	}
}

// Memberships yields the (group ID, user ID) pairs of a directory, ordered by
// user creation and then group creation. It yields nothing for an unknown or
// deleted directory.
func (s *Server) Memberships(directoryID string) iter.Seq2[string, string] {
	return func(yield func(string, string) bool) {
		var groups []int
		var gids []string
		for i := 0; ; i++ {
			s.ds.mu.RLock()
			d := s.liveDir(directoryID)
			if d == nil || i >= d.nUsers() {
				s.ds.mu.RUnlock()
				return
			}
			gids = gids[:0]
			var uid string
			if !d.userDeleted(i) {
				groups = s.ds.userGroups(d, i, groups)
				if len(groups) > 0 {
					uid = s.ds.codec.id(kindUser, d.userCreated(i), uint32(d.idx), uint32(i))
				}
				for _, j := range groups {
					gids = append(gids, s.ds.codec.id(kindGroup, d.groupCreated(j), uint32(d.idx), uint32(j)))
				}
			}
			s.ds.mu.RUnlock()
			for _, gid := range gids {
				if !yield(gid, uid) {
					return
				}
			}
		}
	}
}

// Counts returns the numbers of users, groups and memberships of a directory,
// without iterating its users. All are zero for an unknown or deleted
// directory.
func (s *Server) Counts(directoryID string) (users, groups, memberships int) {
	s.ds.mu.RLock()
	defer s.ds.mu.RUnlock()
	d := s.liveDir(directoryID)
	if d == nil {
		return 0, 0, 0
	}
	for j := range d.nGroups() {
		if !d.groupDeleted(j) {
			memberships += s.ds.memberCount(d, j)
		}
	}
	return d.liveUsers(), d.liveGroups(), memberships
}
