package export

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/dsync-export/dsync-export/pkg/objstore"
	"github.com/dsync-export/dsync-export/pkg/schema"
	"github.com/dsync-export/dsync-export/pkg/snapshot"
	"github.com/dsync-export/dsync-export/pkg/workos"
)

// PlanFormatVersion is the version of the plan and checkpoint formats.
const PlanFormatVersion = 1

// Plan is a run's plan, stored at snapshot.PlanKey: the directories in scope
// (as listed, for the directories table) and the work units they were packed
// into. Units and commit read it; the state machine only sees the unit ids.
type Plan struct {
	FormatVersion int    `json:"format_version"`
	SnapshotDate  string `json:"snapshot_date"`
	RunID         string `json:"run_id"`
	// SnapshotTime is the exported_at value of every row of the run.
	SnapshotTime time.Time `json:"snapshot_time"`
	StartedAt    time.Time `json:"started_at"`
	Trigger      string    `json:"trigger"`
	Demo         bool      `json:"demo,omitempty"`
	// Workers is how many unit chunks may run at once; each paces itself to
	// GlobalRate / Workers so the fleet stays within the key's budget.
	Workers int `json:"workers"`
	// MembershipMode and Order are the run's settings: every chunk uses them.
	MembershipMode string       `json:"membership_mode"`
	Order          workos.Order `json:"order"`
	// UnitBudgetSeconds is the rate-bound work that fits one invocation; a
	// directory above it got a unit of its own.
	UnitBudgetSeconds float64            `json:"unit_budget_seconds,omitempty"`
	Directories       []workos.Directory `json:"directories"`
	Units             []Unit             `json:"units"`
	// API counts the plan's own WorkOS requests (the directory listing and
	// the events).
	API snapshot.APIStats `json:"api"`
	// Mode is the run's export mode (auto, full or incremental); Modes says
	// how each directory is exported, and Base names the committed snapshot
	// the incremental ones are built from.
	Mode  string             `json:"mode"`
	Modes map[string]DirMode `json:"modes"`
	Base  *BaseRef           `json:"base,omitempty"`
	// Events is the run's slice of the change log, read before any walk.
	Events *EventsPlan `json:"events,omitempty"`
	// Attempt names the plan invocation that stored the plan (and staged
	// its events).
	Attempt string `json:"attempt,omitempty"`

	// byID indexes Directories by id (see index).
	byID map[string]int
}

// index builds the directory index that directory reads: a unit of 5,000
// directories looks each one up once per chunk.
func (p *Plan) index() {
	p.byID = make(map[string]int, len(p.Directories))
	for i := range p.Directories {
		p.byID[p.Directories[i].ID] = i
	}
}

// Unit is one work unit: directories walked by the same chain of chunks,
// which write at most one file per table per chunk.
type Unit struct {
	ID string `json:"id"`
	// Kind is "" for a unit that walks its directories, UnitKindDelta for
	// the unit that builds the incremental ones from the base snapshot.
	Kind        string   `json:"kind,omitempty"`
	Directories []string `json:"directories"`
	// EstimateSeconds is the unit's time at the rate-limit bound of one worker.
	EstimateSeconds float64 `json:"estimate_seconds"`
}

// UnitIDs returns the plan's unit ids in order.
func (p *Plan) UnitIDs() []string {
	ids := make([]string, len(p.Units))
	for i, u := range p.Units {
		ids[i] = u.ID
	}
	return ids
}

// unit returns the unit with id.
func (p *Plan) unit(id string) (*Unit, bool) {
	for i := range p.Units {
		if p.Units[i].ID == id {
			return &p.Units[i], true
		}
	}
	return nil, false
}

// directory returns the planned directory with id.
func (p *Plan) directory(id string) (*workos.Directory, bool) {
	i, ok := p.byID[id]
	if !ok {
		return nil, false
	}
	return &p.Directories[i], true
}

// BaseRef names a committed snapshot.
type BaseRef struct {
	Date  string `json:"date"`
	RunID string `json:"run_id"`
}

// MaxUnits bounds a plan's units: the state machine carries their ids
// (about 7 bytes each in the plan's output) and collects one {} per unit
// from the Distributed Map, both within Step Functions' 256 KiB payload
// limit. Directories beyond it share units (which then run more chunks).
const MaxUnits = 10_000

// unitID formats unit number i. Four digits cover 9,999 units; more get more.
func unitID(i int) string { return fmt.Sprintf("%04d", i) }

// packUnits packs directories into work units for workers that each get a
// share of the global rate. A directory whose own time exceeds budget
// seconds gets a unit of its own. The others (those without counts at the
// others' median cost) are packed, largest first, into the least loaded of n
// units, where n is a multiple of workers (whole waves, so every worker stays
// busy to the end) large enough for each unit to fit in half a budget.
// budget <= 0 means no limit: one unit per worker (one in one process).
func packUnits(dirs []workos.Directory, cfg Config, workers int, budget float64) []Unit {
	pk := packer{
		perDir:      rateOr(cfg.PerDirectoryRate),
		share:       rateOr(cfg.GlobalRate) / float64(max(1, workers)),
		concurrency: float64(max(1, cfg.Concurrency)),
		workers:     max(1, workers),
		budget:      budget,
	}
	if pk.budget <= 0 {
		pk.budget = math.Inf(1)
	}
	big, small, smallReq := pk.split(dirs)
	units := pk.packSmall(dirs, small, smallReq, len(big))
	units = pk.addBig(dirs, units, big)
	// The longest units first, so they start first.
	sort.SliceStable(units, func(a, b int) bool { return units[a].EstimateSeconds > units[b].EstimateSeconds })
	for i := range units {
		units[i].ID = unitID(i)
	}
	return units
}

// packer holds the rates packUnits packs for.
type packer struct {
	perDir, share, concurrency float64
	workers                    int
	budget                     float64
}

// split returns the directories' costs: those over the budget (a unit
// each) and the others, with the others' total requests. A directory
// listed without counts costs the median of the others: if it is in fact
// large, its unit just runs more chunks.
func (pk *packer) split(dirs []workos.Directory) (big, small []dirCost, smallReq float64) {
	costs := make([]dirCost, len(dirs))
	var known []float64
	for i := range dirs {
		costs[i] = costOf(i, &dirs[i], pk.perDir)
		if costs[i].known {
			known = append(known, costs[i].req)
		}
	}
	var median dirCost
	if len(known) > 0 {
		slices.Sort(known)
		median.req = known[len(known)/2]
		median.sec = median.req / pk.perDir
	}
	for i := range costs {
		c := costs[i]
		if !c.known {
			c.sec, c.req = median.sec, median.req
		}
		if c.sec > pk.budget || c.req/pk.share > pk.budget {
			big = append(big, c)
			continue
		}
		small = append(small, c)
		smallReq += c.req
	}
	return big, small, smallReq
}

// bin is a unit being packed.
type bin struct {
	dirs           []dirCost
	maxSec, reqSum float64
	secSum         float64
}

// cost is a set of directories' time at one worker's bound: its slowest
// directory, its requests at the worker's share of the global rate, and
// its directories' time over the concurrency.
func (pk *packer) cost(b *bin) float64 {
	return math.Max(b.maxSec, math.Max(b.reqSum/pk.share, b.secSum/pk.concurrency))
}

// packSmall packs the small directories, largest first, into the least
// loaded of n units of whole waves of workers (n units of equal cost keep
// every worker busy until the last wave ends), at most MaxUnits less the
// reserved units of the big directories.
func (pk *packer) packSmall(dirs []workos.Directory, small []dirCost, smallReq float64, reserved int) []Unit {
	if len(small) == 0 {
		return nil
	}
	n := pk.workers
	if !math.IsInf(pk.budget, 1) {
		waves := int(math.Ceil(smallReq / pk.share / (pk.budget / 2) / float64(pk.workers)))
		n = max(1, waves) * pk.workers
	}
	n = min(n, len(small), max(1, MaxUnits-reserved))
	sort.SliceStable(small, func(a, b int) bool { return small[a].req > small[b].req })
	bins := make([]bin, n)
	for _, c := range small {
		best := 0
		for j := range bins {
			if pk.cost(&bins[j]) < pk.cost(&bins[best]) || (pk.cost(&bins[j]) == pk.cost(&bins[best]) && len(bins[j].dirs) < len(bins[best].dirs)) {
				best = j
			}
		}
		b := &bins[best]
		b.dirs = append(b.dirs, c)
		b.maxSec = math.Max(b.maxSec, c.sec)
		b.reqSum += c.req
		b.secSum += c.sec
	}
	var units []Unit
	for j := range bins {
		if len(bins[j].dirs) == 0 {
			continue
		}
		u := Unit{EstimateSeconds: round2(pk.cost(&bins[j]))}
		for _, c := range bins[j].dirs {
			u.Directories = append(u.Directories, dirs[c.index].ID)
		}
		units = append(units, u)
	}
	return units
}

// addBig gives each big directory a unit of its own; past MaxUnits they
// share the last ones.
func (pk *packer) addBig(dirs []workos.Directory, units []Unit, big []dirCost) []Unit {
	for i, c := range big {
		est := round2(math.Max(c.sec, c.req/pk.share))
		if n := len(units); n >= MaxUnits {
			u := &units[MaxUnits-1-i%min(n, MaxUnits)]
			u.Directories = append(u.Directories, dirs[c.index].ID)
			u.EstimateSeconds = round2(u.EstimateSeconds + est)
			continue
		}
		units = append(units, Unit{Directories: []string{dirs[c.index].ID}, EstimateSeconds: est})
	}
	return units
}

// PlanOptions shape a plan.
type PlanOptions struct {
	// Workers is how many unit chunks run at once (1 in one process).
	Workers int
	// UnitBudget is the rate-bound work one invocation holds; 0: no limit.
	UnitBudget time.Duration
}

// Plan lists the directories in scope, reads the run's slice of the change
// log, packs the directories into work units, stores the plan under the
// run's prefix, and then, last, takes the date's lease. It is the first
// step of a run; RunChunk and Commit follow.
//
// Everything that can fail (the base, the listing, the events) comes before
// the lease, so a failed plan leaves the date's running run alone, and its
// failure path deletes what it wrote. A plan that finds a run of another
// date in flight fails with ErrBusy before it sends a WorkOS request. A
// plan invoked twice for one run id (snap.RunID from the execution: a
// retried plan while the first invocation still runs) returns the plan the
// first to finish stored.
func (ex *Exporter) Plan(ctx context.Context, snap Target, po PlanOptions) (*Plan, error) {
	start := time.Now()
	cfg := ex.Config
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if _, err := snapshot.ParseDate(snap.Date); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	if snap.Time.IsZero() {
		snap.Time = start
	}
	snap.Time = snap.Time.UTC().Truncate(time.Millisecond)
	if snap.RunID == "" {
		snap.RunID = snapshot.NewRunID(start)
	} else if !snapshot.ValidRunID(snap.RunID) {
		return nil, fmt.Errorf("export: run id %q is not of the form snapshot.NewRunID returns", snap.RunID)
	}
	po.Workers = max(1, po.Workers)
	r := &run{ex: ex, cfg: cfg, snap: snap, attempt: newAttempt(), log: ex.logger().With("snapshot_date", snap.Date, "run_id", snap.RunID)}
	if err := r.checkOverlap(ctx); err != nil {
		return nil, err
	}
	p, err := r.plan(ctx, start, po)
	if err != nil {
		r.dropPlan(ctx, nil)
		return nil, err
	}
	p, own, err := r.storePlan(ctx, p)
	if err != nil {
		r.dropPlan(ctx, nil)
		return nil, err
	}
	if err := r.start(ctx, start); err != nil {
		r.clearInFlight(context.WithoutCancel(ctx))
		if own {
			r.dropPlan(ctx, p)
		}
		return nil, err
	}
	r.log.Info("run planned", "directories", len(p.Directories), "incremental", incrementalCount(p.Modes), "events", eventsCount(p.Events), "units", len(p.Units), "workers", p.Workers, "unit_budget_s", round2(p.UnitBudgetSeconds))
	return p, nil
}

// plan builds the run's plan: it reads the base, lists the directories and
// stages the run's events (under the plan's attempt), and writes nothing else.
func (r *run) plan(ctx context.Context, start time.Time, po PlanOptions) (*Plan, error) {
	ex, cfg, snap := r.ex, r.cfg, r.snap
	before := ex.Client.Stats()
	// The event cursor is taken before the walk: the base first, then the
	// directories and the events.
	b, err := r.findBase(ctx)
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	dirs, err := r.listDirectories(ctx)
	if err != nil {
		return nil, &ProgressError{Err: err, Hint: hintFor(err)}
	}
	mode := cfg.Mode
	now := ex.now()
	modes := r.chooseModes(b, dirs, mode, now)
	events, err := r.readEvents(ctx, b, now)
	if err != nil {
		return nil, &ProgressError{Err: err, Hint: hintFor(err)}
	}
	r.adjustModes(b, dirs, modes, events)
	if err := requireIncremental(modes, mode); err != nil {
		return nil, err
	}
	units, baseRef := planUnits(b, dirs, modes, cfg, po)
	after := ex.Client.Stats()
	return &Plan{
		FormatVersion:     PlanFormatVersion,
		SnapshotDate:      snap.Date,
		RunID:             snap.RunID,
		SnapshotTime:      snap.Time,
		StartedAt:         start.UTC(),
		Trigger:           snap.Trigger,
		Demo:              snap.Demo,
		Workers:           po.Workers,
		MembershipMode:    cfg.MembershipMode,
		Order:             cfg.Order,
		UnitBudgetSeconds: po.UnitBudget.Seconds(),
		Directories:       dirs,
		Units:             units,
		API:               apiDelta(before, after),
		Mode:              mode,
		Modes:             modes,
		Base:              baseRef,
		Events:            events,
		Attempt:           r.attempt,
	}, nil
}

// storePlan stores p unless the run has a plan already (another invocation
// of the same run's plan stored it first): then it drops this attempt's
// staged events and returns the stored plan. own reports whether p is
// this invocation's.
func (r *run) storePlan(ctx context.Context, p *Plan) (_ *Plan, own bool, err error) {
	err = putJSONIfAbsent(ctx, r.ex.Store, snapshot.PlanKey(r.snap.Date, r.snap.RunID), p)
	if err == nil {
		return p, true, nil
	}
	if !errors.Is(err, objstore.ErrExist) {
		return nil, false, fmt.Errorf("export: store the plan: %w", err)
	}
	stored, err := loadPlan(ctx, r.ex.Store, r.snap.Date, r.snap.RunID)
	if err != nil {
		return nil, false, err
	}
	// A stored plan of this attempt is its own (a PUT whose answer was lost
	// and was retried).
	if own = stored.Attempt == r.attempt; !own {
		r.log.Info("another invocation of this run's plan stored it first; its plan is the run's", "attempt", r.attempt)
		r.dropPlan(ctx, nil)
	}
	return stored, own, nil
}

// start puts the planned run in flight: its in-flight marker, a last check
// that no run of another date started meanwhile (of two plans that mark
// themselves at once, at least one sees the other and waits), and then the
// date's lease, the plan's last write: from here a later run of the date
// supersedes this one, and this one any earlier.
func (r *run) start(ctx context.Context, start time.Time) error {
	if err := r.markInFlight(ctx, start); err != nil {
		return err
	}
	if err := r.checkOverlap(ctx); err != nil {
		return err
	}
	return r.takeLease(ctx, start)
}

// dropPlan deletes what this plan invocation wrote under the run's prefix:
// its staged events, and p (the stored plan) when given. Best effort: the
// plan has failed already, and a later commit of the date removes leftovers.
func (r *run) dropPlan(ctx context.Context, p *Plan) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	objs, err := r.ex.Store.List(ctx, snapshot.RunPrefix(r.snap.Date, r.snap.RunID))
	if err != nil {
		r.log.Warn("the failed plan's files were not deleted", "error", err.Error())
		return
	}
	staged := snapshot.EventsStagePrefix(r.snap.Date, r.snap.RunID, r.attempt)
	var keys []string
	for _, o := range objs {
		if strings.HasPrefix(o.Key, staged) || (p != nil && o.Key == snapshot.PlanKey(r.snap.Date, r.snap.RunID)) {
			keys = append(keys, o.Key)
		}
	}
	if len(keys) == 0 {
		return
	}
	if err := r.ex.Store.Delete(ctx, keys); err != nil {
		r.log.Warn("the failed plan's files were not deleted", "count", len(keys), "error", err.Error())
		return
	}
	r.log.Info("the failed plan's files deleted", "count", len(keys))
}

// planUnits packs the directories walked in full into work units and puts
// the incremental ones in one delta unit, first, built from the base.
func planUnits(b *base, dirs []workos.Directory, modes map[string]DirMode, cfg Config, po PlanOptions) ([]Unit, *BaseRef) {
	var full []workos.Directory
	var delta Unit
	for _, d := range dirs {
		if modes[d.ID].Mode == schema.SnapshotModeIncremental {
			delta.Directories = append(delta.Directories, d.ID)
		} else {
			full = append(full, d)
		}
	}
	units := packUnits(full, cfg, po.Workers, po.UnitBudget.Seconds())
	if len(delta.Directories) == 0 {
		return units, nil
	}
	delta.Kind = UnitKindDelta
	delta.ID = unitID(len(units))
	delta.EstimateSeconds = deltaEstimate(b.m)
	return append([]Unit{delta}, units...), &BaseRef{Date: b.m.SnapshotDate, RunID: b.m.RunID}
}

// eventsCount is the number of events a run staged.
func eventsCount(ep *EventsPlan) int64 {
	var n int64
	for _, f := range ep.Staged {
		n += f.Rows
	}
	return n
}

// loadPlan reads the plan of a run.
func loadPlan(ctx context.Context, s objstore.Store, date, run string) (*Plan, error) {
	if _, err := snapshot.ParseDate(date); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	if !snapshot.ValidRunID(run) {
		return nil, fmt.Errorf("export: run id %q is not of the form snapshot.NewRunID returns", run)
	}
	var p Plan
	key := snapshot.PlanKey(date, run)
	if err := getJSON(ctx, s, key, &p); err != nil {
		if errors.Is(err, objstore.ErrNotExist) {
			return nil, fmt.Errorf("export: run %s of %s has no plan (%s): start the run with its plan step, or a later run's commit removed it: %w", run, date, key, err)
		}
		return nil, fmt.Errorf("export: read the plan: %w", err)
	}
	if p.FormatVersion != PlanFormatVersion {
		return nil, fmt.Errorf("export: plan %s has format_version %d, want %d: finish the run with the version that planned it", key, p.FormatVersion, PlanFormatVersion)
	}
	if p.RunID != run || p.SnapshotDate != date {
		return nil, fmt.Errorf("export: plan %s names run %s of %s", key, p.RunID, p.SnapshotDate)
	}
	p.index()
	return &p, nil
}

// listDirectories lists the directories in scope, in a stable order.
func (r *run) listDirectories(ctx context.Context) ([]workos.Directory, error) {
	c := r.ex.Client
	var out []workos.Directory
	switch {
	case len(r.cfg.DirectoryIDs) > 0:
		for _, id := range r.cfg.DirectoryIDs {
			d, err := c.GetDirectory(ctx, id)
			if err != nil {
				return nil, fmt.Errorf("get directory %s (from the configured directory IDs): %w", id, err)
			}
			if len(r.cfg.OrganizationIDs) > 0 && !slices.Contains(r.cfg.OrganizationIDs, d.OrganizationID) {
				continue
			}
			out = append(out, *d)
		}
	case len(r.cfg.OrganizationIDs) > 0:
		for _, org := range r.cfg.OrganizationIDs {
			opts := &workos.ListDirectoriesOptions{ListOptions: workos.ListOptions{Order: r.cfg.Order}, OrganizationID: org}
			for d, err := range c.Directories(ctx, opts) {
				if err != nil {
					return nil, fmt.Errorf("list directories of organization %s: %w", org, err)
				}
				out = append(out, d)
			}
		}
	default:
		opts := &workos.ListDirectoriesOptions{ListOptions: workos.ListOptions{Order: r.cfg.Order}}
		for d, err := range c.Directories(ctx, opts) {
			if err != nil {
				return nil, fmt.Errorf("list directories: %w", err)
			}
			out = append(out, d)
		}
	}
	// Deduplicate (a directory could be named twice in config).
	seen := map[string]bool{}
	uniq := out[:0]
	for _, d := range out {
		if !seen[d.ID] {
			seen[d.ID] = true
			uniq = append(uniq, d)
		}
	}
	return uniq, nil
}
