package lambdafn

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"
)

// Namespace is the CloudWatch namespace of every dsync-export metric.
const Namespace = "DsyncExport"

// Metric units used by the functions (CloudWatch's unit names).
const (
	UnitNone         = "None"
	UnitCount        = "Count"
	UnitBytes        = "Bytes"
	UnitMilliseconds = "Milliseconds"
)

// Metric is one value of an EMF line.
type Metric struct {
	Name  string
	Unit  string
	Value float64
}

// Metrics is one CloudWatch Embedded Metric Format line: the values, their
// dimensions, and properties that are logged but not metrics (such as the
// snapshot date). It is encoded with encoding/json.
type Metrics struct {
	Time       time.Time
	Dimensions map[string]string // dimension name -> value; one dimension set of all names
	Values     []Metric
	Properties map[string]any // extra top-level fields (not metrics)
}

type emfMetricDef struct {
	Name string `json:"Name"`
	Unit string `json:"Unit"`
}

type emfDirective struct {
	Namespace  string         `json:"Namespace"`
	Dimensions [][]string     `json:"Dimensions"`
	Metrics    []emfMetricDef `json:"Metrics"`
}

type emfMeta struct {
	Timestamp         int64          `json:"Timestamp"`
	CloudWatchMetrics []emfDirective `json:"CloudWatchMetrics"`
}

// MarshalJSON encodes the line in the EMF specification's shape: the "_aws"
// metadata, and every dimension, value and property as a top-level member.
func (m Metrics) MarshalJSON() ([]byte, error) {
	doc := make(map[string]any, len(m.Properties)+len(m.Dimensions)+len(m.Values)+1)
	maps.Copy(doc, m.Properties)
	dims := slices.Sorted(maps.Keys(m.Dimensions))
	for _, d := range dims {
		doc[d] = m.Dimensions[d]
	}
	dir := emfDirective{Namespace: Namespace, Dimensions: [][]string{dims}, Metrics: make([]emfMetricDef, 0, len(m.Values))}
	if dims == nil {
		dir.Dimensions = [][]string{{}}
	}
	for _, v := range m.Values {
		if _, dup := doc[v.Name]; dup {
			return nil, fmt.Errorf("lambdafn: metric %q is given twice or clashes with a dimension or property", v.Name)
		}
		dir.Metrics = append(dir.Metrics, emfMetricDef{Name: v.Name, Unit: v.Unit})
		doc[v.Name] = v.Value
	}
	doc["_aws"] = emfMeta{Timestamp: m.Time.UnixMilli(), CloudWatchMetrics: []emfDirective{dir}}
	return json.Marshal(doc)
}

// Write writes the line and a newline to w (the function's stdout in Lambda,
// where CloudWatch Logs extracts the metrics).
func (m Metrics) Write(w io.Writer) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
