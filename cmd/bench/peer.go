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
	"strings"
	"time"

	"github.com/dsync-export/dsync-export/pkg/export"
	"github.com/dsync-export/dsync-export/pkg/workos"
)

// peerSet is the dataset of section 5. The Node SDK walks one list at a time
// and sleeps 350 ms between pages, so the full bench uses a dataset it
// finishes in about two minutes.
func peerSet(quick bool) dataset {
	if quick {
		return dataset{2, 300, 3}
	}
	return dataset{5, 2_000, 10}
}

// peerSummary is the JSON line bench/peer/export.mjs prints.
type peerSummary struct {
	Directories int64  `json:"directories"`
	Users       int64  `json:"directory_users"`
	Groups      int64  `json:"directory_groups"`
	Memberships int64  `json:"directory_group_memberships"`
	WallMillis  int64  `json:"wall_ms"`
	SDKVersion  string `json:"sdk_version"`
}

// peer is section 5: the official WorkOS Node SDK with auto-pagination,
// writing JSON lines, against the same rate-limited fake as our export.
func (b *bench) peer(ctx context.Context) *section {
	d := peerSet(b.quick)
	s := &section{title: "5. The peer: the official WorkOS Node SDK against the same rate-limited fake"}
	s.intro = []string{
		fmt.Sprintf("Dataset: %s, %d groups each, on one fake with WorkOS's limits and %v latency. First dsync-export (in process, defaults), then, on the same fake after a 2 s pause,", d, d.Groups, fakeLatency),
		"`bench/peer/export.mjs`: `@workos-inc/node` with `.autoPagination()`, directory after directory, users, groups and each group's members (`listUsers({directory, group})`), written as JSON lines.",
		"The SDK sleeps 350 ms between the pages of a list and retries 429s after Retry-After. Wall times are measured inside each program (excluding process start).",
	}
	script := filepath.Join(b.root, "bench", "peer", "export.mjs")
	if err := b.installPeer(ctx); err != nil {
		s.intro = append(s.intro, "", "**Skipped:** "+err.Error())
		b.progress("peer: skipped: %v", err)
		return s
	}
	t := newTable("implementation", ">wall s", ">requests", ">429s", ">users", ">groups", ">memberships", "writes")
	s.table = t

	b.progress("peer: %s, %d groups: dsync-export", d, d.Groups)
	srv, base, err := startFake(d.fakeConfig(b.seed, fakeLatency, true))
	if err != nil {
		s.failed = err
		return s
	}
	defer srv.Close()
	dir, err := os.MkdirTemp("", "dsync-bench-peer-")
	if err != nil {
		s.failed = err
		return s
	}
	defer os.RemoveAll(dir)

	before := srv.Stats()
	ours, err := runExport(ctx, base, filepath.Join(dir, "ours"), workos.DefaultRateLimits, export.DefaultConfig())
	if err != nil {
		s.failed = err
		return s
	}
	mid := srv.Stats()
	m := ours.Manifest
	t.add("dsync-export", fmtSec(ours.Wall), fmtInt(mid.Requests-before.Requests), fmtInt(mid.RateLimited-before.RateLimited),
		fmtInt(rows(m, classUsers)), fmtInt(rows(m, classGroups)), fmtInt(rows(m, classMemberships)), "Parquet")

	select {
	case <-time.After(2 * time.Second): // let the per-directory buckets drain
	case <-ctx.Done():
		s.failed = ctx.Err()
		return s
	}
	b.progress("peer: %s, %d groups: @workos-inc/node", d, d.Groups)
	env := childEnviron("WORKOS_API_KEY="+apiKey, "WORKOS_BASE_URL="+base, "OUT_DIR="+filepath.Join(dir, "peer"))
	start := time.Now()
	out, _, err := runChild(ctx, env, b.node, script)
	procWall := time.Since(start)
	if err != nil {
		s.failed = err
		return s
	}
	after := srv.Stats()
	var ps peerSummary
	if err := json.Unmarshal(lastLine(out), &ps); err != nil {
		s.failed = fmt.Errorf("bench: the peer printed %q, not its JSON summary: %w", out, err)
		return s
	}
	peerWall := time.Duration(ps.WallMillis) * time.Millisecond
	t.add("@workos-inc/node "+ps.SDKVersion, fmtSec(peerWall), fmtInt(after.Requests-mid.Requests), fmtInt(after.RateLimited-mid.RateLimited),
		fmtInt(ps.Users), fmtInt(ps.Groups), fmtInt(ps.Memberships), "JSON lines")

	s.notes = append(s.notes, fmt.Sprintf("Peer ÷ dsync-export wall time: **%s** (the peer's process, start included, took %s s).",
		fmtRatio(peerWall.Seconds()/ours.Wall.Seconds()), fmtSec(procWall)))
	if ps.Users != rows(m, classUsers) || ps.Groups != rows(m, classGroups) || ps.Memberships != rows(m, classMemberships) {
		s.notes = append(s.notes, "Warning: the two wrote different row counts.")
	}
	return s
}

// installPeer makes sure Node and the peer's packages are there: it runs
// `npm ci` in bench/peer when node_modules lacks the SDK. Its error says why
// the section is skipped.
func (b *bench) installPeer(ctx context.Context) error {
	if _, err := exec.LookPath(b.node); err != nil {
		return fmt.Errorf("bench: node (%s) was not found: install Node.js and npm, or pass --node /path/to/node, to compare with the WorkOS Node SDK", b.node)
	}
	dir := filepath.Join(b.root, "bench", "peer")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@workos-inc", "node", "package.json")); err == nil {
		return nil
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return errors.New("bench: npm was not found: install npm (or run `npm ci --prefix bench/peer` by hand) to compare with the WorkOS Node SDK")
	}
	b.progress("peer: npm ci --prefix bench/peer")
	cmd := exec.CommandContext(ctx, npm, "ci", "--prefix", dir, "--no-audit", "--no-fund")
	cmd.Dir = b.root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("bench: `npm ci --prefix bench/peer` failed (%v): %s", err, lastLines(out, 5))
	}
	return nil
}

// lastLine returns the last non-empty line of out.
func lastLine(out []byte) []byte {
	lines := bytes.Split(bytes.TrimSpace(out), []byte("\n"))
	return lines[len(lines)-1]
}

// lastLines returns the last n lines of out, joined with " / ".
func lastLines(out []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " / ")
}
