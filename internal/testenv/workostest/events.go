package workostest

import (
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/dsync-export/dsync-export/pkg/workos"
)

// GET /events serves the event log. Positions in the log are keys 2p (event
// p); a cursor that names no event of the log but is a well-formed event ID
// (an expired one, or one from elsewhere) is the odd key between the events
// whose IDs sort around it, so after= and before= mean "created after / before
// that event" either way.

var eventTypeRE = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$`)

// eventCursor maps an event ID to its key (see above).
func (s *Server) eventCursor(id string) (int64, bool) {
	u, ok := strings.CutPrefix(id, workos.EventIDPrefix)
	if !ok || len(u) != ulidLen {
		return 0, false
	}
	u = strings.ToUpper(u)
	if crockfordValue[u[0]] > 7 {
		return 0, false
	}
	for i := range len(u) {
		if crockfordValue[u[i]] == 0xFF {
			return 0, false
		}
	}
	id = workos.EventIDPrefix + u
	ev := s.tl.events
	p := sort.Search(len(ev), func(k int) bool { return ev[k].id >= id })
	if p < len(ev) && ev[p].id == id {
		return 2 * int64(p), true
	}
	return 2*int64(p) - 1, true
}

// eventSeq is the keys of the events at positions [lo, hi) of the given types
// (nil lists: every type) and organization (-1: any).
type eventSeq struct {
	lo, hi int
	lists  [][]int
	org    int
	ev     []eventRec
}

// first returns the smallest position >= p in the lists, or hi.
func (s eventSeq) first(p int) int {
	if s.lists == nil {
		return min(p, s.hi)
	}
	best := s.hi
	for _, l := range s.lists {
		if k, _ := slices.BinarySearch(l, p); k < len(l) && l[k] < best {
			best = l[k]
		}
	}
	return best
}

// last returns the largest position <= p in the lists, or lo-1.
func (s eventSeq) last(p int) int {
	if s.lists == nil {
		return max(p, s.lo-1)
	}
	best := s.lo - 1
	for _, l := range s.lists {
		k, found := slices.BinarySearch(l, p)
		if found {
			k++
		}
		if k > 0 && l[k-1] > best {
			best = l[k-1]
		}
	}
	return best
}

func (s eventSeq) next(k int64) (int64, bool) {
	// The smallest position p with 2p > k.
	p := max(int64(s.lo), k>>1+1)
	for p < int64(s.hi) {
		q := s.first(int(p))
		if q >= s.hi {
			return 0, false
		}
		if s.org < 0 || s.ev[q].org == s.org {
			return 2 * int64(q), true
		}
		p = int64(q) + 1
	}
	return 0, false
}

func (s eventSeq) prev(k int64) (int64, bool) {
	// The largest position p with 2p < k.
	p := min(int64(s.hi-1), -((-k)>>1)-1)
	for p >= int64(s.lo) {
		q := s.last(int(p))
		if q < s.lo {
			return 0, false
		}
		if s.org < 0 || s.ev[q].org == s.org {
			return 2 * int64(q), true
		}
		p = int64(q) - 1
	}
	return 0, false
}

// parseEventTime parses an ISO-8601 range bound: a date-time with a zone (any
// precision) or a date (midnight UTC). It returns Unix milliseconds rounded
// up, so "created at or after" compares exactly.
func parseEventTime(v string) (int64, bool) {
	var t time.Time
	var err error
	if len(v) == len("2006-01-02") {
		t, err = time.Parse(time.DateOnly, v)
	} else {
		t, err = time.Parse(time.RFC3339Nano, v)
	}
	if err != nil || t.Year() < 1970 || t.Year() > 9999 {
		return 0, false
	}
	ms := t.UnixMilli()
	if t.Nanosecond()%int(time.Millisecond) != 0 {
		ms++
	}
	return ms, true
}

// lookupOrg returns the index of an organization ID, or false.
func (ds *dataset) lookupOrg(id string) (int, bool) {
	ms, o, idx, ok := ds.codec.decode(kindOrg, id)
	if !ok || idx != 0 || int(o) >= len(ds.orgs) || ds.orgs[o].created != ms {
		return 0, false
	}
	return int(o), true
}

func (s *Server) listEvents(req *request) response {
	pq, errs := parsePage(req, s.eventCursor)
	var types []string
	badType := false
	for _, v := range req.query["events"] {
		for t := range strings.SplitSeq(v, ",") {
			if t = strings.TrimSpace(t); t == "" {
				continue
			}
			if !eventTypeRE.MatchString(t) {
				badType = true
			}
			types = append(types, t)
		}
	}
	switch {
	case len(types) == 0:
		errs = append(errs, fieldError{"required", "events"})
	case badType:
		errs = append(errs, fieldError{"invalid", "events"})
	}
	ev := s.tl.events
	seq := eventSeq{lo: 0, hi: len(ev), org: -1, ev: ev}
	// Retention: events older than 30 days are gone.
	cut := s.tl.now - workos.EventRetention.Milliseconds()
	seq.lo = sort.Search(len(ev), func(k int) bool { return ev[k].created >= cut })
	for _, b := range []struct {
		name string
		end  bool
	}{{"range_start", false}, {"range_end", true}} {
		v := req.query.Get(b.name)
		if v == "" {
			continue
		}
		ms, ok := parseEventTime(v)
		if !ok {
			errs = append(errs, fieldError{"invalid", b.name})
			continue
		}
		p := sort.Search(len(ev), func(k int) bool { return ev[k].created >= ms })
		if b.end {
			seq.hi = min(seq.hi, p) // created before range_end
		} else {
			seq.lo = max(seq.lo, p) // created at or after range_start
		}
	}
	if len(errs) > 0 {
		return req.invalid(errs)
	}
	if org := req.query.Get("organization_id"); org != "" {
		o, ok := s.ds.lookupOrg(org)
		if !ok {
			return req.badRequest("Organization not found: '" + truncateID(org) + "'.")
		}
		seq.org = o
	}
	// Merge the per-type position lists, unless every type present is asked
	// for.
	slices.Sort(types)
	types = slices.Compact(types)
	all := true
	for typ := range s.tl.byType {
		if !slices.Contains(types, typ) {
			all = false
			break
		}
	}
	if !all {
		seq.lists = [][]int{}
		for _, typ := range types {
			if l := s.tl.byType[typ]; len(l) > 0 {
				seq.lists = append(seq.lists, l)
			}
		}
	}

	var kbuf [100]int64
	p := paginate(seq, pq, kbuf[:0])
	h := &s.tl.hostile
	served, more := h.hostilePage(seq, pq, p)
	b := appendListStart(req.buf)
	for n, pos := range served {
		if n > 0 {
			b = append(b, ',')
		}
		b = appendEvent(b, &ev[pos], h.early(&ev[pos]))
	}
	// The spec's EventList has list_metadata.after only: the page's last
	// event as served, when more follow.
	b = append(b, `],"list_metadata":{"after":`...)
	if !more || len(served) == 0 {
		b = append(b, "null"...)
	} else {
		b = appendString(b, ev[served[len(served)-1]].id)
	}
	return response{status: http.StatusOK, body: append(b, "}}"...)}
}

// appendEvent appends event e, created at created.
func appendEvent(b []byte, e *eventRec, created int64) []byte {
	b = append(b, `{"object":"event","id":"`...)
	b = append(b, e.id...)
	b = append(b, `","event":"`...)
	b = append(b, e.typ...)
	b = append(b, `","data":`...)
	b = append(b, e.data...)
	b = append(b, `,"created_at":`...)
	b = appendTime(b, created)
	return append(b, '}')
}

func truncateID(id string) string {
	if len(id) > 100 {
		return id[:100] + "…"
	}
	return id
}

func (req *request) badRequest(msg string) response {
	return response{status: http.StatusBadRequest, body: appendMessage(req.buf, msg)}
}
