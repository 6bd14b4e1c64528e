package verify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/parquet-go/parquet-go"

	"github.com/dsync-export/dsync-export/pkg/schema"
	"github.com/dsync-export/dsync-export/pkg/snapshot"
)

// checkEvents checks the snapshot's slice of the directory_events change
// log: it joins its base snapshot's slice with no gap and no overlap (From
// is the base's Through), and its files hold the manifest's count of
// events, each once, in cursor order, after From and through Through, in
// the partition of its own date.
func (v *verifier) checkEvents(ctx context.Context) error {
	var f findings
	e := v.m.Events
	if e == nil {
		f.warnf("the manifest has no events record (written before incremental snapshots, or a past date): no change-log slice to check")
		v.add(f.check(CheckEvents, "no events record"))
		return nil
	}
	link := ""
	switch {
	case e.BaseDate != "":
		raw, err := v.src.Get(ctx, snapshot.ManifestKey(e.BaseDate))
		var bm *snapshot.Manifest
		if err == nil {
			bm, err = snapshot.Unmarshal(raw)
		}
		switch {
		case err != nil && v.missing(ctx, snapshot.ManifestKey(e.BaseDate), err):
			f.errorf("the events continue the snapshot of %s, which is gone: the change log has a gap before %s; re-run the export of %s with \"mode\": \"full\" to restart the chain", e.BaseDate, v.date, v.date)
		case err != nil:
			return fmt.Errorf("verify: reading the base snapshot %s: %w", e.BaseDate, err)
		case bm.Events == nil:
			f.errorf("the events continue the snapshot of %s, which has no events record", e.BaseDate)
		case !sameCursor(bm.Events.Through, e.From):
			f.errorf("the events start after %q (checked %s), but the base snapshot %s read through %q (checked %s): a gap or an overlap in directory_events",
				e.From.After, e.From.CheckedAt.Format("2006-01-02T15:04:05.000Z"), e.BaseDate, bm.Events.Through.After, bm.Events.Through.CheckedAt.Format("2006-01-02T15:04:05.000Z"))
		case bm.RunID != e.BaseRunID:
			// The base date was exported again; a past date's rerun keeps
			// its events record, so the slices still join.
			link = "joins " + e.BaseDate + "'s slice (kept by its rerun " + bm.RunID + ")"
		default:
			link = "joins " + e.BaseDate + "'s slice"
		}
	case e.Restart == "":
		f.errorf("the events record has neither a base snapshot nor a restart reason")
	default:
		link = "starts the chain (" + e.Restart + ")"
	}
	var n int64
	seen := map[string]bool{}
	last := e.From.After
	for _, file := range e.Files {
		err := readEventFile(ctx, v.src, file.Key, func(row *schema.DirectoryEvent) {
			n++
			if seen[row.ID] {
				f.errorf("%s: event %s appears twice", file.Key, row.ID)
			}
			seen[row.ID] = true
			if row.ID <= last {
				f.errorf("%s: event %s is not after %s: not in cursor order, or before the slice's start", file.Key, row.ID, last)
			}
			if row.ID > last {
				last = row.ID
			}
			if e.Through.After != "" && row.ID > e.Through.After {
				f.errorf("%s: event %s is after the slice's end %s", file.Key, row.ID, e.Through.After)
			}
			if want := snapshot.PartitionPrefix(schema.TableEvents, row.CreatedAt.UTC().Format(schema.PartitionFormat)); !strings.HasPrefix(file.Key, want) {
				f.errorf("%s: event %s of %s is in the wrong partition (want %s)", file.Key, row.ID, row.CreatedAt.UTC().Format("2006-01-02T15:04:05Z"), want)
			}
		})
		if err != nil {
			if v.missing(ctx, file.Key, err) {
				f.errorf("%s is listed in the events record but missing: the change log lost its events; re-run the export of %s", file.Key, v.date)
				continue
			}
			f.errorf("%s cannot be read: %v", file.Key, err)
		}
	}
	if n != e.Events {
		f.errorf("the events files hold %d events, the manifest says %d", n, e.Events)
	}
	v.add(f.check(CheckEvents, fmt.Sprintf("%d events in %d files, each once, in cursor order; %s", n, len(e.Files), link)))
	return nil
}

// sameCursor compares two cursors to the millisecond.
func sameCursor(a, b snapshot.EventCursor) bool {
	return a.After == b.After && a.CheckedAt.UnixMilli() == b.CheckedAt.UnixMilli()
}

// readEventFile calls fn for every row of a directory_events file.
func readEventFile(ctx context.Context, src Source, key string, fn func(*schema.DirectoryEvent)) (err error) {
	rd, size, err := src.OpenRange(ctx, key)
	if err != nil {
		return err
	}
	if c, ok := rd.(io.Closer); ok {
		defer c.Close()
	}
	f, err := openParquet(rd, size)
	if err != nil {
		return err
	}
	r := parquet.NewGenericReader[schema.DirectoryEvent](f)
	defer r.Close()
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%v", p)
		}
	}()
	buf := make([]schema.DirectoryEvent, 256)
	for {
		n, err := r.Read(buf)
		for i := range n {
			fn(&buf[i])
		}
		if errors.Is(err, io.EOF) || (err == nil && n == 0) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
