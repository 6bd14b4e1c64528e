package soak_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dsync-export/dsync-export/internal/testenv/awstest"
)

// holdGate freezes traffic at a chosen moment: once its count reaches the
// armed limit, every request that reaches pass is held (it never gets an
// answer) until the gate is disarmed or the client goes away. The kill test
// uses it to SIGKILL the export binary at an exact point instead of after a
// guessed number of milliseconds.
type holdGate struct {
	mu       sync.Mutex
	limit    int64 // 0: let everything through
	count    int64
	held     chan struct{} // closed when the first request is held
	heldOnce bool
	release  chan struct{} // closed by disarm
}

// arm resets the count and holds every request once it reaches limit. The
// returned channel is closed when the first request is held.
func (g *holdGate) arm(limit int64) <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.limit, g.count, g.heldOnce = limit, 0, false
	g.held, g.release = make(chan struct{}), make(chan struct{})
	return g.held
}

// disarm lets held and later requests go.
func (g *holdGate) disarm() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.limit = 0
	if g.release != nil {
		close(g.release)
		g.release = nil
	}
}

// pass reports whether r may proceed; if the gate holds, it blocks until the
// gate is disarmed or r's client disconnects, and returns false. count adds r
// to the count when it passes.
func (g *holdGate) pass(r *http.Request, count bool) bool {
	g.mu.Lock()
	if g.limit == 0 || g.count < g.limit {
		if count {
			g.count++
		}
		g.mu.Unlock()
		return true
	}
	if !g.heldOnce {
		g.heldOnce = true
		close(g.held)
	}
	rel := g.release
	g.mu.Unlock()
	select {
	case <-r.Context().Done():
	case <-rel:
	}
	return false
}

func (g *holdGate) add() {
	g.mu.Lock()
	g.count++
	g.mu.Unlock()
}

// startS3Gate starts a reverse proxy on 127.0.0.1 in front of the S3 server.
// It keeps the client's Host header, so SigV4 signatures still verify, and
// counts committed data objects (a PutObject, or a CompleteMultipartUpload, of
// a .parquet key) in its gate.
func startS3Gate(t *testing.T, upstream string) (*httptest.Server, *holdGate) {
	t.Helper()
	target, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	gate := new(holdGate)
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme, pr.Out.URL.Host = target.Scheme, target.Host
			pr.Out.Host = pr.In.Host // signed by the client
		},
		ModifyResponse: func(resp *http.Response) error {
			if resp.StatusCode == http.StatusOK && isDataCommit(resp.Request) {
				gate.add() // before the client sees the answer
			}
			return nil
		},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !gate.pass(r, false) {
			http.Error(w, "held by the soak test", http.StatusServiceUnavailable)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, gate
}

// isDataCommit reports whether r stores a data object: a PutObject or a
// CompleteMultipartUpload of a Parquet part.
func isDataCommit(r *http.Request) bool {
	if !strings.Contains(r.URL.Path, "/dt=") || !strings.HasSuffix(r.URL.Path, ".parquet") {
		return false
	}
	q := r.URL.Query()
	switch r.Method {
	case http.MethodPut:
		return !q.Has("uploadId") && !q.Has("partNumber")
	case http.MethodPost:
		return q.Has("uploadId")
	}
	return false
}

// buildExport starts building functions/export into a temporary folder, with
// -race when the test runs under the race detector, and returns a function
// that waits for the binary. The build runs while the seeds do; it is
// cancelled if the test ends first.
func buildExport(t *testing.T) func(*testing.T) string {
	t.Helper()
	type result struct {
		took time.Duration
		err  error
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan result, 1)
	bin := filepath.Join(t.TempDir(), "export")
	go func() {
		start := time.Now()
		gobin, err := exec.LookPath("go")
		if err != nil {
			done <- result{err: fmt.Errorf("soak: the go command is not on PATH: %v", err)}
			return
		}
		gomod, err := exec.CommandContext(ctx, gobin, "env", "GOMOD").Output()
		root := filepath.Dir(strings.TrimSpace(string(gomod)))
		if err != nil || root == "." || strings.TrimSpace(string(gomod)) == os.DevNull {
			done <- result{err: fmt.Errorf("soak: find the module root with `go env GOMOD`: %v (%q)", err, gomod)}
			return
		}
		args := []string{"build", "-o", bin}
		if raceEnabled {
			args = append(args, "-race")
		}
		args = append(args, "./functions/export")
		cmd := exec.CommandContext(ctx, gobin, args...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			done <- result{err: fmt.Errorf("soak: go %s: %v\n%s", strings.Join(args, " "), err, out)}
			return
		}
		done <- result{took: time.Since(start)}
	}()
	var res *result
	wait := func() result {
		if res == nil {
			r := <-done
			res = &r
		}
		return *res
	}
	t.Cleanup(func() { cancel(); wait() })
	return func(t *testing.T) string {
		t.Helper()
		r := wait()
		if r.err != nil {
			t.Fatal(r.err)
		}
		t.Logf("built functions/export (race %v) in %s, in the background", raceEnabled, r.took.Round(time.Millisecond))
		return bin
	}
}

// exportEnv is the environment of the export binary: a local run (no Lambda
// runtime API) against the WorkOS fake at apiURL, writing to dest through the
// S3 endpoint s3URL with the test server's credentials, and nothing of the
// developer's own AWS setup.
func exportEnv(t *testing.T, s3srv *awstest.S3Server, s3URL, apiURL, dest string) []string {
	t.Helper()
	home := t.TempDir()
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"TMPDIR=" + os.TempDir(),
		"AWS_CONFIG_FILE=" + filepath.Join(home, "no-aws-config"),
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "no-aws-credentials"),
		"EXPORT_DESTINATION=" + dest,
		"EXPORT_CONCURRENCY=4",
		"WORKOS_API_KEY=" + apiKey,
		"WORKOS_BASE_URL=" + apiURL,
		"WORKOS_RATE_LIMIT_DIRECTORY_USERS=0",
		"WORKOS_RATE_LIMIT_GLOBAL=0",
		"LOG_LEVEL=warn",
		"GORACE=halt_on_error=1",
	}
	for k, v := range s3srv.Env() {
		if k == "AWS_ENDPOINT_URL_S3" {
			v = s3URL
		}
		env = append(env, k+"="+v)
	}
	return env
}

// proc is a running export binary.
type proc struct {
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
	exited         chan struct{}
	waitErr        error
}

func startProc(t *testing.T, bin string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(bin, args...), exited: make(chan struct{})}
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	})
	return p
}

// waitFor waits for ready, failing the test if the process exits first or
// nothing happens within a minute.
func (p *proc) waitFor(t *testing.T, ready <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ready:
	case <-p.exited:
		t.Fatalf("the export exited (%v) before %s\nstderr:\n%s\nstdout:\n%s", p.waitErr, what, p.stderr.String(), p.stdout.String())
	case <-time.After(time.Minute):
		t.Fatalf("waited a minute for %s", what)
	}
}

// kill sends SIGKILL and checks that the process died of it (rather than
// having finished or crashed on its own).
func (p *proc) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill the export: %v", err)
	}
	<-p.exited
	ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("the export was not killed by SIGKILL (%v): it ended on its own\nstderr:\n%s", p.waitErr, p.stderr.String())
	}
}

// wait waits for the process to exit and fails unless it exited 0.
func (p *proc) wait(t *testing.T, timeout time.Duration) {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.exited
		t.Fatalf("the export did not finish within %s\nstderr:\n%s", timeout, p.stderr.String())
	}
	if p.waitErr != nil {
		t.Fatalf("the export failed: %v\nstderr:\n%s\nstdout:\n%s", p.waitErr, p.stderr.String(), p.stdout.String())
	}
}
