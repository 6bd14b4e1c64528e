package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/dsync-export/dsync-export/internal/testenv/workostest"
	"github.com/dsync-export/dsync-export/pkg/export"
	"github.com/dsync-export/dsync-export/pkg/schema"
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
	srv, base, err := startFake(workostest.Config{Seed: b.seed, Directories: d.Dirs, UsersPerDirectory: d.Users, GroupsPerDirectory: d.Groups, Latency: fakeLatency, RateLimit: true, Now: fakeDayBehind()})
	if err != nil {
		s.failed = err
		return s
	}
	defer srv.Close()
	srv.AdvanceWith(time.Hour, workostest.AdvanceOptions{Churn: incrementalChurn, DirectoryRate: -1}) // day 0's cursor
	dir, err := os.MkdirTemp("", "dsync-bench-inc-")
	if err != nil {
		s.failed = err
		return s
	}
	defer os.RemoveAll(dir)
	lim := workos.DefaultRateLimits
	cfg := export.DefaultConfig()
	cfg.Mode = export.ModeFull
	cfg.FullEvery = 0                              // no directory's reconcile day: section 9 measures those
	today := time.Now().UTC().Add(-24 * time.Hour) // day 1 is today: a later date would be refused
	b.progress("incremental: day 0, a full walk of %s", d)
	full, err := runExportDay(ctx, base, dir, lim, cfg, today.Format(schema.PartitionFormat), srv.Now)
	if err != nil {
		s.failed = err
		return s
	}
	fullBound := lowerBound(full.Counts.UsersPages, full.Counts.OK, lim.PerDirectoryUsers, lim.Global, fakeLatency)
	adv := srv.AdvanceWith(24*time.Hour, workostest.AdvanceOptions{Churn: incrementalChurn, DirectoryRate: -1})
	b.progress("incremental: day 1, %d events", adv.Events)
	cfg.Mode = export.ModeAuto
	inc, err := runExportDay(ctx, base, dir, lim, cfg, today.Add(24*time.Hour).Format(schema.PartitionFormat), srv.Now)
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
	b.progress("incremental: peak RSS of an incremental day on a %s-user base (folder)", fmtCount(n))
	rss, line, err := b.incrementalRSS(ctx, n, nil)
	if err != nil {
		s.notes = append(s.notes, fmt.Sprintf("RSS run failed: %v", err))
		return s
	}
	rssS3, rssS3Limit := "—", "—"
	if s3srv, err := b.startS3(ctx); err != nil {
		s.notes = append(s.notes, fmt.Sprintf("S3 runs skipped: %v", err))
	} else {
		b.progress("incremental: the same to S3")
		if r, _, err := b.incrementalRSS(ctx, n, s3srv.env("incremental")); err != nil {
			s.notes = append(s.notes, fmt.Sprintf("S3 RSS run failed: %v", err))
		} else {
			rssS3 = fmtMiB(r)
		}
		// In Lambda the function sets GOMEMLIMIT to 80% of its memory.
		b.progress("incremental: the same to S3 with the memory limit of a 128 MB function")
		if r, _, err := b.incrementalRSS(ctx, n, append(s3srv.env("incremental-128"), "GOMEMLIMIT=102MiB")); err != nil {
			s.notes = append(s.notes, fmt.Sprintf("S3 RSS run with GOMEMLIMIT failed: %v", err))
		} else {
			rssS3Limit = fmtMiB(r)
		}
		s3srv.close()
	}
	s.notes = append(s.notes, fmt.Sprintf("Peak RSS of an incremental day on a base of %s users in one directory (the `functions/export` binary as a child, limits off): **%s MiB** to a local folder and **%s MiB** to S3 without GOMEMLIMIT; **%s MiB** to S3 with GOMEMLIMIT=102MiB, the soft limit the function sets in a 128 MB Lambda (target ≤ %d MiB); %s.",
		fmtCount(n), fmtMiB(rss), rssS3, rssS3Limit, memoryTargetMiB, line))
	return s
}

// fakeDayBehind is the start of a fake whose simulated day ends an hour
// before now: the export reads events up to now minus EXPORT_EVENTS_SETTLE
// on the real clock, so a day simulated ahead of it would not be read yet.
// The fake then advances an hour, so day 0 logs events and its cursor is an
// event id (a cursor of "no event yet, checked now" would skip a day made up
// behind it).
func fakeDayBehind() time.Time { return time.Now().Add(-26 * time.Hour) }

// incrementalRSS exports a base of n users in one directory with the export
// binary (to a local folder, or to S3 with s3env), simulates a day at
// incrementalChurn, and runs the incremental day in the binary, returning
// its peak RSS.
func (b *bench) incrementalRSS(ctx context.Context, n int, s3env []string) (int64, string, error) {
	bin, err := b.buildExport(ctx)
	if err != nil {
		return 0, "", err
	}
	srv, base, err := startFake(workostest.Config{Seed: b.seed, Directories: 1, UsersPerDirectory: n, GroupsPerDirectory: 50, Now: fakeDayBehind()})
	if err != nil {
		return 0, "", err
	}
	defer srv.Close()
	srv.AdvanceWith(time.Hour, workostest.AdvanceOptions{Churn: incrementalChurn, DirectoryRate: -1}) // day 0's cursor
	dir, err := os.MkdirTemp("", "dsync-bench-incmem-")
	if err != nil {
		return 0, "", err
	}
	defer os.RemoveAll(dir)
	dest := []string{"EXPORT_DESTINATION=" + dir}
	if s3env != nil {
		dest = s3env
	}
	env := func(mode string) []string {
		return childEnviron(append(slices.Clone(dest), "WORKOS_API_KEY="+apiKey, "WORKOS_BASE_URL="+base,
			"WORKOS_RATE_LIMIT_DIRECTORY_USERS=0", "WORKOS_RATE_LIMIT_GLOBAL=0", "EXPORT_MODE="+mode, "EXPORT_FULL_EVERY=0s", "LOG_LEVEL=warn")...)
	}
	today := time.Now().UTC()
	yesterday := today.Add(-24 * time.Hour).Format(schema.PartitionFormat)
	if _, _, err := runChild(ctx, env(export.ModeFull), bin, "--snapshot-date", yesterday); err != nil {
		return 0, "", err
	}
	adv := srv.AdvanceWith(24*time.Hour, workostest.AdvanceOptions{Churn: incrementalChurn, DirectoryRate: -1})
	start := time.Now()
	out, ps, err := runChild(ctx, env(export.ModeIncremental), bin, "--snapshot-date", today.Format(schema.PartitionFormat))
	wall := time.Since(start)
	if err != nil {
		return 0, "", err
	}
	rss, ok := peakRSS(ps)
	if !ok {
		return 0, "", fmt.Errorf("bench: peak RSS is not available on this platform")
	}
	var sum struct {
		Mode   string           `json:"mode"`
		Rows   map[string]int64 `json:"rows"`
		Events int64            `json:"events"`
	}
	if err := json.NewDecoder(bytes.NewReader(out)).Decode(&sum); err != nil {
		return 0, "", fmt.Errorf("bench: the export printed no JSON summary: %w", err)
	}
	if sum.Mode != schema.SnapshotModeIncremental {
		return 0, "", fmt.Errorf("bench: the day ran in mode %q, not incremental", sum.Mode)
	}
	return rss, fmt.Sprintf("%d events made and logged %d, %s users written, %s s", adv.Events, sum.Events, fmtInt(sum.Rows[schema.TableDirectoryUsers]), fmtSec(wall)), nil
}
