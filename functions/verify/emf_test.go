package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/dsync-export/dsync-export/pkg/lambdafn"
	"github.com/dsync-export/dsync-export/pkg/verify"
)

func TestEMFWithTriggerIsASeparateMetric(t *testing.T) {
	t.Parallel()
	var doc map[string]any
	if err := json.Unmarshal(emf(&verify.Report{Valid: true}, time.UnixMilli(1), "manual"), &doc); err != nil {
		t.Fatal(err)
	}
	dims := doc["_aws"].(map[string]any)["CloudWatchMetrics"].([]any)[0].(map[string]any)["Dimensions"]
	if doc["Trigger"] != "manual" || doc["SnapshotValid"] != float64(1) || fmt.Sprint(dims) != "[[Trigger]]" {
		t.Errorf("EMF %v", doc)
	}
}

func TestEMF(t *testing.T) {
	t.Parallel()
	at := time.UnixMilli(1795000000123)
	for _, valid := range []bool{true, false} {
		got := emf(&verify.Report{Valid: valid}, at, "")
		want := 0
		if valid {
			want = 1
		}
		var doc struct {
			AWS struct {
				Timestamp         int64
				CloudWatchMetrics []struct {
					Namespace  string
					Dimensions [][]string
					Metrics    []struct{ Name, Unit string }
				}
			} `json:"_aws"`
			SnapshotValid *int
		}
		if !bytes.HasSuffix(got, []byte("}\n")) || bytes.Count(got, []byte("\n")) != 1 {
			t.Errorf("EMF is not one line: %q", got)
		}
		dec := json.NewDecoder(bytes.NewReader(got))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&doc); err != nil {
			t.Fatal(err)
		}
		cw := doc.AWS.CloudWatchMetrics
		if doc.AWS.Timestamp != 1795000000123 || len(cw) != 1 || cw[0].Namespace != "DsyncExport" ||
			len(cw[0].Dimensions) != 1 || len(cw[0].Dimensions[0]) != 0 ||
			len(cw[0].Metrics) != 1 || cw[0].Metrics[0] != (struct{ Name, Unit string }{"SnapshotValid", "None"}) ||
			doc.SnapshotValid == nil || *doc.SnapshotValid != want {
			t.Errorf("EMF = %s", got)
		}
	}
}

// TestEMFNamespace: pkg/verify names the metric's namespace without
// importing pkg/lambdafn, whose namespace the line carries.
func TestEMFNamespace(t *testing.T) {
	t.Parallel()
	if verify.EMFNamespace != lambdafn.Namespace {
		t.Errorf("verify.EMFNamespace %q, lambdafn.Namespace %q", verify.EMFNamespace, lambdafn.Namespace)
	}
}
