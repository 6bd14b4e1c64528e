package workostest

import "slices"

// Changes made by Server.Advance are kept as an overlay on the generated
// dataset, keyed by object index, so memory grows with the number of changes
// and not with the number of users. A directory without changes has no
// overlay (dirData.ov is nil) and is served exactly as generated.
//
// Created users and groups get the indices after the generated ones (user
// d.users+k is the k-th user Advance created), so they are listed after the
// generated objects in creation order and their IDs decode to a position like
// any other. Deleted objects keep their index (their IDs stay valid cursors)
// and are skipped by every list. Memberships are the arithmetic ones of the
// membership table, minus the removed pairs, plus the added pairs.

// pair is a membership: user u in group g of one directory.
type pair struct{ u, g int }

// userOv is a changed user: the values of its mutable fields now.
type userOv struct {
	updated   int64
	state     string
	job       int
	customH   uint64
	role      int
	rolesMode uint8
	dispLast  int
}

func newUserOv(u *userRec) *userOv {
	return &userOv{updated: u.updated, state: u.state, job: u.job, customH: u.customH,
		role: u.role, rolesMode: u.rolesMode, dispLast: u.dispLast}
}

func (o *userOv) apply(u *userRec) {
	u.updated, u.state, u.job, u.customH = o.updated, o.state, o.job, o.customH
	u.role, u.rolesMode, u.dispLast = o.role, o.rolesMode, o.dispLast
}

// groupOv is a changed group.
type groupOv struct {
	updated int64
	name    string // empty: the generated name
}

func (o *groupOv) apply(g *groupRec) {
	g.updated = o.updated
	if o.name != "" {
		g.nameOv = o.name
	}
}

// dirOverlay is what Advance changed in one directory.
type dirOverlay struct {
	extraUsers  []int64 // created_at of user d.users+k
	extraGroups []int64 // created_at of group d.groups+k
	users       map[int]*userOv
	groups      map[int]*groupOv
	delUsers    map[int]bool
	delGroups   map[int]bool

	// added are memberships that are not in the membership table; removed
	// are pairs of the table that no longer hold. The two are disjoint.
	added, removed map[pair]bool
	addedByUser    map[int][]int // user -> added groups, ascending
	addedByGroup   map[int][]int // group -> added users, ascending
	removedByGroup map[int]int   // group -> number of removed pairs

	// activeDelta and inactiveDelta adjust the metadata counts.
	activeDelta, inactiveDelta int64
}

func newDirOverlay() *dirOverlay {
	return &dirOverlay{
		users: map[int]*userOv{}, groups: map[int]*groupOv{},
		delUsers: map[int]bool{}, delGroups: map[int]bool{},
		added: map[pair]bool{}, removed: map[pair]bool{},
		addedByUser: map[int][]int{}, addedByGroup: map[int][]int{}, removedByGroup: map[int]int{},
	}
}

// overlay returns the directory's overlay, creating it. Call with ds.mu
// held for writing.
func (d *dirData) overlay() *dirOverlay {
	if d.ov == nil {
		d.ov = newDirOverlay()
	}
	return d.ov
}

// nUsers is the number of user indices, deleted ones included.
func (d *dirData) nUsers() int {
	if d.ov == nil {
		return d.users
	}
	return d.users + len(d.ov.extraUsers)
}

// nGroups is the number of group indices, deleted ones included.
func (d *dirData) nGroups() int {
	if d.ov == nil {
		return d.groups
	}
	return d.groups + len(d.ov.extraGroups)
}

func (d *dirData) liveUsers() int {
	if d.ov == nil {
		return d.users
	}
	return d.nUsers() - len(d.ov.delUsers)
}

func (d *dirData) liveGroups() int {
	if d.ov == nil {
		return d.groups
	}
	return d.nGroups() - len(d.ov.delGroups)
}

func (d *dirData) userDeleted(i int) bool  { return d.ov != nil && d.ov.delUsers[i] }
func (d *dirData) groupDeleted(j int) bool { return d.ov != nil && d.ov.delGroups[j] }

// userGroups returns the groups of user i, ascending, in dst's storage.
func (ds *dataset) userGroups(d *dirData, i int, dst []int) []int {
	dst = dst[:0]
	if i < d.users {
		dst = d.membership(ds).groupsOf(i, dst)
	}
	ov := d.ov
	if ov == nil {
		if dst == nil {
			dst = []int{}
		}
		return dst
	}
	out := dst[:0]
	for _, j := range dst {
		if !ov.removed[pair{i, j}] && !ov.delGroups[j] {
			out = append(out, j)
		}
	}
	for _, j := range ov.addedByUser[i] {
		if !ov.delGroups[j] {
			out = append(out, j)
		}
	}
	slices.Sort(out)
	if out == nil {
		out = []int{}
	}
	return out
}

// isMember reports whether user i is in group j.
func (ds *dataset) isMember(d *dirData, i, j int) bool {
	var buf [8]int
	return slices.Contains(ds.userGroups(d, i, buf[:0]), j)
}

// memberCount returns the number of members of live group j.
func (ds *dataset) memberCount(d *dirData, j int) int {
	n := 0
	if j < d.groups {
		n = d.membership(ds).memberCount(j, d.users)
	}
	if ov := d.ov; ov != nil {
		n += len(ov.addedByGroup[j]) - ov.removedByGroup[j]
	}
	return n
}

func insertSorted(s []int, v int) []int {
	k, found := slices.BinarySearch(s, v)
	if found {
		return s
	}
	return slices.Insert(s, k, v)
}

func removeSorted(s []int, v int) []int {
	k, found := slices.BinarySearch(s, v)
	if !found {
		return s
	}
	return slices.Delete(s, k, k+1)
}

// addMember puts user i in group j; the caller checked it is not a member.
func (ov *dirOverlay) addMember(i, j int) {
	p := pair{i, j}
	if ov.removed[p] { // a pair of the table again
		delete(ov.removed, p)
		if ov.removedByGroup[j]--; ov.removedByGroup[j] == 0 {
			delete(ov.removedByGroup, j)
		}
		return
	}
	ov.added[p] = true
	ov.addedByUser[i] = insertSorted(ov.addedByUser[i], j)
	ov.addedByGroup[j] = insertSorted(ov.addedByGroup[j], i)
}

// removeMember takes user i out of group j; the caller checked it is a
// member.
func (ov *dirOverlay) removeMember(i, j int) {
	p := pair{i, j}
	if ov.added[p] {
		ov.dropAdded(p)
		return
	}
	ov.removed[p] = true
	ov.removedByGroup[j]++
}

func (ov *dirOverlay) dropAdded(p pair) {
	delete(ov.added, p)
	if s := removeSorted(ov.addedByUser[p.u], p.g); len(s) > 0 {
		ov.addedByUser[p.u] = s
	} else {
		delete(ov.addedByUser, p.u)
	}
	if s := removeSorted(ov.addedByGroup[p.g], p.u); len(s) > 0 {
		ov.addedByGroup[p.g] = s
	} else {
		delete(ov.addedByGroup, p.g)
	}
}

// ---- sequences over the changed dataset ----

// filterSeq is s without the keys skip reports.
type filterSeq struct {
	s    seq
	skip func(int64) bool
}

func (f filterSeq) next(k int64) (int64, bool) {
	for {
		n, ok := f.s.next(k)
		if !ok || !f.skip(n) {
			return n, ok
		}
		k = n
	}
}

func (f filterSeq) prev(k int64) (int64, bool) {
	for {
		n, ok := f.s.prev(k)
		if !ok || !f.skip(n) {
			return n, ok
		}
		k = n
	}
}

// unionSeq is the union of two disjoint sequences.
type unionSeq struct{ a, b seq }

func (u unionSeq) next(k int64) (int64, bool) {
	a, aok := u.a.next(k)
	b, bok := u.b.next(k)
	switch {
	case aok && bok:
		return min(a, b), true
	case aok:
		return a, true
	}
	return b, bok
}

func (u unionSeq) prev(k int64) (int64, bool) {
	a, aok := u.a.prev(k)
	b, bok := u.b.prev(k)
	switch {
	case aok && bok:
		return max(a, b), true
	case aok:
		return a, true
	}
	return b, bok
}

// usersSeq is the live users of directory d.
func (ds *dataset) usersSeq(d *dirData) seq {
	r := rangeSeq{d.idx, d.nUsers()}
	if d.ov == nil || len(d.ov.delUsers) == 0 {
		return r
	}
	del := d.ov.delUsers
	return filterSeq{r, func(k int64) bool { return del[int(k&0xFFFFFFFF)] }}
}

// groupsSeq is the live groups of directory d.
func (ds *dataset) groupsSeq(d *dirData) seq {
	r := rangeSeq{d.idx, d.nGroups()}
	if d.ov == nil || len(d.ov.delGroups) == 0 {
		return r
	}
	del := d.ov.delGroups
	return filterSeq{r, func(k int64) bool { return del[int(k&0xFFFFFFFF)] }}
}

// membersSeq is the members of live group j of directory d.
func (ds *dataset) membersSeq(d *dirData, j int) seq {
	var base seq = listSeq(nil)
	if j < d.groups {
		base = memberSeq{d: d.idx, j: j, n: d.users, m: d.membership(ds)}
	}
	ov := d.ov
	if ov == nil {
		return base
	}
	// A deleted user's pairs of the table are all removed pairs.
	if ov.removedByGroup[j] > 0 {
		removed := ov.removed
		base = filterSeq{base, func(k int64) bool { return removed[pair{int(k & 0xFFFFFFFF), j}] }}
	}
	if add := ov.addedByGroup[j]; len(add) > 0 {
		keys := make(listSeq, len(add))
		for n, i := range add {
			keys[n] = key(d.idx, i)
		}
		return unionSeq{base, keys}
	}
	return base
}
