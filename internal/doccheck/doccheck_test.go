// Package doccheck checks the claims the README and docs/ make about the
// repository: every relative link reaches a file (and a heading, with an
// anchor), every backticked path exists, and the package map names only
// files its packages have. It holds tests only.
package doccheck

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

const root = "../.."

// docs returns README.md and every docs/*.md, relative to root.
func docs(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil || len(files) == 0 {
		t.Fatalf("docs/*.md: %v (%d files)", err, len(files))
	}
	out := []string{"README.md"}
	for _, f := range files {
		rel, _ := filepath.Rel(root, f)
		out = append(out, filepath.ToSlash(rel))
	}
	return out
}

func read(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(rel)))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var (
	linkRE     = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	headingRE  = regexp.MustCompile(`(?m)^#{1,6} (.+)$`)
	slugDropRE = regexp.MustCompile(`[^\p{L}\p{N} _-]`)
	codeRE     = regexp.MustCompile("`([^`\\s]+)`")
	fenceRE    = regexp.MustCompile("(?s)```.*?```")
	pathRE     = regexp.MustCompile(`^(pkg|functions|internal|cmd|docs|events|bench|\.ci)/[A-Za-z0-9_./-]*$`)
)

// slug is GitHub's anchor of a heading.
func slug(h string) string {
	h = strings.ToLower(strings.ReplaceAll(h, "`", ""))
	return strings.ReplaceAll(slugDropRE.ReplaceAllString(h, ""), " ", "-")
}

func anchors(text string) map[string]bool {
	out := map[string]bool{}
	for _, m := range headingRE.FindAllStringSubmatch(fenceRE.ReplaceAllString(text, ""), -1) {
		out[slug(strings.TrimSpace(m[1]))] = true
	}
	return out
}

// TestLinksReachFilesAndHeadings: a relative link of the README or docs/
// names a file of the repository, and its #anchor a heading of that file.
func TestLinksReachFilesAndHeadings(t *testing.T) {
	for _, doc := range docs(t) {
		text := read(t, doc)
		for _, m := range linkRE.FindAllStringSubmatch(fenceRE.ReplaceAllString(text, ""), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			file, anchor, _ := strings.Cut(target, "#")
			resolved := doc
			if file != "" {
				resolved = filepath.ToSlash(filepath.Join(filepath.Dir(doc), file))
				if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(resolved))); err != nil {
					t.Errorf("%s links %s: no such file", doc, target)
					continue
				}
			}
			if anchor != "" && strings.HasSuffix(resolved, ".md") && !anchors(read(t, resolved))[anchor] {
				t.Errorf("%s links %s: %s has no heading #%s", doc, target, resolved, anchor)
			}
		}
	}
}

// TestBacktickedPathsExist: a path of the repository in backticks (pkg/…,
// functions/…, internal/…, cmd/…, docs/…, events/…) exists.
func TestBacktickedPathsExist(t *testing.T) {
	for _, doc := range docs(t) {
		for _, m := range codeRE.FindAllStringSubmatch(read(t, doc), -1) {
			p := strings.TrimSuffix(strings.TrimSuffix(m[1], "/..."), "/")
			if !pathRE.MatchString(p) {
				continue
			}
			if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(p))); err != nil {
				t.Errorf("%s names `%s`, which does not exist", doc, m[1])
			}
		}
	}
}

// TestPackageMapNamesItsFiles: in the package map of docs/architecture.md,
// a row of a package (| `pkg/export` | …) names only files that package has.
func TestPackageMapNamesItsFiles(t *testing.T) {
	rowRE := regexp.MustCompile("(?m)^\\| `((?:pkg|functions|internal|cmd)/[a-z0-9/]+)`[^|]*\\|(.*)\\|$")
	goRE := regexp.MustCompile("`([a-z0-9_]+\\.go)`")
	rows := rowRE.FindAllStringSubmatch(read(t, "docs/architecture.md"), -1)
	if len(rows) < 10 {
		t.Fatalf("docs/architecture.md: %d package rows found, want the package map", len(rows))
	}
	for _, row := range rows {
		for _, g := range goRE.FindAllStringSubmatch(row[2], -1) {
			if _, err := os.Stat(filepath.Join(root, row[1], g[1])); err != nil {
				t.Errorf("the package map says %s has %s: it does not", row[1], g[1])
			}
		}
	}
}
