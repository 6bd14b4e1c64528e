package parquetfile

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/parquet-go/parquet-go"
)

// usersFile writes n users in row groups of 300 and returns the file.
func usersFile(t *testing.T, n int) []byte {
	t.Helper()
	store, _ := writeAll(t, Options{MaxRowsPerRowGroup: 300}, manyUsers(n))
	if len(store.parts) != 1 {
		t.Fatalf("%d parts, want 1", len(store.parts))
	}
	return store.parts[0].Bytes()
}

func TestReadFile(t *testing.T) {
	data := usersFile(t, 1_000)
	want := readRows[DirectoryUser](t, data)
	for _, batch := range []int{1, 7, 128, 5_000} {
		// The rows are kept past their batch: the buffer rule says they may be.
		var got []DirectoryUser
		err := ReadFile(bytes.NewReader(data), int64(len(data)), "users.parquet", batch, func(u *DirectoryUser) error {
			got = append(got, *u)
			return nil
		}, parquet.ReadBufferSize(4<<10))
		if err != nil {
			t.Fatalf("batch %d: %v", batch, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("batch %d: rows (-want +got):\n%s", batch, diff)
		}
	}
}

func TestReadRowGroup(t *testing.T) {
	data := usersFile(t, 1_000)
	want := readRows[DirectoryUser](t, data)
	f := openFile(t, data)
	if len(f.RowGroups()) != 4 {
		t.Fatalf("%d row groups, want 4", len(f.RowGroups()))
	}
	var got []DirectoryUser
	for _, rg := range f.RowGroups() {
		err := ReadRowGroup(rg, 256, func(u *DirectoryUser) error {
			got = append(got, *u)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("rows (-want +got):\n%s", diff)
	}
}

func TestReadEmptyFile(t *testing.T) {
	store, _ := writeAll(t, Options{}, []DirectoryUser{})
	data := store.parts[0].Bytes()
	err := ReadFile(bytes.NewReader(data), int64(len(data)), "empty.parquet", 10, func(*DirectoryUser) error {
		t.Error("fn called on an empty file")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestReadStopsAtFnError(t *testing.T) {
	data := usersFile(t, 1_000)
	stop := errors.New("stop")
	calls := 0
	err := ReadFile(bytes.NewReader(data), int64(len(data)), "users.parquet", 128, func(*DirectoryUser) error {
		calls++
		if calls == 200 {
			return stop
		}
		return nil
	})
	if err != stop || calls != 200 {
		t.Fatalf("ReadFile returned %v after %d rows, want fn's error as is after 200", err, calls)
	}
	calls = 0
	err = ReadRowGroup(openFile(t, data).RowGroups()[0], 128, func(*DirectoryUser) error {
		calls++
		return stop
	})
	if err != stop || calls != 1 {
		t.Fatalf("ReadRowGroup returned %v after %d rows, want fn's error as is after 1", err, calls)
	}
}

func TestReadNotParquet(t *testing.T) {
	data := usersFile(t, 10)
	for name, b := range map[string][]byte{"truncated": data[:len(data)/2], "text": []byte("not a parquet file at all")} {
		err := ReadFile(bytes.NewReader(b), int64(len(b)), "x.parquet", 10, func(*DirectoryUser) error { return nil })
		if err == nil || !strings.HasPrefix(err.Error(), "open x.parquet: ") {
			t.Errorf("%s: error %v, want open x.parquet: …", name, err)
		}
	}
}

// TestReadCorruptNeverPanics flips bytes anywhere in a file, keeping its
// size: parquet-go panics on some of these, and ReadFile must return an
// error (or rows) for every one, never panic.
func TestReadCorruptNeverPanics(t *testing.T) {
	data := usersFile(t, 1_000)
	rng := rand.New(rand.NewPCG(3, 5))
	const variants = 300
	failed, panicked := 0, 0
	for i := range variants {
		b := append([]byte(nil), data...)
		for range 1 + rng.IntN(8) {
			b[rng.IntN(len(b))] = byte(rng.IntN(256))
		}
		err := ReadFile(bytes.NewReader(b), int64(len(b)), "x.parquet", 128, func(*DirectoryUser) error { return nil })
		if err == nil {
			continue
		}
		failed++
		if _, ok := errors.AsType[*PanicError](err); ok {
			panicked++
			if !strings.HasPrefix(err.Error(), "x.parquet is not a readable Parquet file: ") {
				t.Errorf("variant %d: a panic is reported as %q", i, err)
			}
		} else if !strings.HasPrefix(err.Error(), "open x.parquet: ") && !strings.HasPrefix(err.Error(), "read x.parquet: ") {
			t.Errorf("variant %d: error %q does not name the file", i, err)
		}
	}
	t.Logf("%d of %d corrupted variants failed, %d of them with a recovered panic", failed, variants, panicked)
	if failed == 0 || panicked == 0 {
		t.Error("no corrupted variant failed with an error and with a panic")
	}
}

// panickingRowGroup is a row group whose column chunks make parquet-go panic,
// as a corrupt one can.
type panickingRowGroup struct{ parquet.RowGroup }

func (panickingRowGroup) ColumnChunks() []parquet.ColumnChunk { panic("corrupt column chunk") }
func (panickingRowGroup) Rows() parquet.Rows                  { panic("corrupt column chunk") }

func TestReadRowGroupPanic(t *testing.T) {
	rg := panickingRowGroup{openFile(t, usersFile(t, 10)).RowGroups()[0]}
	err := ReadRowGroup(rg, 10, func(*DirectoryUser) error { return nil })
	pe, ok := errors.AsType[*PanicError](err)
	if !ok || pe.Value != "corrupt column chunk" || err.Error() != "corrupt column chunk" {
		t.Fatalf("ReadRowGroup returned %#v, want the *PanicError of the panic", err)
	}
}
