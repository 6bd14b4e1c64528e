package main

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/dsync-export/dsync-export/internal/testenv/proc"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dsync-export/dsync-export/internal/samtemplate"
)

const testTemplate = `
Parameters:
  Prefix: {Type: String, Default: workos}
  Secret: {Type: String}
  Memory: {Type: Number, Default: 640}
Globals:
  Function:
    Timeout: 60
Resources:
  ExportFunction:
    Type: AWS::Serverless::Function
    Properties:
      Timeout: 900
      MemorySize: !Ref Memory
      Environment:
        Variables:
          EXPORT_DESTINATION: !Sub "s3://bucket/${Prefix}"
          WORKOS_API_KEY_SECRET_ID: !Ref Secret
          WORKOS_API_KEY: ""
          LOG_LEVEL: info
          AWS_ENDPOINT_URL_S3: ""
  VerifyFunction:
    Type: AWS::Serverless::Function
    Properties:
      Environment:
        Variables:
          EXPORT_DESTINATION: x
`

func testFunction(t *testing.T, id string) (samtemplate.Function, []samtemplate.Function) {
	t.Helper()
	tmpl, err := samtemplate.Parse([]byte(testTemplate))
	if err != nil {
		t.Fatal(err)
	}
	fn, err := tmpl.Function(id)
	if err != nil {
		t.Fatal(err)
	}
	all, err := tmpl.Functions()
	if err != nil {
		t.Fatal(err)
	}
	return fn, all
}

func TestFunctionEnv(t *testing.T) {
	fn, _ := testFunction(t, "ExportFunction")
	host := []string{
		"AWS_ACCESS_KEY_ID=AKIDEXAMPLE",
		"AWS_SECRET_ACCESS_KEY=secret",
		"AWS_ENDPOINT_URL_S3=http://host-value", // the template's "" wins, as in sam's container
		"AWS_LAMBDA_FUNCTION_TIMEOUT=5",         // the emulator's, never the host's
		"HOME=/home/me",
		"GOPATH=/go", // not passed
		"LOG_LEVEL=debug",
	}
	file := envFile{
		"Parameters":     {"LOG_LEVEL": "warn", "NOT_DECLARED_GLOBAL": "ignored like sam does"},
		"ExportFunction": {"WORKOS_API_KEY": "sk_test_default", "LOG_LEVEL": "debug"},
		"VerifyFunction": {"EXPORT_DESTINATION": "other"},
	}
	got, err := functionEnv(fn, file, host, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"AWS_ACCESS_KEY_ID=AKIDEXAMPLE",
		"AWS_DEFAULT_REGION=us-east-1",
		"AWS_ENDPOINT_URL_S3=",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=640",
		"AWS_LAMBDA_FUNCTION_NAME=ExportFunction",
		"AWS_LAMBDA_FUNCTION_TIMEOUT=900",
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_REGION=us-east-1",
		"AWS_SECRET_ACCESS_KEY=secret",
		"EXPORT_DESTINATION=s3://bucket/workos",
		"HOME=/home/me",
		"LOG_LEVEL=debug",
		"TZ=:UTC",
		"WORKOS_API_KEY=sk_test_default",
		"WORKOS_API_KEY_SECRET_ID=",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("environment (-want +got):\n%s", diff)
	}

	// --timeout overrides the template; a host region is kept.
	got, err = functionEnv(fn, nil, []string{"AWS_DEFAULT_REGION=eu-west-1"}, 30)
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range []string{"AWS_LAMBDA_FUNCTION_TIMEOUT=30", "AWS_REGION=eu-west-1", "AWS_DEFAULT_REGION=eu-west-1", "LOG_LEVEL=info"} {
		if !contains(got, kv) {
			t.Errorf("environment lacks %s: %q", kv, got)
		}
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func TestFunctionEnvErrors(t *testing.T) {
	fn, all := testFunction(t, "ExportFunction")
	_, err := functionEnv(fn, envFile{"ExportFunction": {"EXPORT_TYPO": "1"}}, nil, 0)
	if err == nil || !strings.Contains(err.Error(), "sets EXPORT_TYPO for ExportFunction, but template.yaml does not declare it") {
		t.Errorf("undeclared variable: error = %v", err)
	}
	if err := checkSections(envFile{"ExportFuncton": {}}, all); err == nil || !strings.Contains(err.Error(), `"ExportFuncton" names no function`) {
		t.Errorf("unknown section: error = %v", err)
	}
	if err := checkSections(envFile{"Parameters": {}, "VerifyFunction": {}}, all); err != nil {
		t.Errorf("known sections: %v", err)
	}

	dir := t.TempDir()
	path := filepath.Join(dir, "env.json")
	os.WriteFile(path, []byte(`{"ExportFunction":{"EXPORT_CONCURRENCY":4}}`), 0o644)
	if _, err := readEnvFile(path); err == nil || !strings.Contains(err.Error(), `ExportFunction.EXPORT_CONCURRENCY is 4: write it as a JSON string, e.g. "4"`) {
		t.Errorf("number value: error = %v", err)
	}
	os.WriteFile(path, []byte(`{"ExportFunction":`), 0o644)
	if _, err := readEnvFile(path); err == nil || !strings.Contains(err.Error(), "want {") {
		t.Errorf("bad JSON: error = %v", err)
	}
	os.WriteFile(path, []byte(`{"snapshot_date":`), 0o644)
	if _, err := readEvent(path, nil); err == nil || !strings.Contains(err.Error(), "not valid JSON") {
		t.Errorf("bad event: error = %v", err)
	}
}

// TestRunEcho runs the whole command with the test echo function standing in
// for the export: build, emulator, template and env.json environment, invoke.
func TestRunEcho(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	event := filepath.Join(dir, "event.json")
	names := []string{"EXPORT_DESTINATION", "WORKOS_API_KEY", "WORKOS_API_KEY_SECRET_ID", "AWS_REGION", "AWS_ACCESS_KEY_ID", "GOFLAGS"}
	b, _ := json.Marshal(map[string]any{"message": "from cmd/invoke", "env": names})
	if err := os.WriteFile(event, b, 0o644); err != nil {
		t.Fatal(err)
	}
	common := []string{"--package", "./internal/testenv/rie/testdata/echo", "--out", dir, "--env", "../../events/env.json"}

	var stdout, stderr bytes.Buffer
	code := run(ctx, append([]string{"--function", "export", "--event", event}, common...), nil, &stdout, &stderr,
		[]string{"AWS_ACCESS_KEY_ID=AKIDLOCAL", "GOFLAGS=-mod=mod"})
	if code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout.String(), stderr.String())
	}
	var out struct {
		Message      string            `json:"message"`
		RemainingMS  int64             `json:"remaining_ms"`
		FunctionName string            `json:"function_name"`
		Env          map[string]string `json:"env"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatalf("stdout %q: %v", stdout.String(), err)
	}
	want := map[string]string{
		"EXPORT_DESTINATION":       "s3://dsync-export-local/workos", // env.json
		"WORKOS_API_KEY":           "sk_test_default",                // env.json
		"WORKOS_API_KEY_SECRET_ID": "",                               // env.json
		"AWS_REGION":               "us-east-1",                      // default
		"AWS_ACCESS_KEY_ID":        "AKIDLOCAL",                      // host credentials
	}
	if diff := cmp.Diff(want, out.Env); diff != "" {
		t.Errorf("function environment (-want +got):\n%s", diff)
	}
	if out.Message != "from cmd/invoke" || out.FunctionName != "ExportFunction" {
		t.Errorf("output = %+v", out)
	}
	// template.yaml's Timeout: 900 is the deadline.
	if out.RemainingMS < 890_000 || out.RemainingMS > 900_000 {
		t.Errorf("remaining %d ms, want about 900000 (template Timeout)", out.RemainingMS)
	}
	if !strings.Contains(stderr.String(), "REPORT RequestId:") || !strings.Contains(stderr.String(), "Memory Size: 512 MB") {
		t.Errorf("stderr lacks the function's REPORT line with the template's memory:\n%s", stderr.String())
	}

	// A function error exits 1 and names the error.
	os.WriteFile(event, []byte(`{"message":"nope","fail":true}`), 0o644)
	stdout.Reset()
	stderr.Reset()
	code = run(ctx, append([]string{"--function", "verify", "--event", event}, common...), nil, &stdout, &stderr, nil)
	if code != 1 {
		t.Errorf("failing function: exit %d, want 1\nstderr: %s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "invoke: VerifyFunction failed: errorString: echo: failing as asked: nope") {
		t.Errorf("stderr lacks the function error:\n%s", stderr.String())
	}
	if !strings.Contains(stdout.String(), `"errorMessage"`) {
		t.Errorf("stdout lacks the error payload: %s", stdout.String())
	}
}

func TestRunUsageErrors(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "usage: go run ./cmd/invoke"},
		{[]string{"--function", "export"}, "usage:"},
		{[]string{"--function", "nope", "--event", "x.json"}, `--function "nope": use export or verify`},
		{[]string{"--function", "export", "--event", "x.json", "--template", "does-not-exist.yaml"}, "invoke: samtemplate: open does-not-exist.yaml"},
		{[]string{"--function", "export", "--event", "does-not-exist.json", "--package", "./x"}, "invoke: read the event"},
		{[]string{"--function", "export", "--event", "x.json", "--env", "does-not-exist.json"}, "invoke: open does-not-exist.json"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(ctx, tc.args, nil, &stdout, &stderr, nil); code != 2 {
			t.Errorf("%q: exit %d, want 2", tc.args, code)
		}
		if !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%q: stderr %q lacks %q", tc.args, stderr.String(), tc.want)
		}
	}
}

func TestMoveDatesToToday(t *testing.T) {
	now := time.Date(2026, 12, 6, 20, 0, 0, 0, time.UTC)
	in := []byte(`{"time":"2026-11-28T02:00:00Z","detail":{"object":{"key":"workos/_manifests/dt=2026-11-28/manifest.json"}},"id":"cdc73f9d-aea9-11e3"}`)
	want := `{"time":"2026-12-06T02:00:00Z","detail":{"object":{"key":"workos/_manifests/dt=2026-12-06/manifest.json"}},"id":"cdc73f9d-aea9-11e3"}`
	if got := string(moveDatesTo(in, now)); got != want {
		t.Errorf("moveDatesTo:\n got %s\nwant %s", got, want)
	}
}

// The real template's LoggingConfig reaches the function as Lambda passes
// it, so a local invoke logs like the deployed function.
func TestFunctionEnvFollowsLoggingConfig(t *testing.T) {
	root, err := proc.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := samtemplate.Load(filepath.Join(root, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"ExportFunction", "VerifyFunction"} {
		fn, err := tmpl.Function(id)
		if err != nil {
			t.Fatal(err)
		}
		got, err := functionEnv(fn, nil, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, kv := range []string{"AWS_LAMBDA_LOG_FORMAT=JSON", "AWS_LAMBDA_LOG_LEVEL=INFO"} {
			if !contains(got, kv) {
				t.Errorf("%s: environment lacks %s: %q", id, kv, got)
			}
		}
	}
}
