package verify

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/dsync-export/dsync-export/pkg/schema"
	"github.com/dsync-export/dsync-export/pkg/snapshot"
)

// TestRandomCorruptionNeverCrashesTheVerifier flips bytes in the footer and
// page-index region of a users file, keeping its size: parquet-go panics on
// some of these, and the verifier must turn every one into a report (never a
// crash, never an infrastructure error), most of them invalid.
func TestRandomCorruptionNeverCrashesTheVerifier(t *testing.T) {
	s, dir := localSink(t)
	newFixture(2, 120, 3).write(t, s)
	path := filepath.Join(dir, filepath.FromSlash(snapshot.PartKey(schema.TableDirectoryUsers, testDate, testRun, 0)))
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 11))
	const variants = 400
	invalid := 0
	for i := range variants {
		b := append([]byte(nil), orig...)
		region := min(len(b), 4096)
		for range 1 + rng.IntN(4) {
			b[len(b)-1-rng.IntN(region)] = byte(rng.IntN(256))
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		r, err := Verify(context.Background(), s, testDate, Options{})
		if err != nil {
			t.Fatalf("variant %d: Verify returned an error instead of a report: %v", i, err)
		}
		if !r.Valid {
			invalid++
		}
	}
	if invalid < variants/2 {
		t.Errorf("only %d of %d corrupted variants were reported invalid", invalid, variants)
	}
	t.Logf("%d of %d corrupted variants reported invalid", invalid, variants)
}
