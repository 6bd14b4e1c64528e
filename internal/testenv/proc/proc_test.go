//go:build unix

package proc

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as the child process: PROC_TEST_CHILD selects
// what it does instead of running the tests.
func TestMain(m *testing.M) {
	switch os.Getenv("PROC_TEST_CHILD") {
	case "":
		os.Exit(m.Run())
	case "serve": // start a grandchild, then answer on PROC_TEST_ADDR
		if os.Getenv("PROC_TEST_IGNORE_TERM") != "" {
			signal.Ignore(syscall.SIGTERM)
		}
		gc := exec.Command(os.Args[0])
		gc.Env = []string{"PROC_TEST_CHILD=sleep"}
		if err := gc.Start(); err != nil {
			os.Exit(2)
		}
		http.HandleFunc("/pid", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, gc.Process.Pid) })
		time.Sleep(100 * time.Millisecond) // not ready at once
		_ = http.ListenAndServe(os.Getenv("PROC_TEST_ADDR"), nil)
		os.Exit(2)
	case "sleep":
		time.Sleep(time.Minute)
	case "exit":
		fmt.Println("bad flag")
		os.Exit(3)
	}
	os.Exit(0)
}

func child(t *testing.T, mode string, env ...string) (*Process, *TailBuffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append([]string{"PROC_TEST_CHILD=" + mode}, env...)
	out := NewTailBuffer(1 << 10)
	cmd.Stdout, cmd.Stderr = out, out
	p, err := Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop(0, 5*time.Second) })
	return p, out
}

func serve(t *testing.T, env ...string) (p *Process, url string) {
	t.Helper()
	ports, err := FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(ports[0])
	p, _ = child(t, "serve", append([]string{"PROC_TEST_ADDR=" + addr}, env...)...)
	url = "http://" + addr + "/pid"
	if err := p.WaitReady(context.Background(), 10*time.Second, HTTPOK(url)); err != nil {
		t.Fatal(err)
	}
	if err := DialOK(addr)(); err != nil {
		t.Errorf("DialOK after HTTPOK: %v", err)
	}
	return p, url
}

func grandchild(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var pid int
	if _, err := fmt.Fscan(resp.Body, &pid); err != nil || !Alive(pid) {
		t.Fatalf("grandchild pid %d (alive %v): %v", pid, Alive(pid), err)
	}
	return pid
}

func waitGone(t *testing.T, what string, pid int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for Alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("%s (pid %d) still runs after Stop", what, pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestStopStopsTheGroup stops a server that started a process of its own:
// both are gone, and the server got the chance to exit on SIGTERM.
func TestStopStopsTheGroup(t *testing.T) {
	t.Parallel()
	p, url := serve(t)
	gc := grandchild(t, url)
	start := time.Now()
	if err := p.Stop(10*time.Second, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Stop took %v: the server did not exit on SIGTERM", d)
	}
	select {
	case <-p.Exited():
	default:
		t.Error("Exited is open after Stop")
	}
	if err := p.ExitErr(); err == nil || !strings.Contains(err.Error(), "terminated") {
		t.Errorf("exit status %v, want terminated by SIGTERM", err)
	}
	waitGone(t, "the server's own child", gc)
	if err := p.Stop(0, time.Second); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

// TestStopKillsAfterGrace stops a server that ignores SIGTERM.
func TestStopKillsAfterGrace(t *testing.T) {
	t.Parallel()
	p, url := serve(t, "PROC_TEST_IGNORE_TERM=1")
	gc := grandchild(t, url)
	const grace = 300 * time.Millisecond
	start := time.Now()
	if err := p.Stop(grace, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < grace {
		t.Errorf("Stop returned after %v, before the grace of %v", d, grace)
	}
	if err := p.ExitErr(); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Errorf("exit status %v, want killed", err)
	}
	waitGone(t, "the server's own child", gc)
}

func TestWaitReadyFailures(t *testing.T) {
	t.Parallel()
	never := func() error { return errors.New("connection refused") }
	t.Run("exited", func(t *testing.T) {
		t.Parallel()
		p, out := child(t, "exit")
		err := p.WaitReady(context.Background(), 10*time.Second, never)
		if !errors.Is(err, ErrExited) || !strings.Contains(err.Error(), "exit status 3") {
			t.Errorf("WaitReady = %v, want ErrExited with the exit status", err)
		}
		if got := out.String(); got != "bad flag\n" {
			t.Errorf("output %q", got)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		t.Parallel()
		p, _ := child(t, "sleep")
		err := p.WaitReady(context.Background(), 200*time.Millisecond, never)
		if err == nil || !strings.Contains(err.Error(), "not ready after 200ms: connection refused") {
			t.Errorf("WaitReady = %v, want a timeout naming the last error", err)
		}
	})
	t.Run("context", func(t *testing.T) {
		t.Parallel()
		p, _ := child(t, "sleep")
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		if err := p.WaitReady(ctx, time.Minute, never); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("WaitReady = %v, want the context's error", err)
		}
	})
	t.Run("start", func(t *testing.T) {
		t.Parallel()
		_, err := Start(exec.Command(filepath.Join(t.TempDir(), "nope")))
		if err == nil || !strings.HasPrefix(err.Error(), "proc: start ") {
			t.Errorf("Start of a missing binary = %v", err)
		}
	})
}

func TestFreePorts(t *testing.T) {
	t.Parallel()
	ports, err := FreePorts(3)
	if err != nil {
		t.Fatal(err)
	}
	if len(ports) != 3 || ports[0] == ports[1] || ports[1] == ports[2] || ports[0] == ports[2] {
		t.Errorf("FreePorts(3) = %v, want 3 distinct ports", ports)
	}
}

func TestModuleRoot(t *testing.T) {
	t.Parallel()
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Errorf("ModuleRoot() = %s, which has no go.mod: %v", root, err)
	}
	if wd, _ := os.Getwd(); wd != filepath.Join(root, "internal", "testenv", "proc") {
		t.Errorf("ModuleRoot() = %s is not two levels above the working directory %s", root, wd)
	}
}

func TestTailBuffer(t *testing.T) {
	t.Parallel()
	b := NewTailBuffer(8)
	for _, s := range []string{"abc", "defgh", "ijk"} {
		if n, err := b.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", s, n, err)
		}
	}
	if got := b.String(); got != "defghijk" {
		t.Errorf("tail = %q, want %q", got, "defghijk")
	}
	b.Write([]byte("0123456789ab"))
	if got := b.String(); got != "456789ab" {
		t.Errorf("tail after a write longer than the limit = %q, want %q", got, "456789ab")
	}
	start := time.Now()
	b.WaitQuiet(50*time.Millisecond, time.Second)
	if d := time.Since(start); d < 40*time.Millisecond || d > 500*time.Millisecond {
		t.Errorf("WaitQuiet(50ms) after a write returned after %v", d)
	}
}
