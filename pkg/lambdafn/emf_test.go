package lambdafn_test

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dsync-export/dsync-export/pkg/lambdafn"
)

func TestMetricsEMFShape(t *testing.T) {
	var buf bytes.Buffer
	m := lambdafn.Metrics{
		Time:       time.UnixMilli(1764979200123),
		Dimensions: map[string]string{"Function": "export"},
		Values:     []lambdafn.Metric{{Name: "ExportSucceeded", Unit: lambdafn.UnitNone, Value: 1}, {Name: "Rows_directory_users", Unit: lambdafn.UnitCount, Value: 42}},
		Properties: map[string]any{"snapshot_date": "2026-12-06", "note": "quote \" and \u2028"},
	}
	if err := m.Write(&buf); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasSuffix(buf.Bytes(), []byte("}\n")) || bytes.Count(buf.Bytes(), []byte("\n")) != 1 {
		t.Fatalf("want one JSON line, got %q", buf.String())
	}
	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, buf.String())
	}
	want := map[string]any{
		"_aws": map[string]any{
			"Timestamp": float64(1764979200123),
			"CloudWatchMetrics": []any{map[string]any{
				"Namespace":  "DsyncExport",
				"Dimensions": []any{[]any{"Function"}},
				"Metrics": []any{
					map[string]any{"Name": "ExportSucceeded", "Unit": "None"},
					map[string]any{"Name": "Rows_directory_users", "Unit": "Count"},
				},
			}},
		},
		"Function":             "export",
		"ExportSucceeded":      float64(1),
		"Rows_directory_users": float64(42),
		"snapshot_date":        "2026-12-06",
		"note":                 "quote \" and \u2028",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("EMF line (-want +got):\n%s", d)
	}
}

func TestMetricsNoDimensionsAndClash(t *testing.T) {
	b, err := json.Marshal(lambdafn.Metrics{Values: []lambdafn.Metric{{Name: "SnapshotValid", Unit: lambdafn.UnitNone}}})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(`"Dimensions":[[]]`)) {
		t.Fatalf("a line without dimensions must declare one empty dimension set: %s", b)
	}
	_, err = json.Marshal(lambdafn.Metrics{Dimensions: map[string]string{"X": "a"}, Values: []lambdafn.Metric{{Name: "X"}}})
	if err == nil {
		t.Fatal("a metric named like a dimension must be refused")
	}
}
