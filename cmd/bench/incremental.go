package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/dsync-export/dsync-export/internal/testenv/workostest"
	"github.com/dsync-export/dsync-export/pkg/export"
	"github.com/dsync-export/dsync-export/pkg/schema"
	"github.com/dsync-export/dsync-export/pkg/snapshot"
	"github.com/dsync-export/dsync-export/pkg/workos"
)

// incrementalChurn is the daily churn of section 8: the share of each
// directory's users changed per simulated day.
const incrementalChurn = 0.01

// incrementalSet is the dataset of section 8 (and --quick).
func incrementalSet(quick bool) dataset {
	if quick {
		return dataset{5, 1_000, 5}
	}
	return dataset{20, 5_000, 10}
}

// incrementalRSSUsers is the base of the memory row of section 8.
func incrementalRSSUsers(quick bool) int {
	if quick {
		return 50_000
	}
	return 1_000_000
}

// incremental is section 8: a day built from the previous snapshot plus the
// Events API against a full walk of the same account, both at WorkOS's real
// limits, and the peak RSS of an incremental day on a large base.
func (b *bench) incremental(ctx context.Context) *section {
	d := incrementalSet(b.quick)
	s := &section{title: "8. Incremental day against a full walk"}
	s.intro = []string{
		fmt.Sprintf("The fake (WorkOS's limits, %v latency) serves %s with %d groups each. Day 0 is a full walk (`EXPORT_MODE=full`) into a local folder;", fakeLatency, d, d.Groups),
		fmt.Sprintf("then the fake simulates one day at %.0f%% churn (user updates, creates and deletes, membership and group changes, with their `dsync.*` events) and the export runs again with the default `EXPORT_MODE=auto`,", incrementalChurn*100),
		"which lists the directories, reads the events since day 0's cursor and rebuilds every directory from day 0's Parquet files. Both runs use the client's default pacing (4 req/s per directory, 100 req/s overall).",
		"Bound = the rate-limit bound of the requests each run needed, as in section 1. The snapshot of the incremental day is checked against the fake row for row by `make test` (same code path); here its row counts are compared with the fake's.",
	}
	t := newTable("run", ">requests", ">wall s", ">bound s", ">users", ">memberships", ">events", "mode")
	s.table = t
	srv, base, err := startFake(workostest.Config{Seed: b.seed, Directories: d.Dirs, UsersPerDirectory: d.Users, GroupsPerDirectory: d.Groups, Latency: fakeLatency, RateLimit: true, Now: time.Now()})
	if err != nil {
		s.failed = err
		return s
	}
	defer srv.Close()
	dir, err := os.MkdirTemp("", "dsync-bench-inc-")
	if err != nil {
		s.failed = err
		return s
	}
	defer os.RemoveAll(dir)
	lim := workos.DefaultRateLimits
	cfg := export.DefaultConfig()
	cfg.Mode = export.ModeFull
	today := time.Now().UTC().Add(-24 * time.Hour) // day 1 is today: a later date would be refused
	b.progress("incremental: day 0, a full walk of %s", d)
	full, err := runExportDay(ctx, base, dir, lim, cfg, today.Format(schema.PartitionFormat))
	if err != nil {
		s.failed = err
		return s
	}
	fullBound := lowerBound(full.Counts.UsersPages, full.Counts.OK, lim.PerDirectoryUsers, lim.Global, fakeLatency)
	adv := srv.AdvanceWith(24*time.Hour, workostest.AdvanceOptions{Churn: incrementalChurn, DirectoryRate: -1})
	b.progress("incremental: day 1, %d events", adv.Events)
	cfg.Mode = export.ModeAuto
	inc, err := runExportDay(ctx, base, dir, lim, cfg, today.Add(24*time.Hour).Format(schema.PartitionFormat))
	if err != nil {
		s.failed = err
		return s
	}
	incBound := lowerBound(inc.Counts.UsersPages, inc.Counts.OK, lim.PerDirectoryUsers, lim.Global, fakeLatency)
	for _, r := range []struct {
		name string
		run  *exportRun
		bd   bound
	}{{"day 0: full walk", full, fullBound}, {"day 1: incremental", inc, incBound}} {
		m := r.run.Manifest
		var ev int64
		if m.Events != nil {
			ev = m.Events.Events
		}
		t.add(r.name, fmtInt(r.run.Client.Requests), fmtSec(r.run.Wall), fmtSec(r.bd.Total()), fmtInt(rows(m, classUsers)), fmtInt(rows(m, classMemberships)), fmtInt(ev), m.Mode)
	}
	var wantUsers int64
	for _, dd := range srv.Directories() {
		u, _, _ := srv.Counts(dd.ID)
		wantUsers += int64(u)
	}
	if got := rows(inc.Manifest, classUsers); got != wantUsers {
		s.notes = append(s.notes, fmt.Sprintf("MISMATCH: the incremental day has %d users, the fake %d.", got, wantUsers))
	}
	s.notes = append(s.notes, fmt.Sprintf("Incremental / full: **%.4f× the requests** and **%.3f× the wall time** (goal ≤ 0.1× each); bounds %s s and %s s. The incremental day's time is the delta unit reading and rewriting %s base rows.",
		float64(inc.Client.Requests)/float64(full.Client.Requests), inc.Wall.Seconds()/full.Wall.Seconds(),
		fmtSec(incBound.Total()), fmtSec(fullBound.Total()), fmtInt(totalRows(full.Manifest))))

	n := incrementalRSSUsers(b.quick)
	b.progress("incremental: peak RSS of an incremental day on a %s-user base", fmtCount(n))
	if rss, line, err := b.incrementalRSS(ctx, n); err != nil {
		s.notes = append(s.notes, fmt.Sprintf("RSS run failed: %v", err))
	} else {
		s.notes = append(s.notes, fmt.Sprintf("Peak RSS of an incremental day on a base of %s users in one directory (the `functions/export` binary as a child, local folder, limits off): **%s MiB** (target ≤ %d MiB); %s.",
			fmtCount(n), fmtMiB(rss), memoryTargetMiB, line))
	}
	return s
}

// incrementalRSS exports a base of n users in one directory in this
// process, simulates a day at incrementalChurn, and runs the incremental
// day in the export binary, returning its peak RSS.
func (b *bench) incrementalRSS(ctx context.Context, n int) (int64, string, error) {
	bin, err := b.buildExport(ctx)
	if err != nil {
		return 0, "", err
	}
	srv, base, err := startFake(workostest.Config{Seed: b.seed, Directories: 1, UsersPerDirectory: n, GroupsPerDirectory: 50, Now: time.Now()})
	if err != nil {
		return 0, "", err
	}
	defer srv.Close()
	dir, err := os.MkdirTemp("", "dsync-bench-incmem-")
	if err != nil {
		return 0, "", err
	}
	defer os.RemoveAll(dir)
	cfg := export.DefaultConfig()
	cfg.Mode = export.ModeFull
	today := time.Now().UTC().Add(-24 * time.Hour) // day 1 is today: a later date would be refused
	if _, err := runExportDay(ctx, base, dir, workos.RateLimits{}, cfg, today.Format(schema.PartitionFormat)); err != nil {
		return 0, "", err
	}
	adv := srv.AdvanceWith(24*time.Hour, workostest.AdvanceOptions{Churn: incrementalChurn, DirectoryRate: -1})
	tomorrow := today.Add(24 * time.Hour).Format(schema.PartitionFormat)
	env := childEnviron("EXPORT_DESTINATION="+dir, "WORKOS_API_KEY="+apiKey, "WORKOS_BASE_URL="+base,
		"WORKOS_RATE_LIMIT_DIRECTORY_USERS=0", "WORKOS_RATE_LIMIT_GLOBAL=0", "EXPORT_MODE=incremental", "LOG_LEVEL=warn")
	start := time.Now()
	_, ps, err := runChild(ctx, env, bin, "--snapshot-date", tomorrow)
	wall := time.Since(start)
	if err != nil {
		return 0, "", err
	}
	rss, ok := peakRSS(ps)
	if !ok {
		return 0, "", fmt.Errorf("bench: peak RSS is not available on this platform")
	}
	body, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(snapshot.ManifestKey(tomorrow))))
	if err != nil {
		return 0, "", err
	}
	var m snapshot.Manifest
	if err := json.Unmarshal(body, &m); err != nil {
		return 0, "", err
	}
	if m.Mode != schema.SnapshotModeIncremental {
		return 0, "", fmt.Errorf("bench: the day ran in mode %q, not incremental", m.Mode)
	}
	return rss, fmt.Sprintf("%d events applied, %s users written, %s s", adv.Events, fmtInt(m.Tables[schema.TableDirectoryUsers].Rows), fmtSec(wall)), nil
}
