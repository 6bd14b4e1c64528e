package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/dsync-export/dsync-export/pkg/export"
	"github.com/dsync-export/dsync-export/pkg/workos"
)

// fakeLatency is the latency the fake adds to every request in the
// rate-limited and peer sections.
const fakeLatency = 50 * time.Millisecond

// bound is the lower bound on the wall time of a walk that the rate limits
// impose, given the pages it needs.
type bound struct {
	PerDirectory time.Duration // the busiest directory's /directory_users pages at perDirRate
	Global       time.Duration // all requests at globalRate
	Latency      time.Duration // one round trip, which no pacing hides
	Binding      string        // "per-directory" or "global"
}

// Total is max(PerDirectory, Global) + Latency.
func (b bound) Total() time.Duration { return max(b.PerDirectory, b.Global) + b.Latency }

// lowerBound computes the bound from the successful /directory_users pages of
// each directory (users pages plus by_group membership pages), the total
// requests needed, the two rates (requests per second) and the latency:
// max((busiest directory's pages − 1) ÷ perDirRate, (requests − 1) ÷
// globalRate) + latency, as N requests paced at a rate span (N−1) ÷ rate and
// the last one then takes one round trip. A rate of 0 means no limit.
func lowerBound(usersPages map[string]int64, totalRequests int64, perDirRate, globalRate float64, latency time.Duration) bound {
	var busiest int64
	for _, n := range usersPages {
		busiest = max(busiest, n)
	}
	b := bound{Latency: latency, Binding: "per-directory"}
	// N requests paced at a rate span (N-1)/rate from the first to the last.
	if perDirRate > 0 && busiest > 1 {
		b.PerDirectory = seconds(float64(busiest-1) / perDirRate)
	}
	if globalRate > 0 && totalRequests > 1 {
		b.Global = seconds(float64(totalRequests-1) / globalRate)
	}
	if b.Global > b.PerDirectory {
		b.Binding = "global"
	}
	return b
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// rateLimitedSets are the datasets of section 1 (full and --quick).
func rateLimitedSets(quick bool) []dataset {
	if quick {
		return []dataset{{1, 600, 5}, {5, 300, 4}, {40, 20, 2}}
	}
	return []dataset{{1, 10_000, 20}, {20, 5_000, 10}, {200, 50, 3}}
}

// rateLimited is section 1: the export against the fake with WorkOS's real
// limits and 50 ms latency, compared with the lower bound of each dataset.
func (b *bench) rateLimited(ctx context.Context) *section {
	s := &section{title: "1. Rate-limited: wall time against the bound the WorkOS limits impose"}
	s.intro = []string{
		fmt.Sprintf("The fake enforces WorkOS's limits (4 req/s per directory on /directory_users, 6,000 req/min per key) and adds %v latency to every request.", fakeLatency),
		"The export runs with its defaults (client pacing at 4 req/s per directory and 100 req/s overall, `export.DefaultConfig()`) into a local folder.",
		"Bound = max((busiest directory's /directory_users pages − 1) ÷ 4 req/s, (all requests − 1) ÷ 100 req/s) + one latency, counting the successful responses the run actually needed:",
		"N requests paced at a rate span (N − 1) ÷ rate, and the last one then takes a round trip.",
	}
	t := newTable("dataset", ">groups/dir", "route", ">users", ">memberships", ">wall s", ">bound s", "bound by", ">ratio", ">requests", ">429s", ">retries")
	s.table = t
	for _, d := range rateLimitedSets(b.quick) {
		b.progress("rate-limited: %s, %d groups each", d, d.Groups)
		r, bd, err := b.rateLimitedRun(ctx, d)
		if err != nil {
			s.notes = append(s.notes, fmt.Sprintf("%s: failed: %v", d, err))
			continue
		}
		m := r.Manifest
		t.add(d.String(), fmt.Sprint(d.Groups), routes(m),
			fmtInt(rows(m, classUsers)), fmtInt(rows(m, classMemberships)),
			fmtSec(r.Wall), fmtSec(bd.Total()), bd.Binding,
			fmtRatio(r.Wall.Seconds()/bd.Total().Seconds()),
			fmtInt(r.Client.Requests), fmtInt(r.Client.RateLimited), fmtInt(r.Client.Retries))
	}
	s.notes = append(s.notes, "Target: ratio ≤ 1.10 with zero 429s. requests counts every HTTP attempt, retries included; 429s are the responses the client received.")
	return s
}

// rateLimitedRun runs one dataset of section 1 and computes its bound.
func (b *bench) rateLimitedRun(ctx context.Context, d dataset) (*exportRun, bound, error) {
	srv, base, err := startFake(d.fakeConfig(b.seed, fakeLatency, true))
	if err != nil {
		return nil, bound{}, err
	}
	defer srv.Close()
	dir, err := os.MkdirTemp("", "dsync-bench-rl-")
	if err != nil {
		return nil, bound{}, err
	}
	defer os.RemoveAll(dir)
	r, err := runExport(ctx, base, dir, workos.DefaultRateLimits, export.DefaultConfig())
	if err != nil {
		return nil, bound{}, err
	}
	if st := srv.Stats(); st.RateLimited != r.Client.RateLimited {
		b.progress("  note: the fake sent %d 429s, the client counted %d", st.RateLimited, r.Client.RateLimited)
	}
	lim := workos.DefaultRateLimits
	bd := lowerBound(r.Counts.UsersPages, r.Counts.OK, lim.PerDirectoryUsers, lim.Global, fakeLatency)
	return r, bd, nil
}
