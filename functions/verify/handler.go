package main

import (
	"encoding/json"

	"context"
	"errors"
	"fmt"
	"github.com/aws/aws-lambda-go/events"
	"io"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dsync-export/dsync-export/pkg/objstore"
	"github.com/dsync-export/dsync-export/pkg/secret"
	"github.com/dsync-export/dsync-export/pkg/snapshot"
	"github.com/dsync-export/dsync-export/pkg/verify"
	"github.com/dsync-export/dsync-export/pkg/workos"
)

// Input is the function's event. It is one of:
//
//   - the EventBridge event S3 sends when an object is created, for the
//     manifest key <prefix>/_manifests/dt=YYYY-MM-DD/manifest.json (see
//     events/manifest-created.json);
//   - a manual {"snapshot_date":"YYYY-MM-DD"} (events/verify-manual.json).
type Input struct {
	// The EventBridge envelope; Detail is an S3ObjectDetail.
	events.CloudWatchEvent

	// SnapshotDate selects the snapshot to verify in a manual invocation.
	SnapshotDate string `json:"snapshot_date,omitempty"`
}

// S3ObjectDetail is the detail of an S3 "Object Created" EventBridge event.
type S3ObjectDetail struct {
	Version         string   `json:"version,omitempty"`
	Bucket          S3Bucket `json:"bucket"`
	Object          S3Object `json:"object"`
	RequestID       string   `json:"request-id,omitempty"`
	Requester       string   `json:"requester,omitempty"`
	SourceIPAddress string   `json:"source-ip-address,omitempty"`
	Reason          string   `json:"reason,omitempty"`
}

// S3Bucket names the bucket of an S3 event.
type S3Bucket struct {
	Name string `json:"name"`
}

// S3Object describes the object of an S3 event.
type S3Object struct {
	Key       string `json:"key"`
	Size      int64  `json:"size,omitempty"`
	ETag      string `json:"etag,omitempty"`
	VersionID string `json:"version-id,omitempty"`
	Sequencer string `json:"sequencer,omitempty"`
}

// handler verifies one snapshot per invocation. Its dependencies are built
// once per cold start and reused by warm invocations.
type handler struct {
	cfg    config
	src    objstore.Store // read by verify; the verified marker is written here
	keys   secret.Source  // nil when cfg.Sample is 0
	log    *slog.Logger
	stdout io.Writer // the report and the EMF metric line
	now    func() time.Time

	mu        sync.Mutex
	client    *workos.Client
	clientKey string
}

// Handle verifies the snapshot named by in. It prints the report (JSON
// Lines) and the SnapshotValid metric (EMF) on stdout, and returns the report.
// A valid snapshot gets the verified marker (snapshot.VerifiedKey) and loses
// a rejected marker; an invalid one gets the rejected marker
// (snapshot.RejectedKey, see reject). It returns an error when the snapshot
// is invalid, so that the function's Errors alarm fires, and when the
// snapshot could not be checked (bad input, storage or WorkOS failure); no
// metric and no marker are written then.
func (h *handler) Handle(ctx context.Context, in Input) (*verify.Report, error) {
	date, err := h.resolve(in)
	if err != nil {
		return nil, err
	}
	log := h.log.With("snapshot_date", date, "destination", h.cfg.Destination)
	opts := verify.Options{Sample: h.cfg.Sample, MaxDrop: h.cfg.MaxDrop}
	if h.cfg.Sample > 0 {
		if opts.WorkOS, err = h.workosClient(ctx); err != nil {
			return nil, err
		}
	}
	log.Info("verifying snapshot", "sample", h.cfg.Sample)
	rep, err := verify.Verify(ctx, h.src, date, opts)
	if err != nil {
		if (workos.IsUnauthorized(err) || workos.IsForbidden(err)) && h.keys != nil {
			h.keys.Invalidate() // the next invocation re-reads a rotated secret
		}
		log.Error("verification did not finish", "error", err)
		return nil, fmt.Errorf("verify: snapshot %s in %s could not be verified: %w", date, h.cfg.Destination, err)
	}
	line := emf(rep, h.now(), "")
	if in.Detail == nil { // a manual verification: its own metric, not the alarm's
		line = emf(rep, h.now(), "manual")
	}
	if _, err := h.stdout.Write(append(rep.JSONLines(), line...)); err != nil {
		return nil, fmt.Errorf("verify: writing the report: %w", err)
	}
	if !rep.Valid {
		log.Error("snapshot is invalid", "failed_checks", rep.Failed(), "directories", rep.FailedDirectories())
		first := ""
		for _, c := range rep.Checks {
			if !c.OK && len(c.Errors) > 0 {
				first = fmt.Sprintf("; first problem (%s): %s", c.Name, c.Errors[0])
				break
			}
		}
		invalid := fmt.Errorf("verify: snapshot %s in %s is invalid: failed checks: %s%s (the whole report is in the function's log)",
			date, h.cfg.Destination, strings.Join(rep.Failed(), ", "), first)
		if err := h.reject(ctx, date, rep); err != nil {
			return nil, errors.Join(invalid, err)
		}
		return nil, invalid
	}
	// Mark the snapshot verified: the next snapshot is compared with the
	// latest verified one, so a collapse never becomes the baseline.
	mark, _ := json.Marshal(snapshot.Verified{SnapshotDate: date, RunID: rep.RunID, VerifiedAt: h.now().UTC()})
	if err := h.src.Put(ctx, snapshot.VerifiedKey(date), mark, "application/json"); err != nil {
		return nil, fmt.Errorf("verify: snapshot %s is valid, but the marker %s could not be written (the next snapshot would be compared with an older one): %w", date, snapshot.VerifiedKey(date), err)
	}
	// A rerun (or a re-verification) that passes clears the rejection.
	if err := h.removeMarker(ctx, snapshot.RejectedKey(date), ""); err != nil {
		return nil, fmt.Errorf("verify: snapshot %s is valid, but its rejected marker could not be removed (the export would not build on it): %w", date, err)
	}
	log.Info("snapshot is valid", "files", rep.Stats.Files, "rows", rep.Stats.Rows, "bytes_fetched", rep.Stats.BytesFetched)
	return rep, nil
}

// reject records that the snapshot of date failed, where the export sees it:
// the export never builds on a snapshot whose rejected marker names the run
// of its manifest, and walks the directories the marker names (all, when it
// names none) in full. A verified marker of the same run is removed: the
// run's latest verification failed, so the next snapshot is not compared
// with it either. A verified marker of another run is left alone; it names
// a manifest that is no longer the date's, so nothing trusts it.
func (h *handler) reject(ctx context.Context, date string, rep *verify.Report) error {
	var checks []string
	for _, c := range rep.Checks {
		if !c.OK && !c.Skipped {
			checks = append(checks, c.Name)
		}
	}
	mark, _ := json.Marshal(snapshot.Rejected{
		SnapshotDate: date, RunID: rep.RunID, RejectedAt: h.now().UTC(),
		Checks: checks, Directories: rep.FailedDirectories(),
	})
	if err := h.src.Put(ctx, snapshot.RejectedKey(date), mark, "application/json"); err != nil {
		return fmt.Errorf("verify: the rejected marker %s could not be written (the next export could build on the invalid snapshot): %w", snapshot.RejectedKey(date), err)
	}
	if rep.RunID == "" {
		return nil
	}
	if err := h.removeMarker(ctx, snapshot.VerifiedKey(date), rep.RunID); err != nil {
		return fmt.Errorf("verify: the verified marker of the rejected run %s could not be removed (the next snapshot would be compared with it): %w", rep.RunID, err)
	}
	return nil
}

// removeMarker deletes the marker at key if it exists and, when run is not
// "", names run. It lists the key first, so that the usual case (no marker)
// costs no delete, and a missing key is not mistaken for a denied read.
func (h *handler) removeMarker(ctx context.Context, key, run string) error {
	objs, err := h.src.List(ctx, key)
	if err != nil {
		return fmt.Errorf("listing %s: %w", key, err)
	}
	if !slices.ContainsFunc(objs, func(o objstore.ObjectInfo) bool { return o.Key == key }) {
		return nil
	}
	if run != "" {
		raw, err := h.src.Get(ctx, key)
		if errors.Is(err, objstore.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading %s: %w", key, err)
		}
		var mark struct {
			RunID string `json:"run_id"`
		}
		if json.Unmarshal(raw, &mark) == nil && mark.RunID != run {
			return nil
		}
	}
	if err := h.src.Delete(ctx, []string{key}); err != nil {
		return fmt.Errorf("deleting %s: %w", key, err)
	}
	return nil
}

// resolve returns the snapshot date an input asks for.
func (h *handler) resolve(in Input) (string, error) {
	event := len(in.Detail) > 0 || in.Source != "" || in.DetailType != ""
	switch {
	case event && in.SnapshotDate != "":
		return "", errors.New(`verify: the input has both snapshot_date and an S3 event: send one of them`)
	case in.SnapshotDate != "":
		if _, err := snapshot.ParseDate(in.SnapshotDate); err != nil {
			return "", fmt.Errorf("verify: snapshot_date: %w", err)
		}
		return in.SnapshotDate, nil
	case !event:
		return "", errors.New(`verify: the input has neither snapshot_date nor an S3 "Object Created" event: send {"snapshot_date":"YYYY-MM-DD"}`)
	}
	if in.Source != "aws.s3" || in.DetailType != "Object Created" || len(in.Detail) == 0 {
		return "", fmt.Errorf(`verify: the event has source %q and detail-type %q: want an S3 "Object Created" event (source aws.s3) for a manifest; check the EventBridge rule`, in.Source, in.DetailType)
	}
	var detail S3ObjectDetail
	if err := json.Unmarshal(in.Detail, &detail); err != nil {
		return "", fmt.Errorf(`verify: the S3 "Object Created" event's detail is not an S3 object detail: %w`, err)
	}
	bucket, key := detail.Bucket.Name, detail.Object.Key
	if h.cfg.Bucket == "" {
		return "", fmt.Errorf("verify: the event is for s3://%s/%s but EXPORT_DESTINATION is %s, not an S3 destination: fix EXPORT_DESTINATION", bucket, key, h.cfg.Destination)
	}
	if bucket != h.cfg.Bucket {
		return "", fmt.Errorf("verify: the event is for bucket %q but EXPORT_DESTINATION is %s: fix the EventBridge rule or EXPORT_DESTINATION", bucket, h.cfg.Destination)
	}
	prefix, date, ok := snapshot.ParseManifestKey(key)
	if !ok {
		// Keys in S3 notifications may be URL-encoded (dt%3D2026-11-28).
		if k, err := url.QueryUnescape(key); err == nil {
			prefix, date, ok = snapshot.ParseManifestKey(k)
		}
	}
	if !ok {
		return "", fmt.Errorf("verify: object %q is not a manifest (want <prefix>/%s): fix the EventBridge rule's key filter", key, snapshot.ManifestKey("YYYY-MM-DD"))
	}
	if prefix != h.cfg.Prefix {
		return "", fmt.Errorf("verify: manifest %q is under prefix %q but EXPORT_DESTINATION is %s: fix the EventBridge rule or EXPORT_DESTINATION", key, prefix, h.cfg.Destination)
	}
	return date, nil
}

// workosClient returns a client with the current API key, rebuilt when the
// key changes (a rotated secret).
func (h *handler) workosClient(ctx context.Context) (*workos.Client, error) {
	key, err := h.keys.APIKey(ctx)
	if err != nil {
		return nil, fmt.Errorf("verify: the WorkOS API key for sampling (VERIFY_SAMPLE=%d): %w", h.cfg.Sample, err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.client != nil && h.clientKey == key {
		return h.client, nil
	}
	c, err := workos.NewClient(key, workos.WithBaseURL(h.cfg.BaseURL), workos.WithLogger(h.log))
	if err != nil {
		return nil, fmt.Errorf("verify: WorkOS client: %w", err)
	}
	h.client, h.clientKey = c, key
	return c, nil
}
