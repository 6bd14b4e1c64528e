package workostest

import (
	"iter"

	"github.com/dsync-export/dsync-export/pkg/workos"
)

// The accessors expose the dataset for exact comparisons in tests. They build
// the same records the HTTP API renders, on demand, so iterating a large
// directory holds one object at a time.

// Directories returns the directories that are not deleted, in creation order.
func (s *Server) Directories() []workos.Directory {
	var out []workos.Directory
	for _, d := range s.ds.dirs {
		if !d.deleted.Load() {
			out = append(out, s.ds.directoryModel(d))
		}
	}
	return out
}

// liveDir returns the directory with the given ID unless it is unknown or
// deleted.
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
		d := s.liveDir(directoryID)
		if d == nil {
			return
		}
		for i := range d.users {
			u := s.ds.user(d, i)
			if !yield(s.ds.userModel(&u)) {
				return
			}
		}
	}
}

// Groups yields the groups of a directory in creation order. It yields
// nothing for an unknown or deleted directory.
func (s *Server) Groups(directoryID string) iter.Seq[workos.DirectoryGroup] {
	return func(yield func(workos.DirectoryGroup) bool) {
		d := s.liveDir(directoryID)
		if d == nil {
			return
		}
		for j := range d.groups {
			g := s.ds.group(d, j)
			if !yield(s.ds.groupModel(&g, true)) {
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
		d := s.liveDir(directoryID)
		if d == nil {
			return
		}
		m := d.membership(s.ds)
		var groups []int
		for i := range d.users {
			groups = m.groupsOf(i, groups)
			if len(groups) == 0 {
				continue
			}
			uid := s.ds.codec.id(kindUser, d.userCreated(i), uint32(d.idx), uint32(i))
			for _, j := range groups {
				gid := s.ds.codec.id(kindGroup, d.groupCreated(j), uint32(d.idx), uint32(j))
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
	d := s.liveDir(directoryID)
	if d == nil {
		return 0, 0, 0
	}
	m := d.membership(s.ds)
	for j := range d.groups {
		memberships += m.memberCount(j, d.users)
	}
	return d.users, d.groups, memberships
}
