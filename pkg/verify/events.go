package verify

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/dsync-export/dsync-export/pkg/parquetfile"
	"github.com/dsync-export/dsync-export/pkg/schema"
	"github.com/dsync-export/dsync-export/pkg/snapshot"
)

// eventsState is what the events check gathers before it runs: the problems
// of the events record's file list (found by listEventFiles), and the
// number of distinct partitions the files are in.
type eventsState struct {
	f          findings
	partitions int
}

// eventRow is what the events check reads of a directory_events row.
type eventRow struct {
	id      string
	created string // the UTC date of created_at
	at      string // created_at, for messages
}

// listEventFiles checks the keys of the events record's files and adds them
// to the files the verifier lists, opens, decodes and hashes like the
// snapshot tables' (objects, parquet_footers, schema, row_counts, columns,
// checksums). A file's problems are reported by the events check.
func (v *verifier) listEventFiles() {
	e := v.m.Events
	if e == nil {
		return
	}
	f := &v.events.f
	table := schema.EventsTable()
	seen := make(map[string]bool)
	partitions := make(map[string]bool)
	for _, file := range e.Files {
		date, ok := eventPartition(file.Key)
		switch {
		case seen[file.Key]:
			f.errorf("%s is listed twice in the events record: each of its events appears twice in the change log", file.Key)
			continue
		case !ok:
			f.errorf("%s is not a Parquet file of a %s partition (%s)", file.Key, schema.TableEvents, snapshot.PartitionPrefix(schema.TableEvents, "YYYY-MM-DD"))
			continue
		case file.Rows < 0 || file.Bytes <= 0:
			f.errorf("%s has rows %d and bytes %d in the events record: a data file has at least a footer", file.Key, file.Rows, file.Bytes)
		case !isSHA256(file.SHA256):
			f.errorf("%s has sha256 %q in the events record, want the 64 hex digits of the file's SHA-256", file.Key, file.SHA256)
		}
		seen[file.Key] = true
		partitions[date] = true
		df := &dataFile{table: table, entry: file, size: -1}
		v.files = append(v.files, df)
		v.byTable[schema.TableEvents] = append(v.byTable[schema.TableEvents], df)
		v.report.Stats.Rows += file.Rows
	}
	v.events.partitions = len(partitions)
}

// eventPartition returns the date of the directory_events partition that
// key is a Parquet file of.
func eventPartition(key string) (date string, ok bool) {
	rest, ok := strings.CutPrefix(key, schema.TableEvents+"/dt=")
	if !ok {
		return "", false
	}
	date, name, ok := strings.Cut(rest, "/")
	if !ok || name == "" || strings.Contains(name, "/") || !strings.HasSuffix(name, ".parquet") {
		return "", false
	}
	if _, err := snapshot.ParseDate(date); err != nil {
		return "", false
	}
	return date, true
}

// eventPartitions returns the number of directory_events partitions the
// events record has files in.
func (v *verifier) eventPartitions() int { return v.events.partitions }

// eventsReadBatch is the rows of a directory_events row group decoded at a
// time.
const eventsReadBatch = 256

// readEvents decodes a directory_events file in the pass that hashes it:
// every page of every column in file order (scanRowGroup, which retains the
// row group's column chunks), then the rows from memory, for the events
// check (parquetfile.ReadRowGroup; a panic of the Parquet reader is a
// finding, as in guard). A file that is not usable is only scanned.
func (v *verifier) readEvents(ctx context.Context, df *dataFile) error {
	if df.f == nil || !df.usable {
		return v.scanFile(ctx, df)
	}
	all := make([]int, len(df.f.Schema().Columns()))
	for i := range all {
		all[i] = i
	}
	var rows []eventRow
	for rgi, rg := range df.f.RowGroups() {
		if err := v.scanRowGroup(df, rgi, rg, all...); err != nil {
			return ignoreDone(err)
		}
		err := parquetfile.ReadRowGroup(rg, eventsReadBatch, func(e *schema.DirectoryEvent) error {
			at := e.CreatedAt.UTC()
			rows = append(rows, eventRow{id: e.ID, created: at.Format(schema.PartitionFormat), at: at.Format("2006-01-02T15:04:05.000Z")})
			return nil
		})
		if pe, ok := errors.AsType[*parquetfile.PanicError](err); ok {
			v.readerPanicked(df, pe.Value) // as guard would: the file is corrupt
			return nil
		}
		if err != nil {
			return ignoreDone(v.columnErr(df, "(rows)", rgi, err))
		}
	}
	if rows == nil {
		rows = []eventRow{}
	}
	df.events = rows
	return nil
}

// checkEvents checks the snapshot's slice of the directory_events change
// log (the files were decoded by readEvents):
//
//   - it joins its base snapshot's slice with no gap and no overlap: From is
//     the base's Through (or the chain restarts, for a reason);
//   - every event of the files, and every quarantined event, is after the
//     base's cursor From.After and at or before Through.After, and no id
//     appears twice: each event is in exactly one snapshot's slice;
//   - the greatest id of the slice is Through.After: the cursor is the
//     greatest id read, so the events up to it are all logged (or
//     quarantined);
//   - each event is in the partition of its own UTC date, and the files hold
//     the record's count of events.
//
// The export writes the events per date partition, so the files need not be
// in cursor order.
func (v *verifier) checkEvents(ctx context.Context) error {
	f := &v.events.f
	e := v.m.Events
	if e == nil {
		f.warnf("the manifest has no events record (written before incremental snapshots, or a past date): no change-log slice to check")
		v.add(f.check(CheckEvents, "no events record"))
		return nil
	}
	link, err := v.eventsLink(ctx, f)
	if err != nil {
		return err
	}
	s := &eventSlice{f: f, from: e.From.After, through: e.Through.After, first: map[string]string{}}
	n, decoded := v.checkEventFiles(s)
	for _, q := range e.Quarantined {
		if q.ID == "" {
			f.errorf("a quarantined event (%s) has no id", q.Event)
			continue
		}
		s.add("quarantined", q.ID)
	}
	s.checkEnd(decoded)
	switch {
	case decoded && n != e.Events:
		f.errorf("the events files hold %d events, the manifest says %d", n, e.Events)
	case !decoded:
		var listed int64
		for _, file := range e.Files {
			listed += file.Rows
		}
		if listed != e.Events {
			f.errorf("the events files' rows add up to %d, the manifest says %d", listed, e.Events)
		}
	}
	if e.Duplicates < 0 {
		f.errorf("the events record counts %d duplicates", e.Duplicates)
	}
	v.add(f.check(CheckEvents, fmt.Sprintf("%d events in %d files and %d quarantined, each once, after %q through %q; %s",
		n, len(e.Files), len(e.Quarantined), s.from, s.through, link)))
	return nil
}

// eventSlice checks the events of a change-log slice, after the base's
// cursor from and at or before through, as checkEvents adds them.
type eventSlice struct {
	f             *findings
	from, through string
	first         map[string]string // event id -> where it was first found
	greatest      string            // the greatest id added
}

// add checks event id, found in where (a file's key, or "quarantined"): it
// is in the slice and not found before.
func (s *eventSlice) add(where, id string) {
	if prev, dup := s.first[id]; dup {
		s.f.errorf("%s: event %s appears twice (also in %s)", where, id, prev)
		return
	}
	s.first[id] = where
	s.greatest = max(s.greatest, id)
	if s.from != "" && id <= s.from {
		s.f.errorf("%s: event %s is at or below the base's cursor %s: it is in the base's slice already (logged twice)", where, id, s.from)
	}
	if s.through != "" && id > s.through {
		s.f.errorf("%s: event %s is after the slice's end %s: the next slice will log it again", where, id, s.through)
	}
}

// checkEnd checks, once every event is added, that the slice's cursor is its
// greatest event (decoded is false when some file's events are unknown: a
// cursor past the events seen is then not an error).
func (s *eventSlice) checkEnd(decoded bool) {
	switch {
	case s.greatest != "" && s.through == "":
		s.f.errorf("the slice holds events up to %s, but its cursor (through.after) is empty: the next run would read them again", s.greatest)
	case decoded && s.greatest != "" && s.greatest < s.through:
		s.f.errorf("the slice's cursor %s is after its greatest event %s: the events read between them are in no file and not quarantined", s.through, s.greatest)
	case decoded && s.greatest == "" && s.through != s.from:
		s.f.errorf("the slice has no events, but its cursor moved from %q to %q: the events read between them are in no file and not quarantined", s.from, s.through)
	}
}

// checkEventFiles adds the events of the directory_events files to s and
// checks that each is in the partition of its UTC date. It returns the
// number of events, and whether every file was decoded (a missing or
// undecodable file is an error in s's findings).
func (v *verifier) checkEventFiles(s *eventSlice) (n int64, decoded bool) {
	f := s.f
	decoded = true
	for _, df := range v.byTable[schema.TableEvents] {
		switch {
		case df.size < 0:
			f.errorf("%s is listed in the events record but missing: the change log lost its events; re-run the export of %s", df.entry.Key, v.date)
			decoded = false
			continue
		case df.events == nil:
			f.errorf("%s cannot be decoded (see parquet_footers, schema and columns): its events were not checked", df.entry.Key)
			decoded = false
			continue
		}
		date, _ := eventPartition(df.entry.Key)
		for _, row := range df.events {
			n++
			s.add(df.entry.Key, row.id)
			if row.created != date {
				f.errorf("%s: event %s of %s is in the wrong partition (want %s)", df.entry.Key, row.id, row.at, snapshot.PartitionPrefix(schema.TableEvents, row.created))
			}
		}
	}
	return n, decoded
}

// eventsLink checks that the slice joins its base snapshot's slice (or says
// why the chain starts here), and describes the link.
func (v *verifier) eventsLink(ctx context.Context, f *findings) (string, error) {
	e := v.m.Events
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
			return "", fmt.Errorf("verify: reading the base snapshot %s: %w", e.BaseDate, err)
		case bm.Events == nil:
			f.errorf("the events continue the snapshot of %s, which has no events record", e.BaseDate)
		case !sameCursor(bm.Events.Through, e.From):
			f.errorf("the events start after %q (checked %s), but the base snapshot %s read through %q (checked %s): a gap or an overlap in directory_events",
				e.From.After, e.From.CheckedAt.Format("2006-01-02T15:04:05.000Z"), e.BaseDate, bm.Events.Through.After, bm.Events.Through.CheckedAt.Format("2006-01-02T15:04:05.000Z"))
		case bm.RunID != e.BaseRunID:
			// The base date was exported again; a past date's rerun keeps
			// its events record, so the slices still join.
			return "joins " + e.BaseDate + "'s slice (kept by its rerun " + bm.RunID + ")", nil
		default:
			return "joins " + e.BaseDate + "'s slice", nil
		}
		return "", nil
	case e.Restart == "":
		f.errorf("the events record has neither a base snapshot nor a restart reason")
		return "", nil
	default:
		return "starts the chain (" + e.Restart + ")", nil
	}
}

// sameCursor compares two cursors to the millisecond.
func sameCursor(a, b snapshot.EventCursor) bool {
	return a.After == b.After && a.CheckedAt.UnixMilli() == b.CheckedAt.UnixMilli()
}
