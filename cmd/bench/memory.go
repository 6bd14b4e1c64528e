package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// memoryTargetMiB is the peak RSS the export must stay under at 1M users, so
// that the smallest sensible Lambda size works.
const memoryTargetMiB = 128

// memorySets are the datasets of section 3: one directory each.
func memorySets(quick bool) []dataset {
	if quick {
		return []dataset{{1, 1_000, 10}, {1, 10_000, 10}}
	}
	return []dataset{{1, 10_000, 50}, {1, 100_000, 50}, {1, 1_000_000, 50}}
}

// exportSummary is the part of functions/export's JSON summary the bench reads.
type exportSummary struct {
	Rows           map[string]int64 `json:"rows"`
	Bytes          int64            `json:"bytes"`
	DurationMillis int64            `json:"duration_ms"`
	API            struct {
		Requests int64 `json:"requests"`
		Pages    int64 `json:"pages"`
	} `json:"api"`
}

// buildExport builds functions/export once, as the memory runs use it.
func (b *bench) buildExport(ctx context.Context) (string, error) {
	if b.export != "" {
		return b.export, nil
	}
	bin := filepath.Join(b.tmp, "export")
	b.progress("building ./functions/export")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./functions/export")
	cmd.Dir = b.root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("bench: go build ./functions/export: %w: %s", err, bytes.TrimSpace(out))
	}
	b.export = bin
	return bin, nil
}

// memory is section 3: the export binary's peak RSS, one child per size.
func (b *bench) memory(ctx context.Context) *section {
	s := &section{title: "3. Memory: peak RSS of one export of one directory"}
	sets := memorySets(b.quick)
	s.intro = []string{
		"Each size runs the `functions/export` binary (built once with `go build`) as a child process, outside Lambda, with the client's limits off, writing once to a local folder and once to S3 (versitygw on loopback, through the SDK's transfer manager);",
		"the fake (zero latency, no limits) runs in the harness process, so its memory is not counted. Peak RSS is the child's getrusage maxrss. The child has the default GOMAXPROCS and no GOMEMLIMIT.",
	}
	t := newTable("users", ">groups", ">memberships", ">wall s", ">rows/s", ">peak RSS MiB (folder)", ">peak RSS MiB (S3)")
	s.table = t
	bin, err := b.buildExport(ctx)
	if err != nil {
		s.failed = err
		return s
	}
	s3srv, err := b.startS3(ctx)
	if err != nil {
		s.notes = append(s.notes, fmt.Sprintf("S3 runs skipped: %v", err))
	} else {
		defer s3srv.close()
	}
	var first, last, firstS3, lastS3 int64
	for i, d := range sets {
		b.progress("memory: %s, %d groups", d, d.Groups)
		sum, wall, rss, err := b.memoryRun(ctx, bin, d, nil)
		if err != nil {
			s.notes = append(s.notes, fmt.Sprintf("%s: failed: %v", d, err))
			continue
		}
		rssS3 := "—"
		if s3srv != nil {
			_, _, r, err := b.memoryRun(ctx, bin, d, s3srv.env(fmt.Sprintf("mem-%d", i)))
			if err != nil {
				s.notes = append(s.notes, fmt.Sprintf("%s to S3: failed: %v", d, err))
			} else {
				rssS3 = fmtMiB(r)
				if i == 0 {
					firstS3 = r
				}
				if i == len(sets)-1 {
					lastS3 = r
				}
			}
		}
		var total int64
		for _, n := range sum.Rows {
			total += n
		}
		t.add(fmtInt(d.totalUsers()), fmt.Sprint(d.Groups), fmtInt(sum.Rows[classMemberships]), fmtSec(wall), fmtRate(total, wall), fmtMiB(rss), rssS3)
		if i == 0 {
			first = rss
		}
		if i == len(sets)-1 {
			last = rss
		}
	}
	if first > 0 && last > 0 {
		s.notes = append(s.notes, fmt.Sprintf("Growth %s → %s users: %s (target ≤ 1.5×). Target at 1M users: under %d MiB.",
			fmtCount(sets[0].Users), fmtCount(sets[len(sets)-1].Users), fmtRatio(float64(last)/float64(first)), memoryTargetMiB))
	}
	if firstS3 > 0 && lastS3 > 0 {
		s.notes = append(s.notes, fmt.Sprintf("To S3: growth %s (5 MiB parts, one upload part in flight per table).", fmtRatio(float64(lastS3)/float64(firstS3))))
	}
	return s
}

// memoryRun runs the export binary against a fresh fake of dataset d.
// s3env, when set, sends the export to S3 instead of a local folder.
func (b *bench) memoryRun(ctx context.Context, bin string, d dataset, s3env []string) (exportSummary, time.Duration, int64, error) {
	var sum exportSummary
	srv, base, err := startFake(d.fakeConfig(b.seed, 0, false))
	if err != nil {
		return sum, 0, 0, err
	}
	defer srv.Close()
	dir, err := os.MkdirTemp("", "dsync-bench-mem-")
	if err != nil {
		return sum, 0, 0, err
	}
	defer os.RemoveAll(dir)
	dest := []string{"EXPORT_DESTINATION=" + dir}
	if s3env != nil {
		dest = s3env
	}
	env := childEnviron(append(dest,
		"WORKOS_API_KEY="+apiKey,
		"WORKOS_BASE_URL="+base,
		"WORKOS_RATE_LIMIT_DIRECTORY_USERS=0",
		"WORKOS_RATE_LIMIT_GLOBAL=0",
		"LOG_LEVEL=warn",
	)...)
	start := time.Now()
	out, ps, err := runChild(ctx, env, bin)
	wall := time.Since(start)
	if err != nil {
		return sum, 0, 0, err
	}
	if err := json.NewDecoder(bytes.NewReader(out)).Decode(&sum); err != nil {
		return sum, 0, 0, fmt.Errorf("bench: the export printed no JSON summary: %w", err)
	}
	rss, ok := peakRSS(ps)
	if !ok {
		return sum, 0, 0, errors.New("bench: peak RSS is not available on this platform: run the bench on Linux or macOS")
	}
	return sum, wall, rss, nil
}
