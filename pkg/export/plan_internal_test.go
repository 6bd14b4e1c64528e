package export

import (
	"encoding/json"
	"fmt"
	"math"
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

// syntheticDirectories returns n directories with user counts spread over
// five orders of magnitude, a few huge ones, and some without counts.
func syntheticDirectories(n int, seed uint64) []workos.Directory {
	rng := rand.New(rand.NewPCG(seed, seed))
	dirs := make([]workos.Directory, n)
	for i := range dirs {
		d := workos.Directory{ID: fmt.Sprintf("directory_01SYNTH%019d", i), OrganizationID: fmt.Sprintf("org_01SYNTH%019d", i/3), Name: fmt.Sprintf("Directory %d", i)}
		switch {
		case i%997 == 0:
			// no metadata: cost unknown
		case i%1000 == 1:
			d.Metadata = &workos.DirectoryMetadata{Users: workos.DirectoryUserCounts{Active: 400_000}, Groups: 3_000}
		default:
			users := int64(math.Pow(10, 1+3*rng.Float64()))
			d.Metadata = &workos.DirectoryMetadata{Users: workos.DirectoryUserCounts{Active: users}, Groups: users / 20}
		}
		dirs[i] = d
	}
	return dirs
}

// TestPlanOf5000DirectoriesStaysSmall packs 5,000 directories for 10 workers
// and a 14-minute budget: every directory lands in exactly one unit, huge and
// unknown ones alone, the small units are balanced, and the state payloads
// that carry unit ids stay far under Step Functions' 256 KiB.
func TestPlanOf5000DirectoriesStaysSmall(t *testing.T) {
	dirs := syntheticDirectories(5000, 1)
	cfg := DefaultConfig()
	const workers = 10
	budget := 840.0
	units := packUnits(dirs, cfg, workers, budget)
	seen := map[string]string{}
	var smallMax, smallMin = 0.0, math.Inf(1)
	for _, u := range units {
		if len(u.Directories) == 0 {
			t.Fatalf("unit %s is empty", u.ID)
		}
		for _, id := range u.Directories {
			if prev, dup := seen[id]; dup {
				t.Fatalf("directory %s is in units %s and %s", id, prev, u.ID)
			}
			seen[id] = u.ID
		}
		if len(u.Directories) > 1 {
			smallMax, smallMin = math.Max(smallMax, u.EstimateSeconds), math.Min(smallMin, u.EstimateSeconds)
			if u.EstimateSeconds > budget {
				t.Errorf("unit %s packs %d directories into %.0f s, over the %.0f s budget", u.ID, len(u.Directories), u.EstimateSeconds, budget)
			}
		}
	}
	if len(seen) != len(dirs) {
		t.Fatalf("%d of %d directories planned", len(seen), len(dirs))
	}
	perDir := rateOr(cfg.PerDirectoryRate)
	share := rateOr(cfg.GlobalRate) / workers
	for i := range dirs {
		c := costOf(i, &dirs[i], perDir)
		alone := c.known && (c.sec > budget || c.req/share > budget)
		u := seen[dirs[i].ID]
		var n int
		for _, x := range units {
			if x.ID == u {
				n = len(x.Directories)
			}
		}
		if alone && n != 1 {
			t.Errorf("directory %s (%.0f s) shares unit %s with %d others, want a unit of its own", dirs[i].ID, c.sec, u, n-1)
		}
		if !c.known && n == 1 {
			t.Errorf("directory %s without counts has unit %s to itself: want it packed at the median cost", dirs[i].ID, u)
		}
	}
	if smallMin < smallMax*0.8 {
		t.Errorf("packed units range from %.0f s to %.0f s: want them within 20%%", smallMin, smallMax)
	}
	ids := make([]string, len(units))
	for i, u := range units {
		ids[i] = u.ID
	}
	out, _ := json.Marshal(map[string]any{"step": "plan", "snapshot_date": "2026-12-06", "run_id": "20261206T020000.123Z-1a2b3c", "units": ids, "workers": workers, "directories": len(dirs)})
	if len(out) > 64<<10 {
		t.Errorf("the plan step's output is %d bytes for %d units: want under 64 KiB (Step Functions allows 256 KiB)", len(out), len(units))
	}
	item, _ := json.Marshal(map[string]any{"step": "unit", "snapshot_date": "2026-12-06", "run_id": "20261206T020000.123Z-1a2b3c", "unit": ids[len(ids)-1], "chunk": map[string]bool{"done": false}})
	if len(item) > 1<<10 {
		t.Errorf("a unit iteration's state is %d bytes", len(item))
	}
	t.Logf("5,000 directories -> %d units (%d packed, %.0f-%.0f s each); plan output %d bytes, iteration state %d bytes",
		len(units), len(units)-countAlone(units), smallMin, smallMax, len(out), len(item))
}

// TestPlanOf5000HugeDirectoriesStaysSmall: 5,000 directories each too big
// for one invocation make 5,000 units, and the plan step's output still fits.
func TestPlanOf5000HugeDirectoriesStaysSmall(t *testing.T) {
	dirs := make([]workos.Directory, 5000)
	for i := range dirs {
		dirs[i] = workos.Directory{ID: fmt.Sprintf("directory_01HUGE%020d", i), Metadata: &workos.DirectoryMetadata{Users: workos.DirectoryUserCounts{Active: 200_000}, Groups: 1000}}
	}
	units := packUnits(dirs, DefaultConfig(), 10, 840)
	if len(units) != 5000 {
		t.Fatalf("%d units, want one per huge directory", len(units))
	}
	ids := make([]string, len(units))
	for i, u := range units {
		ids[i] = u.ID
	}
	out, _ := json.Marshal(map[string]any{"step": "plan", "snapshot_date": "2026-12-06", "run_id": "20261206T020000.123Z-1a2b3c", "units": ids, "workers": 10, "directories": len(dirs)})
	if len(out) > 64<<10 {
		t.Errorf("the plan step's output is %d bytes: want under 64 KiB", len(out))
	}
	t.Logf("5,000 huge directories -> plan output %d bytes", len(out))
}

func countAlone(units []Unit) int {
	n := 0
	for _, u := range units {
		if len(u.Directories) == 1 {
			n++
		}
	}
	return n
}

// TestPackUnitsInOneProcess: no budget and one worker make one unit, so a
// run in one process writes one file per table, as before work units.
func TestPackUnitsInOneProcess(t *testing.T) {
	dirs := syntheticDirectories(300, 2)
	units := packUnits(dirs, DefaultConfig(), 1, 0)
	if len(units) != 1 || len(units[0].Directories) != 300 {
		t.Fatalf("got %d units, want one with every directory", len(units))
	}
}
