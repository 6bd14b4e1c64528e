package main

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/dsync-export/dsync-export/pkg/lambdafn"
	"github.com/dsync-export/dsync-export/pkg/verify"
)

// emf returns the CloudWatch Embedded Metric Format line (with a trailing
// newline) that publishes the report's SnapshotValid: 1 when it is valid,
// else 0. Printed on stdout by the function, it becomes a metric without any
// API call.
//
// A trigger that is not empty adds a Trigger dimension. Manual verifications
// of past snapshots use it, so that their result is a metric of its own and
// cannot clear or raise the alarm on the dimensionless SnapshotValid that
// scheduled snapshots feed. The line also carries the snapshot date as a
// property (not a dimension).
func emf(r *verify.Report, now time.Time, trigger string) []byte {
	b, err := json.Marshal(metrics(r, now, trigger))
	if err != nil { // one metric, at most one dimension: cannot clash
		panic(fmt.Sprintf("verify: encoding the EMF line: %v", err))
	}
	return append(b, '\n')
}

// metrics returns the SnapshotValid line of emf.
func metrics(r *verify.Report, now time.Time, trigger string) lambdafn.Metrics {
	v := 0.0
	if r.Valid {
		v = 1
	}
	m := lambdafn.Metrics{
		Time:   now,
		Values: []lambdafn.Metric{{Name: "SnapshotValid", Unit: lambdafn.UnitNone, Value: v}},
	}
	if trigger != "" {
		m.Dimensions = map[string]string{"Trigger": trigger}
	}
	if r.SnapshotDate != "" {
		m.Properties = map[string]any{"snapshot_date": r.SnapshotDate}
	}
	return m
}
