package export

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/dsync-export/dsync-export/pkg/objstore"
	"github.com/dsync-export/dsync-export/pkg/parquetfile"
	"github.com/dsync-export/dsync-export/pkg/snapshot"
)

// parquetContentType is the media type of the data objects.
const parquetContentType = "application/vnd.apache.parquet"

// tableWriter owns the one parquetfile.Writer of a table for a snapshot. Directory
// workers send row batches (one per API page) over a bounded channel; a single
// goroutine encodes them, so rows stream to the sink as pages arrive and
// memory stays bounded by the channel depth and the writer's row group.
type tableWriter[T any] struct {
	name string
	// skipEmpty makes finish write nothing when the table got no rows.
	skipEmpty bool
	ch        chan []T
	done      chan struct{}

	mu   sync.Mutex
	err  error
	w    *parquetfile.Writer[T]
	rows int64
}

// startTable starts the writer of table, whose part n goes to key(n). A
// chunk's tables skip empty output; the commit's write an empty part, so
// every table has a file in every snapshot.
func startTable[T any](ctx context.Context, s objstore.Store, table string, key func(part int) string, opts parquetfile.Options, skipEmpty bool) (*tableWriter[T], error) {
	open := func(part int) (io.WriteCloser, error) {
		return s.Create(ctx, key(part), parquetContentType)
	}
	w, err := parquetfile.NewWriter[T](open, opts)
	if err != nil {
		return nil, fmt.Errorf("export: open %s writer: %w", table, err)
	}
	t := &tableWriter[T]{name: table, skipEmpty: skipEmpty, ch: make(chan []T, 8), done: make(chan struct{}), w: w}
	go t.loop()
	return t, nil
}

func (t *tableWriter[T]) loop() {
	defer close(t.done)
	for batch := range t.ch {
		if t.failed() != nil {
			continue // drain so senders never block on a dead writer
		}
		if err := t.w.Write(batch); err != nil {
			t.fail(fmt.Errorf("export: write %s: %w", t.name, err))
			continue
		}
		t.mu.Lock()
		t.rows += int64(len(batch))
		t.mu.Unlock()
	}
}

func (t *tableWriter[T]) failed() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.err
}

func (t *tableWriter[T]) fail(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.err == nil {
		t.err = err
	}
}

// Rows returns the rows written so far.
func (t *tableWriter[T]) Rows() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.rows
}

// send queues one batch; it blocks while the writer is busy (backpressure).
func (t *tableWriter[T]) send(ctx context.Context, batch []T) error {
	if len(batch) == 0 {
		return nil
	}
	if err := t.failed(); err != nil {
		return err
	}
	select {
	case t.ch <- batch:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// finish closes the table: the last part gets its footer and is committed.
func (t *tableWriter[T]) finish() ([]parquetfile.Part, error) {
	close(t.ch)
	<-t.done
	if err := t.failed(); err != nil {
		t.w.Abort(err)
		return nil, err
	}
	if t.skipEmpty && t.w.Rows() == 0 {
		t.w.Abort(errors.New("export: no rows")) // no part was opened: nothing is written
		return nil, nil
	}
	parts, err := t.w.Close()
	if err != nil {
		return nil, fmt.Errorf("export: finish %s: %w", t.name, err)
	}
	return parts, nil
}

// abort stops the table without committing its current part.
func (t *tableWriter[T]) abort(cause error) {
	if cause == nil {
		cause = errors.New("export aborted")
	}
	t.fail(cause) // queued batches are drained, not encoded
	close(t.ch)
	<-t.done
	t.w.Abort(cause)
}

// filesOf returns the manifest records of a writer's parts, keyed by key
// (nil for none).
func filesOf(parts []parquetfile.Part, key func(part int) string) []snapshot.File {
	var files []snapshot.File
	for _, p := range parts {
		files = append(files, snapshot.File{Key: key(p.Index), Bytes: p.Bytes, Rows: p.Rows, SHA256: p.SHA256})
	}
	return files
}

// writerOptions returns the configured Parquet writer options with the
// snapshot date in every file's key-value metadata, merged with the
// configured metadata (which wins on the same key).
func writerOptions(cfg Config, date string) parquetfile.Options {
	opts := cfg.Writer
	meta := map[string]string{"snapshot_date": date}
	for k, v := range opts.Metadata {
		meta[k] = v
	}
	opts.Metadata = meta
	return opts
}
