package export

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/dsync-export/dsync-export/pkg/schema"
	"github.com/dsync-export/dsync-export/pkg/workos"
)

// Status is a running export's progress.
type Status struct {
	Elapsed time.Duration
	// UnitsTotal and UnitsDone count the run's work units.
	UnitsTotal          int
	UnitsDone           int
	DirectoriesTotal    int
	DirectoriesDone     int
	DirectoriesInFlight int
	// Rows are the rows written so far per table.
	Rows map[string]int64
	// UsersExpected is the directories' user count as WorkOS listed it (0
	// when no directory has counts): the goal of Rows[directory_users].
	UsersExpected int64
	Requests      int64 // WorkOS requests sent, retries included
	RateLimited   int64 // 429 responses received
	// ETA is the time left by the rate-limit bound: the WorkOS requests the
	// directories still need (estimated from their user and group counts)
	// at the per-directory and global limits. -1 when no directory has counts,
	// or when the limits are off (then latency, not a bound, sets the pace).
	ETA time.Duration
	// Final is set on the last Watch call, when the walk has ended.
	Final bool
}

// RowsTotal is the sum of Rows.
func (s Status) RowsTotal() int64 {
	var n int64
	for _, v := range s.Rows {
		n += v
	}
	return n
}

// defaultWatchEvery is how often Exporter.Watch is called by default.
const defaultWatchEvery = 250 * time.Millisecond

// tracker follows a run's progress: units done, directories in flight and
// done, rows written. It logs a progress line every Config.ProgressEvery
// (checking the lease at the same time) and feeds Exporter.Watch. One
// process's run (Exporter.Run) has one tracker over all its chunks; a chunk
// run alone (a Step Functions worker) has its own.
type tracker struct {
	ex     *Exporter
	plan   *Plan
	log    *slog.Logger
	before workos.Stats
	began  time.Time
	index  map[string]int // directory id -> index in plan.Directories

	mu        sync.Mutex
	unitsDone int
	doneRows  map[string]int64 // rows of the finished chunks
	begunAt   []time.Time      // zero: not started (in this tracker)
	done      []bool
	live      map[*chunk]bool
}

func newTracker(ex *Exporter, p *Plan, log *slog.Logger) *tracker {
	t := &tracker{ex: ex, plan: p, log: log, before: ex.Client.Stats(), began: time.Now(), index: map[string]int{},
		doneRows: map[string]int64{}, begunAt: make([]time.Time, len(p.Directories)), done: make([]bool, len(p.Directories)), live: map[*chunk]bool{}}
	for i := range p.Directories {
		t.index[p.Directories[i].ID] = i
	}
	return t
}

// attach counts a starting chunk: the directories its unit finished before
// are done, and its writers' rows are live.
func (t *tracker) attach(c *chunk, cp *Checkpoint) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, d := range cp.Directories {
		if i, ok := t.index[d.ID]; ok && d.done() {
			t.done[i] = true
		}
	}
	c.track = t
	t.live[c] = true
}

// detach folds a finished chunk's rows into the totals.
func (t *tracker) detach(c *chunk, cp *Checkpoint, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.live, c)
	if !ok {
		return
	}
	t.doneRows[schema.TableDirectoryUsers] += c.users.Rows()
	t.doneRows[schema.TableDirectoryGroups] += c.groups.Rows()
	t.doneRows[schema.TableMemberships] += c.memberships.Rows()
}

// unitDone counts a finished unit.
func (t *tracker) unitDone() {
	t.mu.Lock()
	t.unitsDone++
	t.mu.Unlock()
}

func (t *tracker) begin(id string) {
	t.mu.Lock()
	if i, ok := t.index[id]; ok {
		t.begunAt[i] = time.Now()
	}
	t.mu.Unlock()
}

func (t *tracker) end(id string, done bool) {
	t.mu.Lock()
	if i, ok := t.index[id]; ok {
		t.done[i] = done
		if !done {
			t.begunAt[i] = time.Time{}
		}
	}
	t.mu.Unlock()
}

// start runs the progress loop until the returned stop is called. At every
// progress line it runs check; a lease taken by a later run, an aborted run
// or a chunk taken over cancels ctx with that error.
func (t *tracker) start(ctx context.Context, cancel context.CancelCauseFunc, check func(context.Context) error) (stop func()) {
	logEvery := t.ex.Config.ProgressEvery
	watch := t.ex.Watch
	if logEvery <= 0 && watch == nil {
		return func() {}
	}
	quit := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		var logTick, watchTick <-chan time.Time
		if logEvery > 0 {
			tk := time.NewTicker(logEvery)
			defer tk.Stop()
			logTick = tk.C
		}
		if watch != nil {
			tk := time.NewTicker(cmp.Or(t.ex.WatchEvery, defaultWatchEvery))
			defer tk.Stop()
			watchTick = tk.C
			watch(t.status())
		}
		for {
			select {
			case <-quit:
				return
			case <-ctx.Done():
				return
			case <-watchTick:
				watch(t.status())
			case <-logTick:
				t.logStatus(t.status())
				if err := check(ctx); errors.Is(err, ErrSuperseded) || errors.Is(err, ErrAborted) || errors.Is(err, ErrChunkTakenOver) {
					cancel(err)
					return
				}
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(quit)
			<-finished
			if watch != nil {
				s := t.status()
				s.Final = true
				watch(s)
			}
		})
	}
}

func (t *tracker) status() Status {
	now := time.Now()
	st := t.ex.Client.Stats()
	s := Status{
		Elapsed:          now.Sub(t.began),
		UnitsTotal:       len(t.plan.Units),
		DirectoriesTotal: len(t.plan.Directories),
		Rows:             map[string]int64{},
		Requests:         st.Requests - t.before.Requests,
		RateLimited:      st.RateLimited - t.before.RateLimited,
	}
	cfg := t.ex.Config
	workers := max(1, t.plan.Workers)
	perDir, global := rateOr(cfg.PerDirectoryRate), rateOr(cfg.GlobalRate)*float64(workers)
	var longest, totalReq, totalDirSec float64
	known := false
	t.mu.Lock()
	s.UnitsDone = t.unitsDone
	for k, v := range t.doneRows {
		s.Rows[k] = v
	}
	for c := range t.live {
		s.Rows[schema.TableDirectoryUsers] += c.users.Rows()
		s.Rows[schema.TableDirectoryGroups] += c.groups.Rows()
		s.Rows[schema.TableMemberships] += c.memberships.Rows()
	}
	for i := range t.plan.Directories {
		if md := t.plan.Directories[i].Metadata; md != nil {
			s.UsersExpected += md.Users.Active + md.Users.Inactive
		}
		switch {
		case t.done[i]:
			s.DirectoriesDone++
			continue
		case !t.begunAt[i].IsZero():
			s.DirectoriesInFlight++
		}
		req, dirReq, ok := estimateRequests(&t.plan.Directories[i])
		if !ok {
			continue
		}
		known = true
		sec := dirReq / perDir
		if !t.begunAt[i].IsZero() {
			spent := now.Sub(t.begunAt[i]).Seconds()
			frac := math.Max(0, 1-spent/math.Max(sec, 1e-9))
			sec, req = sec*frac, req*frac
		}
		longest = math.Max(longest, sec)
		totalReq += req
		totalDirSec += sec
	}
	t.mu.Unlock()
	s.ETA = -1
	if known && (cfg.PerDirectoryRate > 0 || cfg.GlobalRate > 0) { // no limits, no bound to estimate from
		// The slowest directory, the global budget and the concurrency each
		// bound the time left; the largest of them is the estimate.
		eta := math.Max(longest, totalReq/global)
		eta = math.Max(eta, totalDirSec/float64(max(1, cfg.Concurrency)*workers))
		s.ETA = time.Duration(eta * float64(time.Second)).Round(time.Second)
	}
	return s
}

func (t *tracker) logStatus(s Status) {
	eta := "unknown"
	if s.ETA >= 0 {
		eta = s.ETA.String()
	}
	t.log.Info("export progress",
		"units_done", s.UnitsDone, "units_total", s.UnitsTotal,
		"directories_done", s.DirectoriesDone, "directories_in_flight", s.DirectoriesInFlight, "directories_total", s.DirectoriesTotal,
		"rows", s.Rows, "requests", s.Requests, "rate_limited", s.RateLimited,
		"elapsed", s.Elapsed.Round(time.Second).String(), "eta", eta)
}
