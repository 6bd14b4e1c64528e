package rie

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/dsync-export/dsync-export/internal/testenv/proc"
)

// TestKillFunction: a SIGKILLed bootstrap fails the invocation in progress
// with Runtime.ExitError, and the next invocation gets a new process.
func TestKillFunction(t *testing.T) {
	t.Parallel()
	e := startEcho(t, 30)
	if _, err := e.KillFunction(); !errors.Is(err, ErrNoFunction) {
		t.Errorf("KillFunction before the first invocation: %v, want ErrNoFunction", err)
	}
	before := invokeEcho(t, e, `{"message":"warm"}`)
	if rss, err := e.FunctionPeakRSS(); err != nil || rss < 1<<20 || rss > 1<<30 {
		t.Errorf("FunctionPeakRSS of the warm echo function: %d bytes, %v; want a few MiB", rss, err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	type result struct {
		took time.Duration
		err  error
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		_, err := e.Invoke(ctx, []byte(`{"message":"slow","sleep":"10s"}`))
		done <- result{time.Since(start), err}
	}()
	time.Sleep(300 * time.Millisecond) // the handler is sleeping
	killed, err := e.KillFunction()
	if err != nil {
		t.Fatal(err)
	}
	if len(killed) != 1 || killed[0] != before.PID {
		t.Errorf("KillFunction killed %v, want the bootstrap [%d]", killed, before.PID)
	}
	r := <-done
	var fe *FunctionError
	if !errors.As(r.err, &fe) || fe.Type != "Runtime.ExitError" {
		t.Fatalf("the killed invocation: %v, want a Runtime.ExitError FunctionError", r.err)
	}
	if r.took > 5*time.Second {
		t.Errorf("the killed invocation took %v: it should end when the process dies, not after its 10 s sleep", r.took)
	}
	deadline := time.Now().Add(5 * time.Second)
	for proc.Alive(before.PID) {
		if time.Now().After(deadline) {
			t.Fatalf("pid %d still alive after SIGKILL", before.PID)
		}
		time.Sleep(10 * time.Millisecond)
	}

	after := invokeEcho(t, e, `{"message":"again"}`)
	if after.Message != "again" || after.PID == before.PID || after.Invocation != 1 {
		t.Errorf("after the kill: %+v, want a new process (pid != %d) at invocation 1", after, before.PID)
	}
}
