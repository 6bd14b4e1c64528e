package workostest

// Directory objects carry metadata: {users: {active, inactive}, groups},
// aggregate counts that WorkOS keeps (optional in the spec: older directories
// may lack them). The fake's counts track its state exactly: the generated
// users' states are counted once per directory (in time proportional to its
// users, memory O(1)), and every change Advance makes adjusts per-directory
// deltas (dirOverlay.activeDelta, inactiveDelta; groups are the live groups),
// so memory stays proportional to the changes. Users of any state other than
// "active" count as inactive. Changes without an event (Hostile.Silent) and
// with an undecodable one count like any other: the counts are the state's.

// MetadataMode says which directories carry metadata counts.
type MetadataMode uint8

const (
	// MetadataMixed, the default, gives metadata to most directories: every
	// sixth generated directory (index 5, 11, …) has none, as older
	// directories may; directories activated by Advance have it.
	MetadataMixed MetadataMode = iota
	// MetadataAll gives every directory metadata counts.
	MetadataAll
	// MetadataNone lists every directory without metadata, so that a
	// consumer's "no metadata: skip the check" path runs.
	MetadataNone
)

// hasMetadata reports whether d is rendered with metadata. Call with ds.mu
// held.
func (ds *dataset) hasMetadata(d *dirData) bool {
	switch ds.meta {
	case MetadataAll:
		return true
	case MetadataNone:
		return false
	}
	return d.hasMetadata
}

// SetMetadata changes which directories carry metadata counts from now on.
// It panics on a mode that is not one of the constants.
func (s *Server) SetMetadata(m MetadataMode) {
	if m > MetadataNone {
		panic("workostest: SetMetadata: unknown MetadataMode")
	}
	s.ds.mu.Lock()
	defer s.ds.mu.Unlock()
	s.ds.meta = m
}
