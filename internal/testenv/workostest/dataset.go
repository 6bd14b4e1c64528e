package workostest

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dsync-export/dsync-export/pkg/workos"
)

// The dataset is never materialised. Every value is a pure function of
// (seed, directory index, object index), so a page is generated when served
// and a 1,000,000-user directory costs a few hundred bytes of memory. What is
// kept per directory: its sizes and timeline (O(1)), and a membership table
// O(groups) built on first use.

// Limits keep every timestamp a four-digit-year ISO 8601 date and every
// position inside the ID payload.
const (
	maxDirectories       = 10_000
	maxUsersPerDirectory = 1 << 30
	maxGroupsPerDir      = 1 << 20
)

const (
	msPerSecond = int64(1000)
	msPerHour   = 3600 * msPerSecond
	msPerDay    = 24 * msPerHour
)

// Field salts for the per-object hash.
const (
	fState uint64 = iota + 1
	fNulls
	fJob
	fUsername
	fCustom
	fRaw
	fRole
	fEmails
	fUpdated
	fJitter
	fIdp
)

type orgData struct {
	id      string
	created int64
	name    string
	domain  string
}

type dirData struct {
	idx          int
	users        int
	groups       int
	org          int
	salt         uint64
	created      int64
	updated      int64
	userStep     int64
	groupStep    int64
	id           string
	typ          string
	state        string
	name         string
	externalKey  string
	hasDomain    bool
	hasMetadata  bool
	idpStyle     idpStyle
	groupNameOff int

	deleted atomic.Bool

	memOnce sync.Once
	mem     *membership

	countOnce sync.Once
	active    int64
	inactive  int64

	// ov holds the changes Server.Advance made (nil: none). Guarded by
	// dataset.mu, like everything that changes after New.
	ov *dirOverlay
}

type idpStyle uint8

const (
	idpUUID idpStyle = iota
	idpNumeric
	idpGoogle
)

type dataset struct {
	// mu guards what Advance and DeleteDirectory change: dirs and orgs
	// (appended to), each dirData.ov and the server's timeline. Requests
	// and accessors hold it for reading.
	mu sync.RWMutex

	seed   uint64
	base   int64 // the first directory's created_at
	codec  idCodec
	legacy bool
	meta   MetadataMode // guarded by mu
	dirs   []*dirData
	orgs   []orgData

	// e-mail permutation over firstNames × lastNames (see userNames).
	nameSpace uint64
	nameMul   uint64
}

// newDataset lays out the directories. sizes returns (users, groups) of
// directory d.
func newDataset(seed int64, dirs int, sizes func(int) (int, int), legacy bool) (*dataset, error) {
	if dirs < 0 || dirs > maxDirectories {
		return nil, fmt.Errorf("workostest: Directories is %d: want 0..%d", dirs, maxDirectories)
	}
	ds := &dataset{
		seed:   mix(uint64(seed) ^ 0x6A09E667F3BCC908),
		legacy: legacy,
	}
	ds.codec = idCodec{seed: ds.seed}
	ds.nameSpace = uint64(len(firstNames) * len(lastNames))
	ds.nameMul = coprimeNear(ds.seed%ds.nameSpace, ds.nameSpace)

	base := time.Date(2024, 1, 8, 9, 0, 0, 0, time.UTC).UnixMilli() + int64(ds.seed%(30*24))*msPerHour
	ds.base = base
	start := base
	org, orgLeft := -1, 0
	orgSizes := [...]int{2, 1, 3, 1}
	for d := range dirs {
		users, groups := sizes(d)
		if users < 0 || users > maxUsersPerDirectory {
			return nil, fmt.Errorf("workostest: directory %d has %d users: want 0..%d", d, users, maxUsersPerDirectory)
		}
		if groups < 0 || groups > maxGroupsPerDir {
			return nil, fmt.Errorf("workostest: directory %d has %d groups: want 0..%d", d, groups, maxGroupsPerDir)
		}
		h := mix(ds.seed ^ uint64(d)*0xA24BAED4963EE407)
		if orgLeft == 0 {
			org++
			orgLeft = orgSizes[org%len(orgSizes)]
			ds.orgs = append(ds.orgs, ds.newOrg(org, start-msPerDay-int64(h%(30*uint64(msPerDay)))))
		}
		orgLeft--
		dd := ds.newDir(d, users, groups, org, start)
		ds.dirs = append(ds.dirs, dd)
		span := 1000 + max(int64(users)*dd.userStep, int64(groups)*dd.groupStep) + 1
		start += span + msPerHour + int64(mix(h^4)%uint64(47*msPerHour))
	}
	return ds, nil
}

// newDir lays out directory d of organization org, created at created, with
// users and groups generated objects.
func (ds *dataset) newDir(d, users, groups, org int, created int64) *dirData {
	h := mix(ds.seed ^ uint64(d)*0xA24BAED4963EE407)
	dd := &dirData{
		idx:          d,
		users:        users,
		groups:       groups,
		org:          org,
		salt:         h,
		created:      created,
		updated:      created + int64(mix(h^1)%uint64(20*msPerDay)),
		userStep:     stepFor(users, 60*msPerSecond),
		groupStep:    stepFor(groups, msPerHour),
		groupNameOff: int(mix(h^2) % uint64(len(groupNames))),
	}
	dd.id = ds.codec.id(kindDirectory, dd.created, uint32(d), 0)
	typ := string(workos.DirectoryTypes[d%len(workos.DirectoryTypes)])
	if d%23 == 22 {
		typ = unknownDirectoryType
	}
	dd.state = string(workos.DirectoryStates[d%len(workos.DirectoryStates)])
	if d%17 == 16 {
		dd.state = unknownDirectoryState
	}
	dd.setType(ds, typ)
	dd.externalKey = externalKey(mix(h ^ 3))
	dd.hasDomain = d%4 != 3
	dd.hasMetadata = d%6 != 5
	return dd
}

// setType sets the directory's type, and with it its name and the style of
// its provider's IDs.
func (dd *dirData) setType(ds *dataset, typ string) {
	dd.typ = typ
	dd.name = ds.orgs[dd.org].name + " (" + dd.typ + ")"
	switch dd.typ {
	case "gsuite directory":
		dd.idpStyle = idpGoogle
	case "bamboohr", "breathe hr", "cezanne hr", "fourth hr", "hibob", "people hr", "personio",
		"workday", "sftp", "sftp workday", "s3":
		dd.idpStyle = idpNumeric
	default:
		dd.idpStyle = idpUUID
	}
}

// stepFor spreads n objects over about 30 days, at most one per max ms.
func stepFor(n int, maxStep int64) int64 {
	if n == 0 {
		return maxStep
	}
	return max(1, min(maxStep, 30*msPerDay/int64(n)))
}

func (ds *dataset) newOrg(o int, created int64) orgData {
	c := companies[o%len(companies)]
	name, domain := c.name, c.domain
	if n := o / len(companies); n > 0 {
		suffix := strconv.Itoa(n + 1)
		name += " " + suffix
		dot := strings.IndexByte(domain, '.')
		domain = domain[:dot] + "-" + suffix + domain[dot:]
	}
	return orgData{
		id:      ds.codec.id(kindOrg, created, uint32(o), 0),
		created: created,
		name:    name,
		domain:  domain,
	}
}

func externalKey(h uint64) string {
	const alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	var b [16]byte
	for i := range b {
		b[i] = alnum[h%uint64(len(alnum))]
		h = mix(h + uint64(i))
	}
	return string(b[:])
}

func gcd(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// coprimeNear returns the first a >= start (wrapping) with gcd(a, m) == 1, a > 1.
func coprimeNear(start, m uint64) uint64 {
	for a := start; ; a++ {
		a %= m
		if a > 1 && gcd(a, m) == 1 {
			return a
		}
	}
}

// dir returns directory d, or nil when d is out of range.
func (ds *dataset) dir(d uint32) *dirData {
	if int(d) >= len(ds.dirs) {
		return nil
	}
	return ds.dirs[d]
}

// lookupDir resolves a directory ID. It returns nil for unknown IDs; deleted
// directories are returned and the caller decides.
func (ds *dataset) lookupDir(id string) *dirData {
	ms, d, idx, ok := ds.codec.decode(kindDirectory, id)
	if !ok || idx != 0 {
		return nil
	}
	dd := ds.dir(d)
	if dd == nil || dd.created != ms {
		return nil
	}
	return dd
}

// lookupUser resolves a user ID to (directory, index).
func (ds *dataset) lookupUser(id string) (*dirData, int, bool) {
	ms, d, idx, ok := ds.codec.decode(kindUser, id)
	if !ok {
		return nil, 0, false
	}
	dd := ds.dir(d)
	if dd == nil || uint64(idx) >= uint64(dd.nUsers()) || dd.userCreated(int(idx)) != ms {
		return nil, 0, false
	}
	return dd, int(idx), true
}

// lookupGroup resolves a group ID to (directory, index).
func (ds *dataset) lookupGroup(id string) (*dirData, int, bool) {
	ms, d, idx, ok := ds.codec.decode(kindGroup, id)
	if !ok {
		return nil, 0, false
	}
	dd := ds.dir(d)
	if dd == nil || uint64(idx) >= uint64(dd.nGroups()) || dd.groupCreated(int(idx)) != ms {
		return nil, 0, false
	}
	return dd, int(idx), true
}

// ---- per-object hashes and timestamps ----

func (d *dirData) userBase(i int) uint64  { return mix(d.salt + uint64(i)*0x9E3779B97F4A7C15) }
func (d *dirData) groupBase(j int) uint64 { return mix(^d.salt + uint64(j)*0xC2B2AE3D27D4EB4F) }
func field(base, f uint64) uint64         { return mix(base + f*0xD6E8FEB86659FD93) }

// userCreated returns the created_at of user i: generated for the first
// d.users, stored for those Advance created.
func (d *dirData) userCreated(i int) int64 {
	if i >= d.users {
		return d.ov.extraUsers[i-d.users]
	}
	t := d.created + 1000 + int64(i)*d.userStep
	if d.userStep >= 2 {
		t += int64(field(d.userBase(i), fJitter) % uint64(d.userStep/2))
	}
	return t
}

// groupCreated returns the created_at of group j (see userCreated).
func (d *dirData) groupCreated(j int) int64 {
	if j >= d.groups {
		return d.ov.extraGroups[j-d.groups]
	}
	t := d.created + 500 + int64(j)*d.groupStep
	if d.groupStep >= 2 {
		t += int64(field(d.groupBase(j), fJitter) % uint64(d.groupStep/2))
	}
	return t
}

func (d *dirData) userState(i int) string {
	switch h := field(d.userBase(i), fState) % 1000; {
	case h < 860:
		return string(workos.DirectoryUserStateActive)
	case h < 960:
		return string(workos.DirectoryUserStateInactive)
	case h < 995:
		return string(workos.DirectoryUserStateSuspended)
	default:
		return unknownUserState
	}
}

// userCounts returns the metadata counts: active users, and all others
// (inactive, suspended and unknown states) as inactive. The generated users'
// counts are computed once; Advance's changes are kept as deltas.
func (d *dirData) userCounts() (active, inactive int64) {
	d.countOnce.Do(func() {
		for i := range d.users {
			if d.userState(i) == string(workos.DirectoryUserStateActive) {
				d.active++
			}
		}
		d.inactive = int64(d.users) - d.active
	})
	if ov := d.ov; ov != nil {
		return d.active + ov.activeDelta, d.inactive + ov.inactiveDelta
	}
	return d.active, d.inactive
}

// ---- records ----

// userRec is one generated directory user, held as choices (table indices and
// modes) rather than strings, so rendering a page allocates almost nothing.
// The wire JSON (appendUser) and the model (userModel) are both rendered from
// it, so the HTTP API and the accessors cannot disagree.
type userRec struct {
	d                *dirData
	i                int
	created, updated int64
	state            string
	emailNull        bool
	first, last      int    // name table indices (of the e-mail)
	dispLast         int    // lastNames index of the displayed last name
	k                uint64 // e-mail disambiguation suffix (0: none)
	nameMode         uint8  // nameFull, nameNoLast, nameNone
	emailsMode       uint8  // emailsEmpty, emailsWork, emailsWorkPersonal, emailsNullValue
	personal         int    // personalDomains index
	job              int    // jobTitles index, -1 for null
	usernameMode     uint8  // usernameNull, usernameEmail, usernameLocal
	rawLegacy        bool
	customH          uint64
	role             int   // roleSlugs index, -1 when absent
	rolesMode        uint8 // rolesAbsent, rolesEmpty, rolesOne, rolesTwo
}

const (
	nameFull uint8 = iota
	nameNoLast
	nameNone
)

const (
	emailsEmpty uint8 = iota
	emailsWork
	emailsWorkPersonal
	emailsNullValue
)

const (
	usernameNull uint8 = iota
	usernameEmail
	usernameLocal
)

const (
	rolesAbsent uint8 = iota
	rolesEmpty
	rolesOne
	rolesTwo
)

// groupRec is one generated directory group.
type groupRec struct {
	d                *dirData
	j                int
	name             string
	nameSuffix       int    // appended as " N" when > 0
	nameOv           string // the name after a rename, when not empty
	idpH             uint64
	created, updated int64
}

func strp(s string) *string { return &s }

// names returns the user's table indices and e-mail disambiguation suffix.
// Users are mapped to (first, last) pairs by an affine permutation, so
// e-mails are unique within a directory and decode back to the user index.
func (ds *dataset) names(d *dirData, i int) (first, last int, k uint64) {
	x := (uint64(i)%ds.nameSpace*ds.nameMul + d.salt%ds.nameSpace) % ds.nameSpace
	return int(x / uint64(len(lastNames))), int(x % uint64(len(lastNames))), uint64(i) / ds.nameSpace
}

func emailNull(d *dirData, i int) bool { return field(d.userBase(i), fNulls)%1000 < 30 }

// appendEmailLocal appends first.last[k].
func appendEmailLocal(b []byte, first, last int, k uint64) []byte {
	b = append(b, firstNames[first].slug...)
	b = append(b, '.')
	b = append(b, lastNames[last].slug...)
	if k > 0 {
		b = strconv.AppendUint(b, k, 10)
	}
	return b
}

func (ds *dataset) appendEmail(b []byte, d *dirData, first, last int, k uint64) []byte {
	b = appendEmailLocal(b, first, last, k)
	b = append(b, '@')
	return append(b, ds.orgs[d.org].domain...)
}

func (d *dirData) idpSalt() uint64 { return mix(d.salt ^ 0x1D8E4E27C47D124F) }

// appendUserIdpID appends the provider's ID of user i, in the style of the
// directory's provider.
func (d *dirData) appendUserIdpID(b []byte, i int) []byte {
	switch d.idpStyle {
	case idpNumeric:
		return strconv.AppendInt(b, int64(1000+i), 10)
	case idpGoogle:
		v := mix(d.idpSalt() ^ uint64(i))
		b = append(b, '1')
		for p := uint64(10000000000000000000); p > 1 && v < p; p /= 10 {
			b = append(b, '0')
		}
		return strconv.AppendUint(b, v, 10)
	default:
		v := mix(d.idpSalt() ^ uint64(i))
		return appendUUID(b, v, mix(v+1))
	}
}

// appendUUID appends a and b as a lower-case 8-4-4-4-12 UUID string.
func appendUUID(b []byte, a, c uint64) []byte {
	put := func(b []byte, v uint64, n int) []byte {
		for k := n - 1; k >= 0; k-- {
			b = append(b, hexDigits[(v>>(uint(k)*4))&15])
		}
		return b
	}
	b = put(b, a>>32, 8)
	b = append(b, '-')
	b = put(b, a>>16, 4)
	b = append(b, '-')
	b = put(b, a, 4)
	b = append(b, '-')
	b = put(b, c>>48, 4)
	b = append(b, '-')
	return put(b, c, 12)
}

// user returns user i of directory d as it is now: generated, with
// Advance's changes applied.
func (ds *dataset) user(d *dirData, i int) userRec {
	u := ds.genUser(d, i)
	if d.ov != nil {
		if o := d.ov.users[i]; o != nil {
			o.apply(&u)
		}
	}
	return u
}

// genUser generates user i of directory d.
func (ds *dataset) genUser(d *dirData, i int) userRec {
	base := d.userBase(i)
	u := userRec{
		d:         d,
		i:         i,
		state:     d.userState(i),
		created:   d.userCreated(i),
		emailNull: emailNull(d, i),
		job:       -1,
		role:      -1,
	}
	u.first, u.last, u.k = ds.names(d, i)
	u.dispLast = u.last
	switch h := field(base, fNulls) % 100; {
	case h < 2:
		u.nameMode = nameNoLast
	case h == 2:
		u.nameMode = nameNone
	}

	h := field(base, fEmails)
	switch {
	case !u.emailNull && h%100 < 75:
		u.emailsMode = emailsWork
	case !u.emailNull && h%100 < 85:
		u.emailsMode = emailsWorkPersonal
		u.personal = int((h >> 8) % uint64(len(personalDomains)))
	case u.emailNull && h%100 < 30:
		u.emailsMode = emailsNullValue
	}
	if h := field(base, fJob); h%5 != 0 {
		u.job = int((h >> 8) % uint64(len(jobTitles)))
	}
	switch h := field(base, fUsername); {
	case h%4 == 0:
	case !u.emailNull:
		u.usernameMode = usernameEmail
	default:
		u.usernameMode = usernameLocal
	}
	u.rawLegacy = field(base, fRaw)%50 == 0
	u.customH = field(base, fCustom)

	h = field(base, fRole)
	switch {
	case h%100 >= 15:
		u.role = int((h >> 8) % uint64(len(roleSlugs)))
		u.rolesMode = rolesOne
		if (h>>16)%10 == 0 {
			u.rolesMode = rolesTwo
		}
	case (h>>16)%2 == 0:
		u.rolesMode = rolesEmpty
	}

	u.updated = u.created
	if h := field(base, fUpdated); h%3 != 0 {
		u.updated += 1 + int64((h>>8)%uint64(90*msPerDay))
	}
	return u
}

// appendCustomAttributes appends a custom_attributes object of mixed JSON
// types: strings (some unicode), numbers, booleans, null, nested and empty
// objects and arrays; one user in ten has {}.
func appendCustomAttributes(b []byte, h uint64, job int, i int) []byte {
	if h%10 == 0 {
		return append(b, "{}"...)
	}
	b = append(b, `{"department":`...)
	b = appendString(b, departments[(h>>4)%uint64(len(departments))])
	b = append(b, `,"job_title":`...)
	if job < 0 {
		b = append(b, "null"...)
	} else {
		b = appendString(b, jobTitles[job])
	}
	if h>>12&1 == 0 {
		b = append(b, `,"employee_number":`...)
		b = strconv.AppendInt(b, int64(10000+i), 10)
	} else {
		b = append(b, `,"employee_number":"E-`...)
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, '"')
	}
	b = append(b, `,"is_manager":`...)
	b = strconv.AppendBool(b, h>>13&1 == 1)
	if h>>14&3 != 0 {
		b = append(b, `,"cost_center":{"code":"CC-`...)
		b = strconv.AppendUint(b, 1000+(h>>16)%9000, 10)
		b = append(b, `","name":`...)
		b = appendString(b, departments[(h>>30)%uint64(len(departments))])
		b = append(b, '}')
	} else {
		b = append(b, `,"cost_center":null`...)
	}
	b = append(b, `,"tags":[`...)
	if h>>32&1 == 1 {
		b = append(b, `"remote","emea"`...)
	}
	b = append(b, ']')
	b = append(b, `,"office":`...)
	b = appendString(b, offices[(h>>34)%uint64(len(offices))])
	b = append(b, `,"fte":`...)
	b = append(b, fteValues[(h>>40)%uint64(len(fteValues))]...)
	if h>>46&3 == 0 {
		b = append(b, `,"preferences":{}`...)
	}
	if h>>48&7 == 0 {
		b = append(b, `,"manager":{"name":"Zoë Müller","levels":[1,2,3],"active":true}`...)
	}
	return append(b, '}')
}

// group returns group j of directory d as it is now: generated, with
// Advance's changes applied.
func (ds *dataset) group(d *dirData, j int) groupRec {
	g := ds.genGroup(d, j)
	if d.ov != nil {
		if o := d.ov.groups[j]; o != nil {
			o.apply(&g)
		}
	}
	return g
}

// genGroup generates group j of directory d.
func (ds *dataset) genGroup(d *dirData, j int) groupRec {
	base := d.groupBase(j)
	g := groupRec{
		d:          d,
		j:          j,
		name:       groupNames[(j+d.groupNameOff)%len(groupNames)],
		nameSuffix: j / len(groupNames),
		idpH:       field(base, fIdp),
		created:    d.groupCreated(j),
	}
	if g.nameSuffix > 0 {
		g.nameSuffix++
	}
	g.updated = g.created
	if h := field(base, fUpdated); h%2 == 0 {
		g.updated += 1 + int64((h>>8)%uint64(60*msPerDay))
	}
	return g
}

// appendGroupIdpID appends the provider's ID of a group.
func (g *groupRec) appendIdpID(b []byte) []byte {
	switch g.d.idpStyle {
	case idpNumeric:
		b = append(b, "dept-"...)
		return strconv.AppendInt(b, int64(100+g.j), 10)
	case idpGoogle:
		b = append(b, "02"...)
		return strconv.AppendUint(b, g.idpH, 16)
	}
	return appendUUID(b, g.idpH, mix(g.idpH+1))
}

func (g *groupRec) appendName(b []byte) []byte {
	if g.nameOv != "" {
		return append(b, g.nameOv...)
	}
	b = append(b, g.name...)
	if g.nameSuffix > 0 {
		b = append(b, ' ')
		b = strconv.AppendInt(b, int64(g.nameSuffix), 10)
	}
	return b
}

// ---- memberships ----

// membership maps users to groups with arithmetic progressions. Each
// non-empty group lives in one of three "slots" (think department, location,
// project). Slot s has a modulus m and a table from residue to group: user i
// belongs to group table[i % m] of each slot, so a user is in 0–3 groups and a
// group's members are the users whose index falls in one of the group's
// residues. Members from any position are found by a binary search over the
// group's residues; counts are closed-form. Memory is O(groups).
type membership struct {
	slots     [3]slot
	groupSlot []int8     // slot of each group; -1 for an empty group
	residues  [][]uint32 // sorted residues of each group
}

type slot struct {
	mod   int
	table []int32 // residue -> group, or -1
}

var slotShare = [3]float64{0.85, 0.5, 0.25}

func (d *dirData) membership(ds *dataset) *membership {
	d.memOnce.Do(func() { d.mem = buildMembership(ds.seed, d) })
	return d.mem
}

func buildMembership(seed uint64, d *dirData) *membership {
	m := &membership{groupSlot: make([]int8, d.groups), residues: make([][]uint32, d.groups)}
	var bySlot [3][]int
	for j := range d.groups {
		h := field(d.groupBase(j), fState)
		m.groupSlot[j] = -1
		if d.groups >= 3 && (j == d.groups-1 || h%9 == 0) {
			continue // deliberately empty group
		}
		s := 0
		switch r := (h >> 8) % 10; {
		case r >= 8:
			s = 2
		case r >= 5:
			s = 1
		}
		m.groupSlot[j] = int8(s)
		bySlot[s] = append(bySlot[s], j)
	}
	for s, gs := range bySlot {
		if len(gs) == 0 {
			continue
		}
		mod := 4*len(gs) + [3]int{7, 11, 13}[s]
		rng := rand.New(rand.NewPCG(seed^d.salt, uint64(s)+1))
		perm := rng.Perm(mod)
		assigned := min(mod, max(len(gs), int(slotShare[s]*float64(mod)+0.5)))
		// Zipf-like weights over a random ranking of the slot's groups.
		rank := rng.Perm(len(gs))
		cum := make([]float64, len(gs))
		total := 0.0
		for k := range gs {
			total += 1 / float64(rank[k]+1)
			cum[k] = total
		}
		table := make([]int32, mod)
		for r := range table {
			table[r] = -1
		}
		for k, r := range perm[:assigned] {
			g := k
			if k >= len(gs) {
				x := rng.Float64() * total
				g, _ = slices.BinarySearch(cum, x)
				g = min(g, len(gs)-1)
			}
			table[r] = int32(gs[g])
		}
		for r, g := range table {
			if g >= 0 {
				m.residues[g] = append(m.residues[g], uint32(r))
			}
		}
		m.slots[s] = slot{mod: mod, table: table}
	}
	return m
}

// groupsOf appends the groups of user i, ascending, to dst.
func (m *membership) groupsOf(i int, dst []int) []int {
	dst = dst[:0]
	for _, s := range m.slots {
		if s.mod == 0 {
			continue
		}
		if g := s.table[i%s.mod]; g >= 0 {
			dst = append(dst, int(g))
		}
	}
	slices.Sort(dst)
	if dst == nil {
		dst = []int{}
	}
	return dst
}

// nextMember returns the smallest member i >= p of group j with i < n.
func (m *membership) nextMember(j, p, n int) (int, bool) {
	s := m.groupSlot[j]
	if s < 0 || p >= n {
		return 0, false
	}
	p = max(p, 0)
	res, mod := m.residues[j], m.slots[s].mod
	b, r := p/mod, p%mod
	t, _ := slices.BinarySearch(res, uint32(r))
	if t == len(res) {
		b, t = b+1, 0
	}
	i := b*mod + int(res[t])
	return i, i < n
}

// prevMember returns the largest member i <= p of group j with i < n.
func (m *membership) prevMember(j, p, n int) (int, bool) {
	s := m.groupSlot[j]
	if s < 0 || p < 0 {
		return 0, false
	}
	p = min(p, n-1)
	if p < 0 {
		return 0, false
	}
	res, mod := m.residues[j], m.slots[s].mod
	b, r := p/mod, p%mod
	t, found := slices.BinarySearch(res, uint32(r))
	if !found {
		t--
	}
	if t < 0 {
		b, t = b-1, len(res)-1
	}
	if b < 0 {
		return 0, false
	}
	return b*mod + int(res[t]), true
}

// memberCount returns the number of members of group j among n users.
func (m *membership) memberCount(j, n int) int {
	s := m.groupSlot[j]
	if s < 0 {
		return 0
	}
	mod := m.slots[s].mod
	c := 0
	for _, r := range m.residues[j] {
		c += n / mod
		if int(r) < n%mod {
			c++
		}
	}
	return c
}
