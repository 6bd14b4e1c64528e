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
