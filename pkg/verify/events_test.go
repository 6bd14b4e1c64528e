package verify

import (
	"bytes"
	"context"
	"testing"

	"github.com/dsync-export/dsync-export/pkg/schema"
	"github.com/dsync-export/dsync-export/pkg/snapshot"
)

// A directory_events file rewritten after the export (same size, other
// bytes) passed: verify never hashed the change log's files.
func TestRewrittenEventsFileFailsChecksum(t *testing.T) {
	t.Parallel()
	s, root := localSink(t)
	w := newFixture(1, 10, 1).write(t, s)
	key := w.keys[schema.TableEvents][0]
	rewrite(t, root, key, func(b []byte) []byte {
		i := bytes.LastIndex(b, []byte("parquet-go")) // the footer's created_by: only the hash covers it
		if i < 0 {
			t.Fatal("no created_by in the footer")
		}
		b[i] = 'P'
		return b
	})
	r := mustVerify(t, s, Options{})
	wantFailure(t, r, CheckChecksums, key, "SHA-256")
	wantOnlyFailures(t, r, CheckChecksums)
}

// A directory_events file of another size than the manifest's passed: verify
// never compared the change log's files with the manifest.
func TestResizedEventsFileFailsObjects(t *testing.T) {
	t.Parallel()
	s, _ := localSink(t)
	w := newFixture(1, 10, 1).write(t, s)
	w.manifest.Events.Files[1].Bytes += 3
	putManifest(t, s, w.manifest)

	r := mustVerify(t, s, Options{})
	wantFailure(t, r, CheckObjects, w.manifest.Events.Files[1].Key, "bytes, the manifest's events record says")
	wantOnlyFailures(t, r, CheckObjects)
}

// A directory_events file that is not Parquet of the events schema fails the
// footer check, and the events check says its events were not checked.
func TestCorruptEventsFile(t *testing.T) {
	t.Parallel()
	s, root := localSink(t)
	w := newFixture(1, 10, 1).write(t, s)
	key := w.keys[schema.TableEvents][0]
	rewrite(t, root, key, func(b []byte) []byte { return bytes.Repeat([]byte("x"), len(b)) })
	r := mustVerify(t, s, Options{})
	wantFailure(t, r, CheckFooters, key, "not a readable Parquet file")
	wantFailure(t, r, CheckEvents, key, "were not checked")
	// The snapshot tables are still checked in full.
	if c, _ := r.Check(CheckUniqueIDs); !c.OK {
		t.Errorf("unique_ids: %+v, want it checked and passed", c)
	}
}

// An unlisted file of the run in an events partition (a part the run wrote
// and left out of its record) was never looked for.
func TestStrayEventsFileOfTheRun(t *testing.T) {
	t.Parallel()
	s, _ := localSink(t)
	fx := newFixture(1, 10, 1)
	fx.write(t, s)
	date := fx.events[0].CreatedAt.UTC().Format(schema.PartitionFormat)
	stray := snapshot.PartKey(schema.TableEvents, date, testRun, 5)
	other := snapshot.PartKey(schema.TableEvents, date, laterRun, 0) // another snapshot's events: not a stray
	for _, k := range []string{stray, other} {
		if err := s.Put(context.Background(), k, []byte("PAR1 leftover"), "application/vnd.apache.parquet"); err != nil {
			t.Fatal(err)
		}
	}
	r := mustVerify(t, s, Options{})
	wantFailure(t, r, CheckStrayObjects, stray, "not listed in its events record")
	wantOnlyFailures(t, r, CheckStrayObjects)
	if c, _ := r.Check(CheckStrayObjects); c.ErrorCount != 1 {
		t.Errorf("stray_objects: %d errors, want 1 (the other run's file is its own snapshot's): %v", c.ErrorCount, c.Errors)
	}
}
