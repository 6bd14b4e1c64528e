package main

import (
	"context"
	"fmt"
	"os"

	"github.com/dsync-export/dsync-export/pkg/export"
	"github.com/dsync-export/dsync-export/pkg/schema"
	"github.com/dsync-export/dsync-export/pkg/workos"
)

// outputSet is the dataset of section 4.
func outputSet(quick bool) dataset {
	if quick {
		return dataset{2, 1_000, 10}
	}
	return dataset{10, 5_000, 20}
}

// output is section 4: Parquet bytes written against JSON bytes received,
// per table.
func (b *bench) output(ctx context.Context) *section {
	d := outputSet(b.quick)
	s := &section{title: "4. Output: Parquet bytes written against JSON bytes received"}
	s.intro = []string{
		fmt.Sprintf("Dataset: %s, %d groups each; limits off, zero latency; default writer (zstd). JSON bytes are the uncompressed bodies of the successful responses, counted by an http.RoundTripper in the client:", d, d.Groups),
		"/directories → directories, /directory_users without group → users, /directory_groups without user → groups, the member walks → memberships (each member arrives as a whole user object).",
	}
	t := newTable("table", ">rows", ">JSON bytes", ">Parquet bytes", ">Parquet ÷ JSON", ">JSON B/row", ">Parquet B/row")
	s.table = t
	b.progress("output: %s, %d groups", d, d.Groups)
	srv, base, err := startFake(d.fakeConfig(b.seed, 0, false))
	if err != nil {
		s.failed = err
		return s
	}
	defer srv.Close()
	dir, err := os.MkdirTemp("", "dsync-bench-out-")
	if err != nil {
		s.failed = err
		return s
	}
	defer os.RemoveAll(dir)
	cfg := export.DefaultConfig()
	cfg.PerDirectoryRate, cfg.GlobalRate = 0, 0
	r, err := runExport(ctx, base, dir, workos.RateLimits{}, cfg)
	if err != nil {
		s.failed = err
		return s
	}
	var sumRows, sumJSON, sumParquet int64
	for _, tb := range schema.Tables() {
		n, js, pq := rows(r.Manifest, tb.Name), r.Counts.BodyBytes[tb.Name], fileBytes(r.Manifest, tb.Name)
		sumRows, sumJSON, sumParquet = sumRows+n, sumJSON+js, sumParquet+pq
		t.add(tb.Name, fmtInt(n), fmtInt(js), fmtInt(pq), fmtPct(pq, js), perRow(js, n), perRow(pq, n))
	}
	t.add("**all**", fmtInt(sumRows), fmtInt(sumJSON), fmtInt(sumParquet), fmtPct(sumParquet, sumJSON), perRow(sumJSON, sumRows), perRow(sumParquet, sumRows))
	s.notes = append(s.notes, fmt.Sprintf("Membership route: %s.", routes(r.Manifest)))
	return s
}

// fmtPct prints a/b as a percentage with one decimal.
func fmtPct(a, b int64) string {
	if b == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(a)/float64(b))
}

// perRow prints bytes per row with one decimal.
func perRow(bytes, rows int64) string {
	if rows == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f", float64(bytes)/float64(rows))
}
