package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/dsync-export/dsync-export/internal/testenv/rie"
	"github.com/dsync-export/dsync-export/internal/testenv/sfn"
	"github.com/dsync-export/dsync-export/pkg/objstore"
	"github.com/dsync-export/dsync-export/pkg/snapshot"
	"github.com/dsync-export/dsync-export/pkg/workos"
)

// sfnCase is one run of section 7: a dataset, the Map's concurrency (and
// EXPORT_WORKERS) and the function timeout the emulators give.
type sfnCase struct {
	d       dataset
	workers int
	timeout time.Duration
	margin  time.Duration
	target  float64
}

func sfnCases(quick bool) []sfnCase {
	if quick {
		return []sfnCase{
			{dataset{1, 2_000, 10}, 2, 8 * time.Second, 2 * time.Second, 1.15},
			{dataset{40, 100, 3}, 4, 30 * time.Second, 3 * time.Second, 1.10},
		}
	}
	return []sfnCase{
		{dataset{1, 20_000, 20}, 8, 30 * time.Second, 3 * time.Second, 1.15},
		{dataset{200, 100, 3}, 8, 30 * time.Second, 3 * time.Second, 1.10},
	}
}

// stepFunctions is section 7: the state machine of template.yaml in the
// local interpreter, every task the real bootstrap under one Lambda Runtime
// Interface Emulator per worker, against the rate-limited fake.
func (b *bench) stepFunctions(ctx context.Context) *section {
	s := &section{title: "7. Step Functions: resumable work units against the rate-limit bound"}
	s.intro = []string{
		"template.yaml's `ExportStateMachine` runs in `aws-local-stepfunctions` (the Distributed Map as an inline map); every task invokes the Lambda build of `functions/export` under its own Runtime Interface Emulator, one per worker, with `AWS_LAMBDA_FUNCTION_TIMEOUT` as given, so each unit runs as many chunks as its work needs.",
		fmt.Sprintf("The fake enforces WorkOS's limits and adds %v latency; the workers split the 100 req/s budget (`EXPORT_WORKERS` = the Map's concurrency). Output goes to a local folder. The bound is section 1's, from the successful requests counted by a proxy in front of the fake; wall is the whole execution: plan, every chunk, commit.", fakeLatency),
	}
	t := newTable("dataset", ">workers", ">timeout s", ">units", ">chunks", ">files", ">max files/table/chunk", ">wall s", ">bound s", "bound by", ">ratio", ">target", ">429s", ">peak RSS/worker MiB")
	s.table = t
	if err := sfn.EnsureInstalled(ctx); err != nil {
		s.failed = err
		return s
	}
	emu, err := rie.BuildEmulator(ctx, filepath.Join(b.root, "bin"))
	if err != nil {
		s.failed = err
		return s
	}
	boot, err := rie.BuildBootstrap(ctx, "./functions/export", filepath.Join(b.tmp, "sfn-export"))
	if err != nil {
		s.failed = err
		return s
	}
	def, err := sfn.Definition(filepath.Join(b.root, "template.yaml"), "ExportStateMachine",
		map[string]string{"ExportFunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:dsync-export-export", "ExportBucket": "dsync-export-bench", "ExportPrefix": "workos"})
	if err != nil {
		s.failed = err
		return s
	}
	for _, c := range sfnCases(b.quick) {
		b.progress("step functions: %s, %d workers, %v function timeout", c.d, c.workers, c.timeout)
		r, err := b.sfnRun(ctx, emu, boot, def, c)
		if err != nil {
			s.notes = append(s.notes, fmt.Sprintf("%s: failed: %v", c.d, err))
			continue
		}
		t.add(c.d.String(), fmt.Sprint(c.workers), fmtSec(c.timeout), fmt.Sprint(r.units), fmtInt(r.chunks), fmtInt(r.files), fmt.Sprint(r.maxPerChunk),
			fmtSec(r.wall), fmtSec(r.bound.Total()), r.bound.Binding, fmtRatio(r.wall.Seconds()/r.bound.Total().Seconds()), fmtRatio(c.target),
			fmtInt(r.rateLimited), fmtMiB(r.peakRSS))
	}
	s.notes = append(s.notes,
		"chunks counts the unit task's invocations; files is the snapshot's (the commit adds the directories table's file); max files/table/chunk must be 1.",
		"Peak RSS is the largest VmHWM of a worker's bootstrap process over the run (the emulators keep it warm between chunks). Target ≤ 128 MiB.")
	return s
}

type sfnResult struct {
	units          int
	chunks, files  int64
	maxPerChunk    int
	wall           time.Duration
	bound          bound
	rateLimited    int64
	peakRSS        int64
	requestsCalled int64
}

func (b *bench) sfnRun(ctx context.Context, emu, boot string, def []byte, c sfnCase) (*sfnResult, error) {
	srv, base, err := startFake(c.d.fakeConfig(b.seed, fakeLatency, true))
	if err != nil {
		return nil, err
	}
	defer srv.Close()
	// A counting proxy in front of the fake: the workers' requests.
	target, _ := url.Parse(base)
	ct := newCounter(http.DefaultTransport)
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.Transport = ct
	psrv, pbase, err := serveLoopback(proxy)
	if err != nil {
		return nil, err
	}
	defer psrv.Close()
	dir, err := os.MkdirTemp("", "dsync-bench-sfn-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		fmt.Sprintf("AWS_LAMBDA_FUNCTION_TIMEOUT=%d", int(c.timeout.Seconds())),
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=512",
		"EXPORT_DEADLINE_MARGIN=" + c.margin.String(),
		fmt.Sprintf("EXPORT_WORKERS=%d", c.workers),
		"EXPORT_DESTINATION=" + dir,
		"WORKOS_API_KEY=" + apiKey,
		"WORKOS_BASE_URL=" + pbase,
		"AWS_LAMBDA_LOG_LEVEL=WARN",
	}
	var emulators []*rie.Emulator
	defer func() {
		for _, e := range emulators {
			_ = e.Close()
		}
	}()
	for range c.workers {
		e, err := rie.Start(ctx, emu, boot, env)
		if err != nil {
			return nil, err
		}
		emulators = append(emulators, e)
	}
	pool := sfn.NewPool(emulators)
	var peak atomic.Int64
	var chunks atomic.Int64
	pool.OnInvoke = func(e *rie.Emulator, state string, _ json.RawMessage) {
		if state == "Chunk" {
			chunks.Add(1)
		}
		if rss, err := e.FunctionPeakRSS(); err == nil {
			for {
				old := peak.Load()
				if rss <= old || peak.CompareAndSwap(old, rss) {
					break
				}
			}
		}
	}
	zero := time.Duration(0)
	start := time.Now()
	res, err := sfn.Run(ctx, sfn.Options{Definition: def, Input: []byte(`{}`), Invoke: pool.Invoke, RetryInterval: &zero})
	wall := time.Since(start)
	if err != nil {
		return nil, err
	}
	if res.Failed() {
		return nil, fmt.Errorf("the execution failed: %s: %s", res.ErrorName, res.ErrorCause)
	}
	for _, e := range emulators {
		if rss, err := e.FunctionPeakRSS(); err == nil && rss > peak.Load() {
			peak.Store(rss)
		}
	}
	dst, err := objstore.Open(ctx, dir, objstore.Options{})
	if err != nil {
		return nil, err
	}
	var out struct {
		SnapshotDate string `json:"snapshot_date"`
	}
	if err := json.Unmarshal(res.Output, &out); err != nil {
		return nil, fmt.Errorf("execution output %s: %w", res.Output, err)
	}
	mb, err := dst.Get(ctx, snapshot.ManifestKey(out.SnapshotDate))
	if err != nil {
		return nil, err
	}
	m, err := snapshot.Unmarshal(mb)
	if err != nil {
		return nil, err
	}
	perChunk := map[string]int{}
	units := map[string]bool{}
	for _, k := range m.Keys() {
		if cp, ok := snapshot.ParseChunkPartKey(k); ok {
			perChunk[fmt.Sprintf("%s unit %s chunk %d", cp.Table, cp.Unit, cp.Chunk)]++
			units[cp.Unit] = true
		}
	}
	maxPer := 0
	for _, n := range perChunk {
		maxPer = max(maxPer, n)
	}
	cnt := ct.snapshot()
	lim := workos.DefaultRateLimits
	r := &sfnResult{
		units: len(units), chunks: chunks.Load(), files: int64(len(m.Keys())), maxPerChunk: maxPer, wall: wall,
		bound:       lowerBound(cnt.UsersPages, cnt.OK, lim.PerDirectoryUsers, lim.Global, fakeLatency),
		rateLimited: srv.Stats().RateLimited, peakRSS: peak.Load(), requestsCalled: cnt.Requests,
	}
	if want := c.d.totalUsers(); m.Tables["directory_users"].Rows != want {
		return nil, fmt.Errorf("the snapshot has %d users, the fake %d", m.Tables["directory_users"].Rows, want)
	}
	return r, nil
}

// serveLoopback serves h on a loopback port; the caller must Close it.
func serveLoopback(h http.Handler) (*http.Server, string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	return srv, "http://" + l.Addr().String(), nil
}
