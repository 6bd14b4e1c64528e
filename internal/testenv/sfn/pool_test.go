package sfn

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/dsync-export/dsync-export/internal/testenv/rie"
)

var (
	echoOnce                    sync.Once
	emulatorPath, echoBootstrap string
	echoErr                     error
)

// echoBinaries builds the emulator (cached in <module>/bin) and the rie
// package's echo function once per test binary.
func echoBinaries(t *testing.T) (emulator, bootstrap string) {
	t.Helper()
	echoOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		emulatorPath, echoBootstrap, echoErr = rie.BuildEcho(ctx)
	})
	if echoErr != nil {
		t.Fatal(echoErr)
	}
	return emulatorPath, echoBootstrap
}

func cleanupEcho() {
	if echoBootstrap != "" {
		os.RemoveAll(filepath.Dir(echoBootstrap))
	}
}

// TestPoolWithEmulators runs a Map of 4 items at concurrency 2 through two
// emulators, SIGKILLs the function in the middle of one invocation, and
// checks that the state machine sees Runtime.ExitError and its retry
// succeeds.
func TestPoolWithEmulators(t *testing.T) {
	t.Parallel()
	emu, boot := echoBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	var emulators []*rie.Emulator
	for range 2 {
		e, err := rie.Start(ctx, emu, boot, []string{"AWS_LAMBDA_FUNCTION_TIMEOUT=30", "AWS_LAMBDA_FUNCTION_NAME=echo"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := e.Close(); err != nil {
				t.Error(err)
			}
			if t.Failed() {
				t.Logf("emulator %s output:\n%s", e.URL, e.Logs())
			}
		})
		// Warm it: the bootstrap starts on the first invocation.
		if _, err := e.Invoke(ctx, []byte(`{"message":"warm"}`)); err != nil {
			t.Fatal(err)
		}
		emulators = append(emulators, e)
	}
	if emulators[0].URL == emulators[1].URL {
		t.Fatalf("both emulators listen on %s", emulators[0].URL)
	}

	pool := NewPool(emulators)
	var (
		mu          sync.Mutex
		served      = map[*rie.Emulator]int{}
		inflight    int
		maxInflight int
		killed      []int
		killErr     error
		killOnce    sync.Once
		killDone    = make(chan struct{})
	)
	pool.OnInvoke = func(e *rie.Emulator, state string, payload json.RawMessage) {
		mu.Lock()
		served[e]++
		mu.Unlock()
		var in struct{ Message string }
		json.Unmarshal(payload, &in)
		if in.Message != "b" {
			return
		}
		killOnce.Do(func() {
			go func() {
				defer close(killDone)
				time.Sleep(300 * time.Millisecond) // the handler sleeps 1 s
				pids, err := e.KillFunction()
				mu.Lock()
				killed, killErr = pids, err
				mu.Unlock()
			}()
		})
	}
	invoke := func(ctx context.Context, state string, payload json.RawMessage) (json.RawMessage, error) {
		mu.Lock()
		inflight++
		maxInflight = max(maxInflight, inflight)
		mu.Unlock()
		defer func() {
			mu.Lock()
			inflight--
			mu.Unlock()
		}()
		return pool.Invoke(ctx, state, payload)
	}

	def := `{"StartAt": "Items", "States": {"Items": {
	  "Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 2,
	  "ItemSelector": {"message.$": "$$.Map.Item.Value", "sleep": "1s"},
	  "ItemProcessor": {
	    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
	    "StartAt": "Echo",
	    "States": {"Echo": {
	      "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
	      "Parameters": {"FunctionName": "echo", "Payload.$": "$"},
	      "ResultSelector": {"message.$": "$.Payload.message", "pid.$": "$.Payload.pid"},
	      "Retry": [{"ErrorEquals": ["Runtime.ExitError"], "IntervalSeconds": 30, "MaxAttempts": 1}],
	      "End": true}}},
	  "End": true}}}`
	res, err := Run(ctx, Options{Definition: []byte(def), Input: []byte(`{"items":["a","b","c","d"]}`), Invoke: invoke, RetryInterval: zero(), Stderr: testWriter{t}})
	if err != nil {
		t.Fatal(err)
	}
	<-killDone
	mu.Lock()
	defer mu.Unlock()
	if killErr != nil || len(killed) != 1 {
		t.Fatalf("KillFunction: %v, %v; want one pid", killed, killErr)
	}
	if res.Failed() {
		t.Fatalf("execution failed: %s: %s", res.ErrorName, res.ErrorCause)
	}
	var out []struct {
		Message string
		PID     int
	}
	if err := json.Unmarshal(res.Output, &out); err != nil {
		t.Fatalf("output %s: %v", res.Output, err)
	}
	if len(out) != 4 || out[0].Message != "a" || out[1].Message != "b" || out[2].Message != "c" || out[3].Message != "d" {
		t.Errorf("output %s, want the 4 messages in order", res.Output)
	}
	if len(out) == 4 && out[1].PID == killed[0] {
		t.Errorf("b's result came from the killed process %d", killed[0])
	}

	// b: a Runtime.ExitError, then its retry; the others once each.
	var exitErrors, successes int
	for _, inv := range res.Invocations {
		switch inv.ErrorType {
		case "Runtime.ExitError":
			exitErrors++
			var in struct{ Message string }
			json.Unmarshal(inv.Payload, &in)
			if in.Message != "b" {
				t.Errorf("Runtime.ExitError for %s, want b", inv.Payload)
			}
			if inv.Duration > 900*time.Millisecond {
				t.Errorf("the killed invocation took %v: it should end at the kill", inv.Duration)
			}
		case "":
			successes++
		default:
			t.Errorf("invocation %s failed with %s: %s", inv.Payload, inv.ErrorType, inv.ErrorMessage)
		}
	}
	if exitErrors != 1 || successes != 4 {
		t.Errorf("%d Runtime.ExitError and %d successful invocations, want 1 and 4", exitErrors, successes)
	}
	if maxInflight > 2 {
		t.Errorf("%d invocations at once, want at most MaxConcurrency 2", maxInflight)
	}
	if len(served) != 2 {
		t.Errorf("invocations served by %d emulators, want both", len(served))
	}
}

func TestPoolWaitsForAFreeEmulator(t *testing.T) {
	t.Parallel()
	empty := NewPool(nil)
	if _, err := empty.Invoke(context.Background(), "S", json.RawMessage(`{}`)); err == nil {
		t.Error("Invoke on an empty pool succeeded")
	}

	// One emulator, taken: Invoke waits until ctx ends.
	p := NewPool([]*rie.Emulator{{URL: "http://127.0.0.1:1"}})
	e := <-p.free
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := p.Invoke(ctx, "S", json.RawMessage(`{}`))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Invoke with every emulator busy: %v, want the context's deadline", err)
	}
	p.free <- e
}
