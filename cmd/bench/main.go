package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/dsync-export/dsync-export/pkg/version"
)

// sectionNames are the values of --only, in report order.
var sectionNames = []string{"ratelimited", "throughput", "memory", "output", "peer", "stepfunctions", "incremental", "reconcile"}

// bench is one run of the harness.
type bench struct {
	quick  bool
	seed   int64
	root   string    // repository root (holds go.mod, functions/, bench/peer/)
	node   string    // node binary name or path
	log    io.Writer // progress lines
	tmp    string    // scratch folder for built binaries
	export string    // the built functions/export binary, once built
}

func main() {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(childMain(mode, os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	only := fs.String("only", strings.Join(sectionNames, ","), "comma-separated sections to run: "+strings.Join(sectionNames, ", "))
	quick := fs.Bool("quick", false, "small datasets: a smoke run in well under a minute (figures are not representative)")
	out := fs.String("out", "", "also write the report to this file")
	seed := fs.Int64("seed", 1, "seed of the fake's datasets")
	node := fs.String("node", "node", "the Node.js binary for the peer section")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0 // -h asked for the usage, which was printed
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "bench: unexpected arguments %q: all options are flags (see -h)\n", fs.Args())
		return 2
	}
	sections, err := parseOnly(*only)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	root, err := findRoot()
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	tmp, err := os.MkdirTemp("", "dsync-bench-")
	if err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 1
	}
	defer os.RemoveAll(tmp)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b := &bench{quick: *quick, seed: *seed, root: root, node: *node, log: stderr, tmp: tmp}

	report := b.header(args)
	fmt.Fprint(stdout, report)
	for _, name := range sections {
		if ctx.Err() != nil {
			break
		}
		var s *section
		switch name {
		case "ratelimited":
			s = b.rateLimited(ctx)
		case "throughput":
			s = b.throughput(ctx)
		case "memory":
			s = b.memory(ctx)
		case "output":
			s = b.output(ctx)
		case "peer":
			s = b.peer(ctx)
		case "stepfunctions":
			s = b.stepFunctions(ctx)
		case "incremental":
			s = b.incremental(ctx)
		case "reconcile":
			s = b.reconcile(ctx)
		}
		md := s.markdown()
		fmt.Fprint(stdout, md)
		report += md
	}
	if *out != "" {
		if err := os.WriteFile(*out, []byte(report), 0o644); err != nil {
			fmt.Fprintln(stderr, "bench: write the report:", err)
			return 1
		}
		fmt.Fprintf(stderr, "bench: report written to %s\n", *out)
	}
	if ctx.Err() != nil {
		fmt.Fprintln(stderr, "bench: interrupted")
		return 1
	}
	return 0
}

// parseOnly validates --only and returns the sections in report order.
func parseOnly(s string) ([]string, error) {
	want := map[string]bool{}
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !slices.Contains(sectionNames, f) {
			return nil, fmt.Errorf("bench: unknown section %q in --only: use some of %s", f, strings.Join(sectionNames, ","))
		}
		want[f] = true
	}
	if len(want) == 0 {
		return nil, fmt.Errorf("bench: --only names no section: use some of %s", strings.Join(sectionNames, ","))
	}
	var out []string
	for _, n := range sectionNames {
		if want[n] {
			out = append(out, n)
		}
	}
	return out, nil
}

// findRoot returns the module root: the nearest parent of the working
// directory with a go.mod declaring the dsync-export module.
func findRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("bench: %w", err)
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(b), "module github.com/dsync-export/dsync-export\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("bench: not inside the dsync-export repository: run it from the repository root (go run ./cmd/bench)")
		}
		dir = parent
	}
}

// progress prints a progress line to the log.
func (b *bench) progress(format string, args ...any) {
	fmt.Fprintf(b.log, "bench: "+format+"\n", args...)
}

// header describes the machine and the run.
func (b *bench) header(args []string) string {
	var h strings.Builder
	h.WriteString("## dsync-export benchmark\n\n")
	cmd := "go run ./cmd/bench"
	if len(args) > 0 {
		cmd += " " + strings.Join(args, " ")
	}
	fmt.Fprintf(&h, "`%s`, dsync-export %s, %s\n\n", cmd, version.Version, time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&h, "- Machine: %s, %d CPUs (nproc), %s memory, %s/%s\n", cpuModel(), runtime.NumCPU(), memTotal(), runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(&h, "- Go: %s, GOMAXPROCS=%d\n", runtime.Version(), runtime.GOMAXPROCS(0))
	fmt.Fprintf(&h, "- Node: %s\n", nodeVersion(b.node))
	if b.quick {
		h.WriteString("- **--quick**: small datasets for a smoke run; these figures are not representative.\n")
	}
	h.WriteString("\n")
	return h.String()
}

// cpuModel reads the CPU model from /proc/cpuinfo.
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

// memTotal reads MemTotal from /proc/meminfo.
func memTotal() string {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return "unknown"
	}
	for _, l := range strings.Split(string(b), "\n") {
		var kb int64
		if _, err := fmt.Sscanf(l, "MemTotal: %d kB", &kb); err == nil {
			return fmt.Sprintf("%.0f GiB", float64(kb)/(1<<20))
		}
	}
	return "unknown"
}

// nodeVersion runs node --version, or says it is absent.
func nodeVersion(node string) string {
	out, err := exec.Command(node, "--version").Output()
	if err != nil {
		return "not found"
	}
	return strings.TrimSpace(string(out))
}
