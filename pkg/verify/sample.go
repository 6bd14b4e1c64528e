package verify

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/dsync-export/dsync-export/pkg/schema"
	"github.com/dsync-export/dsync-export/pkg/workos"
)

// Sampling re-fetches Options.Sample random records of each of the
// directories, directory_users and directory_groups tables from WorkOS by ID,
// maps them with pkg/schema exactly as the export does, and compares their key
// fields (user: email, names, state; group: name; directory: name, state,
// type; all: directory and organization, updated_at).
//
//   - A record deleted at WorkOS since the snapshot (404) is a warning.
//   - A record updated since the snapshot (a later updated_at) is a warning
//     when its fields differ: the snapshot is older, not wrong.
//   - Different fields with the same updated_at, or an updated_at later in
//     the snapshot than at WorkOS, fail the check: the snapshot does not hold
//     what WorkOS had.
//   - Any other WorkOS error (after the client's retries) makes Verify
//     return an error: the snapshot could not be checked.

// sampleStats counts the outcomes of sampling.
type sampleStats struct {
	fetched, matched, changed, deleted int
}

// fieldDiff is one compared field: got is the snapshot's value, want the
// reference's (WorkOS's record, or the manifest).
type fieldDiff struct {
	name, got, want string
}

func (v *verifier) sample(ctx context.Context) error {
	var f findings
	var st sampleStats
	if err := sampleTable(ctx, v, schema.TableDirectories, &f, &st,
		func(ctx context.Context, r schema.Directory) (*schema.Directory, error) {
			d, err := v.opts.WorkOS.GetDirectory(ctx, r.ID)
			if err != nil {
				return nil, err
			}
			m := schema.FromDirectory(d, r.ExportedAt)
			return &m, nil
		},
		func(r schema.Directory) (string, time.Time) { return r.ID, r.UpdatedAt },
		func(a, b schema.Directory) []fieldDiff {
			return diffFields(
				fieldDiff{"organization_id", q(a.OrganizationID), q(b.OrganizationID)},
				fieldDiff{"name", q(a.Name), q(b.Name)},
				fieldDiff{"state", q(a.State), q(b.State)},
				fieldDiff{"type", q(a.Type), q(b.Type)},
			)
		}); err != nil {
		return err
	}
	if err := sampleTable(ctx, v, schema.TableDirectoryUsers, &f, &st,
		func(ctx context.Context, r schema.DirectoryUser) (*schema.DirectoryUser, error) {
			u, err := v.opts.WorkOS.GetDirectoryUser(ctx, r.ID)
			if err != nil {
				return nil, err
			}
			m := schema.FromDirectoryUser(u, r.ExportedAt)
			return &m, nil
		},
		func(r schema.DirectoryUser) (string, time.Time) { return r.ID, r.UpdatedAt },
		func(a, b schema.DirectoryUser) []fieldDiff {
			return diffFields(
				fieldDiff{"directory_id", q(a.DirectoryID), q(b.DirectoryID)},
				fieldDiff{"organization_id", q(a.OrganizationID), q(b.OrganizationID)},
				fieldDiff{"email", ptrText(a.Email), ptrText(b.Email)},
				fieldDiff{"first_name", ptrText(a.FirstName), ptrText(b.FirstName)},
				fieldDiff{"last_name", ptrText(a.LastName), ptrText(b.LastName)},
				fieldDiff{"name", ptrText(a.Name), ptrText(b.Name)},
				fieldDiff{"state", q(a.State), q(b.State)},
			)
		}); err != nil {
		return err
	}
	if err := sampleTable(ctx, v, schema.TableDirectoryGroups, &f, &st,
		func(ctx context.Context, r schema.DirectoryGroup) (*schema.DirectoryGroup, error) {
			g, err := v.opts.WorkOS.GetDirectoryGroup(ctx, r.ID)
			if err != nil {
				return nil, err
			}
			m := schema.FromDirectoryGroup(g, r.ExportedAt)
			return &m, nil
		},
		func(r schema.DirectoryGroup) (string, time.Time) { return r.ID, r.UpdatedAt },
		func(a, b schema.DirectoryGroup) []fieldDiff {
			return diffFields(
				fieldDiff{"directory_id", q(a.DirectoryID), q(b.DirectoryID)},
				fieldDiff{"organization_id", q(a.OrganizationID), q(b.OrganizationID)},
				fieldDiff{"name", q(a.Name), q(b.Name)},
			)
		}); err != nil {
		return err
	}
	// Deletions are normal churn, but a sample that found nothing at all at
	// WorkOS means the snapshot's IDs are not WorkOS's (a key for another
	// environment, or fabricated IDs), not that everything was deleted.
	if st.fetched == 0 && st.deleted > 0 {
		f.errorf("none of the %d sampled records exists at WorkOS: the snapshot's IDs do not match this WorkOS environment (check the API key's environment) or the snapshot is not a WorkOS export", st.deleted)
	}
	v.add(f.check(CheckSample, fmt.Sprintf(
		"%d records re-fetched from WorkOS (up to %d per table): %d match, %d changed since the snapshot, %d deleted since the snapshot",
		st.fetched, v.opts.Sample, st.matched, st.changed, st.deleted)))
	return nil
}

// sampleTable samples Options.Sample rows of table, fetches each from WorkOS
// and compares it.
func sampleTable[T any](ctx context.Context, v *verifier, table string, f *findings, st *sampleStats,
	fetch func(context.Context, T) (*T, error),
	key func(T) (id string, updated time.Time),
	diff func(snapshot, current T) []fieldDiff,
) error {
	files := v.byTable[table]
	var total int64
	for _, df := range files {
		total += df.f.NumRows()
	}
	rows := &rowReader[T]{}
	defer rows.close()
	for _, g := range pickRows(v.opts.Rand, total, v.opts.Sample) {
		df, row := locate(files, g)
		r, err := rows.read(df, row)
		if err != nil {
			if serr := df.rd.storageErr(); serr != nil {
				return fmt.Errorf("verify: reading %s: %w", df.entry.Key, serr)
			}
			f.errorf("%s row %d cannot be read (%v): the file is corrupt; re-run the export for %s", df.entry.Key, row, err, v.date)
			continue
		}
		id, snapUpdated := key(r)
		cur, err := fetch(ctx, r)
		if workos.IsNotFound(err) {
			st.deleted++
			f.warnf("%s: %s (%s row %d) was deleted at WorkOS since the snapshot", table, id, df.entry.Key, row)
			continue
		}
		if errors.Is(err, workos.ErrInvalidArgument) {
			f.errorf("%s: %s (%s row %d) is not a valid WorkOS ID: %v", table, id, df.entry.Key, row, err)
			continue
		}
		if err != nil {
			return fmt.Errorf("verify: sampling %s %s from WorkOS: %w", table, id, err)
		}
		st.fetched++
		_, curUpdated := key(*cur)
		diffs := diff(r, *cur)
		switch {
		case curUpdated.After(snapUpdated):
			st.changed++
			if len(diffs) > 0 {
				f.warnf("%s: %s changed at WorkOS since the snapshot (updated_at %s, now %s): %s", table, id,
					stamp(snapUpdated), stamp(curUpdated), describeDiffs(diffs))
			}
		case curUpdated.Before(snapUpdated):
			f.errorf("%s: %s (%s row %d) has updated_at %s in the snapshot, later than WorkOS's %s: the snapshot holds data WorkOS never had",
				table, id, df.entry.Key, row, stamp(snapUpdated), stamp(curUpdated))
		case len(diffs) > 0:
			f.errorf("%s: %s (%s row %d) differs from WorkOS although updated_at is unchanged (%s): %s",
				table, id, df.entry.Key, row, stamp(snapUpdated), describeDiffs(diffs))
		default:
			st.matched++
		}
	}
	return nil
}

// pickRows returns min(n, total) distinct row numbers in [0, total), sorted.
func pickRows(r *rand.Rand, total int64, n int) []int64 {
	if int64(n) >= total {
		rows := make([]int64, total)
		for i := range rows {
			rows[i] = int64(i)
		}
		return rows
	}
	seen := make(map[int64]bool, n)
	rows := make([]int64, 0, n)
	for len(rows) < n {
		x := r.Int64N(total)
		if !seen[x] {
			seen[x] = true
			rows = append(rows, x)
		}
	}
	slices.Sort(rows)
	return rows
}

// locate maps a row number of a table to its file and the row in that file.
func locate(files []*dataFile, row int64) (*dataFile, int64) {
	for _, df := range files {
		if n := df.f.NumRows(); row >= n {
			row -= n
			continue
		}
		return df, row
	}
	panic("verify: row out of range") // pickRows draws below the total
}

// sampleReadBufferSize is the read buffer of the files opened for sampling:
// a sampled row needs one page per column, found through the offset index,
// so a small buffer fetches little more than those pages (the 1 MiB buffer
// of the column scans would fetch up to 1 MiB per column per row).
const sampleReadBufferSize = 16 << 10

// rowReader reads rows of one file at a time, in ascending order: rows that
// share pages are served from the pages already read.
type rowReader[T any] struct {
	df *dataFile
	r  *parquet.GenericReader[T]
}

// read returns row number row of df. Only the pages holding that row are
// fetched: the reader seeks through the offset index.
func (rr *rowReader[T]) read(df *dataFile, row int64) (_ T, err error) {
	var zero T
	defer func() {
		if p := recover(); p != nil { // parquet-go panics on some corrupt inputs
			rr.close()
			err = fmt.Errorf("%v", p)
		}
	}()
	if rr.df != df {
		rr.close()
		f, err := parquet.OpenFile(df.rd, df.size, parquet.SkipBloomFilters(true), parquet.ReadBufferSize(sampleReadBufferSize))
		if err != nil {
			return zero, err
		}
		rr.df, rr.r = df, parquet.NewGenericReader[T](f)
	}
	if err := rr.r.SeekToRow(row); err != nil {
		rr.close()
		return zero, err
	}
	buf := make([]T, 1)
	n, err := rr.r.Read(buf)
	if n == 1 {
		return buf[0], nil
	}
	rr.close()
	if err == nil {
		err = fmt.Errorf("no row %d", row)
	}
	return zero, err
}

func (rr *rowReader[T]) close() {
	if rr.r != nil {
		_ = rr.r.Close()
	}
	rr.df, rr.r = nil, nil
}

func diffFields(fields ...fieldDiff) []fieldDiff {
	var out []fieldDiff
	for _, f := range fields {
		if f.got != f.want {
			out = append(out, f)
		}
	}
	return out
}

func describeDiffs(diffs []fieldDiff) string {
	parts := make([]string, len(diffs))
	for i, d := range diffs {
		parts[i] = fmt.Sprintf("%s is %s in the snapshot, %s at WorkOS", d.name, d.got, d.want)
	}
	return strings.Join(parts, "; ")
}

// q quotes a string for a message.
func q(s string) string { return strconv.Quote(s) }

// ptrText quotes a nullable string for a message; nil prints as null.
func ptrText(s *string) string {
	if s == nil {
		return "null"
	}
	return strconv.Quote(*s)
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }
