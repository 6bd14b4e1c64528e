package proc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"
)

// ErrExited is wrapped by the error of WaitReady when the process exits
// before it is ready.
var ErrExited = errors.New("proc: the process exited before it was ready")

// pollInterval is how often WaitReady asks whether the process is ready.
const pollInterval = 20 * time.Millisecond

// Process is a started subprocess in its own process group.
type Process struct {
	cmd    *exec.Cmd
	exited chan struct{}
	err    error // the exit status, set before exited is closed
}

// Start starts cmd in a process group of its own (with the kernel killing it
// when this process dies, on Linux) and watches for its exit. It sets
// cmd.SysProcAttr; set everything else (Env, Dir, Stdout, …) before.
func Start(cmd *exec.Cmd) (*Process, error) {
	setGroup(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("proc: start %s: %w", cmd.Path, err)
	}
	p := &Process{cmd: cmd, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// Pid returns the process id, which is also the id of its process group.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Exited is closed when the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// ExitErr returns the process's exit status, as exec.Cmd.Wait does. It is
// valid once Exited is closed.
func (p *Process) ExitErr() error {
	<-p.exited
	return p.err
}

// WaitReady calls ready every 20 ms until it returns nil. It fails with an
// error wrapping ErrExited when the process exits first, with ctx's error
// when ctx ends, and with the last error of ready when timeout passes.
func (p *Process) WaitReady(ctx context.Context, timeout time.Duration, ready func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := ready()
		if err == nil {
			return nil
		}
		select {
		case <-p.exited:
			return fmt.Errorf("%w (%v)", ErrExited, p.err)
		case <-ctx.Done():
			return fmt.Errorf("proc: waiting for %s: %w", filepath.Base(p.cmd.Path), ctx.Err())
		case <-time.After(pollInterval):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("proc: %s not ready after %v: %w", filepath.Base(p.cmd.Path), timeout, err)
		}
	}
}

// Stop stops the process group: SIGTERM first and SIGKILL once grace has
// passed (at once when grace is 0), then it waits up to wait for the process
// to exit. The group is signalled even when the process exited on its own,
// since what it started may still run. Stop reports an error only if the
// process is still running afterwards, or the signal could not be sent for
// another reason than that nothing was left to signal. Without process groups
// (Windows) it kills the process alone.
func (p *Process) Stop(grace, wait time.Duration) error {
	if grace > 0 {
		if err := terminateGroup(p.Pid()); err == nil {
			select {
			case <-p.exited:
				// The group may hold more than the leader.
			case <-time.After(grace):
			}
		}
	}
	err := killGroup(p.cmd)
	if err != nil && !gone(err) {
		err = fmt.Errorf("proc: stop %s: %w", filepath.Base(p.cmd.Path), err)
	} else {
		err = nil
	}
	select {
	case <-p.exited:
		return err
	case <-time.After(wait):
		return errors.Join(err, fmt.Errorf("proc: %s (pid %d) did not exit within %v of SIGKILL", filepath.Base(p.cmd.Path), p.Pid(), wait))
	}
}

// DialOK returns a WaitReady check that a TCP connection to addr succeeds.
func DialOK(addr string) func() error {
	return func() error {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err != nil {
			return err
		}
		return c.Close()
	}
}

// HTTPOK returns a WaitReady check that GET url answers 200.
func HTTPOK(url string) func() error {
	client := &http.Client{Timeout: time.Second}
	return func() error {
		resp, err := client.Get(url)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return nil
	}
}

// FreePorts returns n distinct TCP ports that were free on 127.0.0.1. They
// are released before FreePorts returns, so another process may take one
// first: callers retry a start that fails on its port.
func FreePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("proc: find a free port: %w", err)
		}
		defer l.Close() // held until all are picked, so they differ
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// ModuleRoot returns the folder of the go.mod that encloses the working
// directory (a package folder under go test).
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("proc: find the module root: %w", err)
	}
	for d := dir; ; {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("proc: find the module root: %w", err)
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("proc: no go.mod in %s or its parents: run from inside the dsync-export module", dir)
		}
		d = parent
	}
}

// TailBuffer keeps the last bytes written to it, for a subprocess's output.
// It is safe for concurrent use.
type TailBuffer struct {
	mu   sync.Mutex
	max  int
	buf  []byte
	last time.Time // of the last write
}

// NewTailBuffer returns a TailBuffer that keeps the last max bytes.
func NewTailBuffer(max int) *TailBuffer { return &TailBuffer{max: max} }

// Write appends p, dropping the oldest bytes past the limit. It never fails.
func (t *TailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.last = time.Now()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

// String returns the bytes kept.
func (t *TailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// WaitQuiet waits until nothing was written for quiet, or at most max.
func (t *TailBuffer) WaitQuiet(quiet, max time.Duration) {
	deadline := time.Now().Add(max)
	for time.Now().Before(deadline) {
		t.mu.Lock()
		idle := time.Since(t.last)
		t.mu.Unlock()
		if idle >= quiet {
			return
		}
		time.Sleep(min(quiet-idle, time.Until(deadline)))
	}
}
