package soak_test

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dsync-export/dsync-export/internal/testenv/awstest"
	"github.com/dsync-export/dsync-export/internal/testenv/snapshottest"
	"github.com/dsync-export/dsync-export/internal/testenv/workostest"
	"github.com/dsync-export/dsync-export/pkg/export"
	"github.com/dsync-export/dsync-export/pkg/objstore"
	"github.com/dsync-export/dsync-export/pkg/snapshot"
	"github.com/dsync-export/dsync-export/pkg/verify"
	"github.com/dsync-export/dsync-export/pkg/workos"
)

var (
	seedsFlag = flag.Int("seeds", 3, "number of seeds of the fault soak (make soak passes 50)")
	firstSeed = flag.Int("first-seed", 1, "first seed: seeds first-seed … first-seed+seeds-1 run")
	maxUsers  = flag.Int("users", 600, "most users per directory; each directory draws 50..users")
)

const (
	apiKey = "sk_test_soak"
	date   = "2026-11-28"
)

var snapTime = time.Date(2026, 11, 28, 2, 0, 0, 123_000_000, time.UTC)

// faultsFor returns the fault mix: 10% 5xx with HTML bodies, 5% 429
// with Retry-After, 1% connection resets and 1% truncated bodies.
func faultsFor(seed int64) workostest.Faults {
	return workostest.Faults{Seed: seed*7919 + 13, ServerError: 0.10, RateLimited: 0.05, Reset: 0.01, Truncate: 0.01}
}

// newClient returns a WorkOS client for the fake: no pacing, fast backoff, a
// short cap on the fake's Retry-After: 1, and enough attempts for 17% faults
// (15 failures in a row happen with probability 0.17^15, about 3e-12).
func newClient(t *testing.T, baseURL string) *workos.Client {
	t.Helper()
	c, err := workos.NewClient(apiKey,
		workos.WithBaseURL(baseURL),
		workos.WithRateLimits(workos.RateLimits{}),
		workos.WithBackoff(time.Millisecond, 20*time.Millisecond),
		workos.WithRetryAfterCap(20*time.Millisecond),
		workos.WithMaxAttempts(15),
	)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// startFake serves a fake WorkOS account on 127.0.0.1, counting its answers.
func startFake(t *testing.T, cfg workostest.Config) (*workostest.Server, *tally, string) {
	t.Helper()
	cfg.APIKey = apiKey
	fake, err := workostest.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tl := new(tally)
	srv := httptest.NewUnstartedServer(tl.wrap(fake))
	tl.serve(srv.Config)
	srv.Start()
	t.Cleanup(srv.Close)
	return fake, tl, srv.URL
}

func openS3(t *testing.T, s3srv *awstest.S3Server, dest string) objstore.Store {
	t.Helper()
	dst, err := objstore.Open(t.Context(), dest, objstore.Options{S3Client: s3srv.Client(t), PartSize: 5 << 20})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// summary adds up what the soak did.
type summary struct {
	seeds, directories int // seeds run, and their directories
	failed             []int64
	api                counts // answers of the fake, by kind
	retries, tooMany   int64  // from the export manifests
	rows               int64  // rows compared with the datasets
	files              int
	smallParts         int // seeds with 32 KiB parts
	rolledOver         int // of those, seeds where a table has several parts
	seedsTime          time.Duration
	killed, deadline   string
	stepSeeds, chunks  int // seeds run as steps, and their chunks
}

func TestSoak(t *testing.T) {
	if *seedsFlag < 0 || *maxUsers < 50 {
		t.Fatalf("soak: -seeds %d -users %d: want -seeds >= 0 and -users >= 50", *seedsFlag, *maxUsers)
	}
	start := time.Now()
	exportBin := buildExport(t) // in the background, while the seeds run
	s3srv := awstest.StartS3(t)
	var sum summary

	t.Run("seeds", func(t *testing.T) {
		s3srv.CreateBucket(t, "soak")
		begin := time.Now()
		for i := range *seedsFlag {
			seed := int64(*firstSeed + i)
			if !t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { soakSeed(t, s3srv, seed, &sum) }) {
				sum.failed = append(sum.failed, seed)
			}
		}
		sum.seedsTime = time.Since(begin)
		if sum.seeds == 0 {
			return
		}
		if sum.api.faults() == 0 || sum.retries == 0 || sum.tooMany == 0 {
			t.Errorf("faults %s, retries %d, 429s %d: the soak injected no faults and proves nothing", sum.api, sum.retries, sum.tooMany)
		}
		if sum.smallParts > 0 && sum.rolledOver == 0 {
			t.Errorf("%d seeds had 32 KiB parts, but no table rolled over to a second part", sum.smallParts)
		}
		// At 1% a kind is absent from 2,000 requests with probability 2e-9.
		if sum.api.Requests >= 2000 && (sum.api.ServerErrors == 0 || sum.api.RateLimited == 0 || sum.api.Resets == 0 || sum.api.Truncated == 0) {
			t.Errorf("faults %s in %d requests: every kind must occur", sum.api, sum.api.Requests)
		}
	})
	t.Run("killed", func(t *testing.T) { sum.killed = soakKilled(t, s3srv, exportBin(t)) })
	t.Run("deadline", func(t *testing.T) { sum.deadline = soakDeadline(t, s3srv) })

	line := fmt.Sprintf("soak summary: seeds %d run (%d as steps, %d chunks), %d failed %v (%d directories, %s), WorkOS requests %d, faults injected %s, retries %d, 429s %d, rows compared %d, files %d; killed: %s; deadline: %s; wall time %s",
		sum.seeds, sum.stepSeeds, sum.chunks, len(sum.failed), sum.failed, sum.directories, sum.seedsTime.Round(time.Millisecond), sum.api.Requests, sum.api, sum.retries, sum.tooMany,
		sum.rows, sum.files, orNotRun(sum.killed), orNotRun(sum.deadline), time.Since(start).Round(time.Millisecond))
	t.Log(line)
	fmt.Println(line) // for `make soak` (go test -v) and CI logs
}

// latencyFor slows the fake down for seeds run as steps, so that their units
// take several chunks.
func latencyFor(sc scenario) time.Duration {
	if sc.steps {
		return 20 * time.Millisecond
	}
	return 0
}

func orNotRun(s string) string {
	if s == "" {
		return "not run"
	}
	return s
}

// scenario is what a seed varies.
type scenario struct {
	sizes       [][2]int // users, groups per directory
	legacy      bool     // users carry the deprecated groups array
	mode        string   // membership mode
	concurrency int
	order       workos.Order
	smallParts  bool // roll files over at 32 KiB: many parts, committed mid-export
	// steps runs the export as the state machine does: plan, then each unit's
	// chunks, each chunk stopped by a deadline of chunkTime and resumed from
	// its checkpoint, then commit. workers is the plan's worker count.
	steps     bool
	workers   int
	chunkTime time.Duration
}

var modes = []string{export.MembershipAuto, snapshot.RouteByGroup, snapshot.RouteByUser, snapshot.RouteLegacy}

func newScenario(seed int64, maxUsers int) scenario {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x50a4))
	sc := scenario{mode: modes[((seed-1)%4+4)%4], concurrency: 1 + rng.IntN(4), order: workos.OrderAsc}
	for range 1 + rng.IntN(5) {
		sc.sizes = append(sc.sizes, [2]int{50 + rng.IntN(maxUsers-50+1), 2 + rng.IntN(11)})
	}
	// The legacy route reads the groups arrays, so they must be filled; other
	// routes must ignore them when they are.
	sc.legacy = sc.mode == snapshot.RouteLegacy || rng.IntN(3) == 0
	if rng.IntN(4) == 0 {
		sc.order = workos.OrderDesc
	}
	sc.smallParts = rng.IntN(3) == 0
	if seed%2 == 0 {
		sc.steps, sc.workers, sc.chunkTime = true, 1+rng.IntN(4), time.Duration(250+rng.IntN(250))*time.Millisecond
	}
	return sc
}

func (sc scenario) String() string {
	var users, groups int
	for _, s := range sc.sizes {
		users += s[0]
		groups += s[1]
	}
	s := fmt.Sprintf("%d directories, %d users, %d groups, %s, concurrency %d, order %s", len(sc.sizes), users, groups, sc.mode, sc.concurrency, sc.order)
	if sc.legacy {
		s += ", groups arrays"
	}
	if sc.smallParts {
		s += ", 32 KiB parts"
	}
	if sc.steps {
		s += fmt.Sprintf(", steps: %d workers, %v chunks", sc.workers, sc.chunkTime)
	}
	return s
}

// soakSeed runs one seed: an export under faults, then verify, the exact
// comparison and the accounting of every fault.
func soakSeed(t *testing.T, s3srv *awstest.S3Server, seed int64, sum *summary) {
	sc := newScenario(seed, *maxUsers)
	sum.seeds++
	sum.directories += len(sc.sizes)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("seed %d: %s\nreproduce: go test -race -v -run 'TestSoak/seeds/seed=%d$' ./internal/testenv/soak -args -first-seed=%d -seeds=1 -users=%d",
				seed, sc, seed, seed, *maxUsers)
		}
	})
	fake, tl, url := startFake(t, workostest.Config{
		Seed:         seed,
		Directories:  len(sc.sizes),
		Sizes:        func(d int) (int, int) { return sc.sizes[d][0], sc.sizes[d][1] },
		LegacyGroups: sc.legacy,
		Faults:       faultsFor(seed),
		Latency:      latencyFor(sc),
	})
	client := newClient(t, url)
	dst := openS3(t, s3srv, fmt.Sprintf("s3://soak/seed-%d", seed))

	cfg := export.DefaultConfig()
	cfg.Concurrency = sc.concurrency
	cfg.MembershipMode = sc.mode
	cfg.Order = sc.order
	cfg.DeadlineMargin = 5 * time.Second
	if sc.smallParts {
		cfg.Writer.MaxFileBytes = 32 << 10
		cfg.Writer.MaxRowsPerRowGroup = 256
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	ex := &export.Exporter{Client: client, Store: dst, Config: cfg}
	var res *export.Result
	var err error
	chunks := 0
	if sc.steps {
		// Stopped mid-walk, with room to close the parts and write the
		// checkpoint under -race (100 to 200 ms).
		cfg.DeadlineMargin = sc.chunkTime * 2 / 5
		ex.Config = cfg
		res, chunks, err = runSteps(ctx, ex, sc)
	} else {
		res, err = ex.Run(ctx, export.Target{Date: date, Time: snapTime, Trigger: "soak"})
	}
	if err != nil {
		t.Fatalf("seed %d: the export failed under faults: %v", seed, err)
	}
	exportTime := time.Since(start)
	m := res.Manifest
	if stored := snapshottest.ReadManifest(t, dst, date); stored == nil {
		t.Fatalf("seed %d: Run succeeded but no manifest is stored", seed)
	} else if d := cmp.Diff(m, stored); d != "" {
		t.Errorf("seed %d: stored manifest differs from the returned one:\n%s", seed, d)
	}

	snapshottest.CheckObjectsAreManifest(t, dst, m)
	rep := checkValid(t, ctx, dst, date, verify.Options{Sample: 5, WorkOS: client, Rand: rand.New(rand.NewPCG(uint64(seed), 1))})
	rows := snapshottest.CheckExact(t, dst, m, snapshottest.ExpectedRows(fake, snapTime))
	files := 0
	for _, tm := range m.Tables {
		files += len(tm.Files)
	}
	for _, dm := range m.Directories {
		users, groups, mems := fake.Counts(dm.ID)
		if dm.Users != int64(users) || dm.Groups != int64(groups) || dm.Memberships != int64(mems) || dm.Status != snapshot.DirectoryOK {
			t.Errorf("seed %d: directory %s manifest %+v, the fake has %d users, %d groups, %d memberships", seed, dm.ID, dm, users, groups, mems)
		}
		if sc.mode != export.MembershipAuto && dm.MembershipRoute != sc.mode {
			t.Errorf("seed %d: directory %s route %q, want %q", seed, dm.ID, dm.MembershipRoute, sc.mode)
		}
	}
	if sc.smallParts {
		sum.smallParts++
		if files > len(m.Tables) {
			sum.rolledOver++
		}
	}

	// Every answer of the fake is accounted for, and every fault the client
	// saw cost it exactly one retry (export and verify sampling together).
	// The requests the client never counted are resets that net/http resent
	// by itself (see counts.Hidden).
	api, fs, cs := tl.snapshot(), fake.Stats(), client.Stats()
	// A chunk's stop cancels requests in flight; an answer cut off that way
	// can count as truncated here without being an injected fault.
	if (sc.steps && (api.faults() < fs.FaultsInjected || api.faults() > fs.FaultsInjected+api.Cancelled+api.Truncated)) ||
		(!sc.steps && api.faults() != fs.FaultsInjected) || api.Other != 0 {
		t.Errorf("seed %d: counted faults %s and %d unexpected answers; the fake injected %d", seed, api, api.Other, fs.FaultsInjected)
	}
	api.Hidden = api.Requests - cs.Requests
	// A chunk's stop cancels the requests in flight: the fake may still
	// count their answer (a fault among them), the client does not.
	if sc.steps && api.Hidden < 0 {
		api.Hidden = 0
	}
	if !sc.steps && (api.Hidden < 0 || api.Hidden > api.Resets || cs.Retries != api.faults()-api.Hidden ||
		cs.RateLimited != api.RateLimited || cs.NetworkErrors != api.Resets-api.Hidden+api.Truncated) {
		t.Errorf("seed %d: client stats %+v do not match the fake's answers: %d requests, faults %s, %d cancelled",
			seed, cs, api.Requests, api, api.Cancelled)
	}
	if m.API.Retries > cs.Retries || m.API.RateLimited > cs.RateLimited || m.API.Requests > cs.Requests || m.API.Retries+m.API.Pages > m.API.Requests {
		t.Errorf("seed %d: manifest API stats %+v inconsistent with the client's %+v", seed, m.API, cs)
	}

	sum.api = sum.api.add(api)
	sum.retries += m.API.Retries
	sum.tooMany += m.API.RateLimited
	sum.rows += int64(rows)
	sum.files += files
	if sc.steps {
		sum.stepSeeds++
		sum.chunks += chunks
		if chunks <= 0 {
			t.Errorf("seed %d: no chunk ran", seed)
		}
	}
	t.Logf("seed %d: %s; %d chunks; export %s, %d requests, faults %s, retries %d, 429s %d, %d rows compared in %d files; verify %d checks in %d ms; %s total",
		seed, sc, chunks, exportTime.Round(time.Millisecond), api.Requests, api, m.API.Retries, m.API.RateLimited, rows, files, len(rep.Checks), rep.Stats.DurationMillis, time.Since(start).Round(time.Millisecond))
}

// exportOutput is the part of the export binary's JSON summary the test reads.
type exportOutput struct {
	SnapshotDate        string            `json:"snapshot_date"`
	ManifestKey         string            `json:"manifest_key"`
	Rows                map[string]int64  `json:"rows"`
	Files               int               `json:"files"`
	StaleObjectsDeleted int               `json:"stale_objects_deleted"`
	API                 snapshot.APIStats `json:"api"`
}

// soakKilled SIGKILLs the export binary while it fetches, then while it
// commits, and re-runs it: the third run must leave a valid snapshot equal to
// the dataset, with exactly the manifest's objects.
func soakKilled(t *testing.T, s3srv *awstest.S3Server, bin string) string {
	ctx := t.Context()
	fake, err := workostest.New(workostest.Config{APIKey: apiKey, Seed: 6060, Directories: 4, UsersPerDirectory: 350, GroupsPerDirectory: 7})
	if err != nil {
		t.Fatal(err)
	}
	apiGate := new(holdGate)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !apiGate.pass(r, true) {
			http.Error(w, "held by the soak test", http.StatusServiceUnavailable)
			return
		}
		fake.ServeHTTP(w, r)
	}))
	t.Cleanup(api.Close)
	s3srv.CreateBucket(t, "killed")
	proxy, s3Gate := startS3Gate(t, s3srv.Endpoint)
	const dest = "s3://killed/exports/workos"
	dst := openS3(t, s3srv, dest)
	env := exportEnv(t, s3srv, proxy.URL, api.URL, dest)
	var procs []*proc
	run := func() *proc {
		p := startProc(t, bin, env, "--snapshot-date", date, "--force")
		procs = append(procs, p)
		return p
	}

	// 1. Killed while fetching: WorkOS stops answering after 12 requests.
	const fetchRequests = 12
	held := apiGate.arm(fetchRequests)
	p := run()
	p.waitFor(t, held, fmt.Sprintf("the export to make %d WorkOS requests", fetchRequests))
	p.kill(t)
	apiGate.disarm()
	leftFetching := snapshottest.ListSnapshot(t, dst, date)
	checkUncommitted(t, ctx, dst, date)

	// 2. Killed while committing: S3 stops answering once two data objects
	// are stored; the manifest is never reached.
	const commits = 2
	held = s3Gate.arm(commits)
	p = run()
	p.waitFor(t, held, fmt.Sprintf("the export to commit %d data objects", commits))
	p.kill(t)
	s3Gate.disarm()
	leftCommitting := snapshottest.ListSnapshot(t, dst, date)
	if len(leftCommitting) < commits {
		t.Errorf("after the kill while committing, the partitions hold %v: want the %d committed data objects", leftCommitting, commits)
	}
	checkUncommitted(t, ctx, dst, date)

	// 3. Re-run to completion.
	p = run()
	p.wait(t, 3*time.Minute)
	var out exportOutput
	if err := json.NewDecoder(strings.NewReader(p.stdout.String())).Decode(&out); err != nil {
		t.Fatalf("the export's summary is not JSON: %v\n%s", err, p.stdout.String())
	}
	m := snapshottest.ReadManifest(t, dst, date)
	if m == nil {
		t.Fatalf("the re-run exited 0 but wrote no manifest\nstderr:\n%s", p.stderr.String())
	}
	if out.ManifestKey != snapshot.ManifestKey(date) || out.SnapshotDate != date {
		t.Errorf("re-run summary %+v: want manifest %s", out, snapshot.ManifestKey(date))
	}
	for name, tm := range m.Tables {
		if out.Rows[name] != tm.Rows {
			t.Errorf("re-run summary says %d %s rows, the manifest %d", out.Rows[name], name, tm.Rows)
		}
	}
	snapshottest.CheckObjectsAreManifest(t, dst, m)
	client := newClient(t, api.URL)
	checkValid(t, ctx, dst, date, verify.Options{Sample: 5, WorkOS: client, Rand: rand.New(rand.NewPCG(6060, 1))})
	rows := snapshottest.CheckExact(t, dst, m, snapshottest.ExpectedRows(fake, m.SnapshotTime))
	if ups := multipartUploads(t, ctx, s3srv.Client(t), "killed"); len(ups) != 0 {
		t.Errorf("multipart uploads left in progress: %v", ups)
	}
	for i, p := range procs {
		if strings.Contains(p.stderr.String(), "DATA RACE") {
			t.Errorf("run %d of the export binary reported a data race:\n%s", i+1, p.stderr.String())
		}
	}
	s := fmt.Sprintf("killed after %d WorkOS requests (%d objects left), killed after %d commits (%d objects left), re-run committed %d files and %d rows compared, %d stale deleted",
		fetchRequests, len(leftFetching), commits, len(leftCommitting), out.Files, rows, out.StaleObjectsDeleted)
	t.Log(s)
	return s
}

// soakDeadline runs an export whose deadline expires mid-walk (under faults,
// with 32 KiB parts so some are committed before it stops), and one whose
// deadline is shorter than the margin; neither may write a manifest. A re-run
// then removes what the first one left.
func soakDeadline(t *testing.T, s3srv *awstest.S3Server) string {
	ctx := t.Context()
	s3srv.CreateBucket(t, "deadline")
	const dest = "s3://deadline/exports/workos"
	dst := openS3(t, s3srv, dest)
	data := workostest.Config{Seed: 8080, Directories: 2, UsersPerDirectory: 1000, GroupsPerDirectory: 4, Faults: faultsFor(8080)}

	// The walk needs more than 10 sequential users pages of 100 ms per
	// directory; it is stopped DeadlineMargin before the deadline, at 1 s.
	// The margin is generous because -race on 2 busy cores is slow to wind
	// down; the time it took is reported.
	const timeout, margin = 2 * time.Second, time.Second
	slow := data
	slow.Latency = 100 * time.Millisecond
	_, tl, url := startFake(t, slow)
	cfg := export.DefaultConfig()
	cfg.Concurrency = 2
	cfg.DeadlineMargin = margin
	cfg.Writer.MaxFileBytes = 8 << 10 // parts are committed while it runs
	cfg.Writer.MaxRowsPerRowGroup = 64
	ex := &export.Exporter{Client: newClient(t, url), Store: dst, Config: cfg}

	runCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	_, err := ex.Run(runCtx, export.Target{Date: date, Time: snapTime})
	elapsed := time.Since(start)
	if !errors.Is(err, export.ErrDeadline) {
		t.Fatalf("err = %v, want export.ErrDeadline", err)
	}
	if runCtx.Err() != nil {
		t.Errorf("the export returned after its deadline (%s): it must stop DeadlineMargin before", elapsed.Round(time.Millisecond))
	}
	windDown := elapsed - (timeout - margin)
	var pe *export.ProgressError
	if !errors.As(err, &pe) {
		t.Fatalf("err %v: want a *export.ProgressError", err)
	}
	if pe.RowsWritten == 0 {
		t.Errorf("err %v: no rows written: the deadline must hit mid-export", err)
	}
	checkUncommitted(t, ctx, dst, date)
	left := snapshottest.ListSnapshot(t, dst, date)
	if ups := multipartUploads(t, ctx, s3srv.Client(t), "deadline"); len(ups) != 0 {
		t.Errorf("multipart uploads left in progress after the deadline: %v", ups)
	}

	// A deadline shorter than the margin stops before the first request.
	before := tl.snapshot().Requests
	shortCtx, cancelShort := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancelShort()
	if _, err := ex.Run(shortCtx, export.Target{Date: date, Time: snapTime}); !errors.Is(err, export.ErrDeadline) {
		t.Errorf("deadline shorter than the margin: err = %v, want export.ErrDeadline", err)
	}
	if n := tl.snapshot().Requests - before; n != 0 {
		t.Errorf("deadline shorter than the margin: %d WorkOS requests, want none", n)
	}
	checkUncommitted(t, ctx, dst, date)

	// Re-run the same dataset (no latency) to completion: it must delete what
	// the stopped run committed and its own run did not overwrite.
	fake, _, url := startFake(t, data)
	cfg = export.DefaultConfig()
	cfg.Concurrency = 4
	client := newClient(t, url)
	res, err := (&export.Exporter{Client: client, Store: dst, Config: cfg}).Run(ctx, export.Target{Date: date, Time: snapTime})
	if err != nil {
		t.Fatalf("re-run after the deadline: %v", err)
	}
	var wantStale []string
	for _, k := range left {
		if !slices.Contains(res.Manifest.Keys(), k) {
			wantStale = append(wantStale, k)
		}
	}
	gotStale := slices.Clone(res.StaleDeleted)
	sort.Strings(gotStale)
	if d := cmp.Diff(wantStale, gotStale); d != "" {
		t.Errorf("re-run deleted stale objects (-want +got):\n%s", d)
	}
	snapshottest.CheckObjectsAreManifest(t, dst, res.Manifest)
	checkValid(t, ctx, dst, date, verify.Options{Sample: 5, WorkOS: client, Rand: rand.New(rand.NewPCG(8080, 1))})
	rows := snapshottest.CheckExact(t, dst, res.Manifest, snapshottest.ExpectedRows(fake, snapTime))
	s := fmt.Sprintf("stopped %s after the margin point with %d rows written and %d parts left without a manifest; re-run deleted %d stale objects, %d rows compared",
		windDown.Round(time.Millisecond), pe.RowsWritten, len(left), len(res.StaleDeleted), rows)
	t.Log(s)
	return s
}

// runSteps runs an export as the state machine does: plan, every unit's
// chunks until done (a chunk that overran its deadline is retried from the
// unit's checkpoint, as the state machine's Retry does), commit. It returns
// the chunks run.
func runSteps(ctx context.Context, ex *export.Exporter, sc scenario) (*export.Result, int, error) {
	p, err := ex.Plan(ctx, export.Target{Date: date, Time: snapTime, Trigger: "soak"}, export.PlanOptions{Workers: sc.workers})
	if err != nil {
		return nil, 0, err
	}
	return runPlanned(ctx, ex, p, sc)
}

// finishSteps runs a planned export's units and commit (see runSteps).
func finishSteps(ctx context.Context, ex *export.Exporter, p *export.Plan, sc scenario) (*export.Result, error) {
	res, _, err := runPlanned(ctx, ex, p, sc)
	return res, err
}

// runPlanned runs every unit's chunks of a plan until done, then commits.
func runPlanned(ctx context.Context, ex *export.Exporter, p *export.Plan, sc scenario) (*export.Result, int, error) {
	chunks := 0
	for _, u := range p.UnitIDs() {
		for attempt := 0; ; attempt++ {
			if attempt > 400 {
				return nil, chunks, fmt.Errorf("unit %s: not done after 400 chunks", u)
			}
			cctx, cancel := context.WithTimeout(ctx, sc.chunkTime)
			res, err := ex.RunChunk(cctx, p.SnapshotDate, p.RunID, u)
			cancel()
			chunks++
			if err != nil {
				if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, export.ErrDeadline) {
					continue
				}
				return nil, chunks, fmt.Errorf("unit %s: %w", u, err)
			}
			if res.Done {
				break
			}
		}
	}
	res, err := ex.Commit(ctx, p.SnapshotDate, p.RunID)
	return res, chunks, err
}
