package workostest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/dsync-export/dsync-export/pkg/workos"
)

// The fake has a simulated clock. Server.Advance moves it forward and changes
// the dataset on the way, as a directory provider would: users are updated,
// created and deleted, group memberships change, groups come and go, and now
// and then a directory is deleted or a new one activated. Every change is
// applied to what the list endpoints and the accessors serve, and recorded as
// the event WorkOS would emit, served by GET /events.

// DefaultDirectoryRate is the default AdvanceOptions.DirectoryRate: one
// directory activated and one deleted per 60 simulated days. As the
// remainder carried starts at zero, the first of each comes after 30 days.
const DefaultDirectoryRate = 1.0 / 60

// maxTimeMs is the last millisecond of year 9999: timestamps are rendered
// with four-digit years.
const maxTimeMs = 253402300799999

// AdvanceOptions tune Server.AdvanceWith.
type AdvanceOptions struct {
	// Churn is the fraction of each live directory's users changed per
	// simulated day: 0.01 changes about 1% of the users a day. A directory
	// of n users and g groups gets Churn × n × days user changes and Churn
	// × g × days group changes, each rounded to the nearest integer with
	// the remainder carried over to the next Advance, so small directories
	// change too. With Churn 0 nothing changes (directories included): the
	// clock just moves.
	Churn float64
	// DirectoryRate is the expected number of directories activated per
	// simulated day across the account, and separately of directories
	// deleted (rounded with a carried remainder, like Churn). Zero means
	// DefaultDirectoryRate; a negative rate turns directory activations and
	// deletions off.
	DirectoryRate float64
}

// AdvanceResult reports what an Advance did.
type AdvanceResult struct {
	// From and To are the clock before and after.
	From, To time.Time
	// Events is the number of events emitted during the call, one per
	// change (a DeleteDirectory made meanwhile counts too).
	Events int
	// ByType counts the events by type (workos.EventUserUpdated, …).
	ByType map[string]int
}

type weighted struct {
	kind   opKind
	weight int // percent
}

// userMix is the mix of the churn × users changes of a directory: mostly
// user updates.
var userMix = []weighted{
	{opUserUpdate, 70},
	{opUserCreate, 9},
	{opUserDelete, 7},
	{opMemberAdd, 8},
	{opMemberRemove, 6},
}

// groupMix is the mix of the churn × groups changes of a directory.
var groupMix = []weighted{
	{opGroupUpdate, 60},
	{opGroupCreate, 25},
	{opGroupDelete, 15},
}

type opKind uint8

const (
	opUserUpdate opKind = iota
	opUserCreate
	opUserDelete
	opMemberAdd
	opMemberRemove
	opGroupCreate
	opGroupUpdate
	opGroupDelete
	opDirActivate
	opDirDelete
)

// op is a planned change: at t, of kind, in directory d (nil for directory
// activations and deletions). It takes w milliseconds: the objects an op
// creates get distinct created_at times.
type op struct {
	t      int64
	w      int64
	kind   opKind
	d      *dirData
	users  int // opDirActivate: initial users
	groups int // opDirActivate: initial groups
}

// eventRec is one emitted event; data is its rendered payload.
type eventRec struct {
	id      string
	typ     string
	created int64
	org     int
	data    []byte
	bad     *HostileChange // data is undecodable (Hostile.Undecodable)
}

// timeline is the clock and the event log. Everything but advMu is guarded by
// dataset.mu.
type timeline struct {
	advMu sync.Mutex // serialises Advance calls

	now        int64 // Unix ms
	steps      uint64
	carry      [][2]float64 // per directory: user and group changes due, not yet made
	actCarry   float64
	delCarry   float64
	events     []eventRec
	byType     map[string][]int // event positions per type, ascending
	buf, buf2  []byte
	prevFields []jsonField

	hostile Hostile
	mute    bool            // the change being made emits no events (Hostile.Silent)
	silent  []HostileChange // the changes made without events
}

// newest bounds the generated dataset's timestamps from above, analytically,
// so that it costs nothing for large directories: users are updated up to 90
// days after their creation, groups up to 60.
func (ds *dataset) newest() int64 {
	newest := ds.base
	for _, o := range ds.orgs {
		newest = max(newest, o.created)
	}
	for _, d := range ds.dirs {
		newest = max(newest, d.updated,
			d.created+1000+int64(d.users)*d.userStep+90*msPerDay,
			d.created+500+int64(d.groups)*d.groupStep+60*msPerDay)
	}
	return newest
}

// defaultNow returns the default start of the clock: ds.newest() rounded up
// to the next UTC midnight, plus 6 hours.
func defaultNow(ds *dataset) int64 {
	return (ds.newest()/msPerDay+1)*msPerDay + 6*msPerHour
}

// Now returns the fake's simulated time: Config.Now (or its default) plus
// every Advance since.
func (s *Server) Now() time.Time {
	s.ds.mu.RLock()
	defer s.ds.mu.RUnlock()
	return time.UnixMilli(s.tl.now).UTC()
}

// Advance moves the clock forward by d (to the millisecond), changing a
// fraction churn of each live directory's users per simulated day, with
// directory activations and deletions at DefaultDirectoryRate. It is
// AdvanceWith(d, AdvanceOptions{Churn: churn}); see there.
func (s *Server) Advance(d time.Duration, churn float64) AdvanceResult {
	return s.AdvanceWith(d, AdvanceOptions{Churn: churn})
}

// AdvanceDays is Advance by days × 24 hours.
func (s *Server) AdvanceDays(days int, churn float64) AdvanceResult {
	return s.Advance(time.Duration(days)*24*time.Hour, churn)
}

// AdvanceWith moves the clock forward by d (to the millisecond) and applies
// changes at times spread over (old now, new now], each recorded as the event
// WorkOS emits for it.
//
// Per directory, the user changes are, in percent: 70 user updates (state,
// job title, custom attributes, role or displayed last name), 9 users
// created (each added to 0–2 groups, with dsync.group.user_added events), 7
// users deleted, 8 memberships added and 6 removed; the group changes: 60
// groups renamed, 25 created (with 0–3 members) and 15 deleted (the smallest
// of three random groups). Directories are activated (with 5–30
// users and 1–4 groups, created by events right after dsync.activated) and
// deleted at o.DirectoryRate. Deleting a user or group emits only
// dsync.user.deleted or dsync.group.deleted, and deleting a directory only
// dsync.deleted: their memberships, users and groups go without events of
// their own, as consumers are expected to cascade. Objects created in one
// directory get distinct created_at times; at most one object per simulated
// millisecond is created, so a tiny d with a huge churn makes fewer changes.
//
// The changes are a deterministic function of the seed, the clock and the
// calls made: the same Config and the same sequence of Advance and
// DeleteDirectory calls give the same events. The clock moves in steps of at
// most a day, each applied at once: requests served meanwhile see the state
// between two steps. Concurrent Advance calls are serialised.
//
// AdvanceWith panics if d is negative, the clock would pass year 9999, or
// o's fields are not finite numbers (Churn must not be negative).
func (s *Server) AdvanceWith(d time.Duration, o AdvanceOptions) AdvanceResult {
	if d < 0 {
		panic(fmt.Sprintf("workostest: Advance by %v: the clock only moves forward", d))
	}
	if !(o.Churn >= 0) || math.IsInf(o.Churn, 0) {
		panic(fmt.Sprintf("workostest: Advance with churn %v: want a fraction of users per day, 0 or more", o.Churn))
	}
	if math.IsNaN(o.DirectoryRate) || math.IsInf(o.DirectoryRate, 0) {
		panic(fmt.Sprintf("workostest: Advance with DirectoryRate %v: want a finite number", o.DirectoryRate))
	}
	s.tl.advMu.Lock()
	defer s.tl.advMu.Unlock()

	s.ds.mu.RLock()
	from, first := s.tl.now, len(s.tl.events)
	s.ds.mu.RUnlock()
	left := d.Milliseconds()
	if left > maxTimeMs-from {
		panic(fmt.Sprintf("workostest: Advance by %v from %s passes year 9999", d, time.UnixMilli(from).UTC().Format(time.RFC3339)))
	}
	for left > 0 {
		span := min(left, msPerDay)
		s.advanceStep(span, o)
		left -= span
	}

	s.ds.mu.RLock()
	defer s.ds.mu.RUnlock()
	res := AdvanceResult{
		From:   time.UnixMilli(from).UTC(),
		To:     time.UnixMilli(s.tl.now).UTC(),
		Events: len(s.tl.events) - first,
		ByType: map[string]int{},
	}
	for _, e := range s.tl.events[first:] {
		res.ByType[e.typ]++
	}
	return res
}

// roundCarry adds x to *carry and returns the nearest integer, keeping the
// rest in *carry.
func roundCarry(carry *float64, x float64) int {
	x += *carry
	n := math.Floor(x + 0.5)
	*carry = x - n
	return int(n)
}

// advanceStep moves the clock by span ms (at most a day) and applies the
// step's changes.
func (s *Server) advanceStep(span int64, o AdvanceOptions) {
	ds, tl := s.ds, &s.tl
	ds.mu.Lock()
	defer ds.mu.Unlock()
	old := tl.now
	tl.steps++
	rng := rand.New(rand.NewPCG(ds.seed^0xADF4_1CE5_0B5E_7E11, tl.steps))
	days := float64(span) / float64(msPerDay)
	at := func() int64 { return old + 1 + rng.Int64N(span) }

	var ops []op
	if o.Churn > 0 {
		for len(tl.carry) < len(ds.dirs) {
			tl.carry = append(tl.carry, [2]float64{})
		}
		for _, d := range ds.dirs {
			if d.deleted.Load() {
				continue
			}
			c := &tl.carry[d.idx]
			for range roundCarry(&c[0], o.Churn*float64(d.liveUsers())*days) {
				ops = append(ops, op{t: at(), w: 1, kind: draw(rng, userMix), d: d})
			}
			for range roundCarry(&c[1], o.Churn*float64(d.liveGroups())*days) {
				ops = append(ops, op{t: at(), w: 1, kind: draw(rng, groupMix), d: d})
			}
		}
		if rate := o.DirectoryRate; rate >= 0 {
			if rate == 0 {
				rate = DefaultDirectoryRate
			}
			for range roundCarry(&tl.actCarry, rate*days) {
				p := op{t: at(), kind: opDirActivate, users: 5 + rng.IntN(26), groups: 1 + rng.IntN(4)}
				p.w = int64(1 + p.users + p.groups)
				ops = append(ops, p)
			}
			for range roundCarry(&tl.delCarry, rate*days) {
				ops = append(ops, op{t: at(), w: 1, kind: opDirDelete})
			}
		}
	}
	ops = schedule(ops, old, old+span, rng)
	for _, p := range ops {
		s.apply(p, rng)
	}
	tl.now = old + span
}

func draw(rng *rand.Rand, mix []weighted) opKind {
	r := rng.IntN(100)
	for _, c := range mix {
		if r < c.weight {
			return c.kind
		}
		r -= c.weight
	}
	return mix[0].kind
}

// schedule orders ops by time and moves them apart so that each has its w
// milliseconds to itself within (from, to]. When they do not fit, a random
// subset that fits is kept.
func schedule(ops []op, from, to int64, rng *rand.Rand) []op {
	var total int64
	for _, p := range ops {
		total += p.w
	}
	if total > to-from {
		rng.Shuffle(len(ops), func(i, j int) { ops[i], ops[j] = ops[j], ops[i] })
		kept, used := ops[:0], int64(0)
		for _, p := range ops {
			if used+p.w <= to-from {
				kept = append(kept, p)
				used += p.w
			}
		}
		ops = kept
	}
	slices.SortStableFunc(ops, func(a, b op) int { return cmpInt64(a.t, b.t) })
	end := from // last millisecond taken
	for k := range ops {
		ops[k].t = max(ops[k].t, end+1)
		end = ops[k].t + ops[k].w - 1
	}
	next := to + 1 // first millisecond taken by the op after
	for k := len(ops) - 1; k >= 0; k-- {
		ops[k].t = min(ops[k].t, next-ops[k].w)
		next = ops[k].t
	}
	return ops
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// apply makes one planned change. Changes that no longer apply (the
// directory was deleted, it has no users) are dropped.
func (s *Server) apply(p op, rng *rand.Rand) {
	if p.d != nil && p.d.deleted.Load() {
		return
	}
	switch p.kind {
	case opUserUpdate:
		if i, ok := pickUser(p.d, rng); ok {
			s.updateUser(p.d, i, p.t, rng)
		}
	case opUserCreate:
		s.createUser(p.d, p.t, rng.IntN(3), rng)
	case opUserDelete:
		if i, ok := pickUser(p.d, rng); ok {
			s.deleteUser(p.d, i, p.t)
		}
	case opMemberAdd:
		for range 16 {
			i, ok1 := pickUser(p.d, rng)
			j, ok2 := pickGroup(p.d, rng)
			if !ok1 || !ok2 {
				return
			}
			if !s.ds.isMember(p.d, i, j) {
				s.addMember(p.d, i, j, p.t)
				return
			}
		}
	case opMemberRemove:
		for range 16 {
			i, ok := pickUser(p.d, rng)
			if !ok {
				return
			}
			if gs := s.ds.userGroups(p.d, i, nil); len(gs) > 0 {
				s.removeMember(p.d, i, gs[rng.IntN(len(gs))], p.t)
				return
			}
		}
	case opGroupCreate:
		s.createGroup(p.d, p.t, rng.IntN(4), rng)
	case opGroupUpdate:
		if j, ok := pickGroup(p.d, rng); ok {
			s.renameGroup(p.d, j, p.t, rng)
		}
	case opGroupDelete:
		// Groups that go are mostly small, obsolete ones: the smallest of
		// three random groups.
		best, size := -1, 0
		for range 3 {
			if j, ok := pickGroup(p.d, rng); ok {
				if n := s.ds.memberCount(p.d, j); best < 0 || n < size {
					best, size = j, n
				}
			}
		}
		if best >= 0 {
			s.deleteGroup(p.d, best, p.t)
		}
	case opDirDelete:
		var live []*dirData
		for _, d := range s.ds.dirs {
			if !d.deleted.Load() {
				live = append(live, d)
			}
		}
		if len(live) > 0 {
			s.deleteDir(live[rng.IntN(len(live))], p.t)
		}
	case opDirActivate:
		s.activateDir(p, rng)
	}
}

// pickUser returns a random live user of d.
func pickUser(d *dirData, rng *rand.Rand) (int, bool) {
	n := d.nUsers()
	if d.liveUsers() == 0 {
		return 0, false
	}
	for range 32 {
		if i := rng.IntN(n); !d.userDeleted(i) {
			return i, true
		}
	}
	start := rng.IntN(n)
	for k := range n {
		if i := (start + k) % n; !d.userDeleted(i) {
			return i, true
		}
	}
	return 0, false
}

// pickGroup returns a random live group of d.
func pickGroup(d *dirData, rng *rand.Rand) (int, bool) {
	n := d.nGroups()
	if d.liveGroups() == 0 {
		return 0, false
	}
	for range 32 {
		if j := rng.IntN(n); !d.groupDeleted(j) {
			return j, true
		}
	}
	start := rng.IntN(n)
	for k := range n {
		if j := (start + k) % n; !d.groupDeleted(j) {
			return j, true
		}
	}
	return 0, false
}

func isActive(state string) bool { return state == string(workos.DirectoryUserStateActive) }

// countState adds n users of state to the metadata counts.
func (ov *dirOverlay) countState(state string, n int64) {
	if isActive(state) {
		ov.activeDelta += n
	} else {
		ov.inactiveDelta += n
	}
}

// ---- users ----

func (s *Server) updateUser(d *dirData, i int, t int64, rng *rand.Rand) {
	ds, tl := s.ds, &s.tl
	u := ds.user(d, i)
	old := append(ds.appendUserFields(tl.buf[:0], &u), '}')
	tl.buf = old
	o := newUserOv(&u)
	var cur []byte
	var prev []byte
	for attempt := 0; attempt < 8 && len(prev) == 0; attempt++ {
		*o = *newUserOv(&u)
		switch r := rng.IntN(100); {
		case r < 20:
			switch {
			case !isActive(u.state):
				o.state = string(workos.DirectoryUserStateActive)
			case rng.IntN(10) < 7:
				o.state = string(workos.DirectoryUserStateInactive)
			default:
				o.state = string(workos.DirectoryUserStateSuspended)
			}
		case r < 50:
			o.job = rng.IntN(len(jobTitles))
		case r < 85:
			o.customH = rng.Uint64()
		case r < 95:
			o.role = rng.IntN(len(roleSlugs))
			if o.rolesMode == rolesAbsent || o.rolesMode == rolesEmpty {
				o.rolesMode = rolesOne
			}
		default:
			o.dispLast = rng.IntN(len(lastNames))
		}
		o.updated = t
		nu := u
		o.apply(&nu)
		cur = append(ds.appendUserFields(tl.buf2[:0], &nu), '}')
		tl.buf2 = cur
		prev = s.previousAttributes(old, cur)
	}
	if len(prev) == 0 {
		return // nothing changed (the chances are tiny)
	}
	ov := d.overlay()
	ov.users[i] = o
	ov.countState(u.state, -1)
	ov.countState(o.state, 1)
	data := append(cur[:len(cur)-1:len(cur)-1], `,"previous_attributes":`...)
	data = append(data, prev...)
	s.emit(workos.EventUserUpdated, t, d.org, append(data, '}'))
}

// createUser creates a user of d at t and adds it to up to groups groups.
func (s *Server) createUser(d *dirData, t int64, groups int, rng *rand.Rand) {
	ds := s.ds
	i := d.nUsers()
	if i >= maxUsersPerDirectory {
		return
	}
	if s.drawSilent(t) {
		defer s.unmute()
	}
	ov := d.overlay()
	ov.extraUsers = append(ov.extraUsers, t)
	u := ds.genUser(d, i)
	u.state, u.updated = string(workos.DirectoryUserStateActive), t
	ov.users[i] = newUserOv(&u)
	ov.countState(u.state, 1)
	s.tl.buf = append(ds.appendUserFields(s.tl.buf[:0], &u), '}')
	s.emit(workos.EventUserCreated, t, d.org, s.tl.buf)
	for range groups {
		if j, ok := pickGroup(d, rng); ok && !ds.isMember(d, i, j) {
			s.addMember(d, i, j, t)
		}
	}
}

// deleteUser deletes user i of d at t, with its memberships.
func (s *Server) deleteUser(d *dirData, i int, t int64) {
	ds := s.ds
	if s.drawSilent(t) {
		defer s.unmute()
	}
	u := ds.user(d, i)
	ov := d.overlay()
	for _, j := range ds.userGroups(d, i, nil) {
		ov.removeMember(i, j)
	}
	ov.delUsers[i] = true
	delete(ov.users, i)
	ov.countState(u.state, -1)
	u.state, u.updated = string(workos.DirectoryUserStateInactive), t
	s.tl.buf = append(ds.appendUserFields(s.tl.buf[:0], &u), '}')
	s.emit(workos.EventUserDeleted, t, d.org, s.tl.buf)
}

// ---- memberships ----

func (s *Server) addMember(d *dirData, i, j int, t int64) {
	d.overlay().addMember(i, j)
	s.emitMembership(workos.EventGroupUserAdded, d, i, j, t)
}

func (s *Server) removeMember(d *dirData, i, j int, t int64) {
	d.overlay().removeMember(i, j)
	s.emitMembership(workos.EventGroupUserRemoved, d, i, j, t)
}

func (s *Server) emitMembership(typ string, d *dirData, i, j int, t int64) {
	ds := s.ds
	u, g := ds.user(d, i), ds.group(d, j)
	b := append(s.tl.buf[:0], `{"directory_id":"`...)
	b = append(b, d.id...)
	b = append(b, `","user":`...)
	b = append(ds.appendUserFields(b, &u), '}')
	b = append(b, `,"group":`...)
	b = ds.appendGroup(b, &g, true)
	s.tl.buf = append(b, '}')
	s.emit(typ, t, d.org, s.tl.buf)
}

// ---- groups ----

// createGroup creates a group of d at t with up to members members.
func (s *Server) createGroup(d *dirData, t int64, members int, rng *rand.Rand) {
	ds := s.ds
	j := d.nGroups()
	if j >= maxGroupsPerDir {
		return
	}
	ov := d.overlay()
	ov.extraGroups = append(ov.extraGroups, t)
	ov.groups[j] = &groupOv{updated: t}
	g := ds.group(d, j)
	s.tl.buf = ds.appendGroup(s.tl.buf[:0], &g, true)
	s.emit(workos.EventGroupCreated, t, d.org, s.tl.buf)
	for range members {
		if i, ok := pickUser(d, rng); ok && !ds.isMember(d, i, j) {
			s.addMember(d, i, j, t)
		}
	}
}

func (s *Server) renameGroup(d *dirData, j int, t int64, rng *rand.Rand) {
	ds, tl := s.ds, &s.tl
	g := ds.group(d, j)
	oldName := string(g.appendName(nil))
	k := rng.IntN(len(groupNames))
	name := groupNames[k]
	if name == oldName {
		name = groupNames[(k+1)%len(groupNames)]
	}
	old := ds.appendGroup(tl.buf[:0], &g, true)
	tl.buf = old
	o := &groupOv{updated: t, name: name}
	d.overlay().groups[j] = o
	o.apply(&g)
	cur := ds.appendGroup(tl.buf2[:0], &g, true)
	tl.buf2 = cur
	prev := s.previousAttributes(old, cur)
	data := append(cur[:len(cur)-1:len(cur)-1], `,"previous_attributes":`...)
	data = append(data, prev...)
	s.emit(workos.EventGroupUpdated, t, d.org, append(data, '}'))
}

// deleteGroup deletes group j of d at t; its members lose it.
func (s *Server) deleteGroup(d *dirData, j int, t int64) {
	ds := s.ds
	g := ds.group(d, j)
	ov := d.overlay()
	for _, i := range slices.Clone(ov.addedByGroup[j]) {
		ov.dropAdded(pair{i, j})
	}
	ov.delGroups[j] = true
	delete(ov.groups, j)
	g.updated = t
	s.tl.buf = ds.appendGroup(s.tl.buf[:0], &g, true)
	s.emit(workos.EventGroupDeleted, t, d.org, s.tl.buf)
}

// ---- directories ----

// deleteDir deletes directory d at t with its users and groups.
func (s *Server) deleteDir(d *dirData, t int64) {
	d.deleted.Store(true)
	ds := s.ds
	o := &ds.orgs[d.org]
	b := append(s.tl.buf[:0], `{"object":"directory","id":`...)
	b = appendString(b, d.id)
	b = append(b, `,"organization_id":`...)
	b = appendString(b, o.id)
	b = append(b, `,"type":`...)
	b = appendString(b, d.typ)
	b = append(b, `,"state":"deleting","name":`...)
	b = appendString(b, d.name)
	b = append(b, `,"created_at":`...)
	b = appendTime(b, d.created)
	b = append(b, `,"updated_at":`...)
	b = appendTime(b, t)
	s.tl.buf = append(b, '}')
	s.emit(workos.EventDirectoryDeleted, t, d.org, s.tl.buf)
}

// activateDir adds a directory of a new organization at p.t, then creates its
// groups and users, one per millisecond.
func (s *Server) activateDir(p op, rng *rand.Rand) {
	ds := s.ds
	idx := len(ds.dirs)
	if idx >= maxDirectories {
		return
	}
	org := len(ds.orgs)
	ds.orgs = append(ds.orgs, ds.newOrg(org, p.t-msPerDay-rng.Int64N(30*msPerDay)))
	d := ds.newDir(idx, 0, 0, org, p.t)
	d.setType(ds, string(workos.DirectoryTypes[rng.IntN(len(workos.DirectoryTypes))]))
	d.state = string(workos.DirectoryStateLinked)
	d.updated = p.t
	d.hasDomain, d.hasMetadata = true, true
	d.ov = newDirOverlay()
	ds.dirs = append(ds.dirs, d)

	o := &ds.orgs[org]
	b := append(s.tl.buf[:0], `{"object":"directory","id":`...)
	b = appendString(b, d.id)
	b = append(b, `,"organization_id":`...)
	b = appendString(b, o.id)
	b = append(b, `,"external_key":`...)
	b = appendString(b, d.externalKey)
	b = append(b, `,"type":`...)
	b = appendString(b, d.typ)
	// Events name the states as the Node SDK does: the list's "linked" is
	// "active" in the event schema.
	b = append(b, `,"state":"active","name":`...)
	b = appendString(b, d.name)
	b = append(b, `,"created_at":`...)
	b = appendTime(b, d.created)
	b = append(b, `,"updated_at":`...)
	b = appendTime(b, d.updated)
	b = append(b, `,"domains":[{"object":"organization_domain","id":`...)
	b = appendString(b, ds.codec.id(kindOrgDomain, o.created, uint32(org), 0))
	b = append(b, `,"domain":`...)
	b = appendString(b, o.domain)
	s.tl.buf = append(b, "}]}"...)
	s.emit(workos.EventDirectoryActivated, p.t, org, s.tl.buf)

	t := p.t
	for range p.groups {
		t++
		s.createGroup(d, t, 0, rng)
	}
	for range p.users {
		t++
		s.createUser(d, t, rng.IntN(3), rng)
	}
}

// ---- events ----

// emit appends an event of type typ at t about organization org, with data
// (copied), unless the change is silent; with Hostile.Undecodable, the data
// may be replaced by an undecodable object.
func (s *Server) emit(typ string, t int64, org int, data []byte) {
	tl := &s.tl
	if s.silence(typ, t, data) {
		return
	}
	seq := len(tl.events)
	rec := eventRec{
		id:      s.eventID(t, seq),
		typ:     typ,
		created: t,
		org:     org,
	}
	if h := &tl.hostile; h.draw(saltUndecodable, rec.id, h.Undecodable) {
		c, ids := hostileChange(typ, rec.id, t, data)
		rec.data, rec.bad = undecodableData(typ, c, ids), &c
	} else {
		rec.data = slices.Clone(data)
	}
	tl.events = append(tl.events, rec)
	if tl.byType == nil {
		tl.byType = map[string][]int{}
	}
	tl.byType[typ] = append(tl.byType[typ], seq)
}

// eventID is "event_" and a ULID of the event's time and its sequence
// number (then a keyed hash), so that IDs sort like the log: by time, then
// by sequence.
func (s *Server) eventID(t int64, seq int) string {
	q := uint64(seq)
	h := mix(s.ds.seed^0xE7E7_0000_0000_0000^q) & (1<<40 - 1)
	b := make([]byte, 0, len(workos.EventIDPrefix)+ulidLen)
	b = append(b, workos.EventIDPrefix...)
	return string(appendULID(b, t, q>>24&0xFFFF, q<<40|h))
}

// Events returns every event emitted so far, expired ones included, oldest
// first: the ground truth for what GET /events serves. Undecodable events
// (Hostile.Undecodable) are as served, and so is created_at (a day early with
// Hostile.EarlyCreatedAt); silent changes have no event; HostileTruth tells
// which is which.
func (s *Server) Events() []workos.Event {
	s.ds.mu.RLock()
	defer s.ds.mu.RUnlock()
	out := make([]workos.Event, len(s.tl.events))
	for k := range s.tl.events {
		e := &s.tl.events[k]
		out[k] = workos.Event{
			Object:    "event",
			ID:        e.id,
			Event:     e.typ,
			Data:      slices.Clone(e.data),
			CreatedAt: modelTime(s.tl.hostile.early(e)),
		}
	}
	return out
}

// ---- previous_attributes ----

// jsonField is a member of a JSON object: its raw key (quoted) and value.
type jsonField struct{ key, value []byte }

// splitObject splits a JSON object rendered by this package into its
// top-level members.
func splitObject(b []byte, dst []jsonField) []jsonField {
	dst = dst[:0]
	i := 1 // past '{'
	for i < len(b) && b[i] != '}' {
		ks := i
		i = skipString(b, i)
		key := b[ks:i]
		i++ // ':'
		vs := i
		depth := 0
	value:
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				i = skipString(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth == 0 {
					break value
				}
				depth--
			case ',':
				if depth == 0 {
					break value
				}
			}
		}
		dst = append(dst, jsonField{key, b[vs:i]})
		if i < len(b) && b[i] == ',' {
			i++
		}
	}
	return dst
}

// skipString returns the index after the JSON string starting at b[i].
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return i
}

// previousAttributes returns the previous_attributes object of a change from
// old to cur (both rendered objects): the old values of the members that
// differ, updated_at aside, with null for members cur added. It returns nil
// when nothing changed.
func (s *Server) previousAttributes(old, cur []byte) []byte {
	tl := &s.tl
	of := splitObject(old, tl.prevFields)
	tl.prevFields = of
	cf := splitObject(cur, nil)
	var b []byte
	add := func(key, value []byte) {
		if b == nil {
			b = append(b, '{')
		} else {
			b = append(b, ',')
		}
		b = append(b, key...)
		b = append(b, ':')
		b = append(b, value...)
	}
	for _, f := range of {
		if string(f.key) == `"updated_at"` {
			continue
		}
		k := slices.IndexFunc(cf, func(c jsonField) bool { return string(c.key) == string(f.key) })
		if k < 0 || string(cf[k].value) != string(f.value) {
			add(f.key, f.value)
		}
	}
	for _, c := range cf {
		if !slices.ContainsFunc(of, func(f jsonField) bool { return string(f.key) == string(c.key) }) {
			add(c.key, []byte("null"))
		}
	}
	if b == nil {
		return nil
	}
	return append(b, '}')
}
