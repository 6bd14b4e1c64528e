package workostest

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dsync-export/dsync-export/pkg/workos"
)

// Hostile makes the Events API misbehave in the ways reported of the real
// one (and a few worse), for soak tests of a consumer. The zero value turns
// every mode off: GET /events then serves the log exactly as before.
//
// Every draw is a function of Seed and an event ID (for Silent, of the ID the
// event would have had), so a run is reproducible given the same Config and
// calls. Undecodable and Silent act when a change is made (by Advance or
// DeleteDirectory): the change is applied to the state either way. The other
// modes act when a page is served, on every event of the log, whenever it
// was made.
//
// The page modes (SwapInPage, RepeatCursor, DoubleEmit) apply to pages read
// forwards: order asc or desc, without a before cursor. They keep the wire
// format: a list envelope whose list_metadata.after is the ID of the page's
// last event as served (null when no events follow), at most limit events per
// page (limit+1 when limit is 1 and the cursor is repeated), and a walk that
// follows after always moves forwards, so it ends.
type Hostile struct {
	// Seed seeds the per-event draws.
	Seed int64
	// SwapInPage swaps the last two events of every page that has two
	// distinct events there: IDs come out of order, and as after names the
	// page's last event as served, the next page starts with the event
	// swapped away from the end, which is read twice.
	SwapInPage bool
	// RepeatCursor makes after=X inclusive: the page starts with event X
	// itself again (when X is an event the request's filters keep).
	RepeatCursor bool
	// EarlyCreatedAt is the fraction of events served with created_at a day
	// before their real time; their IDs, and range_start and range_end, go by
	// the real time. Server.Events reports the time served.
	EarlyCreatedAt float64
	// Undecodable is the fraction of events emitted with data that does not
	// decode into their type's payload (workos.Event.Payload fails with
	// workos.ErrEventPayload), though it is still a JSON object with the IDs
	// of the directory and of the object changed: "directory_id" (and "id" of
	// the directory for dsync.activated and dsync.deleted), "id" of the user
	// or group, "user" and "group" objects with their "id" for memberships.
	Undecodable float64
	// Silent is the fraction of user creates and user deletes that emit no
	// event (a silently created user's memberships made with it emit none
	// either), so that only the directory's metadata counts, or a full walk,
	// reveal them. AdvanceResult counts the events emitted, without them.
	Silent float64
	// DoubleEmit is the fraction of events served twice: right after
	// themselves, or, for an event that ends a page, again at the top of the
	// page read after it (after=its ID), so that the stream's last event, if
	// doubled, shows twice only once more events follow it or a read resumes
	// from it.
	DoubleEmit float64
}

// ParseHostile parses modes written as a query string or comma-separated
// list, as POST /_fake/hostile and workos-fake --hostile take them:
// "swap,repeat,early=0.05,undecodable=0.01,silent=0.02,double=0.01,seed=7".
// A bare name turns a boolean mode on (or a rate to 1); "" is the zero
// Hostile.
func ParseHostile(s string) (Hostile, error) {
	var h Hostile
	for _, part := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '&' || r == ' ' }) {
		name, value, hasValue := strings.Cut(part, "=")
		if v, err := url.QueryUnescape(value); err == nil {
			value = v
		}
		hasValue = hasValue && value != "" // "swap=" is "swap"
		var rate *float64
		var flag *bool
		switch name {
		case "seed":
			n, err := strconv.ParseInt(value, 10, 64)
			if err != nil {
				return Hostile{}, fmt.Errorf("workostest: hostile seed %q: want an integer", value)
			}
			h.Seed = n
			continue
		case "swap":
			flag = &h.SwapInPage
		case "repeat":
			flag = &h.RepeatCursor
		case "early":
			rate = &h.EarlyCreatedAt
		case "undecodable":
			rate = &h.Undecodable
		case "silent":
			rate = &h.Silent
		case "double":
			rate = &h.DoubleEmit
		default:
			return Hostile{}, fmt.Errorf("workostest: unknown hostile mode %q: want swap, repeat, early, undecodable, silent, double or seed", name)
		}
		if flag != nil {
			b := true
			if hasValue {
				var err error
				if b, err = strconv.ParseBool(value); err != nil {
					return Hostile{}, fmt.Errorf("workostest: hostile %s=%q: want true or false", name, value)
				}
			}
			*flag = b
			continue
		}
		f := 1.0
		if hasValue {
			var err error
			if f, err = strconv.ParseFloat(value, 64); err != nil {
				return Hostile{}, fmt.Errorf("workostest: hostile %s=%q: want a fraction between 0 and 1", name, value)
			}
		}
		*rate = f
	}
	return h, h.validate()
}

func (h *Hostile) validate() error {
	for _, p := range []struct {
		name string
		v    float64
	}{{"EarlyCreatedAt", h.EarlyCreatedAt}, {"Undecodable", h.Undecodable}, {"Silent", h.Silent}, {"DoubleEmit", h.DoubleEmit}} {
		if !(p.v >= 0 && p.v <= 1) {
			return fmt.Errorf("workostest: Hostile.%s is %v: want a fraction between 0 and 1", p.name, p.v)
		}
	}
	return nil
}

// String writes h in the form ParseHostile reads.
func (h Hostile) String() string {
	var parts []string
	if h.Seed != 0 {
		parts = append(parts, "seed="+strconv.FormatInt(h.Seed, 10))
	}
	if h.SwapInPage {
		parts = append(parts, "swap")
	}
	if h.RepeatCursor {
		parts = append(parts, "repeat")
	}
	for _, r := range []struct {
		name string
		v    float64
	}{{"early", h.EarlyCreatedAt}, {"undecodable", h.Undecodable}, {"silent", h.Silent}, {"double", h.DoubleEmit}} {
		if r.v > 0 {
			parts = append(parts, r.name+"="+strconv.FormatFloat(r.v, 'g', -1, 64))
		}
	}
	return strings.Join(parts, ",")
}

// SetHostile replaces the hostile modes (Config.Hostile at start). Page modes
// act on the next page served; Undecodable and Silent on the changes made
// from now on. It panics on rates outside [0, 1].
func (s *Server) SetHostile(h Hostile) {
	if err := h.validate(); err != nil {
		panic(err.Error())
	}
	s.ds.mu.Lock()
	defer s.ds.mu.Unlock()
	s.tl.hostile = h
}

// Hostile returns the current hostile modes.
func (s *Server) Hostile() Hostile {
	s.ds.mu.RLock()
	defer s.ds.mu.RUnlock()
	return s.tl.hostile
}

// HostileChange is a change whose event a hostile mode spoiled.
type HostileChange struct {
	// Event is the event's type (for a silent change, the type it would
	// have had).
	Event string `json:"event"`
	// ID is the event's ID; empty for a silent change, which has no event.
	ID string `json:"id,omitempty"`
	// DirectoryID is the directory changed.
	DirectoryID string `json:"directory_id"`
	// ObjectID is the object changed: the user, group or directory (for a
	// membership, the user).
	ObjectID string `json:"object_id"`
	// At is when the change was made: the event's real created_at.
	At time.Time `json:"at"`
}

// HostileTruth is what the hostile modes did to the event log, for a test to
// check a consumer against. The lists cover the whole log (expired events
// included), in log order.
type HostileTruth struct {
	// Undecodable are the events of the log whose data does not decode.
	Undecodable []HostileChange `json:"undecodable"`
	// Silent are the changes that emitted no event.
	Silent []HostileChange `json:"silent"`
	// DoubleEmitted are the IDs of the events served twice under the
	// current DoubleEmit rate.
	DoubleEmitted []string `json:"double_emitted"`
	// EarlyCreatedAt are the IDs of the events served a day early under the
	// current EarlyCreatedAt rate.
	EarlyCreatedAt []string `json:"early_created_at"`
}

// HostileTruth returns what the hostile modes did so far (see HostileTruth).
func (s *Server) HostileTruth() HostileTruth {
	s.ds.mu.RLock()
	defer s.ds.mu.RUnlock()
	tl := &s.tl
	h := &tl.hostile
	tr := HostileTruth{
		Undecodable: []HostileChange{}, Silent: slices.Clone(tl.silent),
		DoubleEmitted: []string{}, EarlyCreatedAt: []string{},
	}
	if tr.Silent == nil {
		tr.Silent = []HostileChange{}
	}
	for k := range tl.events {
		e := &tl.events[k]
		if e.bad != nil {
			tr.Undecodable = append(tr.Undecodable, *e.bad)
		}
		if h.draw(saltDouble, e.id, h.DoubleEmit) {
			tr.DoubleEmitted = append(tr.DoubleEmitted, e.id)
		}
		if h.draw(saltEarly, e.id, h.EarlyCreatedAt) {
			tr.EarlyCreatedAt = append(tr.EarlyCreatedAt, e.id)
		}
	}
	return tr
}

// UndecodableEvents returns the IDs of the events whose data does not decode.
func (s *Server) UndecodableEvents() []string {
	var ids []string
	for _, c := range s.HostileTruth().Undecodable {
		ids = append(ids, c.ID)
	}
	return ids
}

// SilentChanges returns the changes that emitted no event.
func (s *Server) SilentChanges() []HostileChange { return s.HostileTruth().Silent }

// ---- draws ----

// Salts of the per-event draws, so that the modes pick independent events.
const (
	saltEarly uint64 = iota + 1
	saltUndecodable
	saltSilent
	saltDouble
)

// draw reports whether the event id is picked at rate for the mode salt.
func (h *Hostile) draw(salt uint64, id string, rate float64) bool {
	if !(rate > 0) {
		return false
	}
	f := fnv.New64a()
	_, _ = f.Write([]byte(id))
	x := mix(f.Sum64() ^ mix(uint64(h.Seed)^salt*0x9E3779B97F4A7C15))
	return float64(x>>11)/(1<<53) < rate
}

// early returns the created_at event e is served with.
func (h *Hostile) early(e *eventRec) int64 {
	if h.draw(saltEarly, e.id, h.EarlyCreatedAt) {
		return max(e.created-msPerDay, 0)
	}
	return e.created
}

// ---- emission ----

// payloadIDs are the IDs an event's data names.
type payloadIDs struct {
	ID          string `json:"id"`
	DirectoryID string `json:"directory_id"`
	User        struct {
		ID string `json:"id"`
	} `json:"user"`
	Group struct {
		ID string `json:"id"`
	} `json:"group"`
}

// hostileChange describes the change of an event of type typ with data.
func hostileChange(typ, id string, t int64, data []byte) (HostileChange, payloadIDs) {
	var v payloadIDs
	_ = json.Unmarshal(data, &v)
	c := HostileChange{Event: typ, ID: id, DirectoryID: v.DirectoryID, ObjectID: v.ID, At: time.UnixMilli(t).UTC()}
	switch typ {
	case workos.EventDirectoryActivated, workos.EventDirectoryDeleted:
		c.DirectoryID = v.ID
	case workos.EventGroupUserAdded, workos.EventGroupUserRemoved:
		c.ObjectID = v.User.ID
	}
	return c, v
}

// undecodableData returns data for an event of type typ that is a JSON object
// naming the directory and object of c (and v) but does not decode into the
// type's payload: created_at is a number, and emails, domains or a group's
// name have the wrong type.
func undecodableData(typ string, c HostileChange, v payloadIDs) []byte {
	b := []byte{'{'}
	field := func(key string, value []byte) {
		if len(b) > 1 {
			b = append(b, ',')
		}
		b = appendString(b, key)
		b = append(b, ':')
		b = append(b, value...)
	}
	str := func(s string) []byte { return appendString(nil, s) }
	switch typ {
	case workos.EventDirectoryActivated, workos.EventDirectoryDeleted:
		field("object", str("directory"))
		field("id", str(c.DirectoryID))
		field("directory_id", str(c.DirectoryID))
		field("domains", str("not-an-array"))
	case workos.EventGroupUserAdded, workos.EventGroupUserRemoved:
		field("directory_id", str(c.DirectoryID))
		field("user", append(append(append([]byte(`{"object":"directory_user","id":`), str(v.User.ID)...), `,"emails":"not-an-array"`...), `,"created_at":12}`...))
		field("group", append(append([]byte(`{"object":"directory_group","id":`), str(v.Group.ID)...), `,"name":12,"created_at":12}`...))
		return append(b, '}')
	case workos.EventGroupCreated, workos.EventGroupUpdated, workos.EventGroupDeleted:
		field("object", str("directory_group"))
		field("id", str(c.ObjectID))
		field("directory_id", str(c.DirectoryID))
		field("name", []byte("12"))
	default:
		field("object", str("directory_user"))
		field("id", str(c.ObjectID))
		field("directory_id", str(c.DirectoryID))
		field("emails", str("not-an-array"))
	}
	field("created_at", []byte("12"))
	return append(b, '}')
}

// silence reports whether the event about to be emitted is silenced, recording
// it; a silenced user create mutes the memberships made with it.
func (s *Server) silence(typ string, t int64, data []byte) bool {
	tl := &s.tl
	if !tl.mute {
		return false
	}
	c, _ := hostileChange(typ, "", t, data)
	tl.silent = append(tl.silent, c)
	return true
}

// drawSilent decides whether the user create or delete at t, whose event
// would be the next of the log, goes without events, and mutes emission if
// so. The caller calls unmute when done.
func (s *Server) drawSilent(t int64) bool {
	tl := &s.tl
	h := &tl.hostile
	if !(h.Silent > 0) {
		return false
	}
	if h.draw(saltSilent, s.eventID(t, len(tl.events)), h.Silent) {
		tl.mute = true
		return true
	}
	return false
}

func (s *Server) unmute() { s.tl.mute = false }

// ---- serving ----

// hostilePage turns a page of the log (positions, in display order) into the
// positions served and whether events follow them, for the page modes.
func (h *Hostile) hostilePage(seq eventSeq, q pageQuery, p page) (served []int, more bool) {
	served = make([]int, 0, len(p.keys)+2)
	more = p.after != nil
	forwards := q.before == nil && q.order != orderNormal
	if !forwards || !(h.SwapInPage || h.RepeatCursor || h.DoubleEmit > 0) {
		for _, k := range p.keys {
			served = append(served, int(k/2))
		}
		return served, more
	}
	// The cursor's event, again.
	if q.after != nil && *q.after%2 == 0 {
		x := int(*q.after / 2)
		if n, ok := seq.next(*q.after - 1); ok && n == *q.after &&
			(h.RepeatCursor || h.draw(saltDouble, seq.ev[x].id, h.DoubleEmit)) {
			served = append(served, x)
		}
	}
	firstNew := len(served)
	for _, k := range p.keys {
		pos := int(k / 2)
		served = append(served, pos)
		if h.draw(saltDouble, seq.ev[pos].id, h.DoubleEmit) {
			served = append(served, pos)
		}
	}
	if n := max(q.limit, firstNew+1); len(served) > n {
		served, more = served[:n], true
	}
	// An event doubled at the end of the page comes again at the top of the
	// next one, not here.
	if l := len(served); l >= 2 && served[l-1] == served[l-2] {
		served = served[:l-1]
	}
	// Swap the last two, unless that would end the page on the cursor's
	// event (the walk would not move).
	if l := len(served); h.SwapInPage && l >= 2 && served[l-1] != served[l-2] && l-2 >= firstNew {
		served[l-1], served[l-2] = served[l-2], served[l-1]
	}
	if len(served) == firstNew { // only the cursor's event: nothing follows it
		more = false
	}
	return served, more
}
