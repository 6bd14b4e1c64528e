package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dsync-export/dsync-export/internal/testenv/proc"
	"github.com/dsync-export/dsync-export/internal/testenv/rie"
	"github.com/dsync-export/dsync-export/internal/testenv/sfn"
	"github.com/dsync-export/dsync-export/internal/testenv/snapshottest"
	"github.com/dsync-export/dsync-export/pkg/schema"
	"github.com/dsync-export/dsync-export/pkg/snapshot"
)

// Issue 22: every failure path of the state machine ends clean, and one
// bad run never costs a good one. The real definition runs in the local
// interpreter, every task invoking the real export bootstrap under the
// runtime emulator (faults that only Lambda produces, throttling and
// out-of-memory exits, are answered in its place).

// runID is an execution's run id from its output (or its plan invocation).
func runID(t *testing.T, res *sfn.Result) string {
	t.Helper()
	var out struct {
		RunID string `json:"run_id"`
	}
	if res.Output != nil {
		_ = json.Unmarshal(res.Output, &out)
		return out.RunID
	}
	for _, inv := range res.Invocations {
		if inv.State == "Plan" && inv.Output != nil {
			_ = json.Unmarshal(inv.Output, &out)
		}
	}
	return out.RunID
}

// runsLeft lists what runs of date left under _runs/ and _leases/active/.
func (env *stateMachineEnv) runsLeft(t *testing.T, ctx context.Context, date string) []string {
	t.Helper()
	var keys []string
	for _, p := range []string{snapshot.RunsPrefix(date), snapshot.ActiveDir + "/dt=" + date + "/"} {
		objs, err := env.dst.List(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			keys = append(keys, o.Key)
		}
	}
	return keys
}

// startWhileRunning runs input in the background and returns once its
// first chunk has started; wait returns its result.
func (env *stateMachineEnv) startWhileRunning(t *testing.T, ctx context.Context, input string) (wait func() *sfn.Result) {
	t.Helper()
	var wg sync.WaitGroup
	var res *sfn.Result
	started := env.chunkCalls.Load()
	wg.Go(func() { res = env.execute(t, ctx, input) })
	for env.chunkCalls.Load() == started && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	return func() *sfn.Result { wg.Wait(); return res }
}

func TestStateMachineFailurePaths(t *testing.T) {
	t.Parallel() // its own fake, S3 server and emulators; mostly waits on the rate limits
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	env := startStateMachineEnv(t, ctx)
	today := time.Now().UTC().Format(schema.PartitionFormat)
	yesterday := time.Now().UTC().AddDate(0, 0, -1).Format(schema.PartitionFormat)

	t.Run("overlapping dates: the later waits, both commit", func(t *testing.T) {
		waitA := env.startWhileRunning(t, ctx, `{"snapshot_date":"`+yesterday+`","force":true,"mode":"full"}`)
		resB := env.execute(t, ctx, `{}`)
		resA := waitA()
		if resA.Failed() || resB.Failed() {
			t.Fatalf("A (%s): %s %s; B (today): %s %s; want both committed", yesterday, resA.ErrorName, resA.ErrorCause, resB.ErrorName, resB.ErrorCause)
		}
		busy := 0
		for _, inv := range resB.Invocations {
			if inv.State == "Plan" && inv.ErrorType == "Export.Busy" {
				busy++
			}
		}
		if busy == 0 {
			t.Errorf("today's plan never waited for %s's run (no Export.Busy): the runs overlapped", yesterday)
		}
		a, b := env.checkCommitted(t, ctx, yesterday), env.checkCommitted(t, ctx, today)
		if a.RunID != runID(t, resA) || b.RunID != runID(t, resB) {
			t.Errorf("manifests name runs %s and %s, want the executions' %s and %s", a.RunID, b.RunID, runID(t, resA), runID(t, resB))
		}
		if st := env.fake.Stats(); st.RateLimited != 0 {
			t.Errorf("the fake sent %d 429s: the dates shared the key's budget", st.RateLimited)
		}
		t.Logf("today's plan waited %d times for %s's run", busy, yesterday)
	})

	t.Run("a failed plan leaves the running run of its date alone", func(t *testing.T) {
		waitA := env.startWhileRunning(t, ctx, `{"snapshot_date":"`+today+`","mode":"full"}`)
		resB := env.execute(t, ctx, `{"snapshot_date":"`+today+`","directory_ids":["directory_01TYPO0000000000000000000"]}`)
		resA := waitA()
		if !resB.Failed() || resB.ErrorName != "Export.Failed" || !strings.Contains(resB.ErrorCause, "directory_01TYPO") {
			t.Errorf("the mistyped execution: %s %s, want Export.Failed naming the directory", resB.ErrorName, resB.ErrorCause)
		}
		if resA.Failed() {
			t.Fatalf("the running execution failed: %s: %s", resA.ErrorName, resA.ErrorCause)
		}
		if m := env.checkCommitted(t, ctx, today); m.RunID != runID(t, resA) {
			t.Errorf("manifest run %s, want the running execution's %s", m.RunID, runID(t, resA))
		}
		if left := env.runsLeft(t, ctx, today); len(left) > 0 {
			t.Errorf("left under _runs and _leases/active: %v", left)
		}
	})

	committed := func() string { return snapshottest.ReadManifest(t, env.dst, today).RunID }

	t.Run("an Abort throttled twice cleans up and reports the unit's error", func(t *testing.T) {
		before := committed()
		env.failDir.Store(env.fake.Directories()[1].ID)
		defer env.failDir.Store("")
		env.setFault(func(state string, n int64) (error, bool) {
			if state == "Abort" && n <= 2 {
				return &rie.FunctionError{Type: "Lambda.TooManyRequestsException", Message: "Rate Exceeded."}, true
			}
			return nil, false
		})
		defer env.setFault(nil)
		res := env.execute(t, ctx, `{"snapshot_date":"`+today+`","mode":"full"}`)
		if !res.Failed() || res.ErrorName != "Export.Retryable" || !strings.Contains(res.ErrorCause, "502") {
			t.Errorf("execution: %s %s, want the unit's Export.Retryable naming the 502", res.ErrorName, res.ErrorCause)
		}
		if n := env.callsOf("Abort"); n != 3 {
			t.Errorf("Abort ran %d times, want 3 (throttled twice)", n)
		}
		if env.callsOf("UnitFailed") == 0 || env.callsOf("ReadFailure") != 1 {
			t.Errorf("UnitFailed %d, ReadFailure %d: want the unit's error recorded and read", env.callsOf("UnitFailed"), env.callsOf("ReadFailure"))
		}
		if left := env.runsLeft(t, ctx, today); len(left) != 1 || !strings.HasSuffix(left[0], "/aborted.json") {
			t.Errorf("the aborted run left %v, want only its aborted marker", left)
		}
		if after := committed(); after != before {
			t.Errorf("the failed run replaced the snapshot: %s, want %s", after, before)
		}
	})

	t.Run("an Abort that never runs still reports the unit's error", func(t *testing.T) {
		env.failDir.Store(env.fake.Directories()[2].ID)
		env.setFault(func(state string, n int64) (error, bool) {
			if state == "Abort" {
				return &rie.FunctionError{Type: "Lambda.TooManyRequestsException", Message: "Rate Exceeded."}, true
			}
			return nil, false
		})
		res := env.execute(t, ctx, `{"snapshot_date":"`+today+`","mode":"full"}`)
		env.setFault(nil)
		env.failDir.Store("")
		if !res.Failed() || res.ErrorName != "Export.Retryable" || !strings.Contains(res.ErrorCause, "502") {
			t.Errorf("execution: %s %s, want the unit's Export.Retryable naming the 502 (read by ReadFailure)", res.ErrorName, res.ErrorCause)
		}
		// The run's files stay (nobody deleted them), and it blocks no
		// other date (its failure is recorded); a rerun of the date commits
		// and removes them.
		res = env.execute(t, ctx, `{"snapshot_date":"`+today+`"}`)
		if res.Failed() {
			t.Fatalf("rerun: %s %s", res.ErrorName, res.ErrorCause)
		}
		env.checkCommitted(t, ctx, today)
		if left := env.runsLeft(t, ctx, today); len(left) > 0 {
			t.Errorf("after the rerun's commit: %v left", left)
		}
	})

	for _, name := range []string{"Runtime.OutOfMemory", "Export.Panic"} {
		t.Run(name+" is retried once, then reported by name", func(t *testing.T) {
			env.setFault(func(state string, n int64) (error, bool) {
				if state == "Chunk" && n == 1 {
					return &rie.FunctionError{Type: name, Message: "RequestId: 1 Error: Runtime exited with error: signal: killed"}, true
				}
				return nil, false
			})
			res := env.execute(t, ctx, `{"snapshot_date":"`+today+`"}`)
			if res.Failed() {
				t.Fatalf("one %s: %s %s, want it retried and the run committed", name, res.ErrorName, res.ErrorCause)
			}
			env.setFault(func(state string, n int64) (error, bool) {
				if state == "Chunk" {
					return &rie.FunctionError{Type: name, Message: "RequestId: 1 Error: Runtime exited with error: signal: killed"}, true
				}
				return nil, false
			})
			res = env.execute(t, ctx, `{"snapshot_date":"`+today+`"}`)
			chunks := env.callsOf("Chunk")
			env.setFault(nil)
			if !res.Failed() || res.ErrorName != name {
				t.Errorf("%s on every attempt: %s %s, want the execution to fail with %s", name, res.ErrorName, res.ErrorCause, name)
			}
			if chunks != 2 {
				t.Errorf("%d chunk invocations, want 2 (one retry)", chunks)
			}
			if left := env.runsLeft(t, ctx, today); len(left) != 1 || !strings.HasSuffix(left[0], "/aborted.json") {
				t.Errorf("the failed run left %v, want only its aborted marker", left)
			}
		})
	}
}

// TestStateMachineMapOf5000Units: a plan of 5,000 units (half MaxUnits)
// runs through the real definition, and what the state machine carries
// stays within Step Functions' 256 KiB payload limit: the plan's output
// and the Map's collected output ({} per unit). The function is a Go fake
// here: only the payloads' sizes are measured.
func TestStateMachineMapOf5000Units(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	root, err := proc.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	def, err := sfn.Definition(filepath.Join(root, "template.yaml"), "ExportStateMachine",
		map[string]string{"ExportFunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:dsync-export-export", "ExportBucket": bucket, "ExportPrefix": prefix})
	if err != nil {
		t.Fatal(err)
	}
	// Keep the Map's collected output (the real definition drops it with
	// ResultPath null) to measure it: the Map's result goes to $.units_out,
	// and Commit is replaced by a Pass that ends the execution with it.
	var asl map[string]any
	if err := json.Unmarshal(def, &asl); err != nil {
		t.Fatal(err)
	}
	states := asl["States"].(map[string]any)
	states["Units"].(map[string]any)["ResultPath"] = "$.units_out"
	states["Commit"] = map[string]any{"Type": "Pass", "OutputPath": "$.units_out", "End": true}
	def, _ = json.Marshal(asl)

	const units = 5000
	ids := make([]string, units)
	for i := range ids {
		ids[i] = fmt.Sprintf("%04d", i)
	}
	const limit = 256 << 10
	var planOut []byte
	res, err := sfn.Run(ctx, sfn.Options{Definition: def, Input: []byte(`{}`), Invoke: func(ctx context.Context, state string, payload json.RawMessage) (json.RawMessage, error) {
		switch state {
		case "Plan":
			out, err := json.Marshal(map[string]any{"step": "plan", "snapshot_date": "2026-12-08", "run_id": "20261208T020000.000Z-000000", "units": ids, "workers": 200, "directories": units})
			planOut = out
			return out, err
		case "Chunk":
			return json.RawMessage(`{"step":"unit","unit":"x","chunk":1,"done":true,"files":1,"rows":{"directory_users":1}}`), nil
		}
		return nil, fmt.Errorf("unexpected state %s", state)
	}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Failed() {
		t.Fatalf("execution failed: %s %s", res.ErrorName, res.ErrorCause)
	}
	var collected []json.RawMessage
	if err := json.Unmarshal(res.Output, &collected); err != nil || len(collected) != units {
		t.Fatalf("the Map's output: %d items (%v), want %d", len(collected), err, units)
	}
	for _, c := range collected {
		if string(c) != "{}" {
			t.Fatalf("a unit's output is %s, want {}", c)
		}
	}
	// The plan's output as the Plan state stores it, and the Map's output.
	t.Logf("5,000 units: plan output %d bytes, Map output %d bytes (limit %d)", len(planOut), len(res.Output), limit)
	if len(planOut) > limit/4 || len(res.Output) > limit/4 {
		t.Errorf("plan output %d bytes, Map output %d bytes: want each under a quarter of the %d-byte limit at half MaxUnits", len(planOut), len(res.Output), limit)
	}
}
