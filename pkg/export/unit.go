package export

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/dsync-export/dsync-export/pkg/objstore"
	"github.com/dsync-export/dsync-export/pkg/parquetfile"
	"github.com/dsync-export/dsync-export/pkg/schema"
	"github.com/dsync-export/dsync-export/pkg/snapshot"
)

// Checkpoint is a work unit's progress, stored at snapshot.CheckpointKey
// after each chunk and only after that chunk's parts are durable. A chunk
// starts from the checkpoint (or from the plan when there is none), so a
// chunk retried after a crash, a timeout or a throttle starts from the same
// place and rewrites the same keys.
type Checkpoint struct {
	FormatVersion int    `json:"format_version"`
	SnapshotDate  string `json:"snapshot_date"`
	RunID         string `json:"run_id"`
	Unit          string `json:"unit"`
	// Chunk is the number of the next chunk (the count of chunks done).
	Chunk int  `json:"chunk"`
	Done  bool `json:"done"`
	// Directories are the unit's directories and where each walk stands.
	Directories []dirState `json:"directories"`
	// Tables lists the parts the unit's chunks wrote, per table.
	Tables map[string][]snapshot.File `json:"tables"`
	// Delta is where the delta unit stands (nil for other units).
	Delta *deltaState `json:"delta,omitempty"`
	// API counts the unit's WorkOS requests over its chunks.
	API       snapshot.APIStats `json:"api"`
	UpdatedAt time.Time         `json:"updated_at"`
}

// Rows returns the rows the unit's chunks wrote per table.
func (cp *Checkpoint) Rows() map[string]int64 {
	out := map[string]int64{}
	for t, fs := range cp.Tables {
		for _, f := range fs {
			out[t] += f.Rows
		}
	}
	return out
}

// ChunkResult is the outcome of one chunk of a unit.
type ChunkResult struct {
	Unit string
	// Chunk is the number of the chunk that ran.
	Chunk int
	// Done is set when the unit has nothing left: its last chunk ran.
	Done bool
	// Checkpoint is the unit's state after the chunk.
	Checkpoint *Checkpoint
	// Files is the number of files this chunk wrote.
	Files    int
	Duration time.Duration
}

// chunk is one invocation's share of a unit.
type chunk struct {
	ex   *Exporter
	cfg  Config
	plan *Plan
	log  *slog.Logger
	n    int
	// track receives the directories' progress.
	track *tracker

	users       *tableWriter[schema.DirectoryUser]
	groups      *tableWriter[schema.DirectoryGroup]
	memberships *tableWriter[schema.DirectoryGroupMembership]

	// attempt is this attempt's claim on the unit (see claim): every part
	// that rolls over mid-walk is committed only while it holds; finishing
	// is set once the chunk checked it before closing its last parts.
	attempt   atomic.Pointer[string]
	finishing atomic.Bool
}

// RunChunk runs the next chunk of work unit unit of run: it loads the unit's
// checkpoint (or starts the unit), walks the unit's directories until they
// are done or Config.DeadlineMargin before ctx's deadline, closes the
// chunk's parts (at most one file per table), and then stores the new
// checkpoint. A unit already done returns its result again, so a retried
// invocation after a lost answer is harmless.
func (ex *Exporter) RunChunk(ctx context.Context, date, runID, unitID string) (*ChunkResult, error) {
	start := time.Now()
	if err := ex.Config.Validate(); err != nil {
		return nil, err
	}
	r, p, cp, err := ex.loadUnit(ctx, date, runID, unitID)
	if err != nil {
		return nil, err
	}
	if cp.Done {
		return &ChunkResult{Unit: unitID, Chunk: cp.Chunk - 1, Done: true, Checkpoint: cp}, nil
	}
	// The chunk stops walking at stopAt, DeadlineMargin before the deadline,
	// closes its parts and stores its checkpoint in the margin.
	stop, stopTimer, err := stopBeforeDeadline(ctx, ex.Config.DeadlineMargin)
	if err != nil {
		return nil, err
	}
	defer stopTimer()
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	a, err := r.startAttempt(ctx, runCtx, p, cp, unitID)
	if err != nil {
		return nil, err
	}
	before := ex.Client.Stats()
	if err := a.walk(ctx, runCtx, cp, stop); err != nil {
		return nil, err
	}
	files, err := a.finish(ctx)
	if err != nil {
		return nil, err
	}
	n, err := a.checkpoint(ctx, cp, files, apiDelta(before, ex.Client.Stats()))
	if err != nil {
		return nil, err
	}
	res := &ChunkResult{Unit: unitID, Chunk: cp.Chunk - 1, Done: cp.Done, Checkpoint: cp, Files: n, Duration: time.Since(start)}
	r.log.Info("chunk finished", "chunk", res.Chunk, "done", cp.Done, "files", n, "rows", cp.Rows(), "duration_ms", res.Duration.Milliseconds())
	return res, nil
}

// loadUnit reads what a chunk of unitID starts from, while the run owns its
// date: the run, its plan and the unit's checkpoint.
func (ex *Exporter) loadUnit(ctx context.Context, date, runID, unitID string) (*run, *Plan, *Checkpoint, error) {
	r, err := ex.newRun(date, runID)
	if err != nil {
		return nil, nil, nil, err
	}
	r.log = r.log.With("unit", unitID)
	if err := r.checkLease(ctx); err != nil {
		return nil, nil, nil, err
	}
	p, err := loadPlan(ctx, ex.Store, date, runID)
	if err != nil {
		return nil, nil, nil, err
	}
	u, ok := p.unit(unitID)
	if !ok {
		return nil, nil, nil, fmt.Errorf("export: run %s of %s has no unit %q (its plan has units %v)", runID, date, unitID, p.UnitIDs())
	}
	cp, err := loadCheckpoint(ctx, ex, p, u)
	if err != nil {
		return nil, nil, nil, err
	}
	return r, p, cp, nil
}

// stopBeforeDeadline returns a channel closed margin before ctx's deadline
// (never, without one), and the function that stops its timer.
func stopBeforeDeadline(ctx context.Context, margin time.Duration) (<-chan struct{}, func(), error) {
	stop := make(chan struct{})
	dl, ok := ctx.Deadline()
	if !ok {
		return stop, func() {}, nil
	}
	stopAt := dl.Add(-margin)
	if time.Until(stopAt) <= 0 {
		return nil, nil, fmt.Errorf("export: %w: only %s left before the deadline, less than the %s margin; raise the function timeout or lower EXPORT_DEADLINE_MARGIN",
			ErrDeadline, time.Until(dl).Round(time.Second), margin)
	}
	timer := time.AfterFunc(time.Until(stopAt), func() { close(stop) })
	return stop, func() { timer.Stop() }, nil
}

// attempt is one invocation's chunk of a unit, from its claim on the unit
// to its checkpoint.
type attempt struct {
	r      *run
	c      *chunk
	p      *Plan
	unitID string
	token  string
}

// startAttempt opens the chunk's table writers and claims the unit: this
// attempt owns it until a later attempt (a retry while this invocation
// still runs) names itself; then this one stops before it commits a part or
// writes the checkpoint.
func (r *run) startAttempt(ctx, runCtx context.Context, p *Plan, cp *Checkpoint, unitID string) (*attempt, error) {
	cfg := cfgOf(r.ex.Config, p)
	c := &chunk{ex: r.ex, cfg: cfg, plan: p, log: r.log, n: cp.Chunk}
	if err := c.openTables(runCtx, r.snap.Date, r.snap.RunID, unitID); err != nil {
		return nil, err
	}
	token, err := c.claim(ctx, r.snap.Date, r.snap.RunID, unitID)
	if err != nil {
		c.abortTables(err)
		return nil, err
	}
	c.attempt.Store(&token)
	return &attempt{r: r, c: c, p: p, unitID: unitID, token: token}, nil
}

// check fails when the run lost its date, is aborted, or another attempt
// took the unit over.
func (a *attempt) check(ctx context.Context) error {
	if err := a.r.checkLease(ctx); err != nil {
		return err
	}
	return a.c.checkClaim(ctx, a.r.snap.Date, a.r.snap.RunID, a.unitID, a.token)
}

// cleanup deletes this chunk's parts after a failure, unless another
// attempt owns the unit now: its parts have the same keys.
func (a *attempt) cleanup(ctx context.Context, cause error) {
	if errors.Is(cause, ErrChunkTakenOver) {
		return
	}
	bg := context.WithoutCancel(ctx)
	if err := a.c.checkClaim(bg, a.r.snap.Date, a.r.snap.RunID, a.unitID, a.token); err != nil {
		return
	}
	a.c.deleteParts(bg, a.r.snap.Date, a.r.snap.RunID, a.unitID)
}

// walk runs the unit's walk until it is done or stop closes, with the
// progress loop, which may cancel the walk (superseded, aborted, taken
// over), never the writers: they finish or abort their parts themselves.
// On failure the chunk's parts are aborted and deleted.
func (a *attempt) walk(ctx, runCtx context.Context, cp *Checkpoint, stop <-chan struct{}) error {
	walkCtx, cancelWalk := context.WithCancelCause(runCtx)
	defer cancelWalk(nil)
	tr := a.r.ex.tracker
	stopProgress := func() {}
	if tr == nil {
		tr = newTracker(a.r.ex, a.p, a.r.log)
		stopProgress = tr.start(walkCtx, cancelWalk, a.check)
	}
	tr.attach(a.c, cp)
	walkErr := a.c.walk(walkCtx, cp, stop)
	stopProgress()
	tr.detach(a.c, cp, walkErr == nil)
	if walkErr == nil {
		walkErr = context.Cause(walkCtx) // superseded meanwhile
	}
	if walkErr == nil {
		return nil
	}
	a.c.abortTables(walkErr)
	if cause := context.Cause(walkCtx); cause != nil && (errors.Is(cause, ErrSuperseded) || errors.Is(cause, ErrAborted) || errors.Is(cause, ErrChunkTakenOver)) {
		walkErr = cause
	}
	a.cleanup(ctx, walkErr) // parts that rolled over before the failure
	return walkErr
}

// finish closes the chunk's parts, only while this attempt owns the unit (a
// later attempt writes the same keys), and returns their files by table.
func (a *attempt) finish(ctx context.Context) (map[string][]snapshot.File, error) {
	if err := a.check(ctx); err != nil {
		a.c.abortTables(err)
		a.cleanup(ctx, err)
		return nil, err
	}
	// The check above covers the parts closed now: no check per part.
	a.c.finishing.Store(true)
	files, err := a.c.finishTables(a.r.snap.Date, a.r.snap.RunID, a.unitID)
	if err != nil {
		// A part whose upload failed may have landed all the same: delete the
		// chunk's parts, so an abort that already ran leaves nothing behind.
		a.cleanup(ctx, err)
		if ctx.Err() != nil {
			return nil, fmt.Errorf("export: the chunk's parts were not finished before the invocation's deadline; raise EXPORT_DEADLINE_MARGIN (%s): %w", a.c.cfg.DeadlineMargin, errors.Join(ctx.Err(), err))
		}
		return nil, err
	}
	return files, nil
}

// checkpoint stores the unit's checkpoint with the chunk's files, only
// after its parts are durable and only while the run still owns the date
// and is not aborted; otherwise the chunk deletes its parts (the abort may
// have listed the date before they were complete). It returns the number
// of files.
func (a *attempt) checkpoint(ctx context.Context, cp *Checkpoint, files map[string][]snapshot.File, api snapshot.APIStats) (int, error) {
	if err := a.check(ctx); err != nil {
		a.cleanup(ctx, err)
		return 0, err
	}
	n := 0
	for t, fs := range files {
		cp.Tables[t] = append(cp.Tables[t], fs...)
		n += len(fs)
	}
	addAPI(&cp.API, api)
	cp.Chunk++
	cp.Done = cp.Delta == nil || cp.Delta.Done
	for _, d := range cp.Directories {
		if !d.done() {
			cp.Done = false
		}
	}
	cp.UpdatedAt = time.Now().UTC()
	date, runID := a.r.snap.Date, a.r.snap.RunID
	if err := putJSON(ctx, a.r.ex.Store, snapshot.CheckpointKey(date, runID, a.unitID), cp); err != nil {
		return 0, fmt.Errorf("export: store the checkpoint of unit %s: %w", a.unitID, err)
	}
	// A failure an earlier attempt recorded is over: the abort step must not
	// report it for a unit that went on.
	if err := a.r.ex.Store.Delete(ctx, []string{snapshot.FailureKey(date, runID, a.unitID)}); err != nil {
		a.r.log.Warn("the unit's earlier failure record was not deleted", "error", err.Error())
	}
	return n, nil
}

// loadCheckpoint reads a unit's checkpoint, or starts the unit.
func loadCheckpoint(ctx context.Context, ex *Exporter, p *Plan, u *Unit) (*Checkpoint, error) {
	s := ex.Store
	key := snapshot.CheckpointKey(p.SnapshotDate, p.RunID, u.ID)
	var cp Checkpoint
	err := getJSON(ctx, s, key, &cp)
	switch {
	case err == nil:
		if cp.FormatVersion != PlanFormatVersion || cp.RunID != p.RunID || cp.Unit != u.ID {
			return nil, fmt.Errorf("export: checkpoint %s does not belong to run %s unit %s (format %d)", key, p.RunID, u.ID, cp.FormatVersion)
		}
		if cp.Tables == nil {
			cp.Tables = map[string][]snapshot.File{}
		}
		return &cp, nil
	case errors.Is(err, objstore.ErrNotExist):
	default:
		return nil, fmt.Errorf("export: read the checkpoint of unit %s: %w", u.ID, err)
	}
	cp = Checkpoint{FormatVersion: PlanFormatVersion, SnapshotDate: p.SnapshotDate, RunID: p.RunID, Unit: u.ID, Tables: map[string][]snapshot.File{}}
	cfg := cfgOf(ex.Config, p)
	parallel := min(cfg.Concurrency, len(u.Directories))
	if u.Kind == UnitKindDelta {
		cp.Delta = &deltaState{}
	}
	for _, id := range u.Directories {
		d, ok := p.directory(id)
		if !ok {
			return nil, fmt.Errorf("export: unit %s names directory %s, which the plan does not list", u.ID, id)
		}
		st := newDirState(d, cfg, parallel)
		dm := p.Modes[id]
		st.Manifest.Mode, st.Manifest.ModeReason, st.Manifest.LastFullDate = cmp.Or(dm.Mode, schema.SnapshotModeFull), dm.Reason, cmp.Or(dm.LastFull, p.SnapshotDate)
		st.Manifest.Drift = dm.Drift
		if u.Kind == UnitKindDelta {
			// Built from the base by the delta step, not walked.
			st.Users.Done, st.Groups.Done = true, true
			st.Manifest.MembershipRoute = ""
		}
		cp.Directories = append(cp.Directories, st)
	}
	return &cp, nil
}

// errStop is the cause of a walk's fetches cancelled at the chunk's stop
// time: the walk ends at the last page it finished.
var errStop = errors.New("export: the chunk's time is up")

// walk advances every unfinished directory of the unit, Concurrency at a
// time, until each is done or stop is closed. At stop, fetches in flight or
// waiting for the rate limiters are cancelled; a walk's state only advances
// after its page's rows are queued, so it resumes at that page.
func (c *chunk) walk(ctx context.Context, cp *Checkpoint, stop <-chan struct{}) error {
	if cp.Delta != nil && !cp.Delta.Done {
		return c.delta(ctx, cp, stop)
	}
	g, gctx := errgroup.WithContext(ctx)
	fctx, fcancel := context.WithCancelCause(gctx)
	defer fcancel(nil)
	go func() {
		select {
		case <-stop:
			fcancel(errStop)
		case <-fctx.Done():
		}
	}()
	g.SetLimit(c.cfg.Concurrency)
	for i := range cp.Directories {
		st := &cp.Directories[i]
		if st.done() {
			continue
		}
		if gctx.Err() != nil || fctx.Err() != nil {
			break
		}
		d, _ := c.plan.directory(st.ID)
		g.Go(func() error {
			c.track.begin(st.ID)
			w := &dirWalk{c: c, d: d, st: st, ctx: gctx, fctx: fctx, stop: stop}
			err := w.walk()
			c.track.end(st.ID, err == nil && st.done())
			if err != nil {
				return fmt.Errorf("directory %s (%s): %w", d.ID, d.Name, err)
			}
			return nil
		})
	}
	return g.Wait()
}

func (c *chunk) openTables(ctx context.Context, date, run, unit string) error {
	opts := writerOptions(c.cfg, date)
	// A part that rolls over mid-walk is committed only while this attempt
	// still owns the unit: a later attempt (a retry while this invocation
	// still runs) writes the same keys, and its commit may already list them.
	s := claimedStore{Store: c.ex.Store, check: func(ctx context.Context) error {
		token := c.attempt.Load()
		if token == nil || c.finishing.Load() {
			return nil
		}
		return c.checkClaim(ctx, date, run, unit, *token)
	}}
	key := func(table string) func(int) string {
		return func(part int) string { return snapshot.ChunkPartKey(table, date, run, unit, c.n, part) }
	}
	var err error
	if c.users, err = startTable[schema.DirectoryUser](ctx, s, schema.TableDirectoryUsers, key(schema.TableDirectoryUsers), opts, true); err != nil {
		return err
	}
	if c.groups, err = startTable[schema.DirectoryGroup](ctx, s, schema.TableDirectoryGroups, key(schema.TableDirectoryGroups), opts, true); err != nil {
		c.users.abort(err)
		return err
	}
	if c.memberships, err = startTable[schema.DirectoryGroupMembership](ctx, s, schema.TableMemberships, key(schema.TableMemberships), opts, true); err != nil {
		c.users.abort(err)
		c.groups.abort(err)
		return err
	}
	return nil
}

// deleteParts deletes, best effort, every part of this chunk of the unit: a
// chunk that fails after its parts (or some of them) landed, or that finds
// its run superseded or aborted before its checkpoint, leaves none behind.
func (c *chunk) deleteParts(ctx context.Context, date, run, unit string) {
	var keys []string
	for _, t := range []string{schema.TableDirectoryUsers, schema.TableDirectoryGroups, schema.TableMemberships} {
		prefix := strings.TrimSuffix(snapshot.ChunkPartKey(t, date, run, unit, c.n, 0), "00000.parquet")
		objs, err := c.ex.Store.List(ctx, prefix)
		if err != nil {
			c.log.Warn("the failed chunk's parts were not listed; the next commit of the date deletes them", "error", err.Error())
			return
		}
		for _, o := range objs {
			keys = append(keys, o.Key)
		}
	}
	if err := c.ex.Store.Delete(ctx, keys); err != nil {
		c.log.Warn("the failed chunk's parts were not deleted; the next commit of the date deletes them", "error", err.Error())
	}
}

func (c *chunk) abortTables(err error) {
	c.users.abort(err)
	c.groups.abort(err)
	c.memberships.abort(err)
}

// finishTables closes the chunk's parts. A table that got no rows in this
// chunk writes no file (its writer was started with skipEmpty).
func (c *chunk) finishTables(date, run, unit string) (map[string][]snapshot.File, error) {
	out := map[string][]snapshot.File{}
	var firstErr error
	finish := func(table string, f func() ([]parquetfile.Part, error), abort func(error)) {
		if firstErr != nil {
			abort(firstErr)
			return
		}
		parts, err := f()
		if err != nil {
			firstErr = err
			return
		}
		out[table] = append(out[table], filesOf(parts, func(part int) string { return snapshot.ChunkPartKey(table, date, run, unit, c.n, part) })...)
	}
	finish(schema.TableDirectoryUsers, c.users.finish, c.users.abort)
	finish(schema.TableDirectoryGroups, c.groups.finish, c.groups.abort)
	finish(schema.TableMemberships, c.memberships.finish, c.memberships.abort)
	return out, firstErr
}

// cfgOf returns cfg with the run's settings from its plan, which every
// chunk of the run uses whatever its own configuration says.
func cfgOf(cfg Config, p *Plan) Config {
	cfg.MembershipMode = p.MembershipMode
	cfg.Order = p.Order
	return cfg
}
