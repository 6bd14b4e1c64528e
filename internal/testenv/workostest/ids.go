package workostest

// ID layout. Every ID the fake hands out is a WorkOS-style prefix followed by a
// 26-character Crockford base32 ULID: 10 characters of millisecond timestamp
// (the object's created_at) and 16 characters (80 bits) of payload. The payload
// carries the object's position so that a cursor decodes back to a place in a
// list without any lookup table:
//
//	payload = scrambled(dir:24 | index:32) << 24 | check:24
//
// check is a keyed hash of (kind, dir, index); the 56-bit position is XORed with
// a mask derived from check so the IDs look random. An ID is accepted only when
// check, the position and the timestamp all match what the fake would generate,
// so a typo or an ID of another kind is "unknown", never a silently wrong place.

const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// crockfordValue maps an upper-case Crockford character to its value, or 0xFF.
var crockfordValue = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xFF
	}
	for i := range len(crockford) {
		t[crockford[i]] = byte(i)
	}
	return t
}()

// kind distinguishes the object families; it salts the check hash.
type kind uint8

const (
	kindOrg kind = iota + 1
	kindDirectory
	kindUser
	kindGroup
	kindOrgDomain
)

// prefix returns the WorkOS ID prefix of the kind.
func (k kind) prefix() string {
	switch k {
	case kindOrg:
		return "org_"
	case kindDirectory:
		return "directory_"
	case kindUser:
		return "directory_user_"
	case kindGroup:
		return "directory_group_"
	case kindOrgDomain:
		return "org_domain_"
	}
	return ""
}

const (
	ulidLen    = 26
	maxDirBits = 24
	maxIdxBits = 32
	checkMask  = 1<<24 - 1
	posMask    = 1<<56 - 1
)

// idCodec encodes and decodes IDs for one dataset seed.
type idCodec struct {
	seed uint64
}

func (c idCodec) check(k kind, dir, idx uint32) uint64 {
	return mix(c.seed^uint64(k)*0x9E3779B97F4A7C15^uint64(dir)<<32^uint64(idx)) & checkMask
}

func (c idCodec) mask(k kind, check uint64) uint64 {
	return mix(check^uint64(k)<<40^c.seed*0xD1B54A32D192ED03) & posMask
}

// appendID appends the ID of object (k, dir, idx) created at ms (Unix
// milliseconds) to b.
func (c idCodec) appendID(b []byte, k kind, ms int64, dir, idx uint32) []byte {
	b = append(b, k.prefix()...)
	chk := c.check(k, dir, idx)
	pos := (uint64(dir)<<32 | uint64(idx)) ^ c.mask(k, chk)
	// 80-bit payload: hi holds the top 16 bits, lo the low 64.
	return appendULID(b, ms, pos>>40, pos<<24|chk)
}

// appendULID appends a 26-character ULID: 10 characters of the millisecond
// timestamp ms, then the 80-bit payload hi:lo (hi holds its top 16 bits).
// Equal-length ULIDs sort lexicographically by (ms, payload).
func appendULID(b []byte, ms int64, hi, lo uint64) []byte {
	var out [ulidLen]byte
	t := uint64(ms)
	for i := 9; i >= 0; i-- {
		out[i] = crockford[t&31]
		t >>= 5
	}
	for i := 25; i >= 10; i-- {
		out[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return append(b, out[:]...)
}

// id returns the ID of object (k, dir, idx) as a string.
func (c idCodec) id(k kind, ms int64, dir, idx uint32) string {
	var buf [48]byte
	return string(c.appendID(buf[:0], k, ms, dir, idx))
}

// decode parses an ID of kind k. ok is false when s is not an ID of that kind
// minted with this seed; the caller must still check that the timestamp equals
// the object's created_at and that the position exists.
func (c idCodec) decode(k kind, s string) (ms int64, dir, idx uint32, ok bool) {
	p := k.prefix()
	if len(s) != len(p)+ulidLen || s[:len(p)] != p {
		return 0, 0, 0, false
	}
	u := s[len(p):]
	if crockfordValue[u[0]] > 7 {
		return 0, 0, 0, false
	}
	var t uint64
	for i := range 10 {
		v := crockfordValue[u[i]]
		if v == 0xFF {
			return 0, 0, 0, false
		}
		t = t<<5 | uint64(v)
	}
	var hi, lo uint64
	for i := 10; i < ulidLen; i++ {
		v := crockfordValue[u[i]]
		if v == 0xFF {
			return 0, 0, 0, false
		}
		hi = hi<<5 | lo>>59
		lo = lo<<5 | uint64(v)
	}
	chk := lo & checkMask
	pos := (hi<<40 | lo>>24) ^ c.mask(k, chk)
	dir, idx = uint32(pos>>32), uint32(pos)
	if c.check(k, dir, idx) != chk {
		return 0, 0, 0, false
	}
	return int64(t), dir, idx, true
}

// mix is the SplitMix64 finaliser: a fast, invertible 64-bit hash.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xBF58476D1CE4E5B9
	x ^= x >> 27
	x *= 0x94D049BB133111EB
	x ^= x >> 31
	return x
}
