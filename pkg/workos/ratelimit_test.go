package workos

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// windowServer is a fake /directory_users that enforces WorkOS's limit of 4
// requests per second per directory with a sliding window and answers 429
// "Ratelimited" above it. It serves pages of one user until page n.
type windowServer struct {
	mu    sync.Mutex
	limit int           // requests per window per directory
	win   time.Duration // window
	pages int           // pages per directory
	seen  map[string][]time.Time
	n429  int
}

func newWindowServer(pages int) *windowServer {
	return &windowServer{limit: 4, win: time.Second, pages: pages, seen: map[string][]time.Time{}}
}

func (s *windowServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	dir := r.URL.Query().Get("directory")
	now := time.Now()
	s.mu.Lock()
	times := append(s.seen[dir], now)
	s.seen[dir] = times
	// The 1ms slack absorbs the float rounding of rate.Limiter (a 250ms
	// interval can come out as 249.999999ms).
	over := len(times) > s.limit && now.Sub(times[len(times)-1-s.limit]) < s.win-time.Millisecond
	if over {
		s.n429++
	}
	s.mu.Unlock()
	if over {
		writeJSON(w, http.StatusTooManyRequests, `"Ratelimited"`)
		return
	}
	page := 0
	if a := r.URL.Query().Get("after"); a != "" {
		page, _ = strconv.Atoi(a[len(a)-3:])
	}
	page++
	id := fmt.Sprintf("directory_user_%03d", page)
	writeJSON(w, 200, usersPage([]string{id}, page > 1, page < s.pages))
}

func (s *windowServer) times(dir string) []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.seen[dir]...)
}

func TestPacedWalkStaysUnderDirectoryLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newWindowServer(20)
		c := timedClient(t, srv, WithRateLimits(DefaultRateLimits))
		start := time.Now()
		users, err := collect(t, c.DirectoryUsers(context.Background(), &ListDirectoryUsersOptions{Directory: dirID}))
		if err != nil {
			t.Fatal(err)
		}
		if len(users) != 20 {
			t.Fatalf("users = %d, want 20", len(users))
		}
		if srv.n429 != 0 || c.Stats().RateLimited != 0 || c.Stats().Retries != 0 {
			t.Errorf("429s: server %d, stats %+v", srv.n429, c.Stats())
		}
		for i, g := range gaps(srv.times(dirID)) {
			if g < 249*time.Millisecond {
				t.Errorf("gap %d = %v, want >= 250ms", i, g)
			}
		}
		if got := time.Since(start); !near(got, 19*250*time.Millisecond) {
			t.Errorf("walk took %v, want 4.75s (20 pages at 4/s, burst 1)", got)
		}
	})
}

func TestDirectoriesArePacedIndependently(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newWindowServer(10)
		c := timedClient(t, srv, WithRateLimits(DefaultRateLimits))
		dirs := []string{"directory_01AAA", "directory_01BBB"}
		start := time.Now()
		var wg sync.WaitGroup
		for _, d := range dirs {
			wg.Go(func() {
				users, err := collect(t, c.DirectoryUsers(context.Background(), &ListDirectoryUsersOptions{Directory: d}))
				if err != nil || len(users) != 10 {
					t.Errorf("%s: %d users, %v", d, len(users), err)
				}
			})
		}
		wg.Wait()
		// 9 gaps of 250ms, plus at most a few 10ms global-limiter slots.
		if got := time.Since(start); got < 9*249*time.Millisecond || got > 2300*time.Millisecond {
			t.Errorf("two directories took %v, want about 2.25s (in parallel, not 4.75s in series)", got)
		}
		for _, d := range dirs {
			for i, g := range gaps(srv.times(d)) {
				if g < 249*time.Millisecond {
					t.Errorf("%s: gap %d = %v, want >= 250ms", d, i, g)
				}
			}
		}
		if srv.n429 != 0 {
			t.Errorf("server answered %d 429s", srv.n429)
		}
		n := 0
		c.perDir.Range(func(any, any) bool { n++; return true })
		if n != 2 {
			t.Errorf("per-directory limiters = %d, want 2", n)
		}
	})
}

func TestGlobalLimiter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var times []time.Time
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			times = append(times, time.Now())
			writeJSON(w, 200, string(fixture(t, "directory_groups.json")))
		})
		c := timedClient(t, h, WithRateLimits(RateLimits{Global: 10}))
		start := time.Now()
		for range 11 {
			if _, err := c.ListDirectoryGroups(context.Background(), &ListDirectoryGroupsOptions{Directory: dirID}); err != nil {
				t.Fatal(err)
			}
		}
		if got := time.Since(start); !near(got, time.Second) {
			t.Errorf("11 requests at 10/s took %v, want 1s", got)
		}
		for i, g := range gaps(times) {
			if !near(g, 100*time.Millisecond) {
				t.Errorf("gap %d = %v, want 100ms", i, g)
			}
		}
	})
}

func TestPerDirectoryLimiterOnlyOnUserLists(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 200, string(fixture(t, "directory_groups.json")))
		})
		c := timedClient(t, h, WithRateLimits(RateLimits{PerDirectoryUsers: 1}))
		start := time.Now()
		for range 5 {
			if _, err := c.ListDirectoryGroups(context.Background(), &ListDirectoryGroupsOptions{Directory: dirID}); err != nil {
				t.Fatal(err)
			}
		}
		if got := time.Since(start); got != 0 {
			t.Errorf("group lists were paced: %v", got)
		}
	})
}

func TestRetriesArePaced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var times []time.Time
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			times = append(times, time.Now())
			if len(times) < 3 {
				writeJSON(w, 503, `{}`)
				return
			}
			writeJSON(w, 200, usersPage([]string{"directory_user_001"}, false, false))
		})
		c := timedClient(t, h, WithRateLimits(RateLimits{PerDirectoryUsers: 4}), WithBackoff(time.Millisecond, time.Millisecond))
		if _, err := c.ListDirectoryUsers(context.Background(), &ListDirectoryUsersOptions{Directory: dirID}); err != nil {
			t.Fatal(err)
		}
		for i, g := range gaps(times) {
			if !near(g, 250*time.Millisecond) {
				t.Errorf("retry gap %d = %v, want 250ms (the limiter, not the 1ms backoff)", i, g)
			}
		}
	})
}

func TestLimiterWaitHonoursContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 200, usersPage([]string{"directory_user_001"}, false, false))
		})
		c := timedClient(t, h, WithRateLimits(RateLimits{PerDirectoryUsers: 0.1})) // one per 10 s
		opts := &ListDirectoryUsersOptions{Directory: dirID}
		if _, err := c.ListDirectoryUsers(context.Background(), opts); err != nil {
			t.Fatal(err)
		}

		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(time.Second, cancel)
		start := time.Now()
		_, err := c.ListDirectoryUsers(ctx, opts)
		if !errors.Is(err, context.Canceled) || !near(time.Since(start), time.Second) {
			t.Errorf("cancel: err = %v after %v, want context.Canceled after 1s", err, time.Since(start))
		}

		// A deadline the limiter cannot meet fails at once.
		dctx, dcancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer dcancel()
		start = time.Now()
		_, err = c.ListDirectoryUsers(dctx, opts)
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != 0 {
			t.Errorf("deadline: err = %v after %v, want DeadlineExceeded at once", err, time.Since(start))
		}
		if c.Stats().Requests != 1 {
			t.Errorf("requests = %d, want 1", c.Stats().Requests)
		}
	})
}

// near reports whether got is within a microsecond of want: rate.Limiter
// computes intervals in float64 seconds.
func near(got, want time.Duration) bool {
	return got > want-time.Microsecond && got < want+time.Microsecond
}
