package workos_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/dsync-export/dsync-export/internal/testenv/workostest"
	"github.com/dsync-export/dsync-export/pkg/workos"
)

// startFake serves the fake WorkOS on loopback and returns a client for it.
func startFake(t testing.TB, cfg workostest.Config, opts ...workos.Option) (*workostest.Server, *workos.Client) {
	t.Helper()
	fake, base := workostest.Start(t, cfg)
	key := cfg.APIKey
	if key == "" {
		key = workostest.DefaultAPIKey
	}
	c, err := workos.NewClient(key, append([]workos.Option{workos.WithBaseURL(base)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return fake, c
}

// TestWalk100kUsersExactlyOnce walks a 100,000-user directory through the
// fake (under -race in make test) and checks that every ID is delivered
// exactly once; the descending walk covers the first 5,000 users' worth of
// pages in the other direction.
func TestWalk100kUsersExactlyOnce(t *testing.T) {
	const users = 100_000
	fake, c := startFake(t, workostest.Config{Seed: 42, Directories: 1, UsersPerDirectory: users, GroupsPerDirectory: 3},
		workos.WithRateLimits(workos.RateLimits{}))
	dir := fake.Directories()[0].ID
	want := make(map[string]bool, users)
	for u := range fake.Users(dir) {
		want[u.ID] = true
	}
	if len(want) != users {
		t.Fatalf("fake has %d distinct users, want %d", len(want), users)
	}
	for _, order := range []workos.Order{workos.OrderAsc, workos.OrderDesc} {
		limit := users
		if order == workos.OrderDesc {
			limit = 5000
		}
		seen := make(map[string]int, users)
		var last time.Time
		for u, err := range c.DirectoryUsers(context.Background(), &workos.ListDirectoryUsersOptions{
			ListOptions: workos.ListOptions{Order: order}, Directory: dir,
		}) {
			if err != nil {
				t.Fatal(err)
			}
			seen[u.ID]++
			if len(seen) == limit {
				break
			}
			if !last.IsZero() && (order == workos.OrderAsc && u.CreatedAt.Before(last) || order == workos.OrderDesc && u.CreatedAt.After(last)) {
				t.Fatalf("%s walk out of order at %s", order, u.ID)
			}
			last = u.CreatedAt.Time
		}
		if len(seen) != limit {
			t.Errorf("%s walk saw %d distinct users, want %d", order, len(seen), limit)
		}
		for id, n := range seen {
			if n != 1 || !want[id] {
				t.Fatalf("%s walk: user %s delivered %d times (known to the fake: %v)", order, id, n, want[id])
			}
		}
	}
	if s := c.Stats(); s.Pages != (users+5000)/100 {
		t.Errorf("pages %d, want %d", s.Pages, (users+5000)/100)
	}
}

// TestPacedWalkDrawsNo429 walks two directories at once against the fake with
// WorkOS's real limits on: the client's own pacing must avoid every 429.
func TestPacedWalkDrawsNo429(t *testing.T) {
	fake, c := startFake(t, workostest.Config{Seed: 1, Directories: 2, UsersPerDirectory: 1100, GroupsPerDirectory: 2, RateLimit: true})
	var wg sync.WaitGroup
	start := time.Now()
	counts := make([]int, 2)
	for i, d := range fake.Directories() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, err := range c.DirectoryUsers(context.Background(), &workos.ListDirectoryUsersOptions{Directory: d.ID}) {
				if err != nil {
					t.Error(err)
					return
				}
				counts[i]++
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if counts[0] != 1100 || counts[1] != 1100 {
		t.Errorf("walked %v users, want 1100 each", counts)
	}
	if s := fake.Stats(); s.RateLimited != 0 {
		t.Errorf("fake answered %d 429s to a paced walk", s.RateLimited)
	}
	// 11 pages per directory at 4 req/s: the bound is 2.5 s, both in parallel.
	if elapsed < 2400*time.Millisecond {
		t.Errorf("walk took %s: faster than 4 req/s per directory allows", elapsed)
	}
	t.Logf("2 directories x 11 pages in %s (bound 2.5 s)", elapsed)
}

// TestUnpacedClientDrawsRateLimitedAndRecovers turns client pacing off: the
// fake must answer "Ratelimited" 429s with Retry-After, and the client must
// still deliver every user once.
func TestUnpacedClientDrawsRateLimitedAndRecovers(t *testing.T) {
	fake, c := startFake(t, workostest.Config{Seed: 3, Directories: 1, UsersPerDirectory: 900, GroupsPerDirectory: 1, RateLimit: true},
		workos.WithRateLimits(workos.RateLimits{}), workos.WithMaxAttempts(20), workos.WithRetryAfterCap(300*time.Millisecond))
	dir := fake.Directories()[0].ID
	seen := map[string]bool{}
	for u, err := range c.DirectoryUsers(context.Background(), &workos.ListDirectoryUsersOptions{Directory: dir}) {
		if err != nil {
			t.Fatal(err)
		}
		if seen[u.ID] {
			t.Fatalf("duplicate %s", u.ID)
		}
		seen[u.ID] = true
	}
	if len(seen) != 900 {
		t.Errorf("%d users, want 900", len(seen))
	}
	if s := c.Stats(); s.RateLimited == 0 || s.Retries < s.RateLimited {
		t.Errorf("stats %+v: want 429s received and retried", s)
	}
}

func TestCancelMidWalkAgainstFake(t *testing.T) {
	fake, c := startFake(t, workostest.Config{Seed: 2, Directories: 1, UsersPerDirectory: 5000, GroupsPerDirectory: 1, Latency: 5 * time.Millisecond},
		workos.WithRateLimits(workos.RateLimits{}))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n := 0
	var gotErr error
	for _, err := range c.DirectoryUsers(ctx, &workos.ListDirectoryUsersOptions{Directory: fake.Directories()[0].ID}) {
		if err != nil {
			gotErr = err
			break
		}
		if n++; n == 250 {
			cancel()
		}
	}
	if !errors.Is(gotErr, context.Canceled) {
		t.Errorf("err %v after %d users, want context.Canceled", gotErr, n)
	}
	if n >= 400 {
		t.Errorf("walk went on for %d users after cancel at 250", n)
	}
}

// BenchmarkWalkThroughFake reports pages/s of a users walk through the fake
// with limits off (loopback HTTP, JSON decode).
func BenchmarkWalkThroughFake(b *testing.B) {
	fake, c := startFake(b, workostest.Config{Seed: 1, Directories: 1, UsersPerDirectory: 20_000, GroupsPerDirectory: 1},
		workos.WithRateLimits(workos.RateLimits{}))
	dir := fake.Directories()[0].ID
	b.ResetTimer()
	start := time.Now()
	pages := 0
	for b.Loop() {
		for _, err := range c.DirectoryUsers(context.Background(), &workos.ListDirectoryUsersOptions{Directory: dir}) {
			if err != nil {
				b.Fatal(err)
			}
		}
		pages += 200
	}
	b.ReportMetric(float64(pages)/time.Since(start).Seconds(), "pages/s")
}

// BenchmarkWalk100kLimitsOn walks 100,000 users with the fake enforcing the
// real limits and reports the wall time against the 4 req/s bound (250 s).
// It takes over four minutes: run it with -bench Walk100kLimitsOn -benchtime 1x.
func BenchmarkWalk100kLimitsOn(b *testing.B) {
	fake, c := startFake(b, workostest.Config{Seed: 1, Directories: 1, UsersPerDirectory: 100_000, GroupsPerDirectory: 1, RateLimit: true})
	dir := fake.Directories()[0].ID
	for b.Loop() {
		start := time.Now()
		for _, err := range c.DirectoryUsers(context.Background(), &workos.ListDirectoryUsersOptions{Directory: dir}) {
			if err != nil {
				b.Fatal(err)
			}
		}
		wall := time.Since(start).Seconds()
		bound := 1000.0 / 4
		b.ReportMetric(wall, "wall-s")
		b.ReportMetric(wall/bound, "ratio-to-bound")
		b.ReportMetric(float64(fake.Stats().RateLimited), "429s")
	}
}
