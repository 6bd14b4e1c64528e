package snapshot

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestLayoutKeys(t *testing.T) {
	if got := PartKey("directory_users", "2026-11-28", testRun, 3); got != "directory_users/dt=2026-11-28/"+testRun+"-part-00003.parquet" {
		t.Errorf("PartKey = %q", got)
	}
	if got := ManifestKey("2026-11-28"); got != "_manifests/dt=2026-11-28/manifest.json" {
		t.Errorf("ManifestKey = %q", got)
	}
	if got := PartitionPrefix("directories", "2026-01-02"); got != "directories/dt=2026-01-02/" {
		t.Errorf("PartitionPrefix = %q", got)
	}
}

func TestParseManifestKey(t *testing.T) {
	for _, tc := range []struct {
		key, prefix, date string
		ok                bool
	}{
		{"exports/workos/_manifests/dt=2026-11-28/manifest.json", "exports/workos", "2026-11-28", true},
		{"_manifests/dt=2026-11-28/manifest.json", "", "2026-11-28", true},
		{"a/_manifests/dt=2026-02-30/manifest.json", "", "", false}, // not a calendar date
		{"a/_manifests/dt=2026-11-28/other.json", "", "", false},
		{"a/x_manifests/dt=2026-11-28/manifest.json", "", "", false},
		{"directory_users/dt=2026-11-28/part-00000.parquet", "", "", false},
	} {
		prefix, date, ok := ParseManifestKey(tc.key)
		if prefix != tc.prefix || date != tc.date || ok != tc.ok {
			t.Errorf("ParseManifestKey(%q) = %q, %q, %v; want %q, %q, %v", tc.key, prefix, date, ok, tc.prefix, tc.date, tc.ok)
		}
	}
}

func TestManifestRoundTripAndValidation(t *testing.T) {
	m := &Manifest{
		FormatVersion: FormatVersion, SnapshotDate: "2026-11-28",
		SnapshotTime: time.Date(2026, 11, 28, 2, 0, 0, 0, time.UTC),
		Tables: map[string]TableManifest{
			"directories":     {Rows: 2, Files: []File{{Key: PartKey("directories", "2026-11-28", testRun, 0), Bytes: 10, Rows: 2, SHA256: "ab"}}},
			"directory_users": {Rows: 5, Files: []File{{Key: PartKey("directory_users", "2026-11-28", testRun, 0), Rows: 3}, {Key: PartKey("directory_users", "2026-11-28", testRun, 1), Rows: 2}}},
		},
		Directories: []DirectoryManifest{{ID: "directory_1", Status: DirectoryOK, MembershipRoute: RouteByGroup}},
	}
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(m, got); d != "" {
		t.Errorf("round trip (-want +got):\n%s", d)
	}
	if n := len(got.Keys()); n != 3 {
		t.Errorf("Keys() has %d keys, want 3", n)
	}
	for _, bad := range []string{`{`, `{"format_version":2,"snapshot_date":"2026-11-28"}`, `{"format_version":1,"snapshot_date":"28/11/2026"}`} {
		if _, err := Unmarshal([]byte(bad)); err == nil || !strings.Contains(err.Error(), "snapshot:") {
			t.Errorf("Unmarshal(%s) err = %v, want a snapshot error", bad, err)
		}
	}
}

const testRun = "20261128T020000.000Z-0a1b2c"

func TestRunIDs(t *testing.T) {
	at := time.Date(2026, 12, 6, 20, 25, 30, 123e6, time.UTC)
	a, b := NewRunID(at), NewRunID(at.Add(time.Millisecond))
	if !ValidRunID(a) || !ValidRunID(b) {
		t.Fatalf("run ids %q %q are not valid", a, b)
	}
	if !strings.HasPrefix(a, "20261206T202530.123Z-") || !(a < b) {
		t.Errorf("run ids %q, %q: want the UTC start time first, sorting by time", a, b)
	}
	if a == NewRunID(at) {
		t.Errorf("two runs started in the same millisecond got the same id %q", a)
	}
	for key, want := range map[string]string{
		PartKey("directory_users", "2026-12-06", a, 2):                      a,
		"directory_users/dt=2026-12-06/part-00000.parquet":                  "",
		"directory_users/dt=2026-12-06/x-part-00000.parquet":                "",
		SnapshotRowKey("2026-12-06", a):                                     a,
		"snapshots/dt=2026-12-06/other.parquet":                             "",
		ChunkPartKey("directory_users", "2026-12-06", a, "0003", 12, 1):     a,
		"directory_users/dt=2026-12-06/" + a + "-u0003-part-00000.parquet":  "",
		"directory_users/dt=2026-12-06/" + a + "x-u1-c1-part-00000.parquet": "",
	} {
		if got := RunOfKey(key); got != want {
			t.Errorf("RunOfKey(%q) = %q, want %q", key, got, want)
		}
	}
	// The _latest views and the named queries keep a run's files by
	// strpos("$path", '/' || run_id || '-') (pkg/schema): every key form of
	// the run must contain it, and no key of another run.
	for _, key := range []string{PartKey("directories", "2026-12-06", a, 0), ChunkPartKey("directory_users", "2026-12-06", a, "0003", 12, 1)} {
		if !strings.Contains("s3://bucket/workos/"+key, "/"+a+"-") || strings.Contains("s3://bucket/workos/"+key, "/"+b+"-") {
			t.Errorf("key %s: the views' filter for run %s must match it and the one for run %s must not", key, a, b)
		}
	}
	if got, want := ChunkPartKey("directory_users", "2026-12-06", a, "0003", 12, 1), "directory_users/dt=2026-12-06/"+a+"-u0003-c0012-part-00001.parquet"; got != want {
		t.Errorf("ChunkPartKey = %q, want %q", got, want)
	}
	if cp, ok := ParseChunkPartKey(ChunkPartKey("directory_users", "2026-12-06", a, "0003", 12, 1)); !ok || cp != (ChunkPart{Table: "directory_users", Date: "2026-12-06", Run: a, Unit: "0003", Chunk: 12, Part: 1}) {
		t.Errorf("ParseChunkPartKey = %+v, %v", cp, ok)
	}
	for _, bad := range []string{PartKey("directories", "2026-12-06", a, 0), "directory_users/dt=2026-12-06/x-u1-c1-part-00000.parquet"} {
		if _, ok := ParseChunkPartKey(bad); ok {
			t.Errorf("ParseChunkPartKey(%q) succeeded", bad)
		}
	}
	if got := RunOfRunsKey(CheckpointKey("2026-12-06", a, "0003")); got != a {
		t.Errorf("RunOfRunsKey(checkpoint) = %q, want %q", got, a)
	}
	if got := RunOfRunsKey("workos/" + PlanKey("2026-12-06", a)); got != a {
		t.Errorf("RunOfRunsKey(prefixed plan) = %q, want %q", got, a)
	}
	if got := RunOfRunsKey("_runs/dt=2026-12-06/junk/plan.json"); got != "" {
		t.Errorf("RunOfRunsKey(junk) = %q, want \"\"", got)
	}
	for _, bad := range []string{"", "20261206T202530Z-1a2b3c", "20261206T202530.123Z-1A2B3C", "../20261206T202530.123Z-1a2b3c"} {
		if ValidRunID(bad) {
			t.Errorf("ValidRunID(%q) = true", bad)
		}
	}
}
