package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dsync-export/dsync-export/internal/testenv/awstest"
	"github.com/dsync-export/dsync-export/internal/testenv/proc"
	"github.com/dsync-export/dsync-export/internal/testenv/rie"
	"github.com/dsync-export/dsync-export/internal/testenv/sfn"
	"github.com/dsync-export/dsync-export/internal/testenv/snapshottest"
	"github.com/dsync-export/dsync-export/internal/testenv/workostest"
	"github.com/dsync-export/dsync-export/pkg/objstore"
	"github.com/dsync-export/dsync-export/pkg/schema"
	"github.com/dsync-export/dsync-export/pkg/snapshot"
	"github.com/dsync-export/dsync-export/pkg/verify"
)

// smWorkers is the number of emulators: the Lambda instances the Map runs at
// once (EXPORT_WORKERS, the template's MaxConcurrency).
const smWorkers = 3

// stateMachineEnv is the test bed of the state machine: the WorkOS fake with
// WorkOS's rate limits, versitygw, the real export bootstrap under one
// emulator per worker, and the definition from template.yaml.
type stateMachineEnv struct {
	fake       *workostest.Server
	dst        objstore.Store
	def        []byte
	pool       *sfn.Pool
	failDir    atomic.Value // string: a directory whose users list answers 500
	killNext   atomic.Int64 // chunk invocations left to SIGKILL mid-write
	killed     atomic.Int64
	chunkCalls atomic.Int64
	// fault, if set, answers an invocation instead of the function, as
	// Lambda does when it throttles or the runtime runs out of memory
	// (ok false: the function runs). n counts the state's invocations.
	fault atomic.Pointer[func(state string, n int64) (error, bool)]
	calls sync.Map // state -> *atomic.Int64
}

// invoke serves the execution's tasks: the export function under the
// emulators (unless a fault answers first), and ReadFailure's S3 GetObject
// (the Step Functions SDK integration) against versitygw.
func (env *stateMachineEnv) invoke(ctx context.Context, state string, payload json.RawMessage) (json.RawMessage, error) {
	c, _ := env.calls.LoadOrStore(state, new(atomic.Int64))
	n := c.(*atomic.Int64).Add(1)
	if f := env.fault.Load(); f != nil {
		if err, ok := (*f)(state, n); ok {
			return nil, err
		}
	}
	if state == "ReadFailure" {
		var in struct{ Bucket, Key string }
		if err := json.Unmarshal(payload, &in); err != nil || in.Bucket != bucket || !strings.HasPrefix(in.Key, prefix+"/") {
			return nil, fmt.Errorf("ReadFailure parameters %s: want bucket %s and a key under %s/", payload, bucket, prefix)
		}
		b, err := env.dst.Get(ctx, strings.TrimPrefix(in.Key, prefix+"/"))
		if errors.Is(err, objstore.ErrNotExist) {
			return nil, &rie.FunctionError{Type: "S3.NoSuchKeyException", Message: "The specified key does not exist."}
		}
		if err != nil {
			return nil, err
		}
		return json.Marshal(map[string]string{"Body": string(b), "ContentType": "application/json"})
	}
	return env.pool.Invoke(ctx, state, payload)
}

// callsOf returns how many times state was invoked.
func (env *stateMachineEnv) callsOf(state string) int64 {
	if c, ok := env.calls.Load(state); ok {
		return c.(*atomic.Int64).Load()
	}
	return 0
}

// setFault installs f (nil: none) and resets the call counts.
func (env *stateMachineEnv) setFault(f func(state string, n int64) (error, bool)) {
	env.calls.Clear()
	if f == nil {
		env.fault.Store(nil)
		return
	}
	env.fault.Store(&f)
}

func startStateMachineEnv(t *testing.T, ctx context.Context) *stateMachineEnv {
	t.Helper()
	root, err := proc.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	if err := sfn.EnsureInstalled(ctx); err != nil {
		t.Fatal(err)
	}
	emulator, err := rie.BuildEmulator(ctx, filepath.Join(root, "bin"))
	if err != nil {
		t.Fatal(err)
	}
	boot, err := rie.BuildBootstrap(ctx, "./functions/export", filepath.Join(t.TempDir(), "export"))
	if err != nil {
		t.Fatal(err)
	}
	env := &stateMachineEnv{}
	env.failDir.Store("")
	// Three directories of 1,200 users: at 4 req/s per directory each takes
	// several 5-second chunks.
	failing := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if d := env.failDir.Load().(string); d != "" && strings.HasSuffix(r.URL.Path, "/directory_users") && r.URL.Query().Get("directory") == d {
				http.Error(w, "<html>502 Bad Gateway</html>", http.StatusBadGateway)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
	fake, base := workostest.Start(t, workostest.Config{APIKey: "sk_test_sm", Seed: 31, Directories: 3, UsersPerDirectory: 1200, GroupsPerDirectory: 6, RateLimit: true, Latency: 5 * time.Millisecond}, failing)
	env.fake = fake
	s3srv := awstest.StartS3(t)
	s3srv.CreateBucket(t, bucket)
	env.dst, err = objstore.Open(ctx, "s3://"+bucket+"/"+prefix, objstore.Options{S3Client: s3srv.Client(t)})
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{
		"PATH": os.Getenv("PATH"), "HOME": os.Getenv("HOME"),
		// A short function timeout, so that a directory takes many chunks.
		"AWS_LAMBDA_FUNCTION_TIMEOUT": "5",
		"EXPORT_DEADLINE_MARGIN":      "2s",
		"EXPORT_PROGRESS_EVERY":       "1s",
		"EXPORT_WORKERS":              "3",
		"EXPORT_DESTINATION":          "s3://" + bucket + "/" + prefix,
		"WORKOS_API_KEY":              "sk_test_sm",
		"WORKOS_BASE_URL":             base,
		"WORKOS_MAX_ATTEMPTS":         "2",
	}
	for k, v := range s3srv.Env() {
		vars[k] = v
	}
	var envList []string
	for k, v := range vars {
		envList = append(envList, k+"="+v)
	}
	var emulators []*rie.Emulator
	for range smWorkers {
		e, err := rie.Start(ctx, emulator, boot, envList)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("emulator %s logs:\n%s", e.URL, e.Logs())
			}
			_ = e.Close()
		})
		emulators = append(emulators, e)
	}
	env.pool = sfn.NewPool(emulators)
	env.pool.OnInvoke = func(e *rie.Emulator, state string, _ json.RawMessage) {
		if state != "Chunk" {
			return
		}
		env.chunkCalls.Add(1)
		if env.killNext.Add(-1) >= 0 {
			// SIGKILL the bootstrap a second into the chunk: its parts'
			// multipart uploads are open and its checkpoint unwritten.
			go func() {
				time.Sleep(time.Second)
				if _, err := e.KillFunction(); err == nil {
					env.killed.Add(1)
				}
			}()
		}
	}
	env.def, err = sfn.Definition(filepath.Join(root, "template.yaml"), "ExportStateMachine",
		map[string]string{"ExportFunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:dsync-export-export", "ExportBucket": bucket, "ExportPrefix": prefix})
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// execute runs one execution of the state machine with input.
func (env *stateMachineEnv) execute(t *testing.T, ctx context.Context, input string) *sfn.Result {
	t.Helper()
	zero := time.Duration(0)
	// Plan waits for another date's run (Export.Busy) a second per retry.
	res, err := sfn.Run(ctx, sfn.Options{Definition: env.def, Input: []byte(input), Invoke: env.invoke, RetryInterval: &zero, StateRetryIntervals: map[string]time.Duration{"Plan": time.Second}})
	if err != nil {
		t.Fatalf("execution %s: %v", input, err)
	}
	return res
}

// checkCommitted checks the date's snapshot: exactly the fake's dataset,
// exactly the manifest's objects, at most one file per table per chunk, and
// verify passes.
func (env *stateMachineEnv) checkCommitted(t *testing.T, ctx context.Context, date string) *snapshot.Manifest {
	t.Helper()
	m := snapshottest.ReadManifest(t, env.dst, date)
	snapshottest.CheckExact(t, env.dst, m, snapshottest.ExpectedRows(env.fake, m.SnapshotTime))
	snapshottest.CheckObjectsAreManifest(t, env.dst, m)
	perChunk := map[string]int{}
	for _, k := range m.Keys() {
		if cp, ok := snapshot.ParseChunkPartKey(k); ok {
			perChunk[fmt.Sprintf("%s unit %s chunk %d", cp.Table, cp.Unit, cp.Chunk)]++
		}
	}
	for k, n := range perChunk {
		if n > 1 {
			t.Errorf("%s wrote %d files, want at most one", k, n)
		}
	}
	rep, err := verify.Verify(ctx, env.dst, date, verify.Options{CleanupWait: -1})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Valid {
		t.Errorf("verify failed: %+v", rep.Failed())
	}
	return m
}

// TestStateMachineUnderRuntimeEmulator runs template.yaml's state machine in
// the local interpreter, every task invoking the real export bootstrap under
// the Lambda Runtime Interface Emulator, against the WorkOS fake with its
// rate limits and versitygw:
//
//  1. a run whose directories take many 5-second chunks, one chunk SIGKILLed
//     mid-write and retried, commits the fake's dataset exactly, with no 429;
//  2. a unit that keeps failing commits nothing, the date keeps its snapshot,
//     and once the fault is gone a rerun commits;
//  3. of two executions of the same date, the later commits and the earlier
//     fails as superseded.
func TestStateMachineUnderRuntimeEmulator(t *testing.T) {
	t.Parallel() // its own fake, S3 server and emulators; mostly waits on the rate limits
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	env := startStateMachineEnv(t, ctx)
	date := time.Now().UTC().Format(schema.PartitionFormat)
	input := `{"snapshot_date":"` + date + `"}`

	// 1. Many chunks, one killed.
	env.killNext.Store(1)
	start := time.Now()
	res := env.execute(t, ctx, input)
	if res.Failed() {
		t.Fatalf("execution failed: %s: %s", res.ErrorName, res.ErrorCause)
	}
	var out struct {
		RunID string           `json:"run_id"`
		Rows  map[string]int64 `json:"rows"`
		API   struct {
			RateLimited int64 `json:"rate_limited"`
		} `json:"api"`
	}
	if err := json.Unmarshal(res.Output, &out); err != nil || out.RunID == "" {
		t.Fatalf("execution output %s: %v", res.Output, err)
	}
	if env.killed.Load() != 1 {
		t.Fatalf("%d chunks were killed, want 1", env.killed.Load())
	}
	var exits int
	units := map[string]bool{}
	for _, inv := range res.Invocations {
		if inv.ErrorType == "Runtime.ExitError" {
			exits++
		}
		if inv.State == "Chunk" {
			var p struct{ Unit string }
			_ = json.Unmarshal(inv.Payload, &p)
			units[p.Unit] = true
		}
	}
	chunks := env.chunkCalls.Load()
	if exits != 1 || chunks < int64(2*len(units)) {
		t.Errorf("%d Runtime.ExitError invocations and %d chunks for %d units: want the kill seen and units of several chunks", exits, chunks, len(units))
	}
	if st := env.fake.Stats(); st.RateLimited != 0 || out.API.RateLimited != 0 {
		t.Errorf("the fake sent %d 429s (the run counted %d): the workers must share the key's budget", st.RateLimited, out.API.RateLimited)
	}
	first := env.checkCommitted(t, ctx, date)
	if first.RunID != out.RunID {
		t.Fatalf("manifest run %s, execution output run %s", first.RunID, out.RunID)
	}
	t.Logf("run 1: %d units, %d chunk invocations (1 killed), %d files, %s", len(units), chunks, len(first.Keys()), time.Since(start).Round(time.Millisecond))

	// 2. A unit that keeps failing: its directory's users list answers 502.
	// "mode": "full" walks the directory (an incremental rerun of the date
	// would build it from the committed snapshot without listing its users).
	full := `{"snapshot_date":"` + date + `","mode":"full"}`
	env.failDir.Store(env.fake.Directories()[1].ID)
	res = env.execute(t, ctx, full)
	if !res.Failed() || res.ErrorName != "Export.Retryable" || !strings.Contains(res.ErrorCause, "502") {
		t.Fatalf("execution with a failing unit: error %q cause %q, want Export.Retryable (the unit's recorded failure) naming the 502", res.ErrorName, res.ErrorCause)
	}
	if m := env.checkCommitted(t, ctx, date); m.RunID != first.RunID {
		t.Fatalf("the failed run replaced the snapshot: manifest run %s, want %s", m.RunID, first.RunID)
	}
	if left, err := env.dst.List(ctx, snapshot.RunsPrefix(date)); err != nil || len(left) != 1 || !strings.HasSuffix(left[0].Key, "/aborted.json") {
		t.Errorf("the failed run left %v (%v), want only its aborted marker", left, err)
	}
	env.failDir.Store("")
	res = env.execute(t, ctx, input)
	if res.Failed() {
		t.Fatalf("rerun after the fault: %s: %s", res.ErrorName, res.ErrorCause)
	}
	if m := env.checkCommitted(t, ctx, date); m.RunID == first.RunID {
		t.Errorf("the rerun did not commit a new run")
	} else if m.Mode != schema.SnapshotModeIncremental || m.BaseRunID != first.RunID {
		// The rerun builds on the date's committed snapshot: its delta
		// unit ran as a Distributed Map item under the emulator.
		t.Errorf("the rerun: mode %q on base %q, want incremental on run %s", m.Mode, m.BaseRunID, first.RunID)
	}

	// 3. Two executions of the same date: B starts while A walks (in full:
	// an incremental run of this small account is over before B starts).
	waitA := env.startWhileRunning(t, ctx, full)
	time.Sleep(500 * time.Millisecond)
	resB := env.execute(t, ctx, full)
	resA := waitA()
	if resB.Failed() {
		t.Fatalf("the later execution failed: %s: %s", resB.ErrorName, resB.ErrorCause)
	}
	if !resA.Failed() || resA.ErrorName != "Export.Superseded" || !strings.Contains(resA.ErrorCause, "superseded") {
		t.Errorf("the earlier execution: failed %v, error %q cause %q; want Export.Superseded", resA.Failed(), resA.ErrorName, resA.ErrorCause)
	}
	var outB struct {
		RunID string `json:"run_id"`
	}
	_ = json.Unmarshal(resB.Output, &outB)
	if m := env.checkCommitted(t, ctx, date); m.RunID != outB.RunID {
		t.Errorf("manifest run %s, want the later execution's %s", m.RunID, outB.RunID)
	}
	// B takes the lease at the end of its plan (issue 22: a plan that fails
	// must not stop A), and A's chunk in flight stops at its next lease
	// check (EXPORT_PROGRESS_EVERY, 1 s here): for that moment both walk,
	// and a 429 or two is retried.
	if st := env.fake.Stats(); st.RateLimited > 5 {
		t.Errorf("the fake sent %d 429s over the runs, want at most a few while A stops", st.RateLimited)
	}
}
