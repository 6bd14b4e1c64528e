package workostest

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultAPIKey is the API key the server accepts when Config.APIKey is empty.
// It is the key of the WorkOS emulator, so demo configuration carries over.
const DefaultAPIKey = "sk_test_default"

// Config describes the fake account and how the server misbehaves.
type Config struct {
	// APIKey is the only accepted Bearer token (default DefaultAPIKey). A
	// missing or different key gets 401 {"message":"Unauthorized"}.
	APIKey string
	// Seed makes the dataset: the same seed serves byte-identical data.
	Seed int64
	// Directories is the number of directories (0..10,000).
	Directories int
	// UsersPerDirectory is the number of users of every directory (up to
	// 2^30) unless Sizes is set.
	UsersPerDirectory int
	// GroupsPerDirectory is the number of groups of every directory (up to
	// 2^20) unless Sizes is set.
	GroupsPerDirectory int
	// LegacyGroups fills the deprecated groups array of users with their
	// groups, as for WorkOS teams created before May 2026; otherwise it is [].
	LegacyGroups bool
	// Latency is added to every request.
	Latency time.Duration
	// RateLimit enforces the documented WorkOS limits on list and get
	// requests: 4 requests per second per directory on /directory_users (a
	// token bucket of rate 4 and burst 4, keyed by the directory filter, the
	// group's directory for a group filter without one, or the user's
	// directory for GET /directory_users/{id}; unfiltered lists share one
	// bucket), and 6,000 requests per 60 seconds per API key (rate 100/s,
	// burst 6,000). A refused request gets 429 with the JSON string
	// "Ratelimited" and Retry-After in whole seconds (at least 1); it does
	// not use up the key's budget.
	RateLimit bool
	// Faults injects failures into list and get requests.
	Faults Faults
	// Metadata says which directories carry metadata counts (default
	// MetadataMixed). Server.SetMetadata changes it later.
	Metadata MetadataMode
	// Hostile makes GET /events misbehave (off by default); SetHostile
	// changes it later.
	Hostile Hostile
	// Sizes, when set, returns the (users, groups) of directory dir and
	// overrides UsersPerDirectory and GroupsPerDirectory.
	Sizes func(dir int) (users, groups int)
	// Now is the simulated time at start, which Advance moves forward (see
	// Server.Now). It must not be before the dataset's newest timestamp. The
	// zero value means a deterministic default later than every generated
	// created_at and updated_at: the newest of them (bounded from the
	// directories' timelines: users are updated up to 90 days after their
	// creation, groups up to 60) rounded up to the next UTC midnight, plus 6
	// hours.
	Now time.Time
	// ControlEndpoint serves POST /_fake/advance?days=N&hours=H&churn=F,
	// which calls Advance (churn defaults to 0.01) and answers the
	// AdvanceResult as JSON; POST /_fake/hostile?swap&early=0.1&… (the
	// modes as ParseHostile reads them; the query replaces every mode),
	// which calls SetHostile and answers like GET /_fake/hostile: the modes
	// ("modes", in ParseHostile's form, and "hostile") and the
	// HostileTruth ("truth"). They are not WorkOS endpoints.
	ControlEndpoint bool
}

// Faults are the fractions of list and get requests that fail, each kind
// drawn from a generator seeded with Seed. The fractions must add up to at
// most 1.
type Faults struct {
	// Seed seeds the fault generator.
	Seed int64
	// ServerError is the fraction answered 500, 502 or 503 with an HTML body.
	ServerError float64
	// RateLimited is the fraction answered 429 "Ratelimited" with Retry-After: 1.
	RateLimited float64
	// Reset is the fraction whose connection is reset without a response.
	Reset float64
	// Truncate is the fraction of 200 responses whose body is cut in half
	// after a Content-Length announcing the full body.
	Truncate float64
}

// Server is a fake WorkOS Directory Sync API. It implements http.Handler; use
// Start to serve it on a local port.
type Server struct {
	apiKey  string
	latency time.Duration
	ds      *dataset
	limits  *limiter
	faults  faulter
	control bool

	// tl is the simulated clock and the event log.
	tl timeline

	requests, pages, rateLimited, faulted atomic.Int64

	mu   sync.Mutex
	srv  *http.Server
	done chan struct{}

	bufPool sync.Pool
}

// Stats counts what the server has answered.
type Stats struct {
	// Requests counts every request, whatever its outcome.
	Requests int64
	// Pages counts list responses sent with status 200 (not faulted).
	Pages int64
	// RateLimited counts 429 responses, from rate limiting and from faults.
	RateLimited int64
	// FaultsInjected counts injected faults of every kind.
	FaultsInjected int64
}

// New builds a server for cfg. It checks the configuration but generates no
// data: objects are derived on demand from the seed. Zero counts are valid
// (an account without directories, a directory without users).
func New(cfg Config) (*Server, error) {
	if cfg.Directories < 0 || cfg.UsersPerDirectory < 0 || cfg.GroupsPerDirectory < 0 {
		return nil, fmt.Errorf("workostest: Directories, UsersPerDirectory and GroupsPerDirectory must not be negative (got %d, %d, %d)",
			cfg.Directories, cfg.UsersPerDirectory, cfg.GroupsPerDirectory)
	}
	if cfg.Latency < 0 {
		return nil, fmt.Errorf("workostest: Latency is %v: want 0 or more", cfg.Latency)
	}
	if cfg.Metadata > MetadataNone {
		return nil, fmt.Errorf("workostest: Metadata is %d: want MetadataMixed, MetadataAll or MetadataNone", cfg.Metadata)
	}
	if err := cfg.Hostile.validate(); err != nil {
		return nil, err
	}
	if err := cfg.Faults.validate(); err != nil {
		return nil, err
	}
	key := cfg.APIKey
	if key == "" {
		key = DefaultAPIKey
	}
	sizes := cfg.Sizes
	if sizes == nil {
		sizes = func(int) (int, int) { return cfg.UsersPerDirectory, cfg.GroupsPerDirectory }
	}
	ds, err := newDataset(cfg.Seed, cfg.Directories, sizes, cfg.LegacyGroups)
	if err != nil {
		return nil, err
	}
	ds.meta = cfg.Metadata
	s := &Server{
		apiKey:  key,
		latency: cfg.Latency,
		ds:      ds,
		control: cfg.ControlEndpoint,
	}
	s.tl.now = defaultNow(ds)
	if !cfg.Now.IsZero() {
		ms := cfg.Now.UnixMilli()
		if ms < ds.newest() {
			return nil, fmt.Errorf("workostest: Config.Now %s is before the dataset's newest timestamp %s: leave it zero for %s, or pass a later time",
				cfg.Now.UTC().Format(time.RFC3339), time.UnixMilli(ds.newest()).UTC().Format(time.RFC3339),
				time.UnixMilli(s.tl.now).UTC().Format(time.RFC3339))
		}
		if ms > maxTimeMs {
			return nil, fmt.Errorf("workostest: Config.Now %s is after year 9999", cfg.Now.UTC().Format(time.RFC3339))
		}
		s.tl.now = ms
	}
	if cfg.RateLimit {
		s.limits = newLimiter()
	}
	s.faults.set(cfg.Faults)
	s.tl.hostile = cfg.Hostile
	s.bufPool.New = func() any { b := make([]byte, 0, 64<<10); return &b }
	return s, nil
}

// SetFaults replaces the fault configuration and reseeds the fault generator
// with f.Seed. Fractions outside [0, 1] are clamped and fractions adding up to
// more than 1 are scaled down.
func (s *Server) SetFaults(f Faults) { s.faults.set(f) }

// Start listens on addr (for example "127.0.0.1:0"; empty means that) and
// serves in the background until Close. It returns the base URL with a
// trailing slash, such as "http://127.0.0.1:4100/".
func (s *Server) Start(addr string) (baseURL string, err error) { return s.serve(addr, s) }

// serve is Start with the handler to serve: the server, or a wrapper of it.
func (s *Server) serve(addr string, h http.Handler) (string, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return "", errors.New("workostest: server already started; call Close first")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("workostest: listen on %s: %w", addr, err)
	}
	s.srv = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	s.done = make(chan struct{})
	srv, done := s.srv, s.done
	go func() {
		defer close(done)
		_ = srv.Serve(ln) // returns http.ErrServerClosed after Close
	}()
	return "http://" + ln.Addr().String() + "/", nil
}

// Close stops a started server, closing its listener and connections, and
// waits for it to finish. It is a no-op if the server is not running.
func (s *Server) Close() error {
	s.mu.Lock()
	srv, done := s.srv, s.done
	s.srv, s.done = nil, nil
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	err := srv.Close()
	<-done
	return err
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	return Stats{
		Requests:       s.requests.Load(),
		Pages:          s.pages.Load(),
		RateLimited:    s.rateLimited.Load(),
		FaultsInjected: s.faulted.Load(),
	}
}

// DeleteDirectory deletes a directory with its users and groups, as
// DELETE /directories/{id} does, and emits dsync.deleted at Now (only: its
// users and groups go without events). It reports whether the directory
// existed.
func (s *Server) DeleteDirectory(id string) bool {
	s.ds.mu.Lock()
	defer s.ds.mu.Unlock()
	d := s.ds.lookupDir(id)
	if d == nil || d.deleted.Load() {
		return false
	}
	s.deleteDir(d, s.tl.now)
	return true
}

// ---- HTTP ----

// route is a matched endpoint.
type route struct {
	endpoint string // e.g. "GET /directory_users"; "unknown" when nothing matched
	id       string // path parameter
	handler  func(s *Server, req *request) response
	list     bool // answers a list (counts as a page)
	faulty   bool // subject to faults and rate limits
	mutates  bool // changes the dataset: takes the write lock itself
}

func match(method, path string) route {
	seg := strings.Split(strings.TrimPrefix(path, "/"), "/")
	if len(seg) > 2 || (len(seg) == 2 && seg[1] == "") {
		return route{endpoint: "unknown"}
	}
	id := "" // path is already unescaped by net/http
	if len(seg) == 2 {
		id = seg[1]
	}
	switch {
	case method == http.MethodGet && seg[0] == "directories" && id == "":
		return route{"GET /directories", id, (*Server).listDirectories, true, true, false}
	case method == http.MethodGet && seg[0] == "directories":
		return route{"GET /directories/{id}", id, (*Server).getDirectory, false, true, false}
	case method == http.MethodDelete && seg[0] == "directories" && id != "":
		return route{"DELETE /directories/{id}", id, (*Server).deleteDirectory, false, false, true}
	case method == http.MethodGet && seg[0] == "directory_users" && id == "":
		return route{"GET /directory_users", id, (*Server).listUsers, true, true, false}
	case method == http.MethodGet && seg[0] == "directory_users":
		return route{"GET /directory_users/{id}", id, (*Server).getUser, false, true, false}
	case method == http.MethodGet && seg[0] == "directory_groups" && id == "":
		return route{"GET /directory_groups", id, (*Server).listGroups, true, true, false}
	case method == http.MethodGet && seg[0] == "directory_groups":
		return route{"GET /directory_groups/{id}", id, (*Server).getGroup, false, true, false}
	case method == http.MethodGet && seg[0] == "events" && id == "":
		return route{"GET /events", id, (*Server).listEvents, true, true, false}
	case method == http.MethodPost && seg[0] == "_fake" && id == "advance":
		return route{"POST /_fake/advance", id, (*Server).controlAdvance, false, false, true}
	case method == http.MethodPost && seg[0] == "_fake" && id == "hostile":
		return route{"POST /_fake/hostile", id, (*Server).controlSetHostile, false, false, true}
	case method == http.MethodGet && seg[0] == "_fake" && id == "hostile":
		return route{"GET /_fake/hostile", id, (*Server).controlHostile, false, false, true}
	}
	return route{endpoint: "unknown"}
}

// request is what a handler sees.
type request struct {
	id    string
	query url.Values
	buf   []byte
}

// response is a handler's answer.
type response struct {
	status     int
	body       []byte
	retryAfter int // seconds, for 429
}

// ServeHTTP answers one API request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	h := w.Header()
	h.Set("X-Request-ID", requestID(r.Header.Get("X-Request-ID")))
	h.Set("Content-Type", "application/json")
	if s.latency > 0 {
		t := time.NewTimer(s.latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	rt := match(r.Method, r.URL.Path)

	bp := s.bufPool.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= 1<<20 {
			s.bufPool.Put(bp)
		}
	}()
	buf := (*bp)[:0]

	if rt.handler == nil || (strings.Contains(rt.endpoint, " /_fake/") && !s.control) {
		s.write(w, response{status: http.StatusNotFound, body: appendMessage(buf, "Not Found")})
		return
	}
	if !s.authorized(r.Header.Get("Authorization")) {
		s.write(w, response{status: http.StatusUnauthorized, body: appendMessage(buf, "Unauthorized")})
		return
	}
	req := &request{id: rt.id, query: r.URL.Query(), buf: buf}
	if rt.faulty && s.limits != nil {
		s.ds.mu.RLock()
		users, dir := s.rateKey(rt, req)
		s.ds.mu.RUnlock()
		if ok, retry := s.limits.allow(time.Now(), users, dir); !ok {
			s.rateLimit(w, rt, retry)
			return
		}
	}
	fault := faultNone
	if rt.faulty {
		var status int
		switch fault, status = s.faults.draw(); fault {
		case faultServerError:
			s.faulted.Add(1)
			w.Header().Set("Content-Type", "text/html")
			s.write(w, response{status: status, body: htmlError(status)})
			return
		case faultRateLimited:
			s.faulted.Add(1)
			s.rateLimit(w, rt, 1)
			return
		case faultReset:
			s.faulted.Add(1)
			resetConnection(w)
			return
		}
	}
	var resp response
	if rt.mutates {
		resp = rt.handler(s, req)
	} else {
		s.ds.mu.RLock()
		resp = rt.handler(s, req)
		s.ds.mu.RUnlock()
	}
	*bp = resp.body[:0] // keep the grown buffer
	if fault == faultTruncate && resp.status == http.StatusOK && len(resp.body) > 1 {
		s.faulted.Add(1)
		h.Set("Content-Length", strconv.Itoa(len(resp.body)))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(resp.body[:len(resp.body)/2])
		// net/http closes the connection because the body is short of its
		// Content-Length; the client reads an unexpected EOF.
		return
	}
	if rt.list && resp.status == http.StatusOK {
		s.pages.Add(1)
	}
	s.write(w, resp)
}

func (s *Server) write(w http.ResponseWriter, resp response) {
	h := w.Header()
	if resp.retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(resp.retryAfter))
	}
	h.Set("Content-Length", strconv.Itoa(len(resp.body)))
	w.WriteHeader(resp.status)
	_, _ = w.Write(resp.body)
}

func (s *Server) rateLimit(w http.ResponseWriter, rt route, retry int) {
	s.rateLimited.Add(1)
	s.write(w, response{status: http.StatusTooManyRequests, body: []byte(`"Ratelimited"`), retryAfter: retry})
}

// resetConnection drops the connection without a response: an RST when the
// connection can be hijacked, otherwise an aborted handler.
func resetConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

func (s *Server) authorized(header string) bool {
	token, ok := strings.CutPrefix(header, "Bearer ")
	return ok && token == s.apiKey
}

// rateKey returns whether the per-directory limit applies and its key.
func (s *Server) rateKey(rt route, req *request) (users bool, dir int) {
	switch rt.endpoint {
	case "GET /directory_users":
		if d := s.ds.lookupDir(req.query.Get("directory")); d != nil {
			return true, d.idx
		}
		if d, _, ok := s.ds.lookupGroup(req.query.Get("group")); ok {
			return true, d.idx
		}
		return true, -1
	case "GET /directory_users/{id}":
		if d, _, ok := s.ds.lookupUser(rt.id); ok {
			return true, d.idx
		}
		return true, -1
	}
	return false, 0
}

// requestID echoes a sane client-supplied request ID, or makes a new
// "req_" + ULID one.
func requestID(given string) string {
	if given != "" && len(given) <= 200 && strings.IndexFunc(given, func(r rune) bool { return r < 0x21 || r > 0x7E }) < 0 {
		return given
	}
	var rnd [16]byte
	_, _ = rand.Read(rnd[:])
	b := make([]byte, 0, 4+ulidLen)
	b = append(b, "req_"...)
	t := uint64(time.Now().UnixMilli())
	for i := 45; i >= 0; i -= 5 {
		b = append(b, crockford[t>>uint(i)&31])
	}
	for _, r := range rnd {
		b = append(b, crockford[r&31])
	}
	return string(b)
}
