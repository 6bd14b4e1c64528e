package parquetfile

import (
	"errors"
	"fmt"
	"io"

	"github.com/parquet-go/parquet-go"
)

// The Parquet row reader. One loop reads the rows of a whole file (ReadFile,
// as the export's delta unit reads its base files) or of one row group
// (ReadRowGroup, as the verifier decodes directory_events), batch rows at a
// time, under two rules:
//
//   - Buffer rule: the batch buffer is cleared before every read, so
//     parquet-go never decodes into a previous row's strings, slices or
//     pointers. fn gets a pointer into the buffer, valid only during the
//     call; it may keep the row's value (a copy of *row) and everything the
//     row refers to.
//   - Panic rule: parquet-go panics on some corrupt inputs. A panic while
//     opening the file, making the reader, reading or closing it is
//     recovered and returned as a *PanicError. fn is not guarded: a panic
//     of fn is a bug of the caller, and propagates.

// PanicError is a panic of parquet-go, recovered while reading a file.
type PanicError struct {
	// Value is the value parquet-go panicked with.
	Value any
}

// Error returns the panic's value, formatted with %v.
func (e *PanicError) Error() string { return fmt.Sprint(e.Value) }

// ReadFile opens the Parquet file r of size bytes with opts and calls fn for
// every row, decoding batch rows at a time into a buffer cleared before each
// batch. name names the file in the errors: "open name: …" and "read name:
// …" wrap parquet-go's errors, and "name is not a readable Parquet file: …"
// wraps a *PanicError. An error of fn stops the read and is returned as is.
// Memory is bounded by the batch and the column buffers (ReadBufferSize),
// whatever the file's size.
func ReadFile[T any](r io.ReaderAt, size int64, name string, batch int, fn func(*T) error, opts ...parquet.FileOption) error {
	var f *parquet.File
	err := guard(func() (err error) {
		f, err = parquet.OpenFile(r, size, opts...)
		return err
	})
	if err != nil {
		return fileError("open", name, err)
	}
	fnErr, err := readLoop(func() *parquet.GenericReader[T] { return parquet.NewGenericReader[T](f) }, batch, fn)
	switch {
	case fnErr != nil:
		return fnErr
	case err != nil:
		return fileError("read", name, err)
	}
	return nil
}

// fileError names file name in err, a parquet-go error of op or a panic.
func fileError(op, name string, err error) error {
	if pe, ok := errors.AsType[*PanicError](err); ok {
		return fmt.Errorf("%s is not a readable Parquet file: %w", name, pe)
	}
	return fmt.Errorf("%s %s: %w", op, name, err)
}

// ReadRowGroup calls fn for every row of rg, decoding batch rows at a time
// into a buffer cleared before each batch. It returns the first error of fn
// as is, parquet-go's read error as is, or a *PanicError.
func ReadRowGroup[T any](rg parquet.RowGroup, batch int, fn func(*T) error) error {
	fnErr, err := readLoop(func() *parquet.GenericReader[T] { return parquet.NewGenericRowGroupReader[T](rg) }, batch, fn)
	if fnErr != nil {
		return fnErr
	}
	return err
}

// readLoop is the loop of ReadFile and ReadRowGroup: it makes a reader with
// newReader and calls fn for every row, until the end of the rows, an error
// of fn (fnErr) or an error or panic of parquet-go (err).
func readLoop[T any](newReader func() *parquet.GenericReader[T], batch int, fn func(*T) error) (fnErr, err error) {
	var r *parquet.GenericReader[T]
	if err := guard(func() error { r = newReader(); return nil }); err != nil {
		return nil, err
	}
	defer func() {
		// Close's error is ignored (the rows are read); its panic is not.
		if perr := guard(func() error { r.Close(); return nil }); perr != nil {
			fnErr, err = nil, perr
		}
	}()
	buf := make([]T, batch)
	for {
		clear(buf) // the buffer rule: rows are passed on, never decode into their memory
		var n int
		rerr := guard(func() (err error) {
			n, err = r.Read(buf)
			return err
		})
		for i := range n {
			if err := fn(&buf[i]); err != nil {
				return err, nil
			}
		}
		if errors.Is(rerr, io.EOF) || (rerr == nil && n == 0) {
			return nil, nil
		}
		if rerr != nil {
			return nil, rerr
		}
	}
}

// guard calls fn and returns a panic of fn as a *PanicError.
func guard(fn func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &PanicError{Value: p}
		}
	}()
	return fn()
}
