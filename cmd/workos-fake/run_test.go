package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/dsync-export/dsync-export/internal/testenv/workostest"
)

func TestParseFlags(t *testing.T) {
	defaults := options{addr: "127.0.0.1:4100", churn: 0.01, cfg: workostest.Config{
		APIKey: "sk_test_default", Seed: 1, Directories: 3, UsersPerDirectory: 1000, GroupsPerDirectory: 10,
		Faults: workostest.Faults{Seed: 1}, ControlEndpoint: true,
	}}
	all := options{addr: "127.0.0.1:0", days: 3, churn: 0.05, cfg: workostest.Config{
		APIKey: "sk_test_x", Seed: 9, Directories: 5, UsersPerDirectory: 7, GroupsPerDirectory: 2,
		LegacyGroups: true, Latency: 50 * time.Millisecond, RateLimit: true,
		Faults: workostest.Faults{Seed: 9, ServerError: 0.1, RateLimited: 0.1, Reset: 0.1, Truncate: 0.1}, ControlEndpoint: true,
		Metadata: workostest.MetadataNone, Hostile: workostest.Hostile{Seed: 4, SwapInPage: true, Silent: 0.25},
	}}
	for _, tc := range []struct {
		args []string
		want options
	}{
		{nil, defaults},
		{[]string{"--addr=127.0.0.1:0", "--api-key", "sk_test_x", "--directories", "5", "--users=7", "--groups=2",
			"--seed=9", "--latency=50ms", "--rate-limit=workos", "--fault-rate=0.4", "--legacy-groups", "--days=3", "-churn", "0.05",
			"--metadata=none", "--hostile=swap,silent=0.25,seed=4"}, all},
		{[]string{"-rate-limit", "off", "-users", "0"}, func() options { o := defaults; o.cfg.UsersPerDirectory = 0; return o }()},
	} {
		got, err := parseFlags(tc.args, io.Discard)
		if err != nil {
			t.Errorf("parseFlags(%q): %v", tc.args, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(options{}), cmpopts.IgnoreFields(workostest.Config{}, "Sizes")); diff != "" {
			t.Errorf("parseFlags(%q) (-want +got):\n%s", tc.args, diff)
		}
	}
}

func TestBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--rate-limit=sometimes"}, `--rate-limit is "sometimes": want off or workos`},
		{[]string{"--metadata=some"}, `--metadata is "some": want mixed, all or none`},
		{[]string{"--hostile=chaos"}, `--hostile: workostest: unknown hostile mode "chaos"`},
		{[]string{"--hostile=early=2"}, "--hostile: workostest: Hostile.EarlyCreatedAt is 2"},
		{[]string{"--fault-rate=1.5"}, "--fault-rate is 1.5"},
		{[]string{"--fault-rate=-0.1"}, "--fault-rate is -0.1"},
		{[]string{"--directories=-1"}, "must not be negative"},
		{[]string{"--users=many"}, `invalid value "many" for flag -users`},
		{[]string{"--latency=soon"}, `invalid value "soon" for flag -latency`},
		{[]string{"--latency=-1s"}, "--latency is -1s"},
		{[]string{"--api-key="}, "--api-key is empty"},
		{[]string{"--days=-1"}, "--days is -1"},
		{[]string{"--churn=-0.5"}, "--churn is -0.5"},
		{[]string{"--churn=NaN"}, "--churn is NaN"},
		{[]string{"--nope"}, "flag provided but not defined: -nope"},
		{[]string{"serve"}, `unexpected argument "serve"`},
		{[]string{"--directories=20000"}, "Directories is 20000"},
	} {
		var stdout, stderr strings.Builder
		code := run(context.Background(), tc.args, &stdout, &stderr)
		if code != 2 || !strings.Contains(stderr.String(), tc.want) || stdout.Len() != 0 {
			t.Errorf("run(%q) = %d, stderr %q; want 2 and %q", tc.args, code, stderr.String(), tc.want)
		}
	}
	var stderr strings.Builder
	if code := run(context.Background(), []string{"--help"}, io.Discard, &stderr); code != 0 || !strings.Contains(stderr.String(), "-rate-limit") {
		t.Errorf("--help: %d %q", code, stderr.String())
	}
}

// lineWriter sends each written line to a channel.
type lineWriter struct{ lines chan string }

func (w lineWriter) Write(b []byte) (int, error) {
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		w.lines <- sc.Text()
	}
	return len(b), nil
}

func TestRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout := lineWriter{make(chan string, 10)}
	var stderr strings.Builder
	done := make(chan int)
	go func() {
		done <- run(ctx, []string{"--addr=127.0.0.1:0", "--directories=2", "--users=5", "--groups=1", "--api-key=sk_test_run"}, stdout, &stderr)
	}()
	var base string
	select {
	case base = <-stdout.lines:
	case code := <-done:
		t.Fatalf("run exited with %d: %s", code, stderr.String())
	case <-time.After(10 * time.Second):
		t.Fatal("no base URL printed")
	}
	if !strings.HasPrefix(base, "http://127.0.0.1:") || !strings.HasSuffix(base, "/") {
		t.Fatalf("printed %q, want a base URL", base)
	}
	req, _ := http.NewRequest("GET", base+"directories", nil)
	req.Header.Set("Authorization", "Bearer sk_test_run")
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var l struct{ Data []json.RawMessage }
	err = json.NewDecoder(resp.Body).Decode(&l)
	resp.Body.Close()
	client.CloseIdleConnections()
	if err != nil || resp.StatusCode != 200 || len(l.Data) != 2 {
		t.Fatalf("GET /directories: %d, %d directories, %v", resp.StatusCode, len(l.Data), err)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit code %d after cancel", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not stop")
	}
	if s := stderr.String(); !strings.Contains(s, "after 1 requests (1 pages") || strings.Contains(s, "sk_test_run") {
		t.Errorf("stderr %q: want a summary and no API key", s)
	}
}

func TestRunListenError(t *testing.T) {
	var stderr strings.Builder
	if code := run(context.Background(), []string{"--addr=256.0.0.1:1"}, io.Discard, &stderr); code != 1 || !strings.Contains(stderr.String(), "listen") {
		t.Errorf("bad address: %d %q", code, stderr.String())
	}
}

// TestRunDays simulates days of changes before serving, and moves the clock
// on with POST /_fake/advance.
func TestRunDays(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout := lineWriter{make(chan string, 10)}
	var stderr strings.Builder
	done := make(chan int)
	go func() {
		done <- run(ctx, []string{"--addr=127.0.0.1:0", "--directories=2", "--users=50", "--groups=3", "--days=3", "--churn=0.2"}, stdout, &stderr)
	}()
	var base string
	select {
	case base = <-stdout.lines:
	case code := <-done:
		t.Fatalf("run exited with %d: %s", code, stderr.String())
	case <-time.After(10 * time.Second):
		t.Fatal("no base URL printed")
	}
	client := &http.Client{Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	call := func(method, path string, v any) int {
		req, _ := http.NewRequest(method, base+path, nil)
		req.Header.Set("Authorization", "Bearer "+workostest.DefaultAPIKey)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		return resp.StatusCode
	}
	var l struct{ Data []json.RawMessage }
	if code := call("GET", "events?events=dsync.user.updated&limit=100", &l); code != 200 || len(l.Data) == 0 {
		t.Errorf("GET /events after --days=3: %d, %d events", code, len(l.Data))
	}
	var r struct{ Events int }
	if code := call("POST", "_fake/advance?hours=12&churn=0.5", &r); code != 200 || r.Events == 0 {
		t.Errorf("POST /_fake/advance: %d, %+v", code, r)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("exit code %d", code)
	}
	if s := stderr.String(); !strings.Contains(s, "simulated 3 days at churn 0.2: ") {
		t.Errorf("stderr %q: want the simulated days", s)
	}
}
