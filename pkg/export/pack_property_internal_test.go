package export

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/dsync-export/dsync-export/pkg/workos"
)

// TestPackUnitsProperties: over random accounts, workers and budgets, no unit
// is empty and every directory is in exactly one unit.
func TestPackUnitsProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for iter := 0; iter < 3000; iter++ {
		n := rng.IntN(60)
		dirs := make([]workos.Directory, n)
		for i := range dirs {
			dirs[i] = workos.Directory{ID: fmt.Sprintf("directory_%d", i)}
			switch rng.IntN(4) {
			case 0:
			case 1:
				dirs[i].Metadata = &workos.DirectoryMetadata{}
			default:
				dirs[i].Metadata = &workos.DirectoryMetadata{Users: workos.DirectoryUserCounts{Active: rng.Int64N(100000), Inactive: rng.Int64N(100)}, Groups: rng.Int64N(5000)}
			}
		}
		cfg := DefaultConfig()
		cfg.Concurrency = 1 + rng.IntN(40)
		if rng.IntN(3) == 0 {
			cfg.PerDirectoryRate, cfg.GlobalRate = 0, 0
		}
		workers := rng.IntN(12)
		budget := []float64{-1, 0, 1, 10, 100, 840, 1e9}[rng.IntN(7)]
		units := packUnits(dirs, cfg, workers, budget)
		seen := map[string]int{}
		ids := map[string]bool{}
		for _, u := range units {
			if len(u.Directories) == 0 {
				t.Fatalf("empty unit %+v", u)
			}
			if ids[u.ID] {
				t.Fatalf("dup unit id")
			}
			ids[u.ID] = true
			for _, d := range u.Directories {
				seen[d]++
			}
		}
		for _, d := range dirs {
			if seen[d.ID] != 1 {
				t.Fatalf("dir %s in %d units", d.ID, seen[d.ID])
			}
		}
		if len(seen) != len(dirs) {
			t.Fatalf("extra dirs")
		}
	}
}

// TestPackUnitsStaysWithinMaxUnits (issue 22): an account of 30,000
// directories, large and small, packs into at most MaxUnits units (the
// state machine's payloads stay within 256 KiB), each directory in one.
func TestPackUnitsStaysWithinMaxUnits(t *testing.T) {
	for _, users := range []int64{10, 2_000_000} { // small ones share units; large ones each want their own
		dirs := make([]workos.Directory, 30_000)
		for i := range dirs {
			dirs[i] = workos.Directory{ID: fmt.Sprintf("directory_%05d", i), Metadata: &workos.DirectoryMetadata{Users: workos.DirectoryUserCounts{Active: users}, Groups: 10}}
		}
		units := packUnits(dirs, DefaultConfig(), 50, 840)
		if len(units) > MaxUnits || (users > 1000 && len(units) != MaxUnits) {
			t.Errorf("%d users each: %d units, want at most %d (exactly, for directories that each want one)", users, len(units), MaxUnits)
		}
		seen := map[string]int{}
		for _, u := range units {
			for _, d := range u.Directories {
				seen[d]++
			}
		}
		for _, d := range dirs {
			if seen[d.ID] != 1 {
				t.Fatalf("%s is in %d units", d.ID, seen[d.ID])
			}
		}
	}
}
