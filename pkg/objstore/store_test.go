package objstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dsync-export/dsync-export/internal/testenv/awstest"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// stores returns one Store of each kind, each on a fresh destination.
func stores(t *testing.T) map[string]Store {
	srv := awstest.StartS3(t)
	srv.CreateBucket(t, "conformance")
	s3s, err := Open(testCtx(t), "s3://conformance/exports/v1/", Options{S3Client: srv.Client(t)})
	if err != nil {
		t.Fatal(err)
	}
	local, err := Open(testCtx(t), filepath.Join(t.TempDir(), "out"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	return map[string]Store{"s3": s3s, "local": local}
}

func TestStoreConformance(t *testing.T) {
	t.Parallel()
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := testCtx(t)

			// Create + Close commits; Get reads it back.
			o, err := s.Create(ctx, "users/dt=2026-01-02/part-0.parquet", "application/vnd.apache.parquet")
			if err != nil {
				t.Fatal(err)
			}
			for _, chunk := range []string{"PAR1", "-data-", "PAR1"} {
				if _, err := io.WriteString(o, chunk); err != nil {
					t.Fatal(err)
				}
			}
			if err := o.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if err := o.CloseWithError(errors.New("too late")); err != nil {
				t.Errorf("CloseWithError after Close = %v, want the Close result (nil)", err)
			}
			got, err := s.Get(ctx, "users/dt=2026-01-02/part-0.parquet")
			if err != nil || string(got) != "PAR1-data-PAR1" {
				t.Fatalf("Get = %q, %v", got, err)
			}

			// Abort leaves nothing.
			o, err = s.Create(ctx, "users/dt=2026-01-02/aborted.parquet", "")
			if err != nil {
				t.Fatal(err)
			}
			io.WriteString(o, "partial")
			if err := o.CloseWithError(errors.New("writer failed")); err != nil {
				t.Fatalf("CloseWithError: %v", err)
			}
			if _, err := s.Get(ctx, "users/dt=2026-01-02/aborted.parquet"); !errors.Is(err, ErrNotExist) {
				t.Errorf("Get of aborted object: err = %v, want ErrNotExist", err)
			}

			// Put, then List with prefixes, sorted like S3 ("-" sorts before "/").
			for _, k := range []string{"users/dt=2026-01-03/part-0.parquet", "users-extra.txt", "_manifest.json", "groups/x"} {
				if err := s.Put(ctx, k, []byte(k), "text/plain"); err != nil {
					t.Fatalf("Put(%s): %v", k, err)
				}
			}
			all, err := s.List(ctx, "")
			if err != nil {
				t.Fatal(err)
			}
			want := []ObjectInfo{
				{Key: "_manifest.json", Size: 14},
				{Key: "groups/x", Size: 8},
				{Key: "users-extra.txt", Size: 15},
				{Key: "users/dt=2026-01-02/part-0.parquet", Size: 14},
				{Key: "users/dt=2026-01-03/part-0.parquet", Size: 34},
			}
			for i := range all {
				if age := time.Since(all[i].LastModified); age < -time.Minute || age > time.Minute {
					t.Errorf("List: %s was last modified %s ago, want about now", all[i].Key, age)
				}
				all[i].LastModified = time.Time{}
			}
			if diff := cmp.Diff(want, all); diff != "" {
				t.Errorf("List(\"\") mismatch (-want +got):\n%s", diff)
			}
			for prefix, wantKeys := range map[string][]string{
				"users/":                  {"users/dt=2026-01-02/part-0.parquet", "users/dt=2026-01-03/part-0.parquet"},
				"users":                   {"users-extra.txt", "users/dt=2026-01-02/part-0.parquet", "users/dt=2026-01-03/part-0.parquet"},
				"users/dt=2026-01-03":     {"users/dt=2026-01-03/part-0.parquet"},
				"users/dt=2026-01-03/par": {"users/dt=2026-01-03/part-0.parquet"},
				"nothing/":                nil,
			} {
				infos, err := s.List(ctx, prefix)
				if err != nil {
					t.Fatalf("List(%q): %v", prefix, err)
				}
				var keys []string
				for _, i := range infos {
					keys = append(keys, i.Key)
				}
				if diff := cmp.Diff(wantKeys, keys); diff != "" {
					t.Errorf("List(%q) mismatch (-want +got):\n%s", prefix, diff)
				}
			}

			// OpenRange: ranged reads, EOF at the end, counted.
			r, size, err := s.OpenRange(ctx, "users/dt=2026-01-02/part-0.parquet")
			if err != nil {
				t.Fatal(err)
			}
			if size != 14 {
				t.Errorf("size = %d, want 14", size)
			}
			buf := make([]byte, 4)
			if n, err := r.ReadAt(buf, 10); n != 4 || err != nil || string(buf) != "PAR1" {
				t.Errorf("ReadAt(4, 10) = %d, %v, %q", n, err, buf)
			}
			buf = make([]byte, 8)
			if n, err := r.ReadAt(buf, 8); n != 6 || err != io.EOF || string(buf[:n]) != "a-PAR1" {
				t.Errorf("ReadAt(8, 8) = %d, %v, %q; want 6, EOF, \"a-PAR1\"", n, err, buf[:n])
			}
			if n, err := r.ReadAt(buf, 14); n != 0 || err != io.EOF {
				t.Errorf("ReadAt at size = %d, %v; want 0, EOF", n, err)
			}
			if st := r.Stats(); st.Bytes != 10 || st.Requests < 2 {
				t.Errorf("Stats = %+v, want 10 bytes in at least 2 requests", st)
			}
			if err := r.Close(); err != nil {
				t.Error(err)
			}
			if _, _, err := s.OpenRange(ctx, "missing.parquet"); !errors.Is(err, ErrNotExist) {
				t.Errorf("OpenRange(missing): err = %v, want ErrNotExist", err)
			}
			if _, err := s.Get(ctx, "missing.parquet"); !errors.Is(err, ErrNotExist) || !strings.Contains(err.Error(), "missing.parquet does not exist") {
				t.Errorf("Get(missing): err = %v, want ErrNotExist naming the key", err)
			}

			// Delete: present and missing keys alike.
			if err := s.Delete(ctx, []string{"users/dt=2026-01-02/part-0.parquet", "groups/x", "never-existed"}); err != nil {
				t.Fatalf("Delete: %v", err)
			}
			all, err = s.List(ctx, "")
			if err != nil {
				t.Fatal(err)
			}
			var keys []string
			for _, i := range all {
				keys = append(keys, i.Key)
			}
			if diff := cmp.Diff([]string{"_manifest.json", "users-extra.txt", "users/dt=2026-01-03/part-0.parquet"}, keys); diff != "" {
				t.Errorf("after Delete (-want +got):\n%s", diff)
			}

			// Keys that could escape the destination are refused everywhere.
			for _, bad := range []string{"", "/abs", "a/../b", "..", "a//b", "dir/", `a\b`} {
				if _, err := s.Create(ctx, bad, ""); err == nil {
					t.Errorf("Create(%q) succeeded", bad)
				}
				if err := s.Put(ctx, bad, nil, ""); err == nil {
					t.Errorf("Put(%q) succeeded", bad)
				}
				if err := s.Delete(ctx, []string{bad}); err == nil {
					t.Errorf("Delete(%q) succeeded", bad)
				}
			}
			if _, err := s.List(ctx, "../"); err == nil {
				t.Error(`List("../") succeeded`)
			}
		})
	}
}

func TestString(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	dir := t.TempDir()
	for dest, want := range map[string]string{
		"s3://bucket/a/b/": "s3://bucket/a/b",
		"s3://bucket":      "s3://bucket/",
		"file://" + dir:    "file://" + dir,
		dir + "/sub/":      "file://" + dir + "/sub",
	} {
		s, err := Open(ctx, dest, Options{S3Client: awsDummyClient()})
		if err != nil {
			t.Fatalf("Open(%s): %v", dest, err)
		}
		if got := s.String(); got != want {
			t.Errorf("Open(%s).String() = %q, want %q", dest, got, want)
		}
	}
	for _, bad := range []string{"", "s3://", "s3:///prefix", "gs://bucket/x", "file://host/x", "s3://b/a/../c"} {
		if _, err := Open(ctx, bad, Options{S3Client: awsDummyClient()}); err == nil {
			t.Errorf("Open(%q) succeeded", bad)
		}
	}
	if _, err := Open(ctx, "s3://b/p", Options{S3Client: awsDummyClient(), PartSize: 1 << 20}); err == nil || !strings.Contains(err.Error(), "5 MiB") {
		t.Errorf("Open with a 1 MiB part size: err = %v, want the S3 minimum named", err)
	}
}

func TestLocalCommitIsAtomic(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	root := t.TempDir()
	s, err := Open(ctx, root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	o, err := s.Create(ctx, "t/dt=1/f.parquet", "")
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(o, "half")
	// Before Close: the final name does not exist and List hides the temp file.
	if _, err := os.Stat(filepath.Join(root, "t/dt=1/f.parquet")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("final file visible before Close: %v", err)
	}
	if infos, err := s.List(ctx, ""); err != nil || len(infos) != 0 {
		t.Errorf("List during the write = %v, %v; want nothing", infos, err)
	}
	entries, _ := os.ReadDir(filepath.Join(root, "t/dt=1"))
	if len(entries) != 1 || !strings.Contains(entries[0].Name(), tmpMarker) {
		t.Errorf("folder holds %v, want one temporary file", entries)
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(root, "t/dt=1/f.parquet"))
	if err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("after Close: %v, %v; want a 0644 file", fi, err)
	}
	// Deleting the last file removes the folders it emptied, not the root.
	if err := s.Delete(ctx, []string{"t/dt=1/f.parquet"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "t")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("empty folder t left behind: %v", err)
	}
	if _, err := os.Stat(root); err != nil {
		t.Errorf("root removed: %v", err)
	}
}

func TestLocalCancelledContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	root := t.TempDir()
	s, err := Open(ctx, "file://"+root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	o, err := s.Create(ctx, "f", "")
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := o.Write([]byte("x")); !errors.Is(err, context.Canceled) {
		t.Errorf("Write after cancel: %v, want context.Canceled", err)
	}
	if err := o.Close(); !errors.Is(err, context.Canceled) {
		t.Errorf("Close after cancel: %v, want context.Canceled", err)
	}
	if entries, _ := os.ReadDir(root); len(entries) != 0 {
		t.Errorf("cancelled write left %v", entries)
	}
}

func TestConcurrentPuts(t *testing.T) {
	t.Parallel()
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := testCtx(t)
			var wg sync.WaitGroup
			errs := make(chan error, 40)
			for i := range 40 {
				wg.Go(func() {
					errs <- s.Put(ctx, fmt.Sprintf("p/%02d", i), bytes.Repeat([]byte{'x'}, i), "")
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Error(err)
				}
			}
			infos, err := s.List(ctx, "p/")
			if err != nil || len(infos) != 40 || infos[39].Size != 39 {
				t.Errorf("List after 40 concurrent puts: %d objects, %v", len(infos), err)
			}
		})
	}
}

// TestLocalCloseAfterFailedWriteCommitsNothing makes a write fail (the file
// is swapped for a read-only handle): Close must refuse to commit the
// truncated file, as the S3 store does.
func TestLocalCloseAfterFailedWriteCommitsNothing(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(context.Background(), dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	obj, err := s.Create(context.Background(), "t/part.parquet", "")
	if err != nil {
		t.Fatal(err)
	}
	lo := obj.(*localObject)
	ro, err := os.Open(lo.f.Name())
	if err != nil {
		t.Fatal(err)
	}
	lo.f.Close()
	lo.f = ro
	if _, err := obj.Write([]byte("data")); err == nil {
		t.Fatal("write to a read-only handle succeeded")
	}
	if _, err := obj.Write([]byte("more")); err == nil {
		t.Error("a write after a failed write succeeded")
	}
	if err := obj.Close(); err == nil {
		t.Error("Close after a failed write reported success")
	}
	if _, err := os.Stat(filepath.Join(dir, "t", "part.parquet")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a truncated file was committed (stat err %v)", err)
	}
}

func TestParseS3URL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string][2]string{
		"s3://bucket":           {"bucket", ""},
		"s3://bucket/":          {"bucket", ""},
		"s3://bucket/a/b/":      {"bucket", "a/b"},
		"s3://bucket//a/b":      {"bucket", "a/b"},
		"s3://my.bucket-1/snap": {"my.bucket-1", "snap"},
	} {
		b, p, err := ParseS3URL(in)
		if err != nil || b != want[0] || p != want[1] {
			t.Errorf("ParseS3URL(%q) = %q, %q, %v; want %q, %q", in, b, p, err, want[0], want[1])
		}
	}
	for in, want := range map[string]string{
		"s3://":          `"s3://" has no bucket: use s3://bucket/prefix`,
		"s3:///prefix":   `"s3:///prefix" has no bucket: use s3://bucket/prefix`,
		"s3://b/a/../c":  `"s3://b/a/../c" has an invalid prefix: use s3://bucket/some/prefix`,
		"s3://b/a//c":    `"s3://b/a//c" has an invalid prefix: use s3://bucket/some/prefix`,
		`s3://b/a\c`:     `"s3://b/a\\c" has an invalid prefix: use s3://bucket/some/prefix`,
		"gs://bucket/x":  `"gs://bucket/x" is not an S3 URL: use s3://bucket/prefix`,
		"/local/folder/": `"/local/folder/" is not an S3 URL: use s3://bucket/prefix`,
	} {
		if _, _, err := ParseS3URL(in); err == nil || err.Error() != want {
			t.Errorf("ParseS3URL(%q) error = %v, want %s", in, err, want)
		}
	}
	// Open reports the same problems, prefixed.
	_, err := Open(testCtx(t), "s3:///prefix", Options{S3Client: awsDummyClient()})
	if want := `objstore: destination "s3:///prefix" has no bucket: use s3://bucket/prefix`; err == nil || err.Error() != want {
		t.Errorf("Open error = %v, want %s", err, want)
	}
}

// TestPutIfAbsentOneWinner races writers on one key: exactly one wins, every
// other gets ErrExist, the object holds the winner's whole body, and a reader
// polling during the race never sees a partial or mixed body. On S3 this runs
// against versitygw, whose posix backend (v1.8.0) evaluates If-None-Match: *
// under a per-key publish lock: if the header were not sent, or the server
// ignored it, every writer would succeed and the test would fail.
func TestPutIfAbsentOneWinner(t *testing.T) {
	t.Parallel()
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			const writers, key = 16, "chain/00000001.json"
			bodies := make([][]byte, writers)
			for i := range bodies {
				// Large enough that a write in progress could be seen half-done.
				bodies[i] = bytes.Repeat([]byte{'a' + byte(i)}, 256<<10)
			}
			isBody := func(b []byte) bool {
				return len(b) == 256<<10 && bytes.Count(b, b[:1]) == len(b) && b[0] >= 'a' && b[0] < 'a'+writers
			}

			stop := make(chan struct{})
			readerDone := make(chan error, 1)
			go func() {
				for {
					select {
					case <-stop:
						readerDone <- nil
						return
					default:
					}
					b, err := s.Get(ctx, key)
					if err == nil && !isBody(b) {
						readerDone <- fmt.Errorf("a reader saw a partial or mixed body: %d bytes", len(b))
						return
					}
					if err != nil && !errors.Is(err, ErrNotExist) {
						readerDone <- fmt.Errorf("Get during the race: %w", err)
						return
					}
				}
			}()

			start := make(chan struct{})
			errs := make([]error, writers)
			var wg sync.WaitGroup
			for i := range writers {
				wg.Go(func() {
					<-start
					errs[i] = s.PutIfAbsent(ctx, key, bodies[i], "application/json")
				})
			}
			close(start)
			wg.Wait()
			close(stop)
			if err := <-readerDone; err != nil {
				t.Error(err)
			}

			winner := -1
			for i, err := range errs {
				switch {
				case err == nil && winner >= 0:
					t.Errorf("writers %d and %d both succeeded", winner, i)
				case err == nil:
					winner = i
				case !errors.Is(err, ErrExist):
					t.Errorf("writer %d: err = %v, want ErrExist", i, err)
				case !strings.Contains(err.Error(), "00000001.json already exists: another writer created it first"):
					t.Errorf("writer %d: err = %q, want it to name the key and say another writer won", i, err)
				}
			}
			if winner < 0 {
				t.Fatalf("no writer succeeded: %v", errs)
			}
			got, err := s.Get(ctx, key)
			if err != nil || !bytes.Equal(got, bodies[winner]) {
				t.Errorf("Get after the race = %d bytes of %q, %v; want the body of writer %d", len(got), got[:min(len(got), 1)], err, winner)
			}
			// No temporary file or second object is left behind.
			infos, err := s.List(ctx, "")
			if err != nil || len(infos) != 1 || infos[0].Key != key {
				t.Errorf("List after the race = %v, %v; want only %s", infos, err, key)
			}
		})
	}
}

// TestPutIfAbsentKeepsExisting checks that PutIfAbsent never replaces an
// object, whether Put or PutIfAbsent wrote it, and that it creates the folders
// of a new key as Put does.
func TestPutIfAbsentKeepsExisting(t *testing.T) {
	t.Parallel()
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			if err := s.PutIfAbsent(ctx, "a/b/link", []byte("first"), "text/plain"); err != nil {
				t.Fatalf("PutIfAbsent on a new key: %v", err)
			}
			if err := s.PutIfAbsent(ctx, "a/b/link", []byte("second"), "text/plain"); !errors.Is(err, ErrExist) {
				t.Errorf("second PutIfAbsent: err = %v, want ErrExist", err)
			}
			if err := s.Put(ctx, "put", []byte("by Put"), ""); err != nil {
				t.Fatal(err)
			}
			if err := s.PutIfAbsent(ctx, "put", nil, ""); !errors.Is(err, ErrExist) {
				t.Errorf("PutIfAbsent over Put: err = %v, want ErrExist", err)
			}
			for key, want := range map[string]string{"a/b/link": "first", "put": "by Put"} {
				if got, err := s.Get(ctx, key); err != nil || string(got) != want {
					t.Errorf("Get(%s) = %q, %v; want %q unchanged", key, got, err, want)
				}
			}
			// An empty body is an object like any other.
			if err := s.PutIfAbsent(ctx, "empty", nil, ""); err != nil {
				t.Errorf("PutIfAbsent(empty): %v", err)
			}
			if err := s.PutIfAbsent(ctx, "empty", []byte("x"), ""); !errors.Is(err, ErrExist) {
				t.Errorf("PutIfAbsent over an empty object: err = %v, want ErrExist", err)
			}
			// Other failures are not ErrExist.
			if err := s.PutIfAbsent(ctx, "a/../b", nil, ""); err == nil || errors.Is(err, ErrExist) {
				t.Errorf("PutIfAbsent(invalid key): err = %v, want a non-ErrExist error", err)
			}
			infos, err := s.List(ctx, "")
			if err != nil || len(infos) != 3 {
				t.Errorf("List = %v, %v; want a/b/link, empty and put only", infos, err)
			}
		})
	}
}
