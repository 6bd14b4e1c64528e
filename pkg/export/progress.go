package export

import (
	"cmp"
	"context"
	"errors"
	"math"
	"sync"
	"time"

	"github.com/dsync-export/dsync-export/pkg/schema"
	"github.com/dsync-export/dsync-export/pkg/workos"
)

// Status is a running export's progress.
type Status struct {
	Elapsed             time.Duration
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

// tracker follows which directories are in flight and done, logs a progress
// line every Config.ProgressEvery (checking the lease at the same time) and
// feeds Exporter.Watch.
type tracker struct {
	r      *run
	dirs   []workos.Directory
	before workos.Stats
	began  time.Time

	mu      sync.Mutex
	begunAt []time.Time // zero: not started
	done    []bool
}

func newTracker(r *run, dirs []workos.Directory, before workos.Stats) *tracker {
	return &tracker{r: r, dirs: dirs, before: before, began: time.Now(), begunAt: make([]time.Time, len(dirs)), done: make([]bool, len(dirs))}
}

func (t *tracker) begin(i int) {
	t.mu.Lock()
	t.begunAt[i] = time.Now()
	t.mu.Unlock()
}

func (t *tracker) end(i int) {
	t.mu.Lock()
	t.done[i] = true
	t.mu.Unlock()
}

// start runs the progress loop until the returned stop is called. A lease
// found taken by a later run cancels the export with ErrSuperseded.
func (t *tracker) start(ctx context.Context, cancel context.CancelCauseFunc) (stop func()) {
	logEvery := t.r.cfg.ProgressEvery
	watch := t.r.ex.Watch
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
			tk := time.NewTicker(cmp.Or(t.r.ex.WatchEvery, defaultWatchEvery))
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
				t.log(t.status())
				if err := t.r.checkLease(ctx); errors.Is(err, ErrSuperseded) {
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

// rows returns the rows written per table so far.
func (t *tracker) rows() map[string]int64 {
	r := t.r
	out := map[string]int64{}
	if r.users == nil {
		return out
	}
	out[schema.TableDirectories] = r.dirs.Rows()
	out[schema.TableDirectoryUsers] = r.users.Rows()
	out[schema.TableDirectoryGroups] = r.groups.Rows()
	out[schema.TableMemberships] = r.memberships.Rows()
	return out
}

func (t *tracker) status() Status {
	now := time.Now()
	st := t.r.ex.Client.Stats()
	s := Status{
		Elapsed:          now.Sub(t.began),
		DirectoriesTotal: len(t.dirs),
		Rows:             t.rows(),
		Requests:         st.Requests - t.before.Requests,
		RateLimited:      st.RateLimited - t.before.RateLimited,
	}
	cfg := t.r.cfg
	perDir, global := rateOr(cfg.PerDirectoryRate), rateOr(cfg.GlobalRate)
	var longest, totalReq, totalDirSec float64
	known := false
	t.mu.Lock()
	for i := range t.dirs {
		if md := t.dirs[i].Metadata; md != nil {
			s.UsersExpected += md.Users.Active + md.Users.Inactive
		}
		switch {
		case t.done[i]:
			s.DirectoriesDone++
			continue
		case !t.begunAt[i].IsZero():
			s.DirectoriesInFlight++
		}
		req, dirReq, ok := estimateRequests(&t.dirs[i])
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
		eta = math.Max(eta, totalDirSec/float64(max(1, cfg.Concurrency)))
		s.ETA = time.Duration(eta * float64(time.Second)).Round(time.Second)
	}
	return s
}

// estimateRequests estimates from a directory's counts the WorkOS requests
// its walk needs (all endpoints) and those on /directory_users, which the
// per-directory limit paces: the user pages, one page per group for its
// members (by_group) and the overflow pages of big groups.
func estimateRequests(d *workos.Directory) (total, directoryUsers float64, ok bool) {
	if d.Metadata == nil {
		return 0, 0, false
	}
	users := float64(d.Metadata.Users.Active + d.Metadata.Users.Inactive)
	groups := float64(d.Metadata.Groups)
	userPages := math.Max(1, math.Ceil(users/100))
	directoryUsers = userPages + groups + math.Ceil(users/100)
	total = directoryUsers + math.Max(1, math.Ceil(groups/100))
	return total, directoryUsers, true
}

func (t *tracker) log(s Status) {
	eta := "unknown"
	if s.ETA >= 0 {
		eta = s.ETA.String()
	}
	t.r.log.Info("export progress",
		"directories_done", s.DirectoriesDone, "directories_in_flight", s.DirectoriesInFlight, "directories_total", s.DirectoriesTotal,
		"rows", s.Rows, "requests", s.Requests, "rate_limited", s.RateLimited,
		"elapsed", s.Elapsed.Round(time.Second).String(), "eta", eta)
}
