package main

import (
	"bytes"
	"context"
	"math"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dsync-export/dsync-export/pkg/export"
	"github.com/dsync-export/dsync-export/pkg/schema"
	"github.com/dsync-export/dsync-export/pkg/workos"
)

// TestMain lets the test binary act as a throughput child, as the bench
// binary does, so TestThroughputChild runs the real child protocol.
func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(childMain(mode, os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

func TestTableMarkdown(t *testing.T) {
	tb := newTable("dataset", ">wall s", ">ratio")
	tb.add("1 × 10k users", "67.6", "1.00×")
	tb.add("200 × 50 users", "10.9") // a missing cell stays empty
	want := "" +
		"| dataset        | wall s | ratio |\n" +
		"| -------------- | -----: | ----: |\n" +
		"| 1 × 10k users  |   67.6 | 1.00× |\n" +
		"| 200 × 50 users |   10.9 |       |\n"
	if diff := cmp.Diff(want, tb.markdown()); diff != "" {
		t.Errorf("markdown (-want +got):\n%s", diff)
	}
}

func TestSectionMarkdown(t *testing.T) {
	s := &section{title: "9. Example", intro: []string{"intro"}, notes: []string{"note"}}
	s.table = newTable("a")
	s.table.add("x")
	want := "### 9. Example\n\nintro\n\n| a   |\n| --- |\n| x   |\n\nnote\n\n"
	if diff := cmp.Diff(want, s.markdown()); diff != "" {
		t.Errorf("markdown (-want +got):\n%s", diff)
	}
}

func TestFormatting(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{fmtInt(0), "0"},
		{fmtInt(999), "999"},
		{fmtInt(1000), "1,000"},
		{fmtInt(1234567), "1,234,567"},
		{fmtInt(-12345), "-12,345"},
		{fmtSec(1234 * time.Millisecond), "1.23"},
		{fmtSec(67580 * time.Millisecond), "67.6"},
		{fmtRatio(1.0449), "1.04×"},
		{fmtRatio(math.Inf(1)), "n/a"},
		{fmtMiB(84 << 20), "84.0"},
		{fmtRate(5000, 2*time.Second), "2,500"},
		{fmtCount(50), "50"},
		{fmtCount(10_000), "10k"},
		{fmtCount(1_000_000), "1M"},
		{fmtCount(1_500), "1500"},
		{fmtPct(1, 8), "12.5%"},
		{perRow(10, 4), "2.5"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

func TestLowerBound(t *testing.T) {
	const lat = 50 * time.Millisecond
	for _, tc := range []struct {
		name       string
		pages      map[string]int64
		total      int64
		perDir, gl float64
		want       bound
	}{{
		name:   "one big directory: the per-directory limit binds",
		pages:  map[string]int64{"directory_a": 281},
		total:  282,
		perDir: 4, gl: 100,
		want: bound{PerDirectory: 70 * time.Second, Global: 2810 * time.Millisecond, Latency: lat, Binding: "per-directory"},
	}, {
		name:   "many small directories: the global limit binds",
		pages:  map[string]int64{"directory_a": 5, "directory_b": 4, "directory_c": 3},
		total:  1001,
		perDir: 4, gl: 100,
		want: bound{PerDirectory: time.Second, Global: 10 * time.Second, Latency: lat, Binding: "global"},
	}, {
		name:   "limits off",
		pages:  map[string]int64{"directory_a": 100},
		total:  100,
		perDir: 0, gl: 0,
		want: bound{Latency: lat, Binding: "per-directory"},
	}, {
		name:   "a single request costs one round trip",
		pages:  map[string]int64{"directory_a": 1},
		total:  1,
		perDir: 4, gl: 100,
		want: bound{Latency: lat, Binding: "per-directory"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got := lowerBound(tc.pages, tc.total, tc.perDir, tc.gl, lat)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("lowerBound (-want +got):\n%s", diff)
			}
			if want := max(tc.want.PerDirectory, tc.want.Global) + lat; got.Total() != want {
				t.Errorf("Total() = %v, want %v", got.Total(), want)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	for path, want := range map[string]string{
		"/directories?limit=100&order=asc":                            classDirectories,
		"/directories/directory_01ABC":                                classDirectories,
		"/prefix/directories":                                         classDirectories,
		"/directory_users?directory=directory_01ABC&limit=100":        classUsers,
		"/directory_users/directory_user_01ABC":                       classUsers,
		"/directory_users?directory=directory_01A&group=directory_g1": classMemberships,
		"/directory_groups?directory=directory_01ABC":                 classGroups,
		"/directory_groups?user=directory_user_01ABC":                 classMemberships,
		"/organizations":                                              "other",
	} {
		r := httptest.NewRequest("GET", "http://127.0.0.1"+path, nil)
		if got := classify(r); got != want {
			t.Errorf("classify(%s) = %q, want %q", path, got, want)
		}
	}
}

func TestParseOnly(t *testing.T) {
	got, err := parseOnly("peer, ratelimited,peer")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"ratelimited", "peer"}, got); diff != "" {
		t.Errorf("parseOnly (-want +got):\n%s", diff)
	}
	for _, bad := range []string{"", " , ", "ratelimited,speed"} {
		if _, err := parseOnly(bad); err == nil || !strings.HasPrefix(err.Error(), "bench: ") {
			t.Errorf("parseOnly(%q) = %v, want a bench: error", bad, err)
		}
	}
}

// TestRateLimitedRun runs one tiny dataset of section 1 against the
// rate-limited fake and checks what it counted, not how fast it was.
func TestRateLimitedRun(t *testing.T) {
	b := &bench{seed: 7, log: testWriter{t}}
	d := dataset{Dirs: 2, Users: 150, Groups: 2}
	r, bd, err := b.rateLimitedRun(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	srv, _, err := startFake(d.fakeConfig(7, 0, false))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	var wantMemberships int64
	for _, dir := range srv.Directories() {
		_, _, m := srv.Counts(dir.ID)
		wantMemberships += int64(m)
	}
	m := r.Manifest
	if got := rows(m, classUsers); got != d.totalUsers() {
		t.Errorf("users = %d, want %d", got, d.totalUsers())
	}
	if got := rows(m, classMemberships); got != wantMemberships {
		t.Errorf("memberships = %d, want %d", got, wantMemberships)
	}
	// Each directory: 2 users pages, plus at least one page per group on the
	// by_group route.
	if len(r.Counts.UsersPages) != d.Dirs {
		t.Errorf("users pages counted for %d directories, want %d: %v", len(r.Counts.UsersPages), d.Dirs, r.Counts.UsersPages)
	}
	for dir, n := range r.Counts.UsersPages {
		if n < 2+int64(d.Groups) {
			t.Errorf("directory %s: %d /directory_users pages, want at least %d", dir, n, 2+d.Groups)
		}
	}
	if r.Counts.OK != r.Client.Pages {
		t.Errorf("counter saw %d successful responses, the client decoded %d pages", r.Counts.OK, r.Client.Pages)
	}
	if bd.Total() <= fakeLatency || bd.Binding != "per-directory" {
		t.Errorf("bound = %+v, want a per-directory bound above one latency", bd)
	}
}

// TestThroughputChild runs both throughput modes through the child protocol
// (this test binary re-executed with GOMAXPROCS=1) and checks they fetched
// the same pages and rows.
func TestThroughputChild(t *testing.T) {
	b := &bench{seed: 3, log: testWriter{t}}
	srv, base, err := startFake(dataset{Dirs: 2, Users: 250, Groups: 3}.fakeConfig(3, 0, false))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]childResult{}
	for _, mode := range []string{modeBaseline, modePipeline} {
		r, err := b.throughputChild(context.Background(), exe, mode, base)
		if err != nil {
			t.Fatal(err)
		}
		if r.Mode != mode || r.GOMAXPROCS != 1 || r.Wall <= 0 {
			t.Errorf("%s: got %+v, want mode %s with GOMAXPROCS 1 and a wall time", mode, r, mode)
		}
		got[mode] = r
	}
	p, bl := got[modePipeline], got[modeBaseline]
	// The export also reads the Events API twice: its change log, and the
	// unsettled tail for the drift check.
	if p.Rows != bl.Rows || p.Pages != bl.Pages+2 || p.Users != 500 || bl.Users != 500 {
		t.Errorf("pipeline %+v and baseline %+v differ, want the same rows, two more pages (the events and their tail) and 500 users", p, bl)
	}
	if p.Route != "by_group" {
		t.Errorf("pipeline route %q, want by_group (the baseline walks that route)", p.Route)
	}
}

// TestQuickOutputSection is the --quick smoke run of one section through the
// command's entry point, with the report also written to a file.
func TestQuickOutputSection(t *testing.T) {
	out := filepath.Join(t.TempDir(), "bench.md")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"--quick", "--only", "output", "--out", out}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	report := stdout.String()
	for _, want := range []string{"## dsync-export benchmark", "- Go: ", "### 4. Output", "| directory_users ", "| directory_group_memberships ", "| **all** "} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q:\n%s", want, report)
		}
	}
	if strings.Contains(report, "Not measured") {
		t.Errorf("the section failed:\n%s", report)
	}
	file, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if string(file) != report {
		t.Errorf("--out file differs from stdout:\n%s", file)
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"--only", "nope"}, &stdout, &stderr); code != 2 {
		t.Errorf("exit %d, want 2", code)
	}
	if !strings.Contains(stderr.String(), `unknown section "nope"`) {
		t.Errorf("stderr = %q, want the unknown section named", stderr.String())
	}
}

// TestCounterCountsBodies checks the counting RoundTripper against a real
// export through it: bytes per table add up to what the server sent.
func TestCounterCountsBodies(t *testing.T) {
	srv, base, err := startFake(dataset{Dirs: 1, Users: 120, Groups: 2}.fakeConfig(5, 0, false))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cfg := export.DefaultConfig()
	cfg.PerDirectoryRate, cfg.GlobalRate = 0, 0
	r, err := runExport(context.Background(), base, t.TempDir(), workos.RateLimits{}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, class := range []string{classDirectories, classUsers, classGroups, classMemberships} {
		if r.Counts.BodyBytes[class] == 0 || r.Counts.PagesPerClass[class] == 0 {
			t.Errorf("%s: %d bytes in %d pages, want some", class, r.Counts.BodyBytes[class], r.Counts.PagesPerClass[class])
		}
		if fileBytes(r.Manifest, class) == 0 {
			t.Errorf("%s: no Parquet bytes in the manifest", class)
		}
	}
	if got, want := r.Counts.PagesPerClass[classUsers], int64(2); got != want {
		t.Errorf("users pages = %d, want %d (120 users, 100 a page)", got, want)
	}
	if r.Counts.Requests != srv.Stats().Requests {
		t.Errorf("counter saw %d requests, the fake %d", r.Counts.Requests, srv.Stats().Requests)
	}
}

// testWriter sends progress lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// TestReconcileRun simulates one reconcile cycle of a tiny account: every
// directory is reconciled exactly once in the week, on its own day, and the
// never-reconciled control's days cost only the listing and the events.
func TestReconcileRun(t *testing.T) {
	b := &bench{seed: 4, log: testWriter{t}}
	d := dataset{Dirs: 8, Users: 60, Groups: 2}
	r, err := b.reconcileRun(context.Background(), d, reconcileCycle)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Days) != reconcileCycle+1 {
		t.Fatalf("%d days, want day 0 and %d more", len(r.Days), reconcileCycle)
	}
	if d0 := r.Days[0]; d0.Mode != schema.SnapshotModeFull || d0.OtherFull != d.Dirs || d0.Reconcile != 0 || d0.Requests == 0 {
		t.Errorf("day 0 = %+v, want a full walk of the %d directories", d0, d.Dirs)
	}
	walks := 0
	for _, dd := range r.Days[1:] {
		walks += dd.Reconcile
		if dd.OtherFull != 0 {
			t.Errorf("day %d: %d directories walked in full for another reason than the reconcile", dd.Day, dd.OtherFull)
		}
		if dd.Requests < dd.Control || dd.Control == 0 {
			t.Errorf("day %d: %d requests, control %d: want the control's incremental day at most", dd.Day, dd.Requests, dd.Control)
		}
		if dd.Reconcile == 0 && dd.Requests != dd.Control {
			t.Errorf("day %d: no reconcile but %d requests, the control %d", dd.Day, dd.Requests, dd.Control)
		}
	}
	if walks != d.Dirs || len(r.PerDirectory) != d.Dirs {
		t.Errorf("%d reconcile walks over %d directories in a week, want each of the %d once", walks, len(r.PerDirectory), d.Dirs)
	}
	for id, n := range r.PerDirectory {
		if n != 1 {
			t.Errorf("directory %s reconciled %d times in a week, want once", id, n)
		}
	}
	s := r.summarize()
	if s.Full != r.Days[0].Requests || s.OldRatio <= s.Ratio || s.Max < s.Mean {
		t.Errorf("summary %+v: want the old rule's spike above the spread one's", s)
	}
}
