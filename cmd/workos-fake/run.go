package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/dsync-export/dsync-export/internal/testenv/workostest"
)

// options are the parsed command line.
type options struct {
	addr  string
	cfg   workostest.Config
	days  int     // days of changes to simulate before serving
	churn float64 // fraction of users changed per simulated day
}

// parseFlags parses the command line into options. Usage and errors go to
// output.
func parseFlags(args []string, output io.Writer) (options, error) {
	fs := flag.NewFlagSet("workos-fake", flag.ContinueOnError)
	fs.SetOutput(output)
	fs.Usage = func() {
		fmt.Fprint(output, "Usage: workos-fake [flags]\n\n"+
			"Serves a fake WorkOS Directory Sync API and prints its base URL.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	var o options
	var rateLimit, hostile, metadata string
	var faultRate float64
	fs.StringVar(&o.addr, "addr", "127.0.0.1:4100", "`host:port` to listen on (port 0 picks a free one)")
	fs.StringVar(&o.cfg.APIKey, "api-key", workostest.DefaultAPIKey, "the only accepted Bearer `key`")
	fs.IntVar(&o.cfg.Directories, "directories", 3, "number of directories")
	fs.IntVar(&o.cfg.UsersPerDirectory, "users", 1000, "users per directory")
	fs.IntVar(&o.cfg.GroupsPerDirectory, "groups", 10, "groups per directory")
	fs.Int64Var(&o.cfg.Seed, "seed", 1, "dataset and fault seed: the same seed serves the same data")
	fs.DurationVar(&o.cfg.Latency, "latency", 0, "`delay` added to every request, e.g. 50ms")
	fs.StringVar(&rateLimit, "rate-limit", "off", "`off`, or workos to enforce 4 req/s per directory on /directory_users and 6,000 req/min")
	fs.Float64Var(&faultRate, "fault-rate", 0, "`fraction` of list and get requests that fail, split evenly across 5xx, 429, connection reset and truncated body")
	fs.BoolVar(&o.cfg.LegacyGroups, "legacy-groups", false, "fill the deprecated groups array of users")
	fs.StringVar(&hostile, "hostile", "", "`modes` that make GET /events misbehave, e.g. swap,repeat,early=0.05,undecodable=0.01,silent=0.02,double=0.01,seed=7 (see workostest.ParseHostile; POST /_fake/hostile changes them)")
	fs.StringVar(&metadata, "metadata", "mixed", "which directories carry metadata counts: `mixed` (all but every sixth), all or none")
	fs.IntVar(&o.days, "days", 0, "simulate `N` days of directory changes before serving, served by GET /events")
	fs.Float64Var(&o.churn, "churn", 0.01, "`fraction` of each directory's users changed per simulated day (with --days and POST /_fake/advance)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q: workos-fake takes flags only", fs.Arg(0))
	}
	switch rateLimit {
	case "off":
	case "workos":
		o.cfg.RateLimit = true
	default:
		return o, fmt.Errorf("--rate-limit is %q: want off or workos", rateLimit)
	}
	switch metadata {
	case "mixed":
		o.cfg.Metadata = workostest.MetadataMixed
	case "all":
		o.cfg.Metadata = workostest.MetadataAll
	case "none":
		o.cfg.Metadata = workostest.MetadataNone
	default:
		return o, fmt.Errorf("--metadata is %q: want mixed, all or none", metadata)
	}
	h, err := workostest.ParseHostile(hostile)
	if err != nil {
		return o, fmt.Errorf("--hostile: %w", err)
	}
	o.cfg.Hostile = h
	if !(faultRate >= 0 && faultRate <= 1) {
		return o, fmt.Errorf("--fault-rate is %v: want a fraction between 0 and 1", faultRate)
	}
	if o.cfg.Directories < 0 || o.cfg.UsersPerDirectory < 0 || o.cfg.GroupsPerDirectory < 0 {
		return o, errors.New("--directories, --users and --groups must not be negative")
	}
	if o.cfg.Latency < 0 {
		return o, fmt.Errorf("--latency is %v: want 0 or more", o.cfg.Latency)
	}
	if o.days < 0 || o.days > 36500 {
		return o, fmt.Errorf("--days is %d: want 0..36500", o.days)
	}
	if !(o.churn >= 0 && o.churn <= 100) {
		return o, fmt.Errorf("--churn is %v: want a fraction of users per day, 0 or more (0.01 = 1%%/day)", o.churn)
	}
	if o.cfg.APIKey == "" {
		return o, errors.New("--api-key is empty: give the key clients will send")
	}
	o.cfg.ControlEndpoint = true
	o.cfg.Faults = workostest.Faults{
		Seed:        o.cfg.Seed,
		ServerError: faultRate / 4,
		RateLimited: faultRate / 4,
		Reset:       faultRate / 4,
		Truncate:    faultRate / 4,
	}
	return o, nil
}

// run serves until ctx is done and returns the exit code: 0 after a clean
// shutdown, 2 for bad flags, 1 when the server cannot start.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "workos-fake: %v\n", err)
		return 2
	}
	srv, err := workostest.New(o.cfg)
	if err != nil {
		fmt.Fprintf(stderr, "workos-fake: %v\n", err)
		return 2
	}
	if o.days > 0 {
		res := srv.AdvanceDays(o.days, o.churn)
		fmt.Fprintf(stderr, "workos-fake: simulated %d days at churn %g: %d events, now %s\n",
			o.days, o.churn, res.Events, res.To.Format(time.RFC3339))
	}
	baseURL, err := srv.Start(o.addr)
	if err != nil {
		fmt.Fprintf(stderr, "workos-fake: %v (is another server on that port? try --addr 127.0.0.1:0)\n", err)
		return 1
	}
	fmt.Fprintf(stderr, "workos-fake: %d directories of %d users and %d groups (seed %d); press Ctrl-C to stop\n",
		o.cfg.Directories, o.cfg.UsersPerDirectory, o.cfg.GroupsPerDirectory, o.cfg.Seed)
	fmt.Fprintln(stdout, baseURL)
	<-ctx.Done()
	start := time.Now()
	if err := srv.Close(); err != nil {
		fmt.Fprintf(stderr, "workos-fake: closing: %v\n", err)
		return 1
	}
	st := srv.Stats()
	fmt.Fprintf(stderr, "workos-fake: stopped in %v after %d requests (%d pages, %d rate limited, %d faults)\n",
		time.Since(start).Round(time.Millisecond), st.Requests, st.Pages, st.RateLimited, st.FaultsInjected)
	return 0
}
