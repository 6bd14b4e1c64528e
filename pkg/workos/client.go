package workos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"golang.org/x/time/rate"

	"github.com/dsync-export/dsync-export/pkg/version"
)

// Defaults of NewClient.
const (
	DefaultBaseURL       = "https://api.workos.com/"
	DefaultTimeout       = 60 * time.Second
	DefaultMaxAttempts   = 5
	DefaultRetryAfterCap = 60 * time.Second
	DefaultBackoffBase   = 500 * time.Millisecond
	DefaultBackoffMax    = 30 * time.Second
)

// DefaultRateLimits stay just under WorkOS's documented limits: 4 requests per
// second per directory on /directory_users and 6,000 requests per minute per
// API key.
var DefaultRateLimits = RateLimits{PerDirectoryUsers: 4, Global: 100}

// maxSuccessBody bounds a 2xx body. A page of 100 users with their deprecated
// groups arrays is far below it.
const maxSuccessBody = 64 << 20

// Client calls the WorkOS Directory Sync API. Create it with NewClient. A
// Client is safe for concurrent use by many goroutines.
//
// Every request goes through one loop that applies the rate limits, retries
// idempotent requests (GET, DELETE) on 408, 429, 5xx and network errors with
// exponential backoff, honours Retry-After, and counts Stats. It follows no
// redirect: a 3xx answer is an *APIError. The API key is never included in
// errors (the one exit point, do, removes it from every error's text), logs or
// the Client's printed form.
type Client struct {
	apiKey        string
	baseURL       *url.URL
	hc            *http.Client
	maxAttempts   int
	retryAfterCap time.Duration
	backoffBase   time.Duration
	backoffMax    time.Duration
	userAgent     string
	limits        RateLimits
	logger        *slog.Logger

	global *rate.Limiter // nil when off
	perDir sync.Map      // directory ID -> *rate.Limiter

	rand func() float64 // uniform in [0, 1); safe for concurrent use

	requests, pages, retries, rateLimited, networkErrors atomic.Int64
}

// Option configures a Client. An Option returns an error for an invalid value,
// and NewClient returns that error.
type Option func(*Client) error

// RateLimits paces requests on the client side so that WorkOS rarely answers
// 429. Each limiter has a burst of 1, so a paced walk never exceeds the rate.
// Retries count too.
type RateLimits struct {
	// PerDirectoryUsers is the rate, in requests per second, of /directory_users
	// list requests for one directory, keyed by the directory filter (requests
	// without one share a key). Default 4; 0 turns it off.
	PerDirectoryUsers float64
	// Global is the rate, in requests per second, of all requests of this client.
	// Default 100 (6,000 per minute); 0 turns it off.
	Global float64
}

// Stats are counters since NewClient.
type Stats struct {
	Requests      int64 // HTTP attempts sent, retries included
	Pages         int64 // list pages decoded successfully
	Retries       int64 // attempts retried after a retryable failure
	RateLimited   int64 // 429 responses received
	NetworkErrors int64 // attempts that failed without a complete response (incl. bodies cut short)
}

// NewClient returns a client for the WorkOS API that authenticates with apiKey,
// a secret key (sk_…). It returns an error for an empty key or an invalid option.
func NewClient(apiKey string, opts ...Option) (*Client, error) {
	if apiKey == "" {
		return nil, errors.New("workos: empty API key: set the WorkOS secret key (sk_…) of this environment")
	}
	if strings.IndexFunc(apiKey, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return nil, errors.New("workos: the API key contains whitespace or control characters: " +
			"check how the secret is stored (a trailing newline is common)")
	}
	base, _ := parseBaseURL(DefaultBaseURL)
	c := &Client{
		apiKey:        apiKey,
		baseURL:       base,
		hc:            &http.Client{Timeout: DefaultTimeout, CheckRedirect: refuseRedirect},
		maxAttempts:   DefaultMaxAttempts,
		retryAfterCap: DefaultRetryAfterCap,
		backoffBase:   DefaultBackoffBase,
		backoffMax:    DefaultBackoffMax,
		userAgent:     "dsync-export/" + version.Version,
		limits:        DefaultRateLimits,
		logger:        slog.New(slog.DiscardHandler),
		rand:          rand.Float64,
	}
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(c); err != nil {
			return nil, err
		}
	}
	if c.limits.Global > 0 {
		c.global = rate.NewLimiter(rate.Limit(c.limits.Global), 1)
	}
	return c, nil
}

// WithBaseURL sets the API base URL (default https://api.workos.com/). A
// trailing slash is added if missing; request paths are resolved relative to
// it, so a base URL with a path prefix works.
func WithBaseURL(u string) Option {
	return func(c *Client) error {
		base, err := parseBaseURL(u)
		if err != nil {
			return err
		}
		c.baseURL = base
		return nil
	}
}

func parseBaseURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("workos: invalid base URL %q: %v: want an absolute URL such as https://api.workos.com/", s, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("workos: invalid base URL %q: want an absolute http(s) URL such as https://api.workos.com/", s)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("workos: invalid base URL %q: remove the user info, query and fragment", u.Redacted())
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
		if u.RawPath != "" {
			u.RawPath += "/"
		}
	}
	return u, nil
}

// WithHTTPClient sets the HTTP client used for requests. The client is copied,
// not aliased, and its CheckRedirect is replaced: the client follows no
// redirect (see Client). The default has a 60 s timeout per attempt.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) error {
		if hc == nil {
			return errors.New("workos: WithHTTPClient(nil): pass an *http.Client or leave the option out")
		}
		cp := *hc
		cp.CheckRedirect = refuseRedirect
		c.hc = &cp
		return nil
	}
}

// refuseRedirect makes http.Client return a 3xx response as it is: a redirect
// followed to another port or host would re-send the API key there, or trust
// that host's answers. attempt turns the 3xx into an *APIError.
func refuseRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// WithMaxAttempts sets the number of attempts per request, the first included
// (default 5). n must be at least 1; 1 turns retries off.
func WithMaxAttempts(n int) Option {
	return func(c *Client) error {
		if n < 1 {
			return fmt.Errorf("workos: WithMaxAttempts(%d): want at least 1 (1 disables retries)", n)
		}
		c.maxAttempts = n
		return nil
	}
}

// WithRetryAfterCap caps the wait a Retry-After header can ask for (default 60 s).
func WithRetryAfterCap(d time.Duration) Option {
	return func(c *Client) error {
		if d <= 0 {
			return fmt.Errorf("workos: WithRetryAfterCap(%v): want a positive duration", d)
		}
		c.retryAfterCap = d
		return nil
	}
}

// WithBackoff sets the exponential backoff between retries: the first retry
// waits about base, each next one twice as long, at most max (defaults 500 ms
// and 30 s). Waits have jitter: a wait of d is drawn from [d/2, d).
func WithBackoff(base, max time.Duration) Option {
	return func(c *Client) error {
		if base <= 0 || max < base {
			return fmt.Errorf("workos: WithBackoff(%v, %v): want 0 < base <= max", base, max)
		}
		c.backoffBase, c.backoffMax = base, max
		return nil
	}
}

// WithUserAgent sets the User-Agent header (default "dsync-export/<version>").
func WithUserAgent(ua string) Option {
	return func(c *Client) error {
		if strings.TrimSpace(ua) == "" || strings.IndexFunc(ua, unicode.IsControl) >= 0 {
			return fmt.Errorf("workos: WithUserAgent(%q): want a non-empty value without control characters", ua)
		}
		c.userAgent = ua
		return nil
	}
}

// WithRateLimits sets the client-side rate limits (default DefaultRateLimits).
// A zero field turns that limiter off.
func WithRateLimits(l RateLimits) Option {
	return func(c *Client) error {
		for _, v := range []float64{l.PerDirectoryUsers, l.Global} {
			if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("workos: WithRateLimits(%+v): want finite rates >= 0 requests per second (0 = off)", l)
			}
		}
		c.limits = l
		return nil
	}
}

// WithLogger sets the logger. The client logs each retry at debug level with
// the method, path (no query, no key), status, request id, attempt and wait.
// The default discards logs.
func WithLogger(l *slog.Logger) Option {
	return func(c *Client) error {
		if l == nil {
			return errors.New("workos: WithLogger(nil): pass a *slog.Logger or leave the option out")
		}
		c.logger = l
		return nil
	}
}

// Stats returns a snapshot of the client's counters.
func (c *Client) Stats() Stats {
	return Stats{
		Requests:      c.requests.Load(),
		Pages:         c.pages.Load(),
		Retries:       c.retries.Load(),
		RateLimited:   c.rateLimited.Load(),
		NetworkErrors: c.networkErrors.Load(),
	}
}

// String describes the client without its API key.
func (c *Client) String() string {
	if c == nil {
		return "workos.Client(nil)"
	}
	return fmt.Sprintf("workos.Client{baseURL: %s, apiKey: [REDACTED]}", c.baseURL)
}

// Format prints the client like String for every verb, so that %v, %+v and
// %#v never print the API key.
func (c *Client) Format(f fmt.State, verb rune) { io.WriteString(f, c.String()) }

// LogValue logs the client like String.
func (c *Client) LogValue() slog.Value { return slog.StringValue(c.String()) }

// request is one API call, as handed to do.
type request struct {
	method string
	path   string     // relative to the base URL, already escaped, e.g. "directory_users"
	query  url.Values // nil for none
	// perDirKey is the key of the per-directory limiter; used when perDir is true.
	perDirKey string
	perDir    bool
}

// describe names the request for errors: method, path and filters, without
// the pagination parameters. An email filter's value is left out (personal
// data).
func (r request) describe() string {
	var f []string
	for _, k := range slices.Sorted(maps.Keys(r.query)) {
		switch k {
		case "limit", "order", "before", "after":
			continue
		case "email":
			f = append(f, "email=…")
			continue
		}
		f = append(f, k+"="+strings.Join(r.query[k], ","))
	}
	s := r.method + " /" + r.path
	if len(f) > 0 {
		s += "?" + strings.Join(f, "&")
	}
	return s
}

// response is a successful (2xx) response, its body fully read.
type response struct {
	status    int
	requestID string
}

// do sends r, retrying as shouldRetry and backoff say, and on a 2xx response
// passes the body to decode (nil to ignore it). A decode error that means the
// body was cut short is retried; any other decode error is returned as a
// *DecodeError. It is the only place in the package that retries, and the exit
// point of every request's error: the API key is removed from it (a server
// can echo the key into a field, and the decode error then quotes it).
func (c *Client) do(ctx context.Context, r request, decode func([]byte) error) (response, error) {
	resp, err := c.send(ctx, r, decode)
	return resp, c.scrub(err)
}

// send is do without the scrubbing.
func (c *Client) send(ctx context.Context, r request, decode func([]byte) error) (response, error) {
	apiPath := "/" + r.path // for errors and logs: no base URL prefix, no query
	ref, err := url.Parse(r.path)
	if err != nil {
		return response{}, fmt.Errorf("workos: invalid request path %q: %v", r.path, err)
	}
	u := c.baseURL.ResolveReference(ref)
	if len(r.query) > 0 {
		u.RawQuery = r.query.Encode()
	}
	target := u.String()

	for attempt := 1; ; attempt++ {
		if err := c.waitLimiters(ctx, r); err != nil {
			return response{}, fmt.Errorf("workos: %s %s: %w", r.method, apiPath, err)
		}
		status, retryAfter, rid, err := c.attempt(ctx, r.method, target, apiPath, decode)
		if err == nil {
			return response{status: status, requestID: rid}, nil
		}
		if ctx.Err() != nil {
			return response{}, fmt.Errorf("workos: %s %s: %w", r.method, apiPath, ctx.Err())
		}
		retryable := shouldRetry(ctx, r.method, status, transportErr(err))
		if !retryable || attempt >= c.maxAttempts {
			return response{}, finalError(err, r.method, apiPath, attempt)
		}
		wait := backoff(attempt, min(retryAfter, c.retryAfterCap), c.backoffBase, c.backoffMax, c.rand())
		c.retries.Add(1)
		c.logger.LogAttrs(ctx, slog.LevelDebug, "workos: retrying request",
			slog.String("method", r.method),
			slog.String("path", apiPath),
			slog.Int("status", status),
			slog.String("request_id", rid),
			slog.Int("attempt", attempt),
			slog.Duration("wait", wait),
			slog.String("error", err.Error()),
		)
		if serr := sleep(ctx, wait); serr != nil {
			return response{}, fmt.Errorf("workos: %s %s: waiting to retry after %d attempt(s) (last error: %v): %w",
				r.method, apiPath, attempt, err, serr)
		}
	}
}

// attempt sends one HTTP request. It returns the status (0 when there was no
// response), the Retry-After wait, the request id and an error: a *APIError for
// a non-2xx status (3xx included: no redirect is followed), a *DecodeError for
// an undecodable 2xx body, or a *netError for a transport failure or a body
// cut short.
func (c *Client) attempt(ctx context.Context, method, target, apiPath string, decode func([]byte) error) (int, time.Duration, string, error) {
	req, err := http.NewRequestWithContext(ctx, method, target, nil)
	if err != nil {
		return 0, 0, "", fmt.Errorf("workos: %s %s: building request: %v", method, apiPath, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.apiKey)
	req.Header.Set("User-Agent", c.userAgent)
	req.Header.Set("Accept", "application/json")

	c.requests.Add(1)
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			c.networkErrors.Add(1)
		}
		// *url.Error repeats the URL, query included (filters may be emails):
		// keep only its cause; errors name the API path instead.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, 0, "", &netError{err: c.redact(err)}
	}
	defer drainAndClose(resp.Body)
	rid := resp.Header.Get("X-Request-ID")
	retryAfter := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		if resp.StatusCode == http.StatusTooManyRequests {
			c.rateLimited.Add(1)
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		e := &APIError{
			StatusCode: resp.StatusCode,
			RequestID:  rid,
			RetryAfter: retryAfter,
			Method:     method,
			Path:       apiPath,
		}
		if resp.StatusCode >= 300 && resp.StatusCode <= 399 {
			e.Location = locationOf(resp) // the body only repeats it, query included
		} else {
			parseErrorBody(e, c.redactBody(body))
		}
		return resp.StatusCode, retryAfter, rid, e
	}

	body, err := io.ReadAll(io.LimitReader(resp.Body, maxSuccessBody+1))
	if err != nil {
		if ctx.Err() == nil {
			c.networkErrors.Add(1)
		}
		return resp.StatusCode, retryAfter, rid, &netError{err: &errTruncated{err: c.redact(err)}, status: resp.StatusCode, requestID: rid}
	}
	if len(body) > maxSuccessBody {
		return resp.StatusCode, 0, rid, fmt.Errorf("workos: %s %s: response body larger than %d MiB (request_id: %s): lower the page limit",
			method, apiPath, maxSuccessBody>>20, rid)
	}
	if decode == nil {
		return resp.StatusCode, 0, rid, nil
	}
	if err := decode(body); err != nil {
		if isTruncatedJSON(err) {
			c.networkErrors.Add(1)
			return resp.StatusCode, retryAfter, rid, &netError{err: &errTruncated{err: err}, status: resp.StatusCode, requestID: rid}
		}
		return resp.StatusCode, 0, rid, &DecodeError{
			StatusCode: resp.StatusCode,
			Method:     method,
			Path:       apiPath,
			RequestID:  rid,
			RawBody:    truncateBytes(c.redactBody(body), maxRawBody),
			Err:        err,
		}
	}
	return resp.StatusCode, 0, rid, nil
}

// netError is an attempt that failed without a complete response.
type netError struct {
	err       error
	status    int    // status of a 2xx whose body was cut short; 0 otherwise
	requestID string // request id of that response
}

func (e *netError) Error() string { return e.err.Error() }
func (e *netError) Unwrap() error { return e.err }

// transportErr returns the error shouldRetry must judge: a network error, or
// nil when the attempt got a complete response (judged by status).
func transportErr(err error) error {
	var ne *netError
	if errors.As(err, &ne) {
		return ne.err
	}
	return nil
}

// finalError wraps the error of the last attempt with the attempt count.
func finalError(err error, method, apiPath string, attempts int) error {
	var ne *netError
	if errors.As(err, &ne) {
		rid := ""
		if ne.requestID != "" {
			rid = " (request_id: " + ne.requestID + ")"
		}
		return fmt.Errorf("workos: %s %s: network error after %d attempt(s)%s: %w: check connectivity to the WorkOS API and retry later",
			method, apiPath, attempts, rid, ne.err)
	}
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		apiErr.Attempts = attempts
	}
	return err // *APIError, *DecodeError or a request-building error
}

// locationOf returns the Location of a redirect, without its query (which may
// carry anything), or "(none)".
func locationOf(resp *http.Response) string {
	u, err := resp.Location()
	if err != nil {
		if l := resp.Header.Get("Location"); l != "" {
			return strconv.Quote(l)
		}
		return "(none)"
	}
	u.RawQuery, u.Fragment = "", ""
	return u.Redacted()
}

// waitLimiters waits for the global limiter and then the per-directory
// limiter (on /directory_users lists). The per-directory one comes last, right
// before the send: WorkOS counts it over one second, so a token taken and then
// held up by another wait could let two requests go out closer than 1/rate.
func (c *Client) waitLimiters(ctx context.Context, r request) error {
	if c.global != nil {
		if err := limiterWait(ctx, c.global); err != nil {
			return err
		}
	}
	if r.perDir && c.limits.PerDirectoryUsers > 0 {
		return limiterWait(ctx, c.dirLimiter(r.perDirKey))
	}
	return nil
}

func (c *Client) dirLimiter(key string) *rate.Limiter {
	if l, ok := c.perDir.Load(key); ok {
		return l.(*rate.Limiter)
	}
	l, _ := c.perDir.LoadOrStore(key, rate.NewLimiter(rate.Limit(c.limits.PerDirectoryUsers), 1))
	return l.(*rate.Limiter)
}

func limiterWait(ctx context.Context, l *rate.Limiter) error {
	err := l.Wait(ctx)
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	// rate.Limiter refuses up front to wait past the context deadline.
	return fmt.Errorf("waiting for the client-side rate limiter would pass the context deadline: %w", context.DeadlineExceeded)
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// drainAndClose reads what is left of a body (up to a bound) so the connection
// can be reused, then closes it.
func drainAndClose(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, maxErrorBody))
	_ = body.Close()
}
