package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// table is a Markdown table whose columns are padded, so it reads well in a
// terminal and pastes into the README as is.
type table struct {
	header []string
	right  []bool // right-align the column (numbers)
	rows   [][]string
}

// newTable returns a table with the given columns; a column name starting
// with ">" is right-aligned (the ">" is dropped).
func newTable(columns ...string) *table {
	t := &table{}
	for _, c := range columns {
		r := strings.HasPrefix(c, ">")
		t.header = append(t.header, strings.TrimPrefix(c, ">"))
		t.right = append(t.right, r)
	}
	return t
}

// add appends a row; missing cells are left empty and extra cells dropped.
func (t *table) add(cells ...string) {
	row := make([]string, len(t.header))
	copy(row, cells)
	t.rows = append(t.rows, row)
}

// markdown renders the table, one line per row, ending in a newline.
func (t *table) markdown() string {
	width := make([]int, len(t.header))
	for i, h := range t.header {
		width[i] = max(3, utf8.RuneCountInString(h))
	}
	for _, r := range t.rows {
		for i, c := range r {
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	var b strings.Builder
	line := func(cells []string) {
		b.WriteString("|")
		for i, c := range cells {
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(c))
			if t.right[i] {
				b.WriteString(" " + pad + c + " |")
			} else {
				b.WriteString(" " + c + pad + " |")
			}
		}
		b.WriteString("\n")
	}
	line(t.header)
	b.WriteString("|")
	for i := range t.header {
		if t.right[i] {
			b.WriteString(" " + strings.Repeat("-", width[i]-1) + ": |")
		} else {
			b.WriteString(" " + strings.Repeat("-", width[i]) + " |")
		}
	}
	b.WriteString("\n")
	for _, r := range t.rows {
		line(r)
	}
	return b.String()
}

// section is one part of the report: a heading, lines before the table, the
// table and lines after it.
type section struct {
	title  string
	intro  []string
	table  *table
	notes  []string
	failed error // the section could not run; reported instead of the table
}

func (s *section) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "### %s\n\n", s.title)
	for _, l := range s.intro {
		b.WriteString(l + "\n")
	}
	if len(s.intro) > 0 {
		b.WriteString("\n")
	}
	if s.failed != nil {
		fmt.Fprintf(&b, "**Not measured:** %v\n\n", s.failed)
	}
	if s.table != nil && len(s.table.rows) > 0 {
		b.WriteString(s.table.markdown())
		b.WriteString("\n")
	}
	for _, l := range s.notes {
		b.WriteString(l + "\n")
	}
	if len(s.notes) > 0 {
		b.WriteString("\n")
	}
	return b.String()
}

// ---- number formatting ----

// fmtInt prints n with thousands separators: 1,234,567.
func fmtInt(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// fmtSec prints a duration in seconds: two decimals below 10 s, one above.
func fmtSec(d time.Duration) string {
	s := d.Seconds()
	if s < 10 {
		return strconv.FormatFloat(s, 'f', 2, 64)
	}
	return strconv.FormatFloat(s, 'f', 1, 64)
}

// fmtRatio prints a ratio with two decimals and a trailing ×.
func fmtRatio(r float64) string {
	if math.IsNaN(r) || math.IsInf(r, 0) {
		return "n/a"
	}
	return strconv.FormatFloat(r, 'f', 2, 64) + "×"
}

// fmtMiB prints bytes in MiB with one decimal.
func fmtMiB(bytes int64) string {
	return strconv.FormatFloat(float64(bytes)/(1<<20), 'f', 1, 64)
}

// fmtRate prints a per-second rate rounded to a whole number, with separators.
func fmtRate(n int64, d time.Duration) string {
	if d <= 0 {
		return "n/a"
	}
	return fmtInt(int64(math.Round(float64(n) / d.Seconds())))
}

// fmtCount prints a dataset size compactly: 200, 10k, 1M.
func fmtCount(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return strconv.Itoa(n/1_000_000) + "M"
	case n >= 1_000 && n%1_000 == 0:
		return strconv.Itoa(n/1_000) + "k"
	}
	return strconv.Itoa(n)
}
