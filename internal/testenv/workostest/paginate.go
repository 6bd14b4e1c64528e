package workostest

import (
	"math"
	"slices"
)

// Every list is a sequence of positions (keys) in creation order. A key is
// dir<<32 | index for users and groups, and the directory index for
// directories; because directories' timelines do not overlap, key order is
// (created_at, id) order across directories too.

const (
	keyMin int64 = -1
	keyMax int64 = math.MaxInt64
)

func key(d, i int) int64 { return int64(d)<<32 | int64(i) }

// seq is an ordered set of keys.
type seq interface {
	// next returns the smallest key > k.
	next(k int64) (int64, bool)
	// prev returns the largest key < k.
	prev(k int64) (int64, bool)
}

// rangeSeq is key(d, 0) .. key(d, n-1).
type rangeSeq struct{ d, n int }

func (s rangeSeq) next(k int64) (int64, bool) {
	if s.n == 0 {
		return 0, false
	}
	lo := key(s.d, 0)
	if k < lo {
		return lo, true
	}
	if k-lo < int64(s.n)-1 {
		return k + 1, true
	}
	return 0, false
}

func (s rangeSeq) prev(k int64) (int64, bool) {
	if s.n == 0 {
		return 0, false
	}
	lo, hi := key(s.d, 0), key(s.d, s.n-1)
	if k > hi {
		return hi, true
	}
	if k > lo {
		return k - 1, true
	}
	return 0, false
}

// memberSeq is the members of group j of directory d (n users).
type memberSeq struct {
	d, j, n int
	m       *membership
}

func (s memberSeq) next(k int64) (int64, bool) {
	if s.n == 0 {
		return 0, false
	}
	lo := key(s.d, 0)
	p := 0
	switch {
	case k >= key(s.d, s.n-1):
		return 0, false
	case k >= lo:
		p = int(k-lo) + 1
	}
	i, ok := s.m.nextMember(s.j, p, s.n)
	return key(s.d, i), ok
}

func (s memberSeq) prev(k int64) (int64, bool) {
	if s.n == 0 {
		return 0, false
	}
	lo := key(s.d, 0)
	p := s.n - 1
	switch {
	case k <= lo:
		return 0, false
	case k <= key(s.d, s.n-1):
		p = int(k-lo) - 1
	}
	i, ok := s.m.prevMember(s.j, p, s.n)
	return key(s.d, i), ok
}

// listSeq is an explicit sorted list of keys (small lists only).
type listSeq []int64

func (s listSeq) next(k int64) (int64, bool) {
	i, found := slices.BinarySearch(s, k)
	if found {
		i++
	}
	if i < len(s) {
		return s[i], true
	}
	return 0, false
}

func (s listSeq) prev(k int64) (int64, bool) {
	i, _ := slices.BinarySearch(s, k)
	if i > 0 {
		return s[i-1], true
	}
	return 0, false
}

// allSeq is every user (or group) of every non-deleted directory.
type allSeq struct {
	ds     *dataset
	groups bool
}

func (s allSeq) part(d int) seq {
	dd := s.ds.dirs[d]
	if s.groups {
		return s.ds.groupsSeq(dd)
	}
	return s.ds.usersSeq(dd)
}

func (s allSeq) next(k int64) (int64, bool) {
	for d := max(0, int(k>>32)); d < len(s.ds.dirs); d++ {
		if s.ds.dirs[d].deleted.Load() {
			continue
		}
		if r, ok := s.part(d).next(k); ok {
			return r, true
		}
	}
	return 0, false
}

func (s allSeq) prev(k int64) (int64, bool) {
	for d := min(len(s.ds.dirs)-1, int(k>>32)); d >= 0; d-- {
		if s.ds.dirs[d].deleted.Load() {
			continue
		}
		if r, ok := s.part(d).prev(k); ok {
			return r, true
		}
	}
	return 0, false
}

// order is a validated pagination order.
type order uint8

const (
	orderDesc order = iota
	orderAsc
	orderNormal
)

// pageQuery is a validated list request.
type pageQuery struct {
	order  order
	limit  int
	after  *int64
	before *int64
}

// page is the result of paginate: keys in display order and the keys to put in
// list_metadata (nil for null).
type page struct {
	keys          []int64
	before, after *int64
}

// paginate cuts one page out of s.
//
// Each order has an "after direction": towards newer items for asc and
// normal, towards older for desc. after=X returns the limit items nearest X in
// the after direction; before=X the limit items nearest X in the opposite
// direction; no cursor starts at the head of the display order (oldest for
// asc, newest for desc and normal). Items are shown ascending for asc and
// descending otherwise. list_metadata.after is the page's extreme item in the
// after direction when more items lie beyond it, and list_metadata.before the
// extreme item in the other direction when items lie beyond that one; passing
// either back as the cursor of the same name returns the adjacent page, so a
// walk either way visits every item once.
func paginate(s seq, q pageQuery, buf []int64) page {
	up := q.order != orderDesc // after direction is ascending
	step := func(k int64, ascending bool) (int64, bool) {
		if ascending {
			return s.next(k)
		}
		return s.prev(k)
	}
	keys := buf[:0]
	var from int64
	var ascending bool
	var stop *int64
	switch {
	case q.after != nil:
		from, ascending, stop = *q.after, up, q.before
	case q.before != nil:
		from, ascending = *q.before, !up
	case q.order == orderAsc:
		from, ascending = keyMin, true
	default:
		from, ascending = keyMax, false
	}
	for k := from; len(keys) < q.limit; {
		next, ok := step(k, ascending)
		if !ok || (stop != nil && ((ascending && next >= *stop) || (!ascending && next <= *stop))) {
			break
		}
		keys = append(keys, next)
		k = next
	}
	if len(keys) == 0 {
		return page{keys: keys}
	}
	// Display order: ascending for asc, descending otherwise.
	if ascending != (q.order == orderAsc) {
		slices.Reverse(keys)
	}
	lo, hi := keys[0], keys[len(keys)-1]
	if q.order != orderAsc {
		lo, hi = hi, lo
	}
	p := page{keys: keys}
	_, newer := s.next(hi)
	_, older := s.prev(lo)
	if up {
		if newer {
			p.after = &hi
		}
		if older {
			p.before = &lo
		}
	} else {
		if older {
			p.after = &lo
		}
		if newer {
			p.before = &hi
		}
	}
	return p
}
