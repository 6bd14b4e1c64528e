package workostest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"time"
)

// gcra is a token bucket in its "generic cell rate algorithm" form: it keeps
// the theoretical arrival time of the next request instead of a token count, so
// pacing exactly at the rate never trips it through rounding.
type gcra struct {
	interval time.Duration // 1 / rate
	burst    int
	tat      map[int]time.Time // per key
}

func newGCRA(perSecond float64, burst int) *gcra {
	return &gcra{interval: time.Duration(float64(time.Second) / perSecond), burst: burst, tat: make(map[int]time.Time)}
}

// take admits a request for key at now, or returns how long to wait.
func (g *gcra) take(k int, now time.Time) (ok bool, wait time.Duration) {
	tat := g.tat[k]
	if tat.Before(now) {
		tat = now
	}
	tolerance := time.Duration(g.burst-1) * g.interval
	if d := tat.Sub(now); d > tolerance {
		return false, d - tolerance
	}
	g.tat[k] = tat.Add(g.interval)
	return true, 0
}

// limiter enforces the documented WorkOS limits.
type limiter struct {
	mu     sync.Mutex
	perDir *gcra // /directory_users: 4 requests per second per directory
	perKey *gcra // everything: 6,000 requests per 60 seconds per API key
}

func newLimiter() *limiter {
	return &limiter{perDir: newGCRA(4, 4), perKey: newGCRA(100, 6000)}
}

// allow checks a request; dir is the directory a /directory_users request is
// about (-1 when none) and users says whether the per-directory limit applies.
// It returns the Retry-After seconds when the request must be refused.
func (l *limiter) allow(now time.Time, users bool, dir int) (ok bool, retryAfter int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if users {
		// Check without consuming first, so a refused request does not use
		// up the key's budget.
		tat := l.perDir.tat[dir]
		if d := tat.Sub(now); d > time.Duration(l.perDir.burst-1)*l.perDir.interval {
			return false, retrySeconds(d - time.Duration(l.perDir.burst-1)*l.perDir.interval)
		}
	}
	if ok, wait := l.perKey.take(0, now); !ok {
		return false, retrySeconds(wait)
	}
	if users {
		l.perDir.take(dir, now)
	}
	return true, 0
}

func retrySeconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}

// faultKind is what happens to a request instead of its normal response.
type faultKind uint8

const (
	faultNone faultKind = iota
	faultServerError
	faultRateLimited
	faultReset
	faultTruncate
)

// faulter draws faults from a seeded generator, so a run is reproducible given
// the order of requests.
type faulter struct {
	mu  sync.Mutex
	f   Faults
	rng *rand.Rand
}

func (f *Faults) validate() error {
	sum := 0.0
	for _, p := range []struct {
		name string
		v    float64
	}{{"ServerError", f.ServerError}, {"RateLimited", f.RateLimited}, {"Reset", f.Reset}, {"Truncate", f.Truncate}} {
		if !(p.v >= 0 && p.v <= 1) {
			return fmt.Errorf("workostest: Faults.%s is %v: want a fraction between 0 and 1", p.name, p.v)
		}
		sum += p.v
	}
	if sum > 1+1e-9 {
		return fmt.Errorf("workostest: fault fractions add up to %v: want at most 1", sum)
	}
	return nil
}

// normalize clamps each fraction to [0, 1] and scales them down so they add
// up to at most 1.
func (f Faults) normalize() Faults {
	clamp := func(v float64) float64 {
		if !(v > 0) {
			return 0
		}
		return min(v, 1)
	}
	f.ServerError, f.RateLimited, f.Reset, f.Truncate = clamp(f.ServerError), clamp(f.RateLimited), clamp(f.Reset), clamp(f.Truncate)
	if sum := f.ServerError + f.RateLimited + f.Reset + f.Truncate; sum > 1 {
		f.ServerError, f.RateLimited, f.Reset, f.Truncate = f.ServerError/sum, f.RateLimited/sum, f.Reset/sum, f.Truncate/sum
	}
	return f
}

func (fa *faulter) set(f Faults) {
	fa.mu.Lock()
	defer fa.mu.Unlock()
	fa.f = f.normalize()
	fa.rng = rand.New(rand.NewPCG(uint64(f.Seed), 0x5EED_FA17))
}

var serverErrorStatuses = [...]int{500, 502, 503}

// draw decides the fate of one request; status is set for faultServerError.
func (fa *faulter) draw() (kind faultKind, status int) {
	fa.mu.Lock()
	defer fa.mu.Unlock()
	f := fa.f
	if f.ServerError+f.RateLimited+f.Reset+f.Truncate == 0 {
		return faultNone, 0
	}
	u := fa.rng.Float64()
	switch {
	case u < f.ServerError:
		return faultServerError, serverErrorStatuses[fa.rng.IntN(len(serverErrorStatuses))]
	case u < f.ServerError+f.RateLimited:
		return faultRateLimited, 429
	case u < f.ServerError+f.RateLimited+f.Reset:
		return faultReset, 0
	case u < f.ServerError+f.RateLimited+f.Reset+f.Truncate:
		return faultTruncate, 0
	}
	return faultNone, 0
}

// htmlError is the kind of page a proxy in front of the API sends.
func htmlError(status int) []byte {
	text := map[int]string{500: "500 Internal Server Error", 502: "502 Bad Gateway", 503: "503 Service Temporarily Unavailable"}[status]
	return []byte("<html>\r\n<head><title>" + text + "</title></head>\r\n<body>\r\n<center><h1>" + text +
		"</h1></center>\r\n<hr><center>cloudflare</center>\r\n</body>\r\n</html>\r\n")
}
