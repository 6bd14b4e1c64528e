package snapshot

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestLayoutKeys(t *testing.T) {
	if got := PartKey("directory_users", "2026-11-28", 3); got != "directory_users/dt=2026-11-28/part-00003.parquet" {
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
			"directories":     {Rows: 2, Files: []File{{Key: PartKey("directories", "2026-11-28", 0), Bytes: 10, Rows: 2, SHA256: "ab"}}},
			"directory_users": {Rows: 5, Files: []File{{Key: PartKey("directory_users", "2026-11-28", 0), Rows: 3}, {Key: PartKey("directory_users", "2026-11-28", 1), Rows: 2}}},
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
