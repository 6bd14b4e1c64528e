package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/dsync-export/dsync-export/pkg/export"
	"github.com/dsync-export/dsync-export/pkg/lambdafn"
	"github.com/dsync-export/dsync-export/pkg/objstore"
	"github.com/dsync-export/dsync-export/pkg/schema"
	"github.com/dsync-export/dsync-export/pkg/secret"
	"github.com/dsync-export/dsync-export/pkg/snapshot"
	"github.com/dsync-export/dsync-export/pkg/workos"
)

// Output is the function's JSON result.
type Output struct {
	SnapshotDate        string            `json:"snapshot_date"`
	RunID               string            `json:"run_id"`
	Demo                bool              `json:"demo,omitempty"`
	ManifestKey         string            `json:"manifest_key"`
	Destination         string            `json:"destination"`
	Trigger             string            `json:"trigger"`
	Rows                map[string]int64  `json:"rows"`
	Files               int               `json:"files"`
	Bytes               int64             `json:"bytes"`
	Directories         int               `json:"directories"`
	DeletedDirectories  []string          `json:"deleted_directories,omitempty"`
	StaleObjectsDeleted int               `json:"stale_objects_deleted"`
	DurationMillis      int64             `json:"duration_ms"`
	API                 snapshot.APIStats `json:"api"`
	// Mode is full or incremental; IncrementalDirectories counts the
	// directories built from the base snapshot plus events, and Events the
	// events this run added to directory_events.
	Mode                   string `json:"mode"`
	IncrementalDirectories int    `json:"incremental_directories"`
	Events                 int64  `json:"events"`
	// EventsQuarantined counts the events that did not decode (the
	// manifest's events.quarantined), EventsDuplicates the repeated ones
	// dropped, and DriftedDirectories the directories whose metadata counts
	// disagreed with the base plus the events (walked in full).
	EventsQuarantined  int      `json:"events_quarantined,omitempty"`
	EventsDuplicates   int64    `json:"events_duplicates,omitempty"`
	DriftedDirectories []string `json:"drifted_directories,omitempty"`
}

// handler runs one export per invocation. Its dependencies are built once per
// cold start and reused by warm invocations.
type handler struct {
	cfg      config
	sink     objstore.Store
	keys     secret.Source
	keysFrom string // where the key comes from, for error messages
	log      *slog.Logger
	metrics  io.Writer // CloudWatch Embedded Metric Format lines
	now      func() time.Time
	demo     bool                // the WorkOS API is the built-in fake: mark the snapshot as demo data
	watch    func(export.Status) // a live progress display, for local runs

	mu      sync.Mutex
	clients map[int]*workos.Client // by workers sharing the global rate
	key     string                 // the API key of the cached clients
}

// Handle runs one export for the trigger in.
func (h *handler) Handle(ctx context.Context, in Input) (Output, error) {
	start := h.now()
	date, trigger, err := in.Resolve(start, time.Time{}, h.cfg.ProjectionStart)
	if err != nil {
		err = fmt.Errorf("%w: %w", errInput, err) // Export.InvalidInput: no retry fixes the trigger
	}
	var cfg export.Config
	if err == nil {
		cfg, err = applyInput(&in, h.cfg.Export)
	}
	if err == nil {
		err = h.checkDestination(ctx)
	}
	var client *workos.Client
	if err == nil {
		client, err = h.workosClient(ctx, 1)
	}
	if err != nil {
		h.log.Error("export failed before it started: no manifest written", "error", err.Error())
		h.emit(date, nil, err)
		return Output{}, err
	}
	h.log.Info("export starting", "snapshot_date", date, "trigger", trigger, "destination", h.sink.String(),
		"concurrency", cfg.Concurrency, "membership_mode", cfg.MembershipMode)
	ex := &export.Exporter{Client: client, Store: h.sink, Log: h.log, Config: cfg, Watch: h.watch, Now: h.now}
	res, err := ex.Run(ctx, export.Target{Date: date, Time: start, Trigger: trigger, Demo: h.demo})
	if err != nil {
		err = h.keyHint(err)
		h.log.Error("export failed: no manifest written", "snapshot_date", date, "error", err.Error())
		h.emit(date, nil, err)
		return Output{}, err
	}
	return h.committed(res, trigger), nil
}

// checkDestination refuses, before anything is written, a destination that
// holds the other kind of data: an export of real data refuses one holding
// demo snapshots (see destguard.go; the demo checks its folder when it starts).
func (h *handler) checkDestination(ctx context.Context) error {
	if h.demo {
		return nil
	}
	return checkNoDemoSnapshots(ctx, h.sink)
}

// committed summarizes a committed snapshot, logs it and emits its metrics.
func (h *handler) committed(res *export.Result, trigger string) Output {
	out := summarize(res, h.sink.String(), trigger)
	h.log.Info("export committed", "snapshot_date", out.SnapshotDate, "manifest", out.ManifestKey, "rows", out.Rows,
		"files", out.Files, "bytes", out.Bytes, "duration_ms", out.DurationMillis,
		"requests", out.API.Requests, "retries", out.API.Retries, "rate_limited", out.API.RateLimited,
		"stale_deleted", out.StaleObjectsDeleted)
	h.emit(out.SnapshotDate, &out, nil)
	return out
}

// workosClient returns the cached client for one of workers that share the
// global rate, rebuilding the clients when the key changes.
func (h *handler) workosClient(ctx context.Context, workers int) (*workos.Client, error) {
	key, err := h.keys.APIKey(ctx)
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.key != key {
		h.clients, h.key = map[int]*workos.Client{}, key
	}
	if c := h.clients[workers]; c != nil {
		return c, nil
	}
	limits := h.cfg.RateLimits
	limits.Global /= float64(max(1, workers))
	opts := []workos.Option{
		workos.WithBaseURL(h.cfg.BaseURL),
		workos.WithRateLimits(limits),
		workos.WithMaxAttempts(h.cfg.MaxAttempts),
		workos.WithLogger(h.log),
	}
	c, err := workos.NewClient(key, opts...)
	if err != nil {
		return nil, fmt.Errorf("export: WorkOS client from %s: %w", h.keysFrom, err)
	}
	h.clients[workers] = c
	return c, nil
}

func summarize(res *export.Result, dest, trigger string) Output {
	m := res.Manifest
	out := Output{
		SnapshotDate:        m.SnapshotDate,
		RunID:               m.RunID,
		Demo:                m.Demo,
		ManifestKey:         res.ManifestKey,
		Destination:         dest,
		Trigger:             trigger,
		Rows:                map[string]int64{},
		Directories:         len(m.Directories),
		StaleObjectsDeleted: len(res.StaleDeleted),
		DurationMillis:      res.Duration.Milliseconds(),
		API:                 m.API,
		Mode:                m.Mode,
	}
	if m.Events != nil {
		if m.Events.CarriedFrom == "" {
			out.EventsQuarantined = len(m.Events.Quarantined)
			out.EventsDuplicates = m.Events.Duplicates
		}
		for _, f := range m.Events.Files {
			if snapshot.RunOfKey(f.Key) == m.RunID { // not those taken over from an earlier run
				out.Events += f.Rows
			}
		}
	}
	for name, t := range m.Tables {
		out.Rows[name] = t.Rows
		out.Files += len(t.Files)
		for _, f := range t.Files {
			out.Bytes += f.Bytes
		}
	}
	for _, d := range m.Directories {
		if d.Mode == schema.SnapshotModeIncremental {
			out.IncrementalDirectories++
		}
		if d.Drift != nil && d.Drift.Result == snapshot.DriftFound {
			out.DriftedDirectories = append(out.DriftedDirectories, d.ID)
		}
		if d.Status == snapshot.DirectoryDeleted {
			out.DeletedDirectories = append(out.DeletedDirectories, d.ID)
		}
	}
	sort.Strings(out.DeletedDirectories)
	return out
}

// emit writes one CloudWatch Embedded Metric Format line: rows per table,
// pages, retries, 429s, duration, the change log's quarantined and repeated
// events and drifted directories, and ExportSucceeded (1 or 0).
func (h *handler) emit(date string, out *Output, failure error) {
	if h.metrics == nil {
		return
	}
	m := lambdafn.Metrics{
		Time:       h.now(),
		Dimensions: map[string]string{"Function": "export"},
		Properties: map[string]any{"snapshot_date": date},
	}
	if out == nil || failure != nil {
		m.Values = []lambdafn.Metric{{Name: "ExportSucceeded", Unit: lambdafn.UnitNone, Value: 0}}
	} else {
		m.Values = []lambdafn.Metric{{Name: "ExportSucceeded", Unit: lambdafn.UnitNone, Value: 1}}
		for _, t := range schema.Tables() {
			m.Values = append(m.Values, lambdafn.Metric{Name: "Rows_" + t.Name, Unit: lambdafn.UnitCount, Value: float64(out.Rows[t.Name])})
		}
		m.Values = append(m.Values,
			lambdafn.Metric{Name: "Requests", Unit: lambdafn.UnitCount, Value: float64(out.API.Requests)},
			lambdafn.Metric{Name: "Pages", Unit: lambdafn.UnitCount, Value: float64(out.API.Pages)},
			lambdafn.Metric{Name: "Retries", Unit: lambdafn.UnitCount, Value: float64(out.API.Retries)},
			lambdafn.Metric{Name: "RateLimited", Unit: lambdafn.UnitCount, Value: float64(out.API.RateLimited)},
			lambdafn.Metric{Name: "DurationMs", Unit: lambdafn.UnitMilliseconds, Value: float64(out.DurationMillis)},
			lambdafn.Metric{Name: "Bytes", Unit: lambdafn.UnitBytes, Value: float64(out.Bytes)},
			lambdafn.Metric{Name: "EventsQuarantined", Unit: lambdafn.UnitCount, Value: float64(out.EventsQuarantined)},
			lambdafn.Metric{Name: "EventsDuplicates", Unit: lambdafn.UnitCount, Value: float64(out.EventsDuplicates)},
			lambdafn.Metric{Name: "DirectoriesDrifted", Unit: lambdafn.UnitCount, Value: float64(len(out.DriftedDirectories))},
		)
	}
	if err := m.Write(h.metrics); err != nil {
		h.log.Warn("metrics line not written", "error", err.Error())
	}
}

// errConfig marks configuration errors (exit code 2 outside Lambda).
var errConfig = errors.New("configuration")
