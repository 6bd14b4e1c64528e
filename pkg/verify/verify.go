package verify

import (
	"bytes"
	"cmp"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parquet-go/parquet-go"
	"golang.org/x/sync/errgroup"

	"github.com/dsync-export/dsync-export/pkg/objstore"
	"github.com/dsync-export/dsync-export/pkg/parquetfile"
	"github.com/dsync-export/dsync-export/pkg/schema"
	"github.com/dsync-export/dsync-export/pkg/snapshot"
	"github.com/dsync-export/dsync-export/pkg/workos"
)

// Source is the storage the verifier reads a snapshot from. objstore.Store
// satisfies it. Keys are relative to the destination prefix.
type Source interface {
	// Get returns a small object (the manifest); an error wrapping
	// objstore.ErrNotExist when it is missing.
	Get(ctx context.Context, key string) ([]byte, error)
	// List returns every object under prefix with its size.
	List(ctx context.Context, prefix string) ([]objstore.ObjectInfo, error)
	// OpenRange opens key for ranged reads: each ReadAt fetches only the
	// bytes asked for (an S3 GetObject with a Range header). ctx must
	// outlive the reader.
	OpenRange(ctx context.Context, key string) (objstore.RangeReader, int64, error)
}

// WorkOS is the part of *workos.Client that sampling uses.
type WorkOS interface {
	GetDirectory(ctx context.Context, id string) (*workos.Directory, error)
	GetDirectoryUser(ctx context.Context, id string) (*workos.DirectoryUser, error)
	GetDirectoryGroup(ctx context.Context, id string) (*workos.DirectoryGroup, error)
}

// DefaultConcurrency is the default number of files verified at once.
const DefaultConcurrency = 4

// Options configures Verify. The zero value verifies everything but samples
// nothing.
type Options struct {
	// Sample is the number of records of each of the directories,
	// directory_users and directory_groups tables to re-fetch by ID from
	// WorkOS and compare (0: no sampling). It needs WorkOS.
	Sample int
	// WorkOS fetches sampled records; usually a *workos.Client.
	WorkOS WorkOS
	// Concurrency is the number of files read at once (default 4).
	Concurrency int
	// MaxDrop is the largest fall in users or memberships, as a fraction
	// of the previous snapshot's count, that is not a failure (0.2: 20%),
	// in total and per directory (see the comment in previous.go); 0 uses
	// DefaultMaxDrop.
	MaxDrop float64
	// Rand picks the sampled rows; nil uses a randomly seeded source.
	Rand *rand.Rand
	// CleanupWait is how long stray objects of the date's earlier runs may
	// take to disappear (the export deletes them right after its commit)
	// before they are a finding; 0 uses DefaultCleanupWait, below 0 does not
	// wait.
	CleanupWait time.Duration
}

// DefaultCleanupWait is the default Options.CleanupWait.
const DefaultCleanupWait = 30 * time.Second

// Verify checks the snapshot of date (yyyy-MM-dd) in src and returns a report
// with one Check per check (see the Check… constants). A bad snapshot is not
// an error: it gives a report whose Valid is false. Verify returns an error
// only when it cannot finish checking: invalid arguments, storage or WorkOS
// failures (other than a sampled record deleted since the snapshot), or a
// cancelled ctx.
func Verify(ctx context.Context, src Source, date string, opts Options) (*Report, error) {
	if src == nil {
		return nil, errors.New("verify: no source: pass the objstore.Store of the export destination")
	}
	if _, err := snapshot.ParseDate(date); err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	if opts.Sample < 0 {
		return nil, fmt.Errorf("verify: Sample is %d: use 0 (no sampling) or a positive number of records", opts.Sample)
	}
	if opts.Sample > 0 && opts.WorkOS == nil {
		return nil, fmt.Errorf("verify: Sample is %d but no WorkOS client is set: pass Options.WorkOS or set Sample to 0", opts.Sample)
	}
	if opts.MaxDrop < 0 || opts.MaxDrop > 1 {
		return nil, fmt.Errorf("verify: MaxDrop is %g: use a fraction from 0 to 1 (0.2 allows a 20%% drop), or 0 for the default %g", opts.MaxDrop, DefaultMaxDrop)
	}
	if opts.MaxDrop == 0 {
		opts.MaxDrop = DefaultMaxDrop
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = DefaultConcurrency
	}
	if opts.Rand == nil {
		opts.Rand = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	v := newVerifier(src, date, opts)
	start := time.Now()
	err := v.run(ctx)
	for _, df := range v.files {
		if df.rd != nil {
			_ = df.rd.r.Close() // read-only: nothing to lose
		}
	}
	if err != nil {
		return nil, err
	}
	r := v.report
	r.Valid = len(r.Failed()) == 0
	r.Stats.BytesFetched = v.bytes.Load()
	r.Stats.Reads = v.reads.Load()
	r.Stats.DurationMillis = time.Since(start).Milliseconds()
	return r, nil
}

func newVerifier(src Source, date string, opts Options) *verifier {
	v := &verifier{
		src: src, date: date, opts: opts,
		hash:     newHasher(),
		dirIdx:   make(map[string]uint32),
		dirOrg:   make(map[string]string),
		dirFirst: make(map[string]directoryRow),
		counts:   make(map[string]*dirCount),
		report:   &Report{SnapshotDate: date},
	}
	if s, ok := src.(fmt.Stringer); ok {
		v.report.Destination = s.String()
	}
	return v
}

// dataFile is one data object listed by the manifest.
type dataFile struct {
	table  schema.Table
	entry  snapshot.File
	size   int64 // size in storage; -1 when missing
	f      *parquet.File
	rd     *fileReader // nil when the file could not be opened
	usable bool        // opened, with the expected schema
	// events are the rows of a directory_events file, decoded by readEvents
	// (nil until then, or when the file could not be decoded).
	events []eventRow
}

// isEvents reports whether df is a file of the directory_events change log
// (listed by the manifest's events record) rather than of a snapshot table.
func (df *dataFile) isEvents() bool { return df.table.Name == schema.TableEvents }

// dirCount counts the rows of one directory.
type dirCount struct{ users, groups, memberships int64 }

type verifier struct {
	src    Source
	date   string
	opts   Options
	report *Report

	m     *snapshot.Manifest
	files []*dataFile

	previousVerified bool // the previous snapshot compared with passed verify
	byTable          map[string][]*dataFile

	bytes, reads atomic.Int64
	opened       int64 // files whose footer was read
	hash         hasher

	dirMu    sync.Mutex
	dirIdx   map[string]uint32 // directory ID -> index, for compact entries
	dirNames []string          // index -> directory ID
	dirOrg   map[string]string // directories table: id -> organization_id; read-only after readDirectories
	dirFirst map[string]directoryRow

	users, groups idSet
	pairs         hashSet

	countMu sync.Mutex
	counts  map[string]*dirCount

	columns, unique, refs findings

	events eventsState // the events check, fed by loadManifest and the events pass
}

func (v *verifier) add(c Check) { v.report.Checks = append(v.report.Checks, c) }

func (v *verifier) skipRest(why string, names ...string) {
	for _, n := range names {
		if n == CheckSample && v.opts.Sample == 0 {
			continue
		}
		v.add(skipped(n, why))
	}
}

func (v *verifier) run(ctx context.Context) error {
	ok, err := v.loadManifest(ctx)
	if err != nil || !ok {
		return err
	}
	if err := v.comparePrevious(ctx); err != nil {
		return err
	}
	if err := v.listObjects(ctx); err != nil {
		return err
	}
	if err := v.openFiles(ctx); err != nil {
		return err
	}
	// Every file that can be read is decoded and hashed in full, in one
	// pass. When all the snapshot tables' files are usable, that pass also
	// feeds the data checks; the change log's files feed the events check.
	bad := v.unusable()
	if bad > 0 {
		if err := v.forEach(ctx, v.tableFiles(), v.scanFile); err != nil {
			return err
		}
	} else if err := v.readColumns(ctx); err != nil {
		return err
	}
	if err := v.forEach(ctx, v.byTable[schema.TableEvents], v.readEvents); err != nil {
		return err
	}
	v.add(v.columns.check(CheckColumns, fmt.Sprintf(
		"decoded every page of every column of %d files, page CRCs checked", v.opened)))
	if err := v.checkChecksums(ctx); err != nil {
		return err
	}
	if err := v.checkEvents(ctx); err != nil {
		return err
	}
	dataChecks := []string{CheckUniqueIDs, CheckReferences, CheckDirectoryCounts, CheckSample}
	if bad > 0 {
		v.skipRest(fmt.Sprintf("%d data file(s) are missing, unreadable or of the wrong schema (see above)", bad), dataChecks...)
		return nil
	}
	if v.columns.failed() {
		v.skipRest("columns could not be decoded (see columns)", dataChecks...)
		return nil
	}
	if err := v.checkUnique(ctx); err != nil {
		return err
	}
	v.add(v.refs.check(CheckReferences, fmt.Sprintf(
		"%d users and %d groups reference exported directories of the same organization; %d memberships reference a user and a group of their directory",
		v.users.len(), v.groups.len(), len(v.pairs.h))))
	v.checkDirectoryCounts()
	if v.opts.Sample > 0 {
		if err := v.sample(ctx); err != nil {
			return err
		}
	}
	return nil
}

// loadManifest reads and checks the manifest, and lists the files it names
// for the other checks. ok is false when there is no usable manifest; the
// remaining checks are then reported as skipped.
func (v *verifier) loadManifest(ctx context.Context) (ok bool, err error) {
	key := snapshot.ManifestKey(v.date)
	m, err := v.readManifest(ctx, key)
	if m == nil || err != nil {
		return false, err
	}
	v.m = m
	v.report.RunID = m.RunID
	v.byTable = make(map[string][]*dataFile)

	var f findings
	if m.SnapshotDate != v.date {
		f.errorf("manifest %s: snapshot_date is %q, want %q: the manifest was copied from another snapshot", key, m.SnapshotDate, v.date)
	}
	if m.SchemaVersion != schema.Version {
		f.errorf("manifest %s: schema_version is %q, this verifier checks schema version %q: verify with the dsync-export version that wrote it, or re-export", key, m.SchemaVersion, schema.Version)
	}
	v.listTableFiles(&f, key)
	v.listEventFiles()
	v.checkManifestDirectories(&f, key)
	v.report.Stats.Files = len(v.files)
	v.add(f.check(CheckManifest, fmt.Sprintf("%s lists %d files, %d rows, %d directories (format %d, schema %s, written by dsync-export %s)",
		key, len(v.files), v.report.Stats.Rows, len(m.Directories), m.FormatVersion, m.SchemaVersion, m.DsyncExportVersion)))
	return true, nil
}

// readManifest reads and decodes the manifest key. When it is missing or
// cannot be decoded, readManifest reports the manifest check failed and
// every other check skipped, and returns a nil manifest; err is an error of
// the store.
func (v *verifier) readManifest(ctx context.Context, key string) (*snapshot.Manifest, error) {
	all := []string{CheckPrevious, CheckObjects, CheckStrayObjects, CheckSnapshotRow, CheckFooters, CheckSchema, CheckRowCounts,
		CheckColumns, CheckChecksums, CheckEvents, CheckUniqueIDs, CheckReferences, CheckDirectoryCounts, CheckSample}
	raw, err := v.src.Get(ctx, key)
	if v.missing(ctx, key, err) {
		var f findings
		f.errorf("manifest %s is missing: the export of %s did not finish or never ran; its data must not be used: re-run the export for %s", key, v.date, v.date)
		v.add(f.check(CheckManifest, "looked for "+key))
		v.skipRest("no manifest", all...)
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("verify: reading manifest %s: %w", key, err)
	}
	m, err := snapshot.Unmarshal(raw)
	if err != nil {
		var f findings
		f.errorf("manifest %s cannot be read: %v", key, err)
		v.add(f.check(CheckManifest, "read "+key))
		v.skipRest("the manifest cannot be read", all...)
		return nil, nil
	}
	return m, nil
}

// listTableFiles checks the snapshot tables' entries of the manifest key
// (every table listed, with files; each file once, a Parquet file of the
// table's partition, with plausible rows, bytes and SHA-256; the files' rows
// adding up to the table's; no unknown table) into f, and adds the files to
// the ones the verifier lists, opens, decodes and hashes.
func (v *verifier) listTableFiles(f *findings, key string) {
	m := v.m
	known := make(map[string]bool)
	seen := make(map[string]bool)
	for _, t := range schema.Tables() {
		known[t.Name] = true
		tm, ok := m.Tables[t.Name]
		if !ok {
			f.errorf("manifest %s: table %s is not listed: every snapshot has at least one file per table", key, t.Name)
			continue
		}
		if len(tm.Files) == 0 {
			f.errorf("manifest %s: table %s lists no files: every snapshot has at least one file per table", key, t.Name)
		}
		prefix := snapshot.PartitionPrefix(t.Name, v.date)
		var sum int64
		for _, file := range tm.Files {
			sum += file.Rows
			switch {
			case seen[file.Key]:
				f.errorf("manifest %s: %s is listed twice", key, file.Key)
				continue
			case !strings.HasPrefix(file.Key, prefix) || strings.Contains(file.Key[len(prefix):], "/") || !strings.HasSuffix(file.Key, ".parquet"):
				f.errorf("manifest %s: %s is not a Parquet file of the %s partition %s", key, file.Key, t.Name, prefix)
				continue
			case file.Rows < 0 || file.Bytes <= 0:
				f.errorf("manifest %s: %s has rows %d and bytes %d: a data file has at least a footer", key, file.Key, file.Rows, file.Bytes)
			case !isSHA256(file.SHA256):
				f.errorf("manifest %s: %s has sha256 %q, want the 64 hex digits of the file's SHA-256", key, file.Key, file.SHA256)
			}
			seen[file.Key] = true
			df := &dataFile{table: t, entry: file, size: -1}
			v.files = append(v.files, df)
			v.byTable[t.Name] = append(v.byTable[t.Name], df)
		}
		if sum != tm.Rows {
			f.errorf("manifest %s: table %s has rows %d, but its files' rows add up to %d", key, t.Name, tm.Rows, sum)
		}
		v.report.Stats.Rows += tm.Rows
	}
	for _, name := range slices.Sorted(maps.Keys(m.Tables)) {
		if !known[name] {
			f.errorf("manifest %s: unknown table %q: this verifier knows %s", key, name, strings.Join(tableNames(), ", "))
		}
	}
}

// checkManifestDirectories checks the directories of the manifest key into
// f: each listed once, with status ok or deleted.
func (v *verifier) checkManifestDirectories(f *findings, key string) {
	dirs := make(map[string]bool)
	for _, d := range v.m.Directories {
		if dirs[d.ID] {
			f.errorf("manifest %s: directory %s is listed twice", key, d.ID)
		}
		dirs[d.ID] = true
		if d.Status != snapshot.DirectoryOK && d.Status != snapshot.DirectoryDeleted {
			f.errorf("manifest %s: directory %s has status %q, want %q or %q", key, d.ID, d.Status, snapshot.DirectoryOK, snapshot.DirectoryDeleted)
		}
	}
}

// listObjects lists each table's partition: every listed file must exist with
// its size, and nothing else may be there. The export deletes the files of
// the date's earlier runs right after it writes the manifest, so a verify
// started by that manifest can list them before they are gone: while every
// stray object belongs to an earlier run, it lists again, for up to
// Options.CleanupWait. The export writes the run's snapshots-table row right
// after the manifest too, so a missing row is waited for the same way.
func (v *verifier) listObjects(ctx context.Context) error {
	wait := cmp.Or(v.opts.CleanupWait, DefaultCleanupWait)
	deadline := time.Now().Add(wait)
	pause := 250 * time.Millisecond
	for {
		objects, stray, listed, earlierOnly, err := v.listOnce(ctx)
		if err != nil {
			return err
		}
		row, rowMissing, err := v.snapshotRow(ctx)
		if err != nil {
			return err
		}
		waitable := (stray.nErrs > 0 && earlierOnly) || rowMissing
		if !waitable || v.opts.CleanupWait < 0 || !time.Now().Add(pause).Before(deadline) {
			v.add(objects.check(CheckObjects, fmt.Sprintf("%d listed files checked for existence and size", len(v.files))))
			v.add(stray.check(CheckStrayObjects, fmt.Sprintf("%d objects found in the %d table partitions of %s and the %d %s partitions of its events", listed, len(schema.Tables()), v.date, v.eventPartitions(), schema.TableEvents)))
			v.add(row)
			return nil
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(pause):
		}
		pause = min(2*pause, 5*time.Second)
	}
}

// snapshotRow checks that the snapshots table holds the row of the
// manifest's run, and that the row agrees with the manifest (see
// compareSnapshotRow): without it the _latest views and the named queries do
// not show the snapshot, and the table is what they read the snapshot's
// mode, trigger and size from. missing is true when the row is not there yet.
func (v *verifier) snapshotRow(ctx context.Context) (c Check, missing bool, err error) {
	var f findings
	if v.m.RunID == "" {
		f.warnf("the manifest has no run_id (written before dsync-export named files by run): no snapshots row to look for")
		return f.check(CheckSnapshotRow, "manifest without run_id"), false, nil
	}
	key := snapshot.SnapshotRowKey(v.date, v.m.RunID)
	raw, err := v.src.Get(ctx, key)
	switch {
	case v.missing(ctx, key, err):
		f.errorf("%s is missing: the snapshot is committed, but the snapshots table and the _latest views do not show it; re-run the export for %s", key, v.date)
		return f.check(CheckSnapshotRow, "looked for "+key), true, nil
	case err != nil:
		return Check{}, false, fmt.Errorf("verify: reading %s: %w", key, err)
	}
	rows, err := readSnapshotRows(raw)
	switch {
	case err != nil:
		f.errorf("%s is not a readable Parquet file of the %s table (%v): re-run the export for %s", key, schema.TableSnapshots, err, v.date)
	case len(rows) != 1:
		f.errorf("%s holds %d rows, want the one row of run %s", key, len(rows), v.m.RunID)
	default:
		for _, d := range compareSnapshotRow(&rows[0], v.m) {
			f.errorf("%s: %s is %s, the manifest says %s: the snapshots table and the _latest views misreport the snapshot; re-run the export for %s", key, d.name, d.got, d.want, v.date)
		}
	}
	return f.check(CheckSnapshotRow, key+" read and compared with the manifest"), false, nil
}

// readSnapshotRows decodes a snapshots table file, turning a panic of the
// Parquet reader on a corrupt file into an error.
func readSnapshotRows(b []byte) (rows []schema.Snapshot, err error) {
	defer func() {
		if p := recover(); p != nil {
			rows, err = nil, fmt.Errorf("the Parquet reader failed: %v", p)
		}
	}()
	return parquet.Read[schema.Snapshot](bytes.NewReader(b), int64(len(b)))
}

// compareSnapshotRow returns the columns of a snapshots row that disagree
// with the manifest, which records each of them but committed_at: mode (""
// in the manifest is full), run_id, trigger, demo, exported_at (the
// manifest's snapshot_time), the row counts of the four snapshot tables,
// and the files and bytes of those tables (the change log's files are not
// counted).
func compareSnapshotRow(row *schema.Snapshot, m *snapshot.Manifest) []fieldDiff {
	var files, bytes int64
	for _, t := range m.Tables {
		files += int64(len(t.Files))
		for _, f := range t.Files {
			bytes += f.Bytes
		}
	}
	num := func(n int64) string { return strconv.FormatInt(n, 10) }
	return diffFields(
		fieldDiff{"run_id", q(row.RunID), q(m.RunID)},
		fieldDiff{"mode", q(row.Mode), q(cmp.Or(m.Mode, schema.SnapshotModeFull))},
		fieldDiff{"trigger", q(row.Trigger), q(m.Trigger)},
		fieldDiff{"demo", strconv.FormatBool(row.Demo), strconv.FormatBool(m.Demo)},
		fieldDiff{"exported_at", stamp(row.ExportedAt), stamp(m.SnapshotTime)},
		fieldDiff{"rows_" + schema.TableDirectories, num(row.Directories), num(m.Tables[schema.TableDirectories].Rows)},
		fieldDiff{"rows_" + schema.TableDirectoryUsers, num(row.DirectoryUsers), num(m.Tables[schema.TableDirectoryUsers].Rows)},
		fieldDiff{"rows_" + schema.TableDirectoryGroups, num(row.Groups), num(m.Tables[schema.TableDirectoryGroups].Rows)},
		fieldDiff{"rows_" + schema.TableMemberships, num(row.Memberships), num(m.Tables[schema.TableMemberships].Rows)},
		fieldDiff{"files", num(row.Files), num(files)},
		fieldDiff{"bytes", num(row.Bytes), num(bytes)},
	)
}

// listOnce lists the partitions once. earlierOnly reports whether every
// stray object is of a run before the manifest's (or has no run id).
func (v *verifier) listOnce(ctx context.Context) (objects, stray *findings, listed int, earlierOnly bool, err error) {
	objects, stray, earlierOnly = &findings{}, &findings{}, true
	for _, t := range schema.Tables() {
		prefix := snapshot.PartitionPrefix(t.Name, v.date)
		infos, err := v.src.List(ctx, prefix)
		if err != nil {
			return nil, nil, 0, false, fmt.Errorf("verify: listing %s: %w", prefix, err)
		}
		listed += len(infos)
		inManifest := v.matchListed(infos, v.byTable[t.Name], objects, "the manifest", "the snapshot is incomplete")
		for _, o := range infos {
			if !inManifest[o.Key] {
				stray.errorf("%s (%d bytes) is not listed in the manifest: Athena reads every file of the partition, so its rows would be counted; delete it (a leftover of an interrupted or concurrent export)", o.Key, o.Size)
				if run := snapshot.RunOfKey(o.Key); run != "" && run >= v.m.RunID {
					earlierOnly = false
				}
			}
		}
	}
	n, err := v.listEventPartitions(ctx, objects, stray)
	if err != nil {
		return nil, nil, 0, false, err
	}
	listed += n
	return objects, stray, listed, earlierOnly, nil
}

// matchListed matches a partition's listing with the files record lists
// in it: each must exist with its size (kept in the file's size). record
// names the list, lost what a missing file means. It returns the keys the
// record lists.
func (v *verifier) matchListed(infos []objstore.ObjectInfo, files []*dataFile, objects *findings, record, lost string) map[string]bool {
	sizes := make(map[string]int64, len(infos))
	for _, o := range infos {
		sizes[o.Key] = o.Size
	}
	inManifest := make(map[string]bool, len(files))
	for _, df := range files {
		inManifest[df.entry.Key] = true
		size, ok := sizes[df.entry.Key]
		switch {
		case !ok:
			objects.errorf("%s is listed in %s but missing: %s; re-run the export for %s", df.entry.Key, record, lost, v.date)
			continue
		case size != df.entry.Bytes:
			objects.errorf("%s is %d bytes, %s says %d: the file was truncated or overwritten; re-run the export for %s", df.entry.Key, size, record, df.entry.Bytes, v.date)
		}
		df.size = size
	}
	return inManifest
}

// listEventPartitions lists the directory_events partitions that the
// manifest's events record has files in: every listed file must exist with
// its size. The partitions hold every run's events of that date, so only an
// unlisted object of this manifest's run is a stray (a file the run wrote and
// then left out of its record); other runs' files are their snapshots'.
func (v *verifier) listEventPartitions(ctx context.Context, objects, stray *findings) (listed int, err error) {
	byPrefix := make(map[string][]*dataFile)
	for _, df := range v.byTable[schema.TableEvents] {
		prefix := df.entry.Key[:strings.LastIndexByte(df.entry.Key, '/')+1]
		byPrefix[prefix] = append(byPrefix[prefix], df)
	}
	for _, prefix := range slices.Sorted(maps.Keys(byPrefix)) {
		infos, err := v.src.List(ctx, prefix)
		if err != nil {
			return 0, fmt.Errorf("verify: listing %s: %w", prefix, err)
		}
		listed += len(infos)
		inManifest := v.matchListed(infos, byPrefix[prefix], objects, "the manifest's events record", "the change log lost its events")
		for _, o := range infos {
			if !inManifest[o.Key] && v.m.RunID != "" && snapshot.RunOfKey(o.Key) == v.m.RunID {
				stray.errorf("%s (%d bytes) was written by run %s but is not listed in its events record: Athena reads it, so its events would be counted twice or were never verified; delete it", o.Key, o.Size, v.m.RunID)
			}
		}
	}
	return listed, nil
}

// missing reports whether err from reading key means the object does not
// exist. S3 answers AccessDenied instead of NoSuchKey for a missing key when
// the caller's s3:ListBucket is conditioned on a prefix (as in template.yaml),
// so an access-denied read is settled by listing the exact key, which that
// policy allows.
func (v *verifier) missing(ctx context.Context, key string, err error) bool {
	if errors.Is(err, objstore.ErrNotExist) {
		return true
	}
	if !errors.Is(err, objstore.ErrAccessDenied) {
		return false
	}
	objs, lerr := v.src.List(ctx, key)
	if lerr != nil {
		return false
	}
	for _, o := range objs {
		if o.Key == key {
			return false
		}
	}
	return true
}

// openFiles reads every existing file's footer through ranged reads, and
// checks its schema, metadata and row counts. From then on each file's reader
// hashes what is read (see fileReader).
func (v *verifier) openFiles(ctx context.Context) error {
	var footers, schemas, rows findings
	var opened atomic.Int64
	outer := ctx // readers are used after forEach returns: not its ctx
	err := v.forEach(ctx, v.files, func(ctx context.Context, df *dataFile) error {
		if df.size < 0 {
			return nil // reported by objects
		}
		r, size, err := v.src.OpenRange(outer, df.entry.Key)
		if errors.Is(err, objstore.ErrNotExist) {
			footers.errorf("%s disappeared while it was being verified: re-run the verifier", df.entry.Key)
			return nil
		}
		if err != nil {
			return fmt.Errorf("verify: opening %s: %w", df.entry.Key, err)
		}
		df.size = size
		df.rd = newFileReader(r, size, &v.bytes, &v.reads)
		f, err := openParquet(df.rd, size)
		df.rd.startHashing()
		if err != nil {
			if serr := df.rd.storageErr(); serr != nil {
				return fmt.Errorf("verify: reading the footer of %s: %w", df.entry.Key, serr)
			}
			footers.errorf("%s is not a readable Parquet file (%v): it is truncated or corrupt; re-run the export for %s", df.entry.Key, err, v.date)
			return nil
		}
		df.f = f
		opened.Add(1)

		ok := true
		for _, d := range diffSchema(f.Schema(), df.table.Schema) {
			schemas.errorf("%s: %s", df.entry.Key, d)
			ok = false
		}
		if sv, found := f.Lookup(parquetfile.MetadataSchemaVersion); sv != schema.Version {
			if !found {
				sv = "(none)"
			}
			schemas.errorf("%s: key-value metadata %s is %s, want %s", df.entry.Key, parquetfile.MetadataSchemaVersion, sv, schema.Version)
			ok = false
		}
		if tn, found := f.Lookup(parquetfile.MetadataTable); found && tn != df.table.Name {
			schemas.errorf("%s: key-value metadata %s is %s: the file belongs to another table", df.entry.Key, parquetfile.MetadataTable, tn)
			ok = false
		}
		df.usable = ok

		var groupRows int64
		for _, rg := range f.RowGroups() {
			groupRows += rg.NumRows()
		}
		if groupRows != f.NumRows() {
			rows.errorf("%s: its row groups hold %d rows, its footer says %d: the file is corrupt", df.entry.Key, groupRows, f.NumRows())
		}
		if f.NumRows() != df.entry.Rows {
			rows.errorf("%s has %d rows, the manifest says %d: re-run the export for %s", df.entry.Key, f.NumRows(), df.entry.Rows, v.date)
		}
		return nil
	})
	if err != nil {
		return err
	}
	v.opened = opened.Load()
	for _, df := range v.files {
		if df.f != nil {
			v.report.Stats.BytesTotal += df.size
		}
	}
	v.add(footers.check(CheckFooters, fmt.Sprintf("%d of %d footers read through ranged reads (%d bytes fetched of %d)",
		opened.Load(), len(v.files), v.bytes.Load(), v.report.Stats.BytesTotal)))
	detail := fmt.Sprintf("%d files compared with pkg/schema version %s", opened.Load(), schema.Version)
	if schemas.failed() {
		detail += ": files must have exactly the schema of this dsync-export version (columns are only ever added); re-export the snapshot, or verify it with the version that wrote it"
	}
	v.add(schemas.check(CheckSchema, detail))
	v.add(rows.check(CheckRowCounts, fmt.Sprintf("footer row counts of %d files compared with the manifest (%d rows)", opened.Load(), v.report.Stats.Rows)))
	return nil
}

// unusable returns the number of the snapshot tables' files that are
// missing, unreadable or of the wrong schema.
func (v *verifier) unusable() int {
	n := 0
	for _, df := range v.tableFiles() {
		if !df.usable {
			n++
		}
	}
	return n
}

// tableFiles returns the files of the snapshot tables (not the change log's).
func (v *verifier) tableFiles() []*dataFile {
	var files []*dataFile
	for _, df := range v.files {
		if !df.isEvents() {
			files = append(files, df)
		}
	}
	return files
}

// openParquet opens a file's footer (and page index), turning a panic of the
// Parquet reader on a corrupt file into an error.
func openParquet(r io.ReaderAt, size int64) (f *parquet.File, err error) {
	defer func() {
		if p := recover(); p != nil {
			f, err = nil, fmt.Errorf("the Parquet reader failed: %v", p)
		}
	}()
	return parquet.OpenFile(r, size, fileOptions...)
}

// guard runs fn and turns a panic of the Parquet reader on a corrupt file into
// a finding that names the file, so a corrupt snapshot yields a report (and a
// SnapshotValid of 0) instead of a crashed verifier.
func (v *verifier) guard(df *dataFile, fn func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			v.readerPanicked(df, p)
			err = nil
		}
	}()
	return fn()
}

// readerPanicked reports that the Parquet reader panicked with p on df.
func (v *verifier) readerPanicked(df *dataFile, p any) {
	v.columns.errorf("%s cannot be read, the Parquet reader failed (%v): the file is corrupt; re-run the export for %s", df.entry.Key, p, v.date)
}

// forEach runs fn for each file, Concurrency at a time, and returns the first
// error (the others are cancelled). A panic of the Parquet reader in fn
// becomes a finding (see guard).
func (v *verifier) forEach(ctx context.Context, files []*dataFile, fn func(context.Context, *dataFile) error) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(v.opts.Concurrency)
	for _, df := range files {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error { return v.guard(df, func() error { return fn(gctx, df) }) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	return nil
}

// scanFile decodes every page of a file that the data checks will not read
// (some other file is unusable), for the columns and checksums checks.
func (v *verifier) scanFile(_ context.Context, df *dataFile) error {
	if df.f == nil {
		return nil // unreadable footer: checksums still hashes it
	}
	for rgi, rg := range df.f.RowGroups() {
		if err := v.scanRowGroup(df, rgi, rg); err != nil {
			return ignoreDone(err)
		}
	}
	return nil
}

// checkChecksums finishes hashing every file that exists (the pages already
// decoded were hashed as they were read) and compares each SHA-256 with the
// manifest's.
func (v *verifier) checkChecksums(ctx context.Context) error {
	var f findings
	var hashed atomic.Int64
	err := v.forEach(ctx, v.files, func(_ context.Context, df *dataFile) error {
		if df.rd == nil {
			return nil // missing: reported by objects
		}
		sum, n, err := df.rd.finish()
		if serr := df.rd.storageErr(); serr != nil {
			return fmt.Errorf("verify: reading %s: %w", df.entry.Key, serr)
		}
		if err != nil {
			f.errorf("%s cannot be hashed (%v): it changed while it was being verified; re-run the verifier", df.entry.Key, err)
			return nil
		}
		hashed.Add(1)
		if !strings.EqualFold(sum, df.entry.SHA256) {
			f.errorf("%s has SHA-256 %s (%d bytes), the manifest says %q: the file was changed or corrupted after the export wrote it, or the manifest is wrong; re-run the export for %s",
				df.entry.Key, sum, n, df.entry.SHA256, v.date)
		}
		return nil
	})
	if err != nil {
		return err
	}
	v.add(f.check(CheckChecksums, fmt.Sprintf("SHA-256 of %d of %d files compared with the manifest: %d bytes read from storage in %d reads for %d bytes of files (%s)",
		hashed.Load(), len(v.files), v.bytes.Load(), v.reads.Load(), v.report.Stats.BytesTotal, percent(v.bytes.Load(), v.report.Stats.BytesTotal))))
	return nil
}

// isSHA256 reports whether s is 64 hex digits.
func isSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

func percent(part, whole int64) string {
	if whole == 0 {
		return "0%"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(part)/float64(whole))
}

func tableNames() []string {
	var names []string
	for _, t := range schema.Tables() {
		names = append(names, t.Name)
	}
	return names
}
