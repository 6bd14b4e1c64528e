// Package snapshot defines the on-storage layout of a dsync-export snapshot and
// its manifest, shared by the export (which writes them) and the verifier
// (which checks them).
//
// A snapshot of date D under a destination prefix P is:
//
//	P/<table>/dt=D/<run>-part-00000.parquet   data files written by the commit (directories, empty tables)
//	P/<table>/dt=D/<run>-u0003-c0002-part-00000.parquet
//	                                          data files of work unit 3's chunk 2 (see pkg/export)
//	P/_runs/dt=D/<run>/plan.json              the run's plan: its directories and work units
//	P/_runs/dt=D/<run>/unit-0003.json         work unit 3's checkpoint: cursors, parts, counts
//	P/_manifests/dt=D/manifest.json           written last: the commit record
//	P/snapshots/dt=D/<run>.parquet            the snapshots table's row, after the commit
//	P/_leases/dt=D.json                       the run that currently owns the date
//	P/_leases/active/dt=D/<run>.json          a run in flight: one date at a time (see pkg/export)
//	P/_runs/dt=D/<run>/failure.json           the run's first recorded failure, for the state machine
//	P/_verified/dt=D.json                     written by verify when the snapshot passed
//
// Every run of a date has its own run id, and its data keys carry it, so a
// rerun never overwrites the files of the committed snapshot: it writes new
// keys, commits by replacing the manifest, and only then deletes the earlier
// runs' files. Athena treats paths starting with "_" as hidden, so manifests
// and leases never show up as table data. A snapshot without a manifest is
// incomplete and must not be trusted; a manifest lists exactly the data
// objects of its snapshot.
package snapshot

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/dsync-export/dsync-export/pkg/schema"
)

// FormatVersion is the version of the manifest format.
const FormatVersion = 1

// ManifestsDir is the top-level folder of manifests under the prefix.
const ManifestsDir = "_manifests"

// PartitionPrefix returns the key prefix of one table's partition for date,
// relative to the destination prefix, with a trailing slash.
func PartitionPrefix(table, date string) string {
	return table + "/dt=" + date + "/"
}

// PartKey returns the key of data file number part that run wrote in a
// table's partition.
func PartKey(table, date, run string, part int) string {
	return fmt.Sprintf("%s%s-part-%05d.parquet", PartitionPrefix(table, date), run, part)
}

// ChunkPartKey returns the key of data file number part that chunk number
// chunk of work unit unit wrote for run in a table's partition. The key is
// fixed by (run, unit, chunk, part), so a chunk retried from the same
// checkpoint rewrites the same keys.
func ChunkPartKey(table, date, run, unit string, chunk, part int) string {
	return fmt.Sprintf("%s%s-u%s-c%04d-part-%05d.parquet", PartitionPrefix(table, date), run, unit, chunk, part)
}

// ChunkPart is what a key written by ChunkPartKey names.
type ChunkPart struct {
	Table, Date, Run, Unit string
	Chunk, Part            int
}

var chunkPartRE = regexp.MustCompile(`^([a-z_]+)/dt=(\d{4}-\d{2}-\d{2})/(.+)-u([0-9]+)-c([0-9]+)-part-([0-9]+)\.parquet$`)

// ParseChunkPartKey parses a key written by ChunkPartKey (relative to the
// destination prefix).
func ParseChunkPartKey(key string) (ChunkPart, bool) {
	m := chunkPartRE.FindStringSubmatch(key)
	if m == nil || !ValidRunID(m[3]) {
		return ChunkPart{}, false
	}
	chunk, err1 := strconv.Atoi(m[5])
	part, err2 := strconv.Atoi(m[6])
	if err1 != nil || err2 != nil {
		return ChunkPart{}, false
	}
	return ChunkPart{Table: m[1], Date: m[2], Run: m[3], Unit: m[4], Chunk: chunk, Part: part}, true
}

// RunsDir is the top-level folder of the runs' plans and checkpoints.
const RunsDir = "_runs"

// RunsPrefix returns the prefix of every run's plan and checkpoints of date.
func RunsPrefix(date string) string { return RunsDir + "/dt=" + date + "/" }

// RunPrefix returns the prefix of one run's plan and checkpoints.
func RunPrefix(date, run string) string { return RunsPrefix(date) + run + "/" }

// PlanKey returns the key of a run's plan.
func PlanKey(date, run string) string { return RunPrefix(date, run) + "plan.json" }

// CheckpointKey returns the key of a work unit's checkpoint.
func CheckpointKey(date, run, unit string) string {
	return RunPrefix(date, run) + "unit-" + unit + ".json"
}

// AttemptKey returns the key where the running attempt of a work unit's
// chunk names itself: a later attempt of the same unit (a retry while the
// earlier invocation still runs) takes the unit over.
func AttemptKey(date, run, unit string) string {
	return RunPrefix(date, run) + "unit-" + unit + ".attempt.json"
}

// AbortedKey returns the key of the marker that a run's abort writes first:
// chunks of the run still in flight find it and delete their own parts
// instead of writing a checkpoint.
func AbortedKey(date, run string) string { return RunPrefix(date, run) + "aborted.json" }

// FailureKey returns the key where a work unit's last failed chunk records
// its error, for the run's abort to report.
func FailureKey(date, run, unit string) string {
	return RunPrefix(date, run) + "unit-" + unit + ".failure.json"
}

// EventsStageKey returns the key of staged events file number part of a
// run's plan attempt: the plan writes the events it read there, the units
// apply them, and the commit writes them into the directory_events table.
// attempt keeps two invocations of one run's plan (a retry while the first
// still runs) off each other's files; the stored plan names the files of
// the attempt that stored it.
func EventsStageKey(date, run, attempt string, part int) string {
	return fmt.Sprintf("%s%05d.parquet", EventsStagePrefix(date, run, attempt), part)
}

// EventsStagePrefix returns the prefix of every staged events file of a
// run's plan attempt.
func EventsStagePrefix(date, run, attempt string) string {
	return RunPrefix(date, run) + "events-" + attempt + "-"
}

// RunFailureKey returns the key of a run's first recorded failure: the
// state machine reads it when the run's abort cannot run, so the execution
// still fails with the unit's own error.
func RunFailureKey(date, run string) string { return RunPrefix(date, run) + "failure.json" }

// runIDLayout is the time part of a run id: UTC, sortable as text.
const runIDLayout = "20060102T150405.000Z"

// NewRunID returns a new run id for a run starting at t: its UTC time to the
// millisecond and 6 random hex digits, such as 20261206T202530.123Z-1a2b3c.
// Run ids sort by start time as text.
func NewRunID(t time.Time) string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return t.UTC().Format(runIDLayout) + "-" + hex.EncodeToString(b[:])
}

// ExecutionRunID returns the run id of the execution named execution,
// which started at start: the same for every invocation of the execution's
// plan, so a plan retried while its first invocation still runs plans the
// same run instead of superseding it.
func ExecutionRunID(start time.Time, execution string) string {
	sum := sha256.Sum256([]byte(execution))
	return start.UTC().Format(runIDLayout) + "-" + hex.EncodeToString(sum[:3])
}

var runIDRE = regexp.MustCompile(`^\d{8}T\d{6}\.\d{3}Z-[0-9a-f]{6}$`)

// ValidRunID reports whether s has the form NewRunID returns.
func ValidRunID(s string) bool { return runIDRE.MatchString(s) }

var chunkSuffixRE = regexp.MustCompile(`-u[0-9]+-c[0-9]+$`)

// RunOfKey returns the run id of a key written by PartKey, ChunkPartKey or
// SnapshotRowKey, or "" for a key without one (written by dsync-export before
// run ids, or not a snapshot's file).
func RunOfKey(key string) string {
	name := key[strings.LastIndexByte(key, '/')+1:]
	run, _, ok := strings.Cut(name, "-part-")
	if ok {
		run = chunkSuffixRE.ReplaceAllString(run, "")
	} else {
		run, ok = strings.CutSuffix(name, ".parquet")
	}
	if !ok || !ValidRunID(run) {
		return ""
	}
	return run
}

// RunOfRunsKey returns the run id of a key under RunsPrefix, or "".
func RunOfRunsKey(key string) string {
	i := strings.Index(key, RunsDir+"/dt=")
	if i < 0 {
		return ""
	}
	rest := key[i+len(RunsDir)+len("/dt=YYYY-MM-DD/"):]
	run, _, ok := strings.Cut(rest, "/")
	if !ok || !ValidRunID(run) {
		return ""
	}
	return run
}

// VerifiedKey returns the key of the marker that verify writes when the
// snapshot of date passes: the next snapshot is compared with the latest
// verified one, so a collapse cannot become the baseline of the next day.
func VerifiedKey(date string) string { return "_verified/dt=" + date + ".json" }

// VerifiedDir is the top-level folder of verify's markers.
const VerifiedDir = "_verified"

var verifiedKeyRE = regexp.MustCompile(`^` + VerifiedDir + `/dt=(\d{4}-\d{2}-\d{2})\.json$`)

// ParseVerifiedKey returns the date of a key written by VerifiedKey.
func ParseVerifiedKey(key string) (date string, ok bool) {
	m := verifiedKeyRE.FindStringSubmatch(key)
	if m == nil {
		return "", false
	}
	if _, err := ParseDate(m[1]); err != nil {
		return "", false
	}
	return m[1], true
}

// RejectedKey returns the key of the marker that verify writes when the
// snapshot of date fails: the export never builds on a rejected snapshot
// (it walks the directories the marker names, or all of them, in full). A
// later pass of the same date removes it. Only verify writes under
// VerifiedDir.
func RejectedKey(date string) string { return VerifiedDir + "/dt=" + date + ".rejected.json" }

// Rejected is the content of a rejected marker.
type Rejected struct {
	SnapshotDate string    `json:"snapshot_date"`
	RunID        string    `json:"run_id"` // the run whose manifest failed
	RejectedAt   time.Time `json:"rejected_at"`
	// Checks names the checks that failed.
	Checks []string `json:"checks"`
	// Directories are the directories the failures name; empty: the whole
	// snapshot is suspect.
	Directories []string `json:"directories,omitempty"`
}

// DirectoriesOrNil returns the directories a rejection names (nil for a
// nil rejection).
func (r *Rejected) DirectoriesOrNil() []string {
	if r == nil {
		return nil
	}
	return r.Directories
}

// Verified is the content of a verified marker.
type Verified struct {
	SnapshotDate string    `json:"snapshot_date"`
	RunID        string    `json:"run_id"` // the run whose manifest passed
	VerifiedAt   time.Time `json:"verified_at"`
}

// LeaseKey returns the key of the lease on date: the run that owns the date.
func LeaseKey(date string) string { return "_leases/dt=" + date + ".json" }

// ActiveDir is the folder of the in-flight markers: a run's plan creates
// one before it takes its date's lease, and its commit or abort removes it.
const ActiveDir = "_leases/active"

// ActiveKey returns the key of run's in-flight marker.
func ActiveKey(date, run string) string { return ActiveDir + "/dt=" + date + "/" + run + ".json" }

var activeKeyRE = regexp.MustCompile(`^` + ActiveDir + `/dt=(\d{4}-\d{2}-\d{2})/([^/]+)\.json$`)

// ParseActiveKey returns the date and run of an ActiveKey.
func ParseActiveKey(key string) (date, run string, ok bool) {
	m := activeKeyRE.FindStringSubmatch(key)
	if m == nil || !ValidRunID(m[2]) {
		return "", "", false
	}
	return m[1], m[2], true
}

// SnapshotRowKey returns the key of the snapshots table's row for run.
func SnapshotRowKey(date, run string) string {
	return PartitionPrefix(schema.TableSnapshots, date) + run + ".parquet"
}

// ManifestKey returns the manifest key of the snapshot of date, relative to the
// destination prefix.
func ManifestKey(date string) string {
	return ManifestsDir + "/dt=" + date + "/manifest.json"
}

var manifestKeyRE = regexp.MustCompile(`(?:^|/)` + ManifestsDir + `/dt=(\d{4}-\d{2}-\d{2})/manifest\.json$`)

// ParseManifestKey extracts the prefix and snapshot date from a full object key
// such as "exports/workos/_manifests/dt=2026-11-28/manifest.json". The prefix
// is returned without a trailing slash ("" at the bucket root).
func ParseManifestKey(key string) (prefix, date string, ok bool) {
	m := manifestKeyRE.FindStringSubmatchIndex(key)
	if m == nil {
		return "", "", false
	}
	date = key[m[2]:m[3]]
	if _, err := ParseDate(date); err != nil {
		return "", "", false
	}
	prefix = strings.TrimSuffix(key[:m[0]], "/")
	return prefix, date, true
}

// ParseDate validates a snapshot date in yyyy-MM-dd form.
func ParseDate(s string) (time.Time, error) {
	t, err := time.Parse(schema.PartitionFormat, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("snapshot: date %q is not a calendar date in YYYY-MM-DD form", s)
	}
	return t, nil
}

// Manifest is the commit record of one snapshot, written after every data file.
type Manifest struct {
	FormatVersion int    `json:"format_version"`
	SnapshotDate  string `json:"snapshot_date"` // the dt partition value
	// SnapshotTime is the exported_at value of every row in the snapshot.
	SnapshotTime       time.Time `json:"snapshot_time"`
	StartedAt          time.Time `json:"started_at"`
	FinishedAt         time.Time `json:"finished_at"`
	DsyncExportVersion string    `json:"dsync_export_version"`
	SchemaVersion      string    `json:"schema_version"`
	// RunID names the run that wrote the snapshot; its data keys carry it.
	RunID string `json:"run_id"`
	// Demo marks a snapshot of the built-in WorkOS fake's demo data.
	Demo bool `json:"demo,omitempty"`
	// Trigger says what started the export (eventbridge, scheduler, manual, now).
	Trigger     string                   `json:"trigger"`
	Tables      map[string]TableManifest `json:"tables"`
	Directories []DirectoryManifest      `json:"directories"`
	API         APIStats                 `json:"api"`
	// Mode is schema.SnapshotModeFull or SnapshotModeIncremental ("" in
	// manifests written before incremental snapshots: full).
	Mode string `json:"mode,omitempty"`
	// BaseDate and BaseRunID name the committed snapshot that the
	// incremental directories were built from.
	BaseDate  string `json:"base_date,omitempty"`
	BaseRunID string `json:"base_run_id,omitempty"`
	// Events is the run's slice of the directory_events change log (nil in
	// manifests written before it).
	Events *EventsManifest `json:"events,omitempty"`
	// WalksEndedAt is when the commit began, on the clock of the event
	// cursor: every walk of the run ended before it, so a directory walked
	// in full may hold changes made up to then (the next plan's drift check
	// allows for the events between the cursor and this time).
	WalksEndedAt time.Time `json:"walks_ended_at,omitzero"`
}

// EventCursor is a position in the Events API's stream.
type EventCursor struct {
	// After is the ID of the last event read ("" when none was): the next
	// run pages from after=After.
	After string `json:"after,omitempty"`
	// AfterTime is the created_at of After.
	AfterTime time.Time `json:"after_time,omitzero"`
	// CheckedAt is when the stream was read up to After: no event created
	// before it (and after After) was missing. A run whose After has left
	// the Events API's retention reads from range_start=CheckedAt.
	CheckedAt time.Time `json:"checked_at"`
}

// EventsManifest is a snapshot's slice of the directory_events change log:
// the events after From through Through. Consecutive snapshots join: a
// snapshot's From is its base snapshot's Through, so every event is in
// exactly one committed snapshot's files.
type EventsManifest struct {
	// BaseDate and BaseRunID name the committed snapshot whose Through is
	// From ("" when the chain starts here, see Restart).
	BaseDate  string `json:"base_date,omitempty"`
	BaseRunID string `json:"base_run_id,omitempty"`
	// Restart says why the chain starts here rather than at a base: the
	// first snapshot, or a base whose cursor left the retention. The events
	// from RangeStart on were read.
	Restart    string      `json:"restart,omitempty"`
	RangeStart time.Time   `json:"range_start,omitzero"`
	From       EventCursor `json:"from"`
	Through    EventCursor `json:"through"`
	// Events is the number of events in Files; CarriedFrom names the run
	// whose files (of the same date) this snapshot took over.
	Events      int64  `json:"events"`
	Files       []File `json:"files"`
	CarriedFrom string `json:"carried_from,omitempty"`
	// Duplicates counts the events read twice (a repeated page edge, a
	// double emission) or at or below From's cursor, and dropped.
	Duplicates int64 `json:"duplicates,omitempty"`
	// Quarantined are the events read that could not be decoded: they are
	// not in Files, the cursor moved past them, and the directories they
	// name (all, when none) were walked in full.
	Quarantined []QuarantinedEvent `json:"quarantined,omitempty"`
	// ReadError is why the run could not read the Events API: the slice
	// is empty (From is Through) and every directory was walked in full.
	ReadError string `json:"read_error,omitempty"`
	// Link is the key of the chain link this slice created (ChainLinkKey):
	// exactly one run extends the chain from a given cursor.
	Link string `json:"link,omitempty"`
}

// QuarantinedEvent is an event of the stream that could not be decoded.
type QuarantinedEvent struct {
	ID        string    `json:"id"`
	Event     string    `json:"event"`
	CreatedAt time.Time `json:"created_at,omitzero"`
	// DirectoryID is the directory the raw payload names, if any.
	DirectoryID string `json:"directory_id,omitempty"`
	// Reason is the decode error, without the payload's values.
	Reason string `json:"reason"`
}

// ChainDir is the top-level folder of the change log's chain links.
const ChainDir = "_chain"

// ChainLinkKey returns the key of the chain link that extends the change
// log from a cursor: the object is created only if absent (S3 If-None-Match,
// O_EXCL in a folder), so exactly one run extends the chain from it: the
// key names the whole cursor, its After and its CheckedAt; restart marks a chain that starts anew (first snapshot, or retention).
func ChainLinkKey(from EventCursor, restart bool) string {
	// The whole cursor: a slice that read no event ends at the After it
	// began with, so the next slice begins there again, at a later time.
	id := from.After + "-t" + from.CheckedAt.UTC().Format("20060102T150405.000Z")
	if restart {
		id = "restart-" + id
	}
	return ChainDir + "/" + id + ".json"
}

// ChainLink is the content of a chain link object.
type ChainLink struct {
	SnapshotDate string      `json:"snapshot_date"`
	RunID        string      `json:"run_id"`
	From         EventCursor `json:"from"`
	Through      EventCursor `json:"through"`
}

// TableManifest lists one table's files in the snapshot.
type TableManifest struct {
	Rows  int64  `json:"rows"`
	Files []File `json:"files"`
}

// File is one data object of the snapshot.
type File struct {
	Key    string `json:"key"` // relative to the destination prefix
	Bytes  int64  `json:"bytes"`
	Rows   int64  `json:"rows"`
	SHA256 string `json:"sha256"`
}

// Directory statuses recorded in the manifest.
const (
	DirectoryOK      = "ok"
	DirectoryDeleted = "deleted" // deleted at WorkOS while the export ran (404); rows fetched before are kept
)

// Membership routes: how a directory's group memberships were fetched.
const (
	RouteByGroup = "by_group" // GET /directory_users?directory=D&group=G for each group
	RouteByUser  = "by_user"  // GET /directory_groups?user=U for each user
	RouteLegacy  = "legacy"   // the deprecated groups array on users
)

// DirectoryManifest records what was exported of one directory.
type DirectoryManifest struct {
	ID             string `json:"id"`
	OrganizationID string `json:"organization_id"`
	Name           string `json:"name"`
	Status         string `json:"status"`
	Error          string `json:"error,omitempty"`
	Users          int64  `json:"users"`
	Groups         int64  `json:"groups"`
	Memberships    int64  `json:"memberships"`
	// MembershipRoute is the route chosen for memberships, with the
	// estimated seconds of each route that the choice was made from.
	MembershipRoute    string  `json:"membership_route"`
	EstimateByGroupSec float64 `json:"estimate_by_group_seconds,omitempty"`
	EstimateByUserSec  float64 `json:"estimate_by_user_seconds,omitempty"`
	Requests           int64   `json:"requests"`
	DurationMillis     int64   `json:"duration_ms"`
	// RowsRejected counts the rows skipped because their id is malformed or
	// their directory_id is not this directory.
	RowsRejected int64 `json:"rows_rejected,omitempty"`
	// Mode is how the directory's rows were fetched: full (walked) or
	// incremental (the base snapshot's rows plus events); ModeReason says
	// why a directory was walked in full.
	Mode       string `json:"mode,omitempty"`
	ModeReason string `json:"mode_reason,omitempty"`
	// LastFullDate is the snapshot date of the directory's latest full walk:
	// the weekly reconcile counts from it.
	LastFullDate string `json:"last_full_date,omitempty"`
	// EventsApplied counts the events applied to an incremental directory.
	EventsApplied int64 `json:"events_applied,omitempty"`
	// Drift is the plan's check of the base's counts plus the events'
	// net creates and deletes against the directory's metadata counts.
	Drift *DriftCheck `json:"drift,omitempty"`
}

// Drift check results (DriftCheck.Result).
const (
	DriftOK         = "ok"          // the counts agree
	DriftFound      = "drift"       // they disagree: the directory was walked in full
	DriftNoMetadata = "no_metadata" // the listing has no metadata counts: not checked
)

// DriftCheck compares what the base and the events say a directory holds
// with the counts WorkOS lists for it.
type DriftCheck struct {
	Result string `json:"result"`
	// ExpectedUsers/Groups are the base's counts plus the events' net
	// creates and deletes; ListedUsers/Groups are metadata's (active plus
	// inactive users).
	ExpectedUsers  int64 `json:"expected_users"`
	ExpectedGroups int64 `json:"expected_groups"`
	ListedUsers    int64 `json:"listed_users"`
	ListedGroups   int64 `json:"listed_groups"`
}

// APIStats are the WorkOS API statistics of the export.
type APIStats struct {
	Requests    int64 `json:"requests"`
	Pages       int64 `json:"pages"`
	Retries     int64 `json:"retries"`
	RateLimited int64 `json:"rate_limited"` // 429 responses received
}

// Marshal encodes the manifest as indented JSON.
func (m *Manifest) Marshal() ([]byte, error) {
	return json.MarshalIndent(m, "", "  ")
}

// Unmarshal decodes a manifest and checks its format version and date.
func Unmarshal(b []byte) (*Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("snapshot: manifest is not valid JSON: %w", err)
	}
	if m.FormatVersion != FormatVersion {
		return nil, fmt.Errorf("snapshot: manifest format_version %d is not supported (want %d): upgrade dsync-export", m.FormatVersion, FormatVersion)
	}
	if _, err := ParseDate(m.SnapshotDate); err != nil {
		return nil, err
	}
	return &m, nil
}

// Keys returns every data key listed by the manifest, the change log's
// files included.
func (m *Manifest) Keys() []string {
	var keys []string
	for _, t := range m.Tables {
		for _, f := range t.Files {
			keys = append(keys, f.Key)
		}
	}
	if m.Events != nil {
		for _, f := range m.Events.Files {
			keys = append(keys, f.Key)
		}
	}
	return keys
}

// Row returns the snapshots table's row of the committed manifest: the one
// source of every field the row and the manifest both say, so they never
// disagree (the export writes it, verify compares it).
func (m *Manifest) Row(committedAt time.Time) schema.Snapshot {
	row := schema.Snapshot{
		RunID:       m.RunID,
		ExportedAt:  m.SnapshotTime,
		CommittedAt: committedAt.UTC().Truncate(time.Millisecond),
		Mode:        m.SnapshotMode(),
		Trigger:     m.Trigger,
		Demo:        m.Demo,
	}
	counts := map[string]*int64{
		schema.TableDirectories:     &row.Directories,
		schema.TableDirectoryUsers:  &row.DirectoryUsers,
		schema.TableDirectoryGroups: &row.Groups,
		schema.TableMemberships:     &row.Memberships,
	}
	for name, t := range m.Tables {
		if c := counts[name]; c != nil {
			*c = t.Rows
		}
		row.Files += int64(len(t.Files))
		for _, f := range t.Files {
			row.Bytes += f.Bytes
		}
	}
	return row
}

// SnapshotMode is the manifest's mode, full for manifests written before
// modes.
func (m *Manifest) SnapshotMode() string {
	if m.Mode == "" {
		return schema.SnapshotModeFull
	}
	return m.Mode
}
