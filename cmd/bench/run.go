package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/dsync-export/dsync-export/internal/testenv/workostest"
	"github.com/dsync-export/dsync-export/pkg/export"
	"github.com/dsync-export/dsync-export/pkg/objstore"
	"github.com/dsync-export/dsync-export/pkg/schema"
	"github.com/dsync-export/dsync-export/pkg/snapshot"
	"github.com/dsync-export/dsync-export/pkg/workos"
)

// apiKey is the key the fake accepts.
const apiKey = workostest.DefaultAPIKey

// dataset is one fake account: Dirs directories of Users users and Groups
// groups each.
type dataset struct {
	Dirs, Users, Groups int
}

func (d dataset) String() string {
	return fmt.Sprintf("%d × %s users", d.Dirs, fmtCount(d.Users))
}

// totalUsers is the number of users across all directories.
func (d dataset) totalUsers() int64 { return int64(d.Dirs) * int64(d.Users) }

// fakeConfig is the fake's configuration for d.
func (d dataset) fakeConfig(seed int64, latency time.Duration, rateLimit bool) workostest.Config {
	return workostest.Config{
		Seed:               seed,
		Directories:        d.Dirs,
		UsersPerDirectory:  d.Users,
		GroupsPerDirectory: d.Groups,
		Latency:            latency,
		RateLimit:          rateLimit,
	}
}

// startFake starts the fake on a loopback port. The caller must Close it.
func startFake(cfg workostest.Config) (*workostest.Server, string, error) {
	srv, err := workostest.New(cfg)
	if err != nil {
		return nil, "", err
	}
	base, err := srv.Start("127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	return srv, base, nil
}

// Table classes of the counting transport: the four exported tables.
const (
	classDirectories = schema.TableDirectories
	classUsers       = schema.TableDirectoryUsers
	classGroups      = schema.TableDirectoryGroups
	classMemberships = schema.TableMemberships
)

// classify names the table a request's response feeds: /directories →
// directories; /directory_users without group → users; /directory_groups
// without user → groups; the member walks (/directory_users?group=,
// /directory_groups?user=) → memberships.
func classify(r *http.Request) string {
	path := strings.TrimSuffix(r.URL.Path, "/")
	last := path[strings.LastIndexByte(path, '/')+1:]
	q := r.URL.Query()
	switch {
	case strings.Contains(path, "/directory_users"):
		if q.Get("group") != "" {
			return classMemberships
		}
		return classUsers
	case strings.Contains(path, "/directory_groups"):
		if q.Get("user") != "" {
			return classMemberships
		}
		return classGroups
	case last == "directories" || strings.Contains(path, "/directories/"):
		return classDirectories
	}
	return "other"
}

// counter is an http.RoundTripper that counts, without changing anything:
// responses per status class, successful /directory_users lists per
// directory (the pages the per-directory limit applies to), and the body
// bytes of successful responses per table class.
type counter struct {
	base http.RoundTripper

	mu            sync.Mutex
	ok            int64            // 2xx responses
	requests      int64            // every request sent
	usersPages    map[string]int64 // 2xx /directory_users lists, by directory
	bodyBytes     map[string]int64 // 2xx body bytes, by table class
	pagesPerClass map[string]int64 // 2xx responses, by table class
}

func newCounter(base http.RoundTripper) *counter {
	if base == nil {
		base = http.DefaultTransport
	}
	return &counter{base: base, usersPages: map[string]int64{}, bodyBytes: map[string]int64{}, pagesPerClass: map[string]int64{}}
}

// RoundTrip implements http.RoundTripper.
func (c *counter) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.requests++
	c.mu.Unlock()
	resp, err := c.base.RoundTrip(r)
	if err != nil || resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp, err
	}
	class := classify(r)
	c.mu.Lock()
	c.ok++
	c.pagesPerClass[class]++
	if r.Method == http.MethodGet && strings.HasSuffix(strings.TrimSuffix(r.URL.Path, "/"), "/directory_users") {
		key := r.URL.Query().Get("directory")
		if key == "" {
			key = "group:" + r.URL.Query().Get("group")
		}
		c.usersPages[key]++
	}
	c.mu.Unlock()
	resp.Body = &countingBody{ReadCloser: resp.Body, c: c, class: class}
	return resp, nil
}

type countingBody struct {
	io.ReadCloser
	c     *counter
	class string
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.c.mu.Lock()
		b.c.bodyBytes[b.class] += int64(n)
		b.c.mu.Unlock()
	}
	return n, err
}

// counts is a snapshot of a counter.
type counts struct {
	OK, Requests  int64
	UsersPages    map[string]int64
	BodyBytes     map[string]int64
	PagesPerClass map[string]int64
}

func (c *counter) snapshot() counts {
	c.mu.Lock()
	defer c.mu.Unlock()
	cp := func(m map[string]int64) map[string]int64 {
		out := make(map[string]int64, len(m))
		for k, v := range m {
			out[k] = v
		}
		return out
	}
	return counts{OK: c.ok, Requests: c.requests, UsersPages: cp(c.usersPages), BodyBytes: cp(c.bodyBytes), PagesPerClass: cp(c.pagesPerClass)}
}

// exportRun is one in-process export and what was counted around it.
type exportRun struct {
	Wall     time.Duration
	Manifest *snapshot.Manifest
	Client   workos.Stats
	Counts   counts
}

// runExport exports everything the fake at baseURL serves to a local folder
// under dir, with the client's limits and the export's config as given.
func runExport(ctx context.Context, baseURL, dir string, limits workos.RateLimits, cfg export.Config) (*exportRun, error) {
	return runExportDay(ctx, baseURL, dir, limits, cfg, time.Now().UTC().Format(schema.PartitionFormat), nil)
}

// runExportDay is runExport for the snapshot of date.
func runExportDay(ctx context.Context, baseURL, dir string, limits workos.RateLimits, cfg export.Config, date string, now func() time.Time) (*exportRun, error) {
	ct := newCounter(http.DefaultTransport)
	client, err := workos.NewClient(apiKey,
		workos.WithBaseURL(baseURL),
		workos.WithRateLimits(limits),
		workos.WithHTTPClient(&http.Client{Transport: ct, Timeout: workos.DefaultTimeout}),
	)
	if err != nil {
		return nil, err
	}
	dst, err := objstore.Open(ctx, dir, objstore.Options{})
	if err != nil {
		return nil, err
	}
	ex := &export.Exporter{Client: client, Store: dst, Config: cfg, Now: now}
	start := time.Now()
	res, err := ex.Run(ctx, export.Target{Date: date, Trigger: "bench"})
	wall := time.Since(start)
	if err != nil {
		return nil, err
	}
	return &exportRun{Wall: wall, Manifest: res.Manifest, Client: client.Stats(), Counts: ct.snapshot()}, nil
}

// rows returns the rows of a table in the manifest.
func rows(m *snapshot.Manifest, table string) int64 { return m.Tables[table].Rows }

// totalRows is the number of rows of every table.
func totalRows(m *snapshot.Manifest) int64 {
	var n int64
	for _, t := range m.Tables {
		n += t.Rows
	}
	return n
}

// fileBytes is the size of a table's Parquet files.
func fileBytes(m *snapshot.Manifest, table string) int64 {
	var n int64
	for _, f := range m.Tables[table].Files {
		n += f.Bytes
	}
	return n
}

// routes summarizes the membership routes the export chose, e.g. "by_group"
// or "by_group 180, by_user 20".
func routes(m *snapshot.Manifest) string {
	n := map[string]int{}
	var order []string
	for _, d := range m.Directories {
		if n[d.MembershipRoute] == 0 {
			order = append(order, d.MembershipRoute)
		}
		n[d.MembershipRoute]++
	}
	if len(order) == 1 {
		return order[0]
	}
	var parts []string
	for _, r := range order {
		parts = append(parts, fmt.Sprintf("%s %d", r, n[r]))
	}
	return strings.Join(parts, ", ")
}
