package workos

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestShouldRetry(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	bg := context.Background()
	netErr := &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	tests := []struct {
		name   string
		ctx    context.Context
		method string
		status int
		err    error
		want   bool
	}{
		{"408", bg, "GET", 408, nil, true},
		{"429", bg, "GET", 429, nil, true},
		{"500", bg, "GET", 500, nil, true},
		{"502", bg, "GET", 502, nil, true},
		{"503", bg, "GET", 503, nil, true},
		{"504", bg, "GET", 504, nil, true},
		{"501", bg, "GET", 501, nil, false},
		{"400", bg, "GET", 400, nil, false},
		{"401", bg, "GET", 401, nil, false},
		{"403", bg, "GET", 403, nil, false},
		{"404", bg, "GET", 404, nil, false},
		{"422", bg, "GET", 422, nil, false},
		{"200", bg, "GET", 200, nil, false},
		{"connection reset", bg, "GET", 0, netErr, true},
		{"body cut short", bg, "GET", 200, &errTruncated{err: io.ErrUnexpectedEOF}, true},
		{"delete 503", bg, "DELETE", 503, nil, true},
		{"delete reset", bg, "DELETE", 0, netErr, true},
		{"post 503", bg, "POST", 503, nil, false},
		{"post reset", bg, "POST", 0, netErr, false},
		{"cancelled ctx", cancelled, "GET", 503, nil, false},
		{"cancelled ctx network", cancelled, "GET", 0, netErr, false},
		{"bad certificate", bg, "GET", 0, fmt.Errorf("tls: %w", x509.UnknownAuthorityError{}), false},
	}
	for _, tt := range tests {
		if got := shouldRetry(tt.ctx, tt.method, tt.status, tt.err); got != tt.want {
			t.Errorf("%s: shouldRetry = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	const base, max = 500 * time.Millisecond, 30 * time.Second
	tests := []struct {
		attempt    int
		retryAfter time.Duration
		rnd        float64
		want       time.Duration
	}{
		{1, 0, 0, 250 * time.Millisecond},   // d = 500ms, equal jitter floor d/2
		{1, 0, 0.5, 375 * time.Millisecond}, //
		{2, 0, 0, 500 * time.Millisecond},   // d = 1s
		{3, 0, 0, time.Second},              // d = 2s
		{4, 0, 0, 2 * time.Second},          // d = 4s
		{7, 0, 0, 15 * time.Second},         // d = 32s capped to 30s
		{60, 0, 0, 15 * time.Second},        // no overflow
		{1000, 0, 0.5, 22500 * time.Millisecond},
		{0, 0, 0, 250 * time.Millisecond},          // clamped to attempt 1
		{3, 7 * time.Second, 0.9, 7 * time.Second}, // Retry-After overrides
	}
	for _, tt := range tests {
		got := backoff(tt.attempt, tt.retryAfter, base, max, tt.rnd)
		if got != tt.want {
			t.Errorf("backoff(%d, %v, rnd=%v) = %v, want %v", tt.attempt, tt.retryAfter, tt.rnd, got, tt.want)
		}
		if tt.retryAfter == 0 && (got < 0 || got > max) {
			t.Errorf("backoff(%d) = %v outside [0, %v]", tt.attempt, got, max)
		}
	}
	// Growth: the floor doubles until the cap.
	prev := time.Duration(0)
	for a := 1; a <= 6; a++ {
		lo, hi := backoff(a, 0, base, max, 0), backoff(a, 0, base, max, 0.999999)
		if lo <= prev || hi < lo || hi > 2*lo {
			t.Errorf("attempt %d: range [%v, %v] after floor %v", a, lo, hi, prev)
		}
		prev = lo
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 15, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"3", 3 * time.Second},
		{" 120 ", 2 * time.Minute},
		{"0", 0},
		{"-5", 0},
		{"soon", 0},
		{"1.5", 0},
		{now.Add(7 * time.Second).Format(http.TimeFormat), 7 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"Thu, 15 Jan 2026 12:01:00 GMT", time.Minute},
		{"Thursday, 15-Jan-26 12:00:30 GMT", 30 * time.Second}, // RFC 850
		{"99999999999", 24 * time.Hour},
	}
	for _, tt := range tests {
		if got := parseRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// TestRetriesByStatus counts attempts for each status against a real server.
func TestRetriesByStatus(t *testing.T) {
	tests := []struct {
		status       int
		wantAttempts int32
	}{
		{408, 5}, {429, 5}, {500, 5}, {502, 5}, {503, 5}, {504, 5},
		{400, 1}, {401, 1}, {403, 1}, {404, 1}, {422, 1},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.status), func(t *testing.T) {
			c, mux := setup(t)
			var hits atomic.Int32
			mux.HandleFunc("GET /directory_users", func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				w.Header().Set("X-Request-ID", "req_"+strconv.Itoa(int(hits.Load())))
				writeJSON(w, tt.status, `{"message":"nope"}`)
			})
			_, err := c.ListDirectoryUsers(context.Background(), &ListDirectoryUsersOptions{Directory: dirID})
			var apiErr *APIError
			if !errors.As(err, &apiErr) || apiErr.StatusCode != tt.status {
				t.Fatalf("err = %v, want *APIError %d", err, tt.status)
			}
			if hits.Load() != tt.wantAttempts || int32(apiErr.Attempts) != tt.wantAttempts {
				t.Errorf("attempts: server saw %d, error says %d; want %d", hits.Load(), apiErr.Attempts, tt.wantAttempts)
			}
			if apiErr.RequestID != "req_"+strconv.Itoa(int(tt.wantAttempts)) {
				t.Errorf("request id %q is not the last attempt's", apiErr.RequestID)
			}
			if tt.wantAttempts > 1 && !strings.Contains(err.Error(), fmt.Sprintf("gave up after %d attempts", tt.wantAttempts)) {
				t.Errorf("Error() = %q lacks the attempt count", err)
			}
			st := c.Stats()
			wantRL := int64(0)
			if tt.status == 429 {
				wantRL = int64(tt.wantAttempts)
			}
			want := Stats{Requests: int64(tt.wantAttempts), Retries: int64(tt.wantAttempts - 1), RateLimited: wantRL}
			if st != want {
				t.Errorf("Stats = %+v, want %+v", st, want)
			}
		})
	}
}

func TestMaxAttemptsOne(t *testing.T) {
	c, mux := setup(t, WithMaxAttempts(1))
	var hits atomic.Int32
	mux.HandleFunc("GET /directories", func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		writeJSON(w, 503, `{}`)
	})
	if _, err := c.ListDirectories(context.Background(), nil); err == nil || hits.Load() != 1 {
		t.Errorf("err = %v, hits = %d; want an error after 1 attempt", err, hits.Load())
	}
}

// TestRetryRecoversAndCounts mixes failures before a success.
func TestRetryRecoversAndCounts(t *testing.T) {
	var logBuf syncBuffer
	logger := slog.New(slog.NewTextHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, mux := setup(t, WithLogger(logger), WithHTTPClient(&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}))
	var hits atomic.Int32
	mux.HandleFunc("GET /directory_users", func(w http.ResponseWriter, r *http.Request) {
		n := hits.Add(1)
		w.Header().Set("X-Request-ID", "req_try"+strconv.Itoa(int(n)))
		switch n {
		case 1:
			writeJSON(w, 503, `{"message":"unavailable"}`)
		case 2:
			writeJSON(w, 429, `"Ratelimited"`)
		case 3:
			resetConnection(t, w)
		case 4:
			// A body cut short: Content-Length promises more than is sent.
			w.Header().Set("Content-Length", "500")
			w.WriteHeader(200)
			fmt.Fprint(w, `{"object":"list","data":[{"id":`)
		case 5:
			// Framed correctly but the JSON stops early: also retried.
			writeJSON(w, 200, `{"object":"list","data":[{"id":"directory_user_1"`)
		default:
			writeJSON(w, 200, usersPage([]string{"directory_user_001"}, false, false))
		}
	})
	page, err := c.ListDirectoryUsers(context.Background(), &ListDirectoryUsersOptions{Directory: dirID})
	if err == nil {
		t.Fatalf("want an error: 5 attempts cannot reach the sixth answer, got %d users", len(page.Data))
	}
	if hits.Load() != 5 {
		t.Fatalf("hits = %d, want 5", hits.Load())
	}
	if !strings.Contains(err.Error(), "network error after 5 attempt(s)") || !strings.Contains(err.Error(), "req_try5") {
		t.Errorf("Error() = %q", err)
	}
	// Now with one more attempt allowed it succeeds.
	hits.Store(0)
	c2, err := NewClient(testKey, WithBaseURL(c.baseURL.String()), WithRateLimits(RateLimits{}),
		WithBackoff(time.Millisecond, time.Millisecond), WithMaxAttempts(6), WithLogger(logger),
		WithHTTPClient(&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}))
	if err != nil {
		t.Fatal(err)
	}
	page, err = c2.ListDirectoryUsers(context.Background(), &ListDirectoryUsersOptions{Directory: dirID})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Data) != 1 || page.RequestID != "req_try6" {
		t.Errorf("page = %+v", page)
	}
	want := Stats{Requests: 6, Pages: 1, Retries: 5, RateLimited: 1, NetworkErrors: 3}
	if diff := cmp.Diff(want, c2.Stats()); diff != "" {
		t.Errorf("Stats mismatch (-want +got):\n%s", diff)
	}
	logs := logBuf.String()
	for _, s := range []string{"workos: retrying request", "path=/directory_users", "status=503", "request_id=req_try1", "status=429", "wait="} {
		if !strings.Contains(logs, s) {
			t.Errorf("debug logs lack %q:\n%s", s, logs)
		}
	}
	if strings.Contains(logs, testKey) || strings.Contains(logs, "directory=") {
		t.Errorf("logs contain the key or the query:\n%s", logs)
	}
}

// resetConnection closes the client's connection abruptly (RST).
func resetConnection(t *testing.T, w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		t.Errorf("hijack: %v", err)
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

func TestNetworkResetRetried(t *testing.T) {
	c, mux := setup(t, WithHTTPClient(&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}))
	var hits atomic.Int32
	mux.HandleFunc("GET /directory_groups/{id}", func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) <= 2 {
			resetConnection(t, w)
			return
		}
		writeJSON(w, 200, string(fixture(t, "directory_group.json")))
	})
	g, err := c.GetDirectoryGroup(context.Background(), groupID)
	if err != nil {
		t.Fatal(err)
	}
	if g.ID != groupID || hits.Load() != 3 {
		t.Errorf("group %q after %d hits", g.ID, hits.Load())
	}
	if st := c.Stats(); st.NetworkErrors != 2 || st.Retries != 2 || st.Requests != 3 {
		t.Errorf("Stats = %+v", st)
	}
}

func TestUnreachableServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	c, err := NewClient(testKey, WithBaseURL("http://"+addr), WithRateLimits(RateLimits{}),
		WithBackoff(time.Millisecond, time.Millisecond), WithMaxAttempts(3))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.GetDirectory(context.Background(), dirID)
	if err == nil || !strings.Contains(err.Error(), "network error after 3 attempt(s)") || strings.Contains(err.Error(), testKey) {
		t.Errorf("err = %v", err)
	}
	if st := c.Stats(); st.Requests != 3 || st.NetworkErrors != 3 {
		t.Errorf("Stats = %+v", st)
	}
}

// inProcess is a transport that calls h directly, without a network, so that
// tests can run in a synctest bubble with a fake clock.
func inProcess(h http.Handler) *http.Client {
	return &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if err := r.Context().Err(); err != nil {
			return nil, err
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		resp := rec.Result()
		resp.Request = r
		return resp, nil
	})}
}

// timedClient returns a client that serves requests with h in process. Rate
// limits are off unless opts set them.
func timedClient(t *testing.T, h http.Handler, opts ...Option) *Client {
	t.Helper()
	all := append([]Option{WithBaseURL("http://workos.invalid/"), WithHTTPClient(inProcess(h)), WithRateLimits(RateLimits{})}, opts...)
	c, err := NewClient(testKey, all...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// gaps returns the intervals between consecutive times.
func gaps(ts []time.Time) []time.Duration {
	var out []time.Duration
	for i := 1; i < len(ts); i++ {
		out = append(out, ts[i].Sub(ts[i-1]))
	}
	return out
}

func TestBackoffGrowthFakeClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var times []time.Time
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			times = append(times, time.Now())
			writeJSON(w, 503, `{"message":"down"}`)
		})
		c := timedClient(t, h, WithBackoff(time.Second, 4*time.Second), WithMaxAttempts(6))
		c.rand = func() float64 { return 0 } // the floor of equal jitter: d/2
		start := time.Now()
		_, err := c.GetDirectory(context.Background(), dirID)
		if err == nil {
			t.Fatal("want an error")
		}
		want := []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 2 * time.Second, 2 * time.Second}
		if diff := cmp.Diff(want, gaps(times)); diff != "" {
			t.Errorf("waits mismatch (-want +got):\n%s", diff)
		}
		if got := time.Since(start); got != 7500*time.Millisecond {
			t.Errorf("total = %v, want 7.5s", got)
		}

		// With the jitter at its top, each wait is just under d.
		times = nil
		c.rand = func() float64 { return 0.999999999 }
		_, _ = c.GetDirectory(context.Background(), dirID)
		for i, g := range gaps(times) {
			d := min(time.Second<<i, 4*time.Second)
			if g < d-time.Millisecond || g > d {
				t.Errorf("wait %d = %v, want just under %v", i, g, d)
			}
		}
	})
}

func TestRetryAfterFakeClock(t *testing.T) {
	tests := []struct {
		name     string
		header   func(now time.Time) string
		cap      time.Duration
		wantWait time.Duration
	}{
		{"seconds", func(time.Time) string { return "3" }, 0, 3 * time.Second},
		{"http date", func(now time.Time) string { return now.Add(7 * time.Second).UTC().Format(http.TimeFormat) }, 0, 7 * time.Second},
		{"capped by default", func(time.Time) string { return "3600" }, 0, 60 * time.Second},
		{"capped by option", func(time.Time) string { return "3600" }, 10 * time.Second, 10 * time.Second},
		{"date in the past falls back to backoff", func(now time.Time) string { return now.Add(-time.Hour).UTC().Format(http.TimeFormat) }, 0, 250 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var times []time.Time
				h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					times = append(times, time.Now())
					if len(times) == 1 {
						w.Header().Set("Retry-After", tt.header(time.Now()))
						writeJSON(w, 429, `"Ratelimited"`)
						return
					}
					writeJSON(w, 200, `{"object":"list","data":[],"list_metadata":{"before":null,"after":null}}`)
				})
				opts := []Option{WithBackoff(500*time.Millisecond, 30*time.Second)}
				if tt.cap > 0 {
					opts = append(opts, WithRetryAfterCap(tt.cap))
				}
				c := timedClient(t, h, opts...)
				c.rand = func() float64 { return 0 }
				if _, err := c.ListDirectoryUsers(context.Background(), &ListDirectoryUsersOptions{Directory: dirID}); err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff([]time.Duration{tt.wantWait}, gaps(times)); diff != "" {
					t.Errorf("wait mismatch (-want +got):\n%s", diff)
				}
			})
		})
	}
}

func TestRetryAfterOnAPIError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "2")
			writeJSON(w, 503, `{"message":"maintenance"}`)
		})
		c := timedClient(t, h, WithMaxAttempts(2))
		start := time.Now()
		_, err := c.ListDirectories(context.Background(), nil)
		var apiErr *APIError
		if !errors.As(err, &apiErr) || apiErr.RetryAfter != 2*time.Second || apiErr.Attempts != 2 {
			t.Fatalf("err = %#v", err)
		}
		if time.Since(start) != 2*time.Second {
			t.Errorf("elapsed %v, want 2s", time.Since(start))
		}
	})
}

func TestCancelDuringBackoffReturnsPromptly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var hits atomic.Int32
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits.Add(1)
			w.Header().Set("Retry-After", "30")
			writeJSON(w, 503, `{}`)
		})
		c := timedClient(t, h)
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(time.Second, cancel)
		start := time.Now()
		_, err := c.ListDirectories(ctx, nil)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		if got := time.Since(start); got != time.Second {
			t.Errorf("returned after %v, want 1s (at the cancel)", got)
		}
		if hits.Load() != 1 || !strings.Contains(err.Error(), "workos: GET /directories") {
			t.Errorf("hits = %d, err = %v", hits.Load(), err)
		}
	})
}

func TestDeadlineDuringBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "30")
			writeJSON(w, 503, `{}`)
		})
		c := timedClient(t, h)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		start := time.Now()
		_, err := c.GetDirectory(ctx, dirID)
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != 5*time.Second {
			t.Errorf("err = %v after %v, want DeadlineExceeded at 5s", err, time.Since(start))
		}
	})
}

// TestCancelMidWalk cancels a walk over a real server while a request hangs.
func TestCancelMidWalk(t *testing.T) {
	c, mux := setup(t)
	release := make(chan struct{})
	defer close(release)
	var calls atomic.Int32
	mux.HandleFunc("GET /directory_users", func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			writeJSON(w, 200, usersPage([]string{"directory_user_001", "directory_user_002"}, false, true))
			return
		}
		select { // hang until the client gives up
		case <-r.Context().Done():
		case <-release:
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var n int
	var gotErr error
	start := time.Now()
	for _, err := range c.DirectoryUsers(ctx, &ListDirectoryUsersOptions{Directory: dirID}) {
		if err != nil {
			gotErr = err
			break
		}
		if n++; n == 2 {
			time.AfterFunc(50*time.Millisecond, cancel)
		}
	}
	if !errors.Is(gotErr, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", gotErr)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("cancellation took %v", el)
	}
	if n != 2 || calls.Load() != 2 {
		t.Errorf("items = %d, calls = %d", n, calls.Load())
	}
	if st := c.Stats(); st.Retries != 0 || st.NetworkErrors != 0 {
		t.Errorf("a cancellation counted as a failure: %+v", st)
	}
}

func TestCancelledBeforeStart(t *testing.T) {
	c, mux := setup(t)
	var calls atomic.Int32
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { calls.Add(1) })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.ListDirectoryUsers(ctx, &ListDirectoryUsersOptions{Directory: dirID})
	if !errors.Is(err, context.Canceled) || calls.Load() != 0 {
		t.Errorf("err = %v, calls = %d", err, calls.Load())
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
