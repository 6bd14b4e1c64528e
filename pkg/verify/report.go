package verify

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sync"
)

// MaxErrors is the number of messages a Check keeps; ErrorCount and
// WarningCount still count all of them.
const MaxErrors = 20

// Names of the checks, in report order.
const (
	CheckManifest        = "manifest"          // the manifest exists, parses and is self-consistent
	CheckPrevious        = "previous_snapshot" // users and memberships did not collapse since the previous snapshot
	CheckObjects         = "objects"           // every listed object exists with its listed size
	CheckStrayObjects    = "stray_objects"     // no unlisted object sits in the snapshot's partitions
	CheckSnapshotRow     = "snapshots_row"     // the snapshots table has the committed run's row, which agrees with the manifest
	CheckFooters         = "parquet_footers"   // every footer is readable through ranged reads
	CheckSchema          = "schema"            // every file's schema equals the current pkg/schema
	CheckRowCounts       = "row_counts"        // footer row counts equal the manifest's, per file and per table
	CheckColumns         = "columns"           // every page of every column decodes, page CRCs included
	CheckChecksums       = "checksums"         // every file's SHA-256 equals the manifest's
	CheckEvents          = "events"            // the change-log slice joins its base's and holds each event once
	CheckUniqueIDs       = "unique_ids"        // IDs are unique within each table
	CheckReferences      = "references"        // memberships, users and groups reference existing rows
	CheckDirectoryCounts = "directory_counts"  // per-directory row counts equal the manifest's
	CheckSample          = "sample"            // sampled records match WorkOS (only with Options.Sample > 0)
)

// Report is the result of verifying one snapshot.
type Report struct {
	// SnapshotDate is the verified snapshot's date (yyyy-MM-dd).
	SnapshotDate string `json:"snapshot_date"`
	// RunID is the run of the verified manifest ("" without a manifest).
	RunID string `json:"run_id,omitempty"`
	// Destination is where the snapshot was read from ("s3://bucket/prefix").
	Destination string `json:"destination,omitempty"`
	// Valid is true when every check passed.
	Valid bool `json:"valid"`
	// Checks holds one entry per check, in the order they ran.
	Checks []Check `json:"checks"`
	// Stats describes how much was read.
	Stats Stats `json:"stats"`
}

// Stats counts what the verifier read from storage.
type Stats struct {
	// Files is the number of data files listed by the manifest.
	Files int `json:"files"`
	// Rows is the number of rows listed by the manifest.
	Rows int64 `json:"rows"`
	// BytesTotal is the size of the data files whose footer could be read.
	BytesTotal int64 `json:"bytes_total"`
	// BytesFetched is what ranged reads fetched from those files: each
	// byte once for a valid snapshot (so BytesTotal), more when sampling
	// or re-reading candidate duplicates.
	BytesFetched int64 `json:"bytes_fetched"`
	// Reads is the number of ranged reads (one GetObject each on S3).
	Reads int64 `json:"reads"`
	// DurationMillis is how long verification took.
	DurationMillis int64 `json:"duration_ms"`
}

// Check is the outcome of one check.
type Check struct {
	// Name is one of the Check… constants.
	Name string `json:"check"`
	// OK is true when the check passed (warnings allowed).
	OK bool `json:"ok"`
	// Skipped is true when the check did not run because an earlier one
	// failed; OK is then false.
	Skipped bool `json:"skipped,omitempty"`
	// Detail summarises what was checked, or why the check was skipped.
	Detail string `json:"detail"`
	// Errors holds the first MaxErrors problems found, each naming the
	// object, column or ID at fault.
	Errors []string `json:"errors,omitempty"`
	// ErrorCount is the total number of problems found.
	ErrorCount int `json:"error_count,omitempty"`
	// Warnings holds the first MaxErrors findings that do not fail the
	// check (such as a sampled user deleted at WorkOS since the snapshot).
	Warnings []string `json:"warnings,omitempty"`
	// WarningCount is the total number of warnings.
	WarningCount int `json:"warning_count,omitempty"`
	// Directories are the directories the check's problems are about, when
	// every problem is about one directory (a per-directory drop or count);
	// empty when any is not.
	Directories []string `json:"directories,omitempty"`
}

// Failed returns the names of the checks that did not pass.
func (r *Report) Failed() []string {
	var names []string
	for _, c := range r.Checks {
		if !c.OK {
			names = append(names, c.Name)
		}
	}
	return names
}

// FailedDirectories returns the directories that the failed checks are
// about, when every failed check names the directories of all its problems
// (see Check.Directories); nil when the report is valid or when some failure
// is not about particular directories: then the whole snapshot is suspect.
func (r *Report) FailedDirectories() []string {
	var dirs []string
	for _, c := range r.Checks {
		if c.OK {
			continue
		}
		if len(c.Directories) == 0 {
			return nil
		}
		dirs = append(dirs, c.Directories...)
	}
	slices.Sort(dirs)
	return slices.Compact(dirs)
}

// Check returns the check with the given name.
func (r *Report) Check(name string) (Check, bool) {
	for _, c := range r.Checks {
		if c.Name == name {
			return c, true
		}
	}
	return Check{}, false
}

// summaryLine is the last line of JSONLines.
type summaryLine struct {
	SnapshotDate string   `json:"snapshot_date"`
	Destination  string   `json:"destination,omitempty"`
	Summary      bool     `json:"summary"`
	Valid        bool     `json:"valid"`
	Failed       []string `json:"failed_checks"`
	Stats        Stats    `json:"stats"`
}

// checkLine is one check in JSONLines.
type checkLine struct {
	SnapshotDate string `json:"snapshot_date"`
	Check
}

// JSONLines encodes the report as JSON Lines: one line per check, then a
// summary line ({"summary":true,"valid":…,"failed_checks":[…],"stats":{…}}).
// Every line carries the snapshot date so log queries can filter on it.
func (r *Report) JSONLines() []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	for _, c := range r.Checks {
		_ = enc.Encode(checkLine{SnapshotDate: r.SnapshotDate, Check: c}) // plain structs: cannot fail
	}
	failed := r.Failed()
	if failed == nil {
		failed = []string{}
	}
	_ = enc.Encode(summaryLine{
		SnapshotDate: r.SnapshotDate, Destination: r.Destination, Summary: true,
		Valid: r.Valid, Failed: failed, Stats: r.Stats,
	})
	return b.Bytes()
}

// EMFNamespace is the CloudWatch namespace of the SnapshotValid metric that
// functions/verify publishes for a Report (lambdafn.Namespace, which its
// tests check: this package imports no Lambda code).
const EMFNamespace = "DsyncExport"

// findings collects the problems and warnings of one check; safe for
// concurrent use. It keeps the first MaxErrors of each and counts them all.
type findings struct {
	mu       sync.Mutex
	errs     []string
	nErrs    int
	dirs     map[string]bool // the directories of dirErrorf's problems
	nUndir   int             // problems recorded by errorf: not about a directory
	warns    []string
	nWarns   int
	maxStore int
}

func (f *findings) errorf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nUndir++
	f.add(format, args...)
}

// dirErrorf records a problem about directory dir (see Check.Directories).
func (f *findings) dirErrorf(dir, format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.dirs == nil {
		f.dirs = make(map[string]bool)
	}
	f.dirs[dir] = true
	f.add(format, args...)
}

// add records a problem; f.mu is held.
func (f *findings) add(format string, args ...any) {
	f.nErrs++
	if len(f.errs) < f.limit() {
		f.errs = append(f.errs, fmt.Sprintf(format, args...))
	}
}

func (f *findings) warnf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nWarns++
	if len(f.warns) < f.limit() {
		f.warns = append(f.warns, fmt.Sprintf(format, args...))
	}
}

func (f *findings) limit() int {
	if f.maxStore > 0 {
		return f.maxStore
	}
	return MaxErrors
}

func (f *findings) failed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.nErrs > 0
}

// check builds the Check named name. detail describes what was checked.
func (f *findings) check(name, detail string) Check {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := Check{
		Name: name, OK: f.nErrs == 0, Detail: detail,
		Errors: f.errs, ErrorCount: f.nErrs,
		Warnings: f.warns, WarningCount: f.nWarns,
	}
	if f.nErrs > len(f.errs) {
		c.Detail += fmt.Sprintf(" (%d problems, the first %d listed)", f.nErrs, len(f.errs))
	}
	if f.nErrs > 0 && f.nUndir == 0 {
		c.Directories = slices.Sorted(maps.Keys(f.dirs))
	}
	return c
}

func skipped(name, why string) Check {
	return Check{Name: name, Skipped: true, Detail: "not run: " + why}
}
