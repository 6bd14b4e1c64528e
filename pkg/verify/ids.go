package verify

import (
	"hash/maphash"
	"slices"
	"sync"
)

// ID sets.
//
// A table's IDs are kept as 64-bit hashes rather than strings: an entry costs
// 16 bytes (hash + directory index) instead of ~100 for a map[string] entry,
// so 1M users take 16 MiB. Hashes use hash/maphash with a seed chosen per run.
//
//   - Duplicates are found by sorting the hashes; the IDs behind equal hashes
//     are then re-read as exact strings, so a hash collision is never reported
//     as a duplicate, and a reported duplicate names the ID and its rows.
//   - A reference (a membership's user_id) is looked up by hash. A dangling
//     reference is missed only if its hash collides with one of the n IDs of
//     the referenced table: probability about n/2^64 per reference (5e-14 for
//     1M users), negligible for a verifier.

// idEntry is one row of a table with IDs: the ID's hash and the index of the
// row's directory (see verifier.dirIndex).
type idEntry struct {
	h   uint64
	dir uint32
}

// idSet holds the entries of one table. add is safe for concurrent use; the
// lookups are safe once sort has returned.
type idSet struct {
	mu sync.Mutex
	e  []idEntry
}

func (s *idSet) add(batch []idEntry) {
	s.mu.Lock()
	s.e = append(s.e, batch...)
	s.mu.Unlock()
}

func (s *idSet) sort() {
	slices.SortFunc(s.e, func(a, b idEntry) int {
		switch {
		case a.h < b.h:
			return -1
		case a.h > b.h:
			return 1
		}
		return int(a.dir) - int(b.dir)
	})
}

func (s *idSet) len() int { return len(s.e) }

// lookup reports whether an entry with hash h exists and whether one of the
// entries with that hash has directory dir; otherDir is the directory of the
// first entry when none matches.
func (s *idSet) lookup(h uint64, dir uint32) (exists, sameDir bool, otherDir uint32) {
	i, found := slices.BinarySearchFunc(s.e, h, func(e idEntry, h uint64) int {
		switch {
		case e.h < h:
			return -1
		case e.h > h:
			return 1
		}
		return 0
	})
	if !found {
		return false, false, 0
	}
	for j := i; j < len(s.e) && s.e[j].h == h; j++ {
		if s.e[j].dir == dir {
			return true, true, dir
		}
	}
	return true, false, s.e[i].dir
}

// dupHashes returns the hashes held by more than one entry (sorted set).
func (s *idSet) dupHashes() map[uint64]struct{} {
	return dupsOf(s.e, func(e idEntry) uint64 { return e.h })
}

// hashSet holds bare hashes (the (group_id, user_id) pairs of memberships).
type hashSet struct {
	mu sync.Mutex
	h  []uint64
}

func (s *hashSet) add(batch []uint64) {
	s.mu.Lock()
	s.h = append(s.h, batch...)
	s.mu.Unlock()
}

func (s *hashSet) dupHashes() map[uint64]struct{} {
	slices.Sort(s.h)
	return dupsOf(s.h, func(h uint64) uint64 { return h })
}

// dupsOf returns the keys that occur more than once in sorted.
func dupsOf[E any](sorted []E, key func(E) uint64) map[uint64]struct{} {
	var dups map[uint64]struct{}
	for i := 1; i < len(sorted); i++ {
		if k := key(sorted[i]); k == key(sorted[i-1]) {
			if dups == nil {
				dups = make(map[uint64]struct{})
			}
			dups[k] = struct{}{}
		}
	}
	return dups
}

// hasher hashes IDs and (group, user) pairs with one seed. The zero value is
// not usable; see newHasher.
type hasher struct{ seed maphash.Seed }

func newHasher() hasher { return hasher{seed: maphash.MakeSeed()} }

func (h hasher) id(b []byte) uint64 { return maphash.Bytes(h.seed, b) }

func (h hasher) idString(s string) uint64 { return maphash.String(h.seed, s) }

// pair hashes a membership key; the 0 byte cannot occur in an ID, so
// ("ab","c") and ("a","bc") hash differently.
func (h hasher) pair(group string, user []byte) uint64 {
	var m maphash.Hash
	m.SetSeed(h.seed)
	m.WriteString(group)
	m.WriteByte(0)
	m.Write(user)
	return m.Sum64()
}
