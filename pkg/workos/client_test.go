package workos

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dsync-export/dsync-export/pkg/version"
)

//go:embed testdata/*.json
var testdata embed.FS

// testKey is distinctive so that a leak into any string is easy to spot.
const testKey = "sk_test_LEAKCANARY_a1b2c3d4e5f6g7h8"

// apiPrefix is where setup mounts the API, so that a request to an absolute
// path fails the test.
const apiPrefix = "/api-prefix/"

// setup starts a test server with the API mounted under apiPrefix and returns
// a client for it and the mux to register handlers on (paths without the
// prefix, e.g. "GET /directory_users"). Rate limits are off and backoff is a
// millisecond so tests run fast; pass options to override.
func setup(t *testing.T, opts ...Option) (*Client, *http.ServeMux) {
	t.Helper()
	mux := http.NewServeMux()
	root := http.NewServeMux()
	root.Handle(apiPrefix, http.StripPrefix(strings.TrimSuffix(apiPrefix, "/"), mux))
	root.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("request outside %s: %s %s (absolute path?)", apiPrefix, r.Method, r.URL)
		http.Error(w, "outside prefix", http.StatusTeapot)
	})
	srv := httptest.NewServer(root) // binds 127.0.0.1
	t.Cleanup(srv.Close)
	all := append([]Option{
		WithBaseURL(srv.URL + strings.TrimSuffix(apiPrefix, "/")), // no trailing slash: NewClient adds it
		WithRateLimits(RateLimits{}),
		WithBackoff(time.Millisecond, 2*time.Millisecond),
	}, opts...)
	c, err := NewClient(testKey, all...)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	return c, mux
}

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := testdata.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprint(w, body)
}

func testMethod(t *testing.T, r *http.Request, want string) {
	t.Helper()
	if r.Method != want {
		t.Errorf("method = %s, want %s", r.Method, want)
	}
}

// testQuery checks that the query is exactly want.
func testQuery(t *testing.T, r *http.Request, want url.Values) {
	t.Helper()
	got := r.URL.Query()
	if got.Encode() != want.Encode() {
		t.Errorf("query = %s, want %s", got.Encode(), want.Encode())
	}
}

func testHeader(t *testing.T, r *http.Request, key, want string) {
	t.Helper()
	if got := r.Header.Get(key); got != want {
		if key == "Authorization" {
			t.Errorf("header %s is not the Bearer API key", key) // never print the key
		} else {
			t.Errorf("header %s = %q, want %q", key, got, want)
		}
	}
}

// testHeaders checks the headers every request carries.
func testHeaders(t *testing.T, r *http.Request) {
	t.Helper()
	testHeader(t, r, "Authorization", "Bearer "+testKey)
	testHeader(t, r, "User-Agent", "dsync-export/"+version.Version)
	testHeader(t, r, "Accept", "application/json")
}

func TestNewClientEmptyKey(t *testing.T) {
	for _, key := range []string{"", "sk_test_abc\n", "sk test"} {
		c, err := NewClient(key)
		if err == nil || c != nil {
			t.Errorf("NewClient(%q) = %v, %v; want an error", key, c, err)
			continue
		}
		if !strings.HasPrefix(err.Error(), "workos: ") {
			t.Errorf("error %q lacks the workos: prefix", err)
		}
		if key != "" && strings.Contains(err.Error(), strings.TrimSpace(key)) {
			t.Errorf("error %q contains the key", err)
		}
	}
}

func TestNewClientDefaults(t *testing.T) {
	c, err := NewClient(testKey)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.baseURL.String(); got != DefaultBaseURL {
		t.Errorf("baseURL = %s, want %s", got, DefaultBaseURL)
	}
	if c.hc.Timeout != 60*time.Second {
		t.Errorf("timeout = %v, want 60s", c.hc.Timeout)
	}
	if c.maxAttempts != 5 || c.retryAfterCap != 60*time.Second || c.backoffBase != 500*time.Millisecond || c.backoffMax != 30*time.Second {
		t.Errorf("retry defaults = %d, %v, %v, %v", c.maxAttempts, c.retryAfterCap, c.backoffBase, c.backoffMax)
	}
	if c.userAgent != "dsync-export/"+version.Version {
		t.Errorf("user agent = %q", c.userAgent)
	}
	if c.limits != (RateLimits{PerDirectoryUsers: 4, Global: 100}) || c.global == nil {
		t.Errorf("limits = %+v, global limiter %v", c.limits, c.global)
	}
}

func TestOptionsRefuseInvalidValues(t *testing.T) {
	tests := []struct {
		name string
		opt  Option
	}{
		{"relative base URL", WithBaseURL("/v1")},
		{"ftp base URL", WithBaseURL("ftp://example.com/")},
		{"base URL with query", WithBaseURL("https://example.com/?a=1")},
		{"base URL with user", WithBaseURL("https://u:p@example.com/")},
		{"unparsable base URL", WithBaseURL("http://[::1")},
		{"nil HTTP client", WithHTTPClient(nil)},
		{"zero attempts", WithMaxAttempts(0)},
		{"negative retry-after cap", WithRetryAfterCap(-time.Second)},
		{"zero backoff base", WithBackoff(0, time.Second)},
		{"backoff max below base", WithBackoff(time.Second, time.Millisecond)},
		{"empty user agent", WithUserAgent(" ")},
		{"user agent with newline", WithUserAgent("a\nb")},
		{"negative rate", WithRateLimits(RateLimits{Global: -1})},
		{"infinite rate", WithRateLimits(RateLimits{PerDirectoryUsers: math.Inf(1)})},
		{"nil logger", WithLogger(nil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewClient(testKey, tt.opt)
			if err == nil {
				t.Fatalf("NewClient = %v, want an error", c)
			}
			if !strings.HasPrefix(err.Error(), "workos: ") || strings.Contains(err.Error(), testKey) {
				t.Errorf("error = %q: want the workos: prefix and no key", err)
			}
		})
	}
}

func TestOptionsApply(t *testing.T) {
	var logBuf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logBuf, nil))
	c, err := NewClient(testKey,
		WithBaseURL("http://127.0.0.1:1/a/b"),
		WithMaxAttempts(2),
		WithRetryAfterCap(3*time.Second),
		WithBackoff(time.Second, 4*time.Second),
		WithUserAgent("custom/1"),
		WithRateLimits(RateLimits{PerDirectoryUsers: 2}),
		WithLogger(logger),
	)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.baseURL.String(); got != "http://127.0.0.1:1/a/b/" {
		t.Errorf("baseURL = %s, want trailing slash added", got)
	}
	if c.maxAttempts != 2 || c.retryAfterCap != 3*time.Second || c.backoffBase != time.Second || c.backoffMax != 4*time.Second {
		t.Errorf("retry settings not applied: %d %v %v %v", c.maxAttempts, c.retryAfterCap, c.backoffBase, c.backoffMax)
	}
	if c.userAgent != "custom/1" || c.logger != logger {
		t.Errorf("user agent %q or logger not applied", c.userAgent)
	}
	if c.global != nil {
		t.Errorf("global limiter should be off when Global is 0")
	}
}

func TestWithHTTPClientCopies(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		writeJSON(w, 200, string(fixture(t, "directory.json")))
	}))
	defer srv.Close()
	hc := &http.Client{Timeout: 5 * time.Second}
	c, err := NewClient(testKey, WithBaseURL(srv.URL), WithHTTPClient(hc), WithRateLimits(RateLimits{}))
	if err != nil {
		t.Fatal(err)
	}
	if c.hc == hc {
		t.Fatal("WithHTTPClient aliased the caller's client")
	}
	// Breaking the caller's client afterwards must not affect ours.
	hc.Transport = roundTripFunc(func(*http.Request) (*http.Response, error) { return nil, errors.New("broken") })
	if _, err := c.GetDirectory(context.Background(), "directory_01ECAZ4NV9QMV47GW873HDCX74"); err != nil {
		t.Fatalf("GetDirectory: %v", err)
	}
	if hits.Load() != 1 {
		t.Errorf("server hits = %d, want 1", hits.Load())
	}
}

func TestClientNeverPrintsKey(t *testing.T) {
	c, err := NewClient(testKey)
	if err != nil {
		t.Fatal(err)
	}
	var logBuf bytes.Buffer
	slog.New(slog.NewTextHandler(&logBuf, nil)).Info("client", "c", c)
	slog.New(slog.NewJSONHandler(&logBuf, nil)).Info("client", "c", c)
	for _, s := range []string{
		fmt.Sprint(c), fmt.Sprintf("%v|%+v|%#v|%s|%q|%x|%d", c, c, c, c, c, c, c), c.String(), logBuf.String(),
	} {
		if strings.Contains(s, testKey) || strings.Contains(s, "LEAKCANARY") {
			t.Errorf("printed client contains the API key: %s", s)
		}
		if !strings.Contains(s, "REDACTED") {
			t.Errorf("printed client %q does not say the key is redacted", s)
		}
	}
}

func TestRequestHeadersAndPrefix(t *testing.T) {
	c, mux := setup(t)
	var hits atomic.Int32
	mux.HandleFunc("GET /directories/{id}", func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		testHeaders(t, r)
		if got := r.PathValue("id"); got != "directory_01ECAZ4NV9QMV47GW873HDCX74" {
			t.Errorf("id = %q", got)
		}
		w.Header().Set("X-Request-ID", "req_get_1")
		writeJSON(w, 200, string(fixture(t, "directory.json")))
	})
	d, err := c.GetDirectory(context.Background(), "directory_01ECAZ4NV9QMV47GW873HDCX74")
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != "Foo Corp" || hits.Load() != 1 {
		t.Errorf("got %+v after %d hits", d, hits.Load())
	}
}

func TestStatsAndConcurrentUse(t *testing.T) {
	c, mux := setup(t)
	mux.HandleFunc("GET /directory_users/{id}", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, string(fixture(t, "directory_user.json")))
	})
	mux.HandleFunc("GET /directory_groups", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, string(fixture(t, "directory_groups.json")))
	})
	const n = 16
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for range n {
		wg.Go(func() {
			_, err := c.GetDirectoryUser(context.Background(), "directory_user_01E1JG7J09H96KYP8HM9B0G5SJ")
			errs <- err
		})
		wg.Go(func() {
			_, err := c.ListDirectoryGroups(context.Background(), &ListDirectoryGroupsOptions{Directory: "directory_01ECAZ4NV9QMV47GW873HDCX74"})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	want := Stats{Requests: 2 * n, Pages: n}
	if got := c.Stats(); got != want {
		t.Errorf("Stats = %+v, want %+v", got, want)
	}
}

// roundTripFunc is an http.RoundTripper from a function.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestJSONEscapedKeyInErrorBodyIsRedacted echoes the key back with JSON
// escapes, which survive a scrub of the raw body and decode to the key.
func TestJSONEscapedKeyInErrorBodyIsRedacted(t *testing.T) {
	c, mux := setup(t)
	escaped := `\u0073` + testKey[1:] // "sk_…" with its first letter escaped
	mux.HandleFunc("GET /directories/{id}", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 401, `{"message":"invalid key `+escaped+`","code":"`+escaped+`","error_description":"`+escaped+`","errors":[{"field":"`+escaped+`"}]}`)
	})
	_, err := c.GetDirectory(context.Background(), "directory_01ECAZ4NV9QMV47GW873HDCX74")
	var ae *APIError
	if !errors.As(err, &ae) {
		t.Fatalf("err = %v, want an *APIError", err)
	}
	for _, s := range []string{err.Error(), ae.Message, ae.Code, ae.ErrorDescription, string(ae.Errors), fmt.Sprintf("%+v", *ae)} {
		if strings.Contains(s, testKey) || strings.Contains(s, "LEAKCANARY") {
			t.Errorf("the API key leaks through a JSON-escaped error body: %s", s)
		}
	}
	if !strings.Contains(ae.Message, "[REDACTED]") {
		t.Errorf("message %q does not show the redaction", ae.Message)
	}
}
