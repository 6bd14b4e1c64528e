package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dsync-export/dsync-export/pkg/export"
	"github.com/dsync-export/dsync-export/pkg/workos"
)

// childEnv, when set, makes the bench binary run one measurement as a child
// process instead of the harness; its value names the measurement.
const childEnv = "DSYNC_BENCH_CHILD"

// Throughput modes.
const (
	modePipeline = "pipeline" // the whole export: fetch, decode, map, Parquet encode, write
	modeBaseline = "baseline" // the same pages fetched and decoded, then discarded
)

// childResult is what a throughput child prints: one JSON line.
type childResult struct {
	Mode       string        `json:"mode"`
	GOMAXPROCS int           `json:"gomaxprocs"`
	Wall       time.Duration `json:"wall_ns"`
	User       time.Duration `json:"user_ns"`
	Sys        time.Duration `json:"sys_ns"`
	CPUOK      bool          `json:"cpu_ok"`
	Rows       int64         `json:"rows"`
	Users      int64         `json:"users"`
	Pages      int64         `json:"pages"`
	Route      string        `json:"route,omitempty"`
}

// CPU is user plus system time.
func (r childResult) CPU() time.Duration { return r.User + r.Sys }

// childMain runs one measurement in a child process and prints its result.
func childMain(mode string, args []string, stdout, stderr io.Writer) int {
	if mode != "throughput" {
		fmt.Fprintf(stderr, "bench: unknown child mode %s=%q\n", childEnv, mode)
		return 2
	}
	fs := flag.NewFlagSet("bench-child", flag.ContinueOnError)
	fs.SetOutput(stderr)
	what := fs.String("mode", modePipeline, "pipeline or baseline")
	base := fs.String("base", "", "the fake's base URL")
	dir := fs.String("dir", "", "the output folder (pipeline)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	res, err := measureThroughput(context.Background(), *what, *base, *dir)
	if err != nil {
		fmt.Fprintln(stderr, "bench child:", err)
		return 1
	}
	if err := json.NewEncoder(stdout).Encode(res); err != nil {
		fmt.Fprintln(stderr, "bench child:", err)
		return 1
	}
	return 0
}

// measureThroughput runs one mode against the fake with the limits off and
// measures wall and CPU time around it.
func measureThroughput(ctx context.Context, mode, baseURL, dir string) (childResult, error) {
	res := childResult{Mode: mode, GOMAXPROCS: runtime.GOMAXPROCS(0)}
	off := workos.RateLimits{}
	u0, s0, ok0 := cpuTime()
	start := time.Now()
	switch mode {
	case modePipeline:
		cfg := export.DefaultConfig()
		cfg.PerDirectoryRate, cfg.GlobalRate = 0, 0
		r, err := runExport(ctx, baseURL, dir, off, cfg)
		if err != nil {
			return res, err
		}
		res.Wall = time.Since(start)
		res.Rows = totalRows(r.Manifest)
		res.Users = rows(r.Manifest, classUsers)
		res.Pages = r.Client.Pages
		res.Route = routes(r.Manifest)
	case modeBaseline:
		c, err := workos.NewClient(apiKey, workos.WithBaseURL(baseURL), workos.WithRateLimits(off),
			workos.WithHTTPClient(&http.Client{Transport: newCounter(http.DefaultTransport), Timeout: workos.DefaultTimeout}))
		if err != nil {
			return res, err
		}
		rowsN, users, err := fetchAndDiscard(ctx, c)
		if err != nil {
			return res, err
		}
		res.Wall = time.Since(start)
		res.Rows, res.Users, res.Pages = rowsN, users, c.Stats().Pages
		res.Route = "by_group"
	default:
		return res, fmt.Errorf("bench: unknown throughput mode %q: want %s or %s", mode, modePipeline, modeBaseline)
	}
	u1, s1, ok1 := cpuTime()
	res.User, res.Sys, res.CPUOK = u1-u0, s1-s0, ok0 && ok1
	return res, nil
}

// fetchAndDiscard fetches and decodes the pages the export fetches on the
// by_group route, concurrently in the same shape (directories at once; per
// directory the users walk beside the groups walk and its member walks), and
// discards them. It returns the rows the export would write and the users.
func fetchAndDiscard(ctx context.Context, c *workos.Client) (rowCount, users int64, err error) {
	asc := workos.ListOptions{Order: workos.OrderAsc}
	var dirs []workos.Directory
	for d, err := range c.Directories(ctx, &workos.ListDirectoriesOptions{ListOptions: asc}) {
		if err != nil {
			return 0, 0, err
		}
		dirs = append(dirs, d)
	}
	var (
		nRows, nUsers atomic.Int64
		wg            sync.WaitGroup
		mu            sync.Mutex
		errs          []error
	)
	nRows.Add(int64(len(dirs)))
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	sem := make(chan struct{}, export.DefaultConfig().Concurrency)
	for _, d := range dirs {
		sem <- struct{}{}
		wg.Add(2)
		var dirWG sync.WaitGroup
		dirWG.Add(2)
		go func() {
			dirWG.Wait()
			<-sem
		}()
		go func() { // users
			defer wg.Done()
			defer dirWG.Done()
			opts := &workos.ListDirectoryUsersOptions{ListOptions: asc, Directory: d.ID}
			for {
				p, err := c.ListDirectoryUsers(ctx, opts)
				if err != nil {
					fail(err)
					return
				}
				nRows.Add(int64(len(p.Data)))
				nUsers.Add(int64(len(p.Data)))
				after, more := p.NextAfter()
				if !more || len(p.Data) == 0 {
					return
				}
				opts.After = after
			}
		}()
		go func() { // groups, then each group's members
			defer wg.Done()
			defer dirWG.Done()
			var groups []string
			opts := &workos.ListDirectoryGroupsOptions{ListOptions: asc, Directory: d.ID}
			for {
				p, err := c.ListDirectoryGroups(ctx, opts)
				if err != nil {
					fail(err)
					return
				}
				nRows.Add(int64(len(p.Data)))
				for i := range p.Data {
					groups = append(groups, p.Data[i].ID)
				}
				after, more := p.NextAfter()
				if !more || len(p.Data) == 0 {
					break
				}
				opts.After = after
			}
			for _, g := range groups {
				opts := &workos.ListDirectoryUsersOptions{ListOptions: asc, Directory: d.ID, Group: g}
				for {
					p, err := c.ListDirectoryUsers(ctx, opts)
					if err != nil {
						fail(err)
						return
					}
					nRows.Add(int64(len(p.Data)))
					after, more := p.NextAfter()
					if !more || len(p.Data) == 0 {
						break
					}
					opts.After = after
				}
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return 0, 0, err
	}
	return nRows.Load(), nUsers.Load(), nil
}

// childEnviron is the environment of a child: this process's, without the
// variables that would change what the child does (the export's settings,
// Lambda and AWS variables, Go runtime tuning), plus extra.
func childEnviron(extra ...string) []string {
	drop := []string{"WORKOS_", "EXPORT_", "AWS_", "LOG_LEVEL=", "GOMAXPROCS=", "GOGC=", "GOMEMLIMIT=", "GODEBUG=", childEnv + "="}
	var env []string
outer:
	for _, kv := range os.Environ() {
		for _, p := range drop {
			if strings.HasPrefix(kv, p) {
				continue outer
			}
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// runChild runs a command and returns its stdout and process state; on
// failure the error carries the end of its stderr.
func runChild(ctx context.Context, env []string, name string, args ...string) ([]byte, *os.ProcessState, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		tail := stderr.String()
		if len(tail) > 2000 {
			tail = "…" + tail[len(tail)-2000:]
		}
		return stdout.Bytes(), cmd.ProcessState, fmt.Errorf("bench: %s: %w: %s", name, err, strings.TrimSpace(tail))
	}
	return stdout.Bytes(), cmd.ProcessState, nil
}

// throughputSet is the dataset of section 2.
func throughputSet(quick bool) dataset {
	if quick {
		return dataset{1, 5_000, 10}
	}
	return dataset{1, 100_000, 20}
}

// throughput is section 2: one core, limits off, zero latency; the whole
// pipeline against the fetch-and-decode baseline.
func (b *bench) throughput(ctx context.Context) *section {
	d := throughputSet(b.quick)
	repeat := 3
	if b.quick {
		repeat = 1
	}
	s := &section{title: "2. Throughput on one core: whole pipeline against fetch-and-decode"}
	s.intro = []string{
		fmt.Sprintf("Dataset: %s, %d groups; the fake's limits off, zero latency. Each mode runs in a child process with GOMAXPROCS=1; the fake runs in the harness process, on the other core.", d, d.Groups),
		"pipeline = the whole export (fetch, decode, map, Parquet encode, write to a local folder); baseline = the same pages fetched and decoded with the same client, then discarded.",
		fmt.Sprintf("Best of %d runs per mode. CPU = user + system time of the child, from getrusage; per 1,000 users it includes their groups and memberships. rows/s = rows written ÷ wall.", repeat),
	}
	t := newTable("mode", ">rows", ">pages", ">wall s", ">rows/s", ">CPU s", ">CPU ms / 1,000 users")
	s.table = t

	srv, base, err := startFake(d.fakeConfig(b.seed, 0, false))
	if err != nil {
		s.failed = err
		return s
	}
	defer srv.Close()
	exe, err := os.Executable()
	if err != nil {
		s.failed = err
		return s
	}
	best := map[string]childResult{}
	for i := range repeat {
		for _, mode := range []string{modeBaseline, modePipeline} {
			b.progress("throughput: %s, run %d of %d", mode, i+1, repeat)
			r, err := b.throughputChild(ctx, exe, mode, base)
			if err != nil {
				s.failed = err
				return s
			}
			if prev, ok := best[mode]; !ok || r.Wall < prev.Wall {
				best[mode] = r
			}
		}
	}
	for _, mode := range []string{modePipeline, modeBaseline} {
		r := best[mode]
		cpu, perK := "n/a", "n/a"
		if r.CPUOK {
			cpu = fmtSec(r.CPU())
			if r.Users > 0 {
				perK = fmt.Sprintf("%.1f", float64(r.CPU().Milliseconds())/(float64(r.Users)/1000))
			}
		}
		t.add(mode, fmtInt(r.Rows), fmtInt(r.Pages), fmtSec(r.Wall), fmtRate(r.Rows, r.Wall), cpu, perK)
	}
	p, bl := best[modePipeline], best[modeBaseline]
	s.notes = append(s.notes, fmt.Sprintf("Overhead of mapping, Parquet encoding and writing: pipeline ÷ baseline = %s wall, %s CPU (route %s; GOMAXPROCS in the child %d).",
		fmtRatio(p.Wall.Seconds()/bl.Wall.Seconds()), fmtRatio(p.CPU().Seconds()/bl.CPU().Seconds()), p.Route, p.GOMAXPROCS),
		"The pipeline's two pages more are its reads of the Events API (the change log, and the unsettled tail its drift check counts).")
	// The pipeline also reads two pages of the Events API.
	if p.Rows != bl.Rows || p.Pages != bl.Pages+2 {
		s.notes = append(s.notes, fmt.Sprintf("Warning: the baseline fetched %d pages and %d rows, the pipeline %d and %d.", bl.Pages, bl.Rows, p.Pages, p.Rows))
	}
	return s
}

// throughputChild runs one throughput child with GOMAXPROCS=1.
func (b *bench) throughputChild(ctx context.Context, exe, mode, base string) (childResult, error) {
	dir, err := os.MkdirTemp("", "dsync-bench-tp-")
	if err != nil {
		return childResult{}, err
	}
	defer os.RemoveAll(dir)
	out, _, err := runChild(ctx, childEnviron(childEnv+"=throughput", "GOMAXPROCS=1"), exe, "-mode", mode, "-base", base, "-dir", dir)
	if err != nil {
		return childResult{}, err
	}
	var r childResult
	if err := json.Unmarshal(bytes.TrimSpace(out), &r); err != nil {
		return childResult{}, fmt.Errorf("bench: the throughput child printed %q, not its JSON result: %w", out, err)
	}
	return r, nil
}
