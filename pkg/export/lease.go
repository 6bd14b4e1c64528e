package export

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dsync-export/dsync-export/pkg/objstore"
	"github.com/dsync-export/dsync-export/pkg/snapshot"
)

// lease is the content of the lease object of a date (snapshot.LeaseKey):
// the run that owns the date. A run takes the lease by overwriting it, so
// the latest run of a date wins; an earlier run finds another run id there
// and stops with ErrSuperseded instead of committing.
type lease struct {
	RunID     string    `json:"run_id"`
	StartedAt time.Time `json:"started_at"`
	Trigger   string    `json:"trigger,omitempty"`
}

func (r *run) takeLease(ctx context.Context, start time.Time) error {
	key := snapshot.LeaseKey(r.snap.Date)
	if prev, err := r.readLease(ctx); err == nil && prev.RunID != "" && prev.RunID != r.snap.RunID {
		r.log.Info("taking over the date from an earlier run", "earlier_run_id", prev.RunID, "earlier_started_at", prev.StartedAt)
	}
	body, _ := json.Marshal(lease{RunID: r.snap.RunID, StartedAt: start.UTC(), Trigger: r.snap.Trigger})
	if err := r.ex.Store.Put(ctx, key, body, "application/json"); err != nil {
		return fmt.Errorf("export: take the lease on %s (%s): %w", r.snap.Date, key, err)
	}
	return nil
}

func (r *run) readLease(ctx context.Context) (lease, error) {
	var l lease
	b, err := r.ex.Store.Get(ctx, snapshot.LeaseKey(r.snap.Date))
	if err != nil {
		return l, err
	}
	if err := json.Unmarshal(b, &l); err != nil {
		return l, fmt.Errorf("lease %s is not valid JSON: %w", snapshot.LeaseKey(r.snap.Date), err)
	}
	return l, nil
}

// checkLease returns an error wrapping ErrSuperseded when a later run of the
// date has taken the lease, or the lease cannot be read, and one wrapping
// ErrAborted when the run's abort has begun.
func (r *run) checkLease(ctx context.Context) error {
	l, err := r.readLease(ctx)
	if err != nil {
		return fmt.Errorf("check the lease on %s: %w", r.snap.Date, err)
	}
	if l.RunID != r.snap.RunID {
		return fmt.Errorf("%w: run %s (started %s) took over %s from this run %s; it commits the snapshot",
			ErrSuperseded, l.RunID, l.StartedAt.Format(time.RFC3339), r.snap.Date, r.snap.RunID)
	}
	switch _, err := r.ex.Store.Get(ctx, snapshot.AbortedKey(r.snap.Date, r.snap.RunID)); {
	case err == nil:
		return fmt.Errorf("%w: run %s of %s failed and is being aborted", ErrAborted, r.snap.RunID, r.snap.Date)
	case !errors.Is(err, objstore.ErrNotExist):
		return fmt.Errorf("check whether run %s is aborted: %w", r.snap.RunID, err)
	}
	return nil
}

// claimedStore is a Store whose objects, created by Create, are committed
// only if check passes at their Close; otherwise they are aborted.
type claimedStore struct {
	objstore.Store
	check func(context.Context) error
}

func (s claimedStore) Create(ctx context.Context, key, contentType string) (objstore.Object, error) {
	o, err := s.Store.Create(ctx, key, contentType)
	if err != nil {
		return nil, err
	}
	return &claimedObject{Object: o, ctx: ctx, check: s.check}, nil
}

type claimedObject struct {
	objstore.Object
	ctx   context.Context
	check func(context.Context) error
}

func (o *claimedObject) Close() error {
	if err := o.check(context.WithoutCancel(o.ctx)); err != nil {
		_ = o.Object.CloseWithError(err)
		return err
	}
	return o.Object.Close()
}

// claim names this attempt as the unit's owner and returns its token.
func (c *chunk) claim(ctx context.Context, date, run, unit string) (string, error) {
	var b [8]byte
	_, _ = rand.Read(b[:])
	token := hex.EncodeToString(b[:])
	if err := putJSON(ctx, c.ex.Store, snapshot.AttemptKey(date, run, unit), map[string]any{"attempt": token, "chunk": c.n, "started_at": time.Now().UTC()}); err != nil {
		return "", fmt.Errorf("export: claim unit %s: %w", unit, err)
	}
	return token, nil
}

// checkClaim returns an error wrapping ErrChunkTakenOver when a later
// attempt of the unit has named itself.
func (c *chunk) checkClaim(ctx context.Context, date, run, unit, token string) error {
	var got struct {
		Attempt string `json:"attempt"`
	}
	switch err := getJSON(ctx, c.ex.Store, snapshot.AttemptKey(date, run, unit), &got); {
	case errors.Is(err, objstore.ErrNotExist):
		// The run's prefix is gone: another attempt finished the unit and
		// the run was committed (or aborted) and cleaned up.
		return fmt.Errorf("%w: unit %s has no claim any more: the run was committed or aborted meanwhile; this attempt stops without writing", ErrChunkTakenOver, unit)
	case err != nil:
		return fmt.Errorf("export: check the claim on unit %s: %w", unit, err)
	}
	if got.Attempt != token {
		return fmt.Errorf("%w: unit %s chunk %d is now run by attempt %s (a retry while this invocation still ran); this attempt stops without writing", ErrChunkTakenOver, unit, c.n, got.Attempt)
	}
	// An attempt that claimed the unit before this one may still have
	// completed this chunk (its last check came before this claim).
	var cp struct {
		Chunk int `json:"chunk"`
	}
	switch err := getJSON(ctx, c.ex.Store, snapshot.CheckpointKey(date, run, unit), &cp); {
	case errors.Is(err, objstore.ErrNotExist):
	case err != nil:
		return fmt.Errorf("export: check the checkpoint of unit %s: %w", unit, err)
	case cp.Chunk > c.n:
		return fmt.Errorf("%w: unit %s chunk %d was completed by another attempt; this attempt stops without writing", ErrChunkTakenOver, unit, c.n)
	}
	return nil
}
