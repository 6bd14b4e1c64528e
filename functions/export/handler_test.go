package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda/messages"
	"github.com/dsync-export/dsync-export/pkg/workos"
	"log/slog"
	"math"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dsync-export/dsync-export/internal/testenv/awstest"
	"github.com/dsync-export/dsync-export/internal/testenv/workostest"
	"github.com/dsync-export/dsync-export/pkg/export"
	"github.com/dsync-export/dsync-export/pkg/objstore"
	"github.com/dsync-export/dsync-export/pkg/schema"
	"github.com/dsync-export/dsync-export/pkg/snapshot"
	"github.com/dsync-export/dsync-export/pkg/verify"
)

// cloud starts the three services the Lambda talks to: the WorkOS fake, a
// real S3 server (versitygw) and the Secrets Manager fake, sharing one set of
// AWS credentials, and points the process environment at them.
type cloud struct {
	fake *workostest.Server
	s3   *awstest.S3Server
	sm   *awstest.SecretsManager
	env  map[string]string
}

func startCloud(t *testing.T, secretValue string) *cloud {
	t.Helper()
	fake, err := workostest.New(workostest.Config{APIKey: "sk_test_handler", Seed: 4, Directories: 2, UsersPerDirectory: 150, GroupsPerDirectory: 5})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	s3srv := awstest.StartS3(t)
	s3srv.CreateBucket(t, "datalake")
	sm := awstest.StartSecretsManager(t, map[string]string{"prod/workos": secretValue})
	sm.SetCredentials(s3srv.AccessKey, s3srv.SecretKey)
	c := &cloud{fake: fake, s3: s3srv, sm: sm, env: map[string]string{}}
	for k, v := range s3srv.Env() {
		t.Setenv(k, v)
	}
	for k, v := range sm.Env() {
		t.Setenv(k, v)
	}
	c.env = map[string]string{
		"EXPORT_DESTINATION":                "s3://datalake/exports/workos",
		"WORKOS_API_KEY_SECRET_ID":          sm.ARN("prod/workos"),
		"WORKOS_BASE_URL":                   srv.URL,
		"EXPORT_S3_PATH_STYLE":              "true",
		"WORKOS_RATE_LIMIT_DIRECTORY_USERS": "0",
		"WORKOS_RATE_LIMIT_GLOBAL":          "0",
		"EXPORT_DEADLINE_MARGIN":            "1s",
	}
	return c
}

func (c *cloud) getenv(k string) string { return c.env[k] }

func TestHandlerExportsWithKeyFromSecretsManagerAndCachesIt(t *testing.T) {
	c := startCloud(t, `{"api_key":"sk_test_handler","note":"rotated 2026-11"}`)
	var metrics bytes.Buffer
	h, err := newHandler(context.Background(), c.getenv, discardLog, &metrics)
	if err != nil {
		t.Fatal(err)
	}
	h.now = testNow
	for i, in := range []Input{
		{ScheduledTime: "2026-11-28T13:00:00Z"}, // 23 hours late: a scheduler retry
		{CloudWatchEvent: events.CloudWatchEvent{DetailType: "Scheduled Event", Source: "aws.events", Time: time.Date(2026, 11, 29, 2, 0, 0, 0, time.UTC)}},
	} {
		out, err := h.Handle(context.Background(), in)
		if err != nil {
			t.Fatalf("invocation %d: %v", i, err)
		}
		wantDate := []string{"2026-11-28", "2026-11-29"}[i]
		if out.SnapshotDate != wantDate || out.ManifestKey != snapshot.ManifestKey(wantDate) {
			t.Errorf("invocation %d: output %+v, want date %s", i, out, wantDate)
		}
		var users int64
		for _, d := range c.fake.Directories() {
			u, _, _ := c.fake.Counts(d.ID)
			users += int64(u)
		}
		if out.Rows[schema.TableDirectoryUsers] != users || out.Rows[schema.TableDirectories] != 2 {
			t.Errorf("invocation %d: rows %v, want %d users and 2 directories", i, out.Rows, users)
		}
	}
	if n := c.sm.Calls(); n != 1 {
		t.Errorf("GetSecretValue called %d times over two warm invocations, want 1", n)
	}
	// The manifest object is in the bucket under the prefix.
	if _, err := h.sink.Get(context.Background(), snapshot.ManifestKey("2026-11-29")); err != nil {
		t.Errorf("manifest: %v", err)
	}
	// One EMF line per invocation with the success metric and rows.
	lines := strings.Split(strings.TrimSpace(metrics.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("EMF lines: %q", metrics.String())
	}
	var emf map[string]any
	if err := json.Unmarshal([]byte(lines[1]), &emf); err != nil {
		t.Fatal(err)
	}
	if emf["ExportSucceeded"] != float64(1) || emf["Rows_directory_users"] == nil || emf["_aws"] == nil {
		t.Errorf("EMF line %s", lines[1])
	}
	// The change log's health, which the stack's EventsQuarantinedAlarm watches.
	for _, name := range []string{"EventsQuarantined", "EventsDuplicates", "DirectoriesDrifted"} {
		if emf[name] != float64(0) {
			t.Errorf("EMF %s = %v, want 0 on a clean day", name, emf[name])
		}
	}
}

func TestHandlerWrongKeyNamesTheSecretAndRereadsIt(t *testing.T) {
	c := startCloud(t, "sk_test_WRONG_value_123")
	h, err := newHandler(context.Background(), c.getenv, discardLog, nil)
	if err != nil {
		t.Fatal(err)
	}
	h.now = testNow
	_, err = h.Handle(context.Background(), Input{SnapshotDate: "2026-11-29"})
	if err == nil {
		t.Fatal("want an error for a wrong key")
	}
	msg := err.Error()
	if !strings.Contains(msg, "401") || !strings.Contains(msg, "prod/workos") || strings.Contains(msg, "sk_test_WRONG_value_123") {
		t.Errorf("error %q: want the 401 and the secret named, without the key", msg)
	}
	// After the 401 the cached key is dropped: the fixed secret is used next.
	c.sm.Set("prod/workos", "sk_test_handler")
	if _, err := h.Handle(context.Background(), Input{SnapshotDate: "2026-11-29"}); err != nil {
		t.Fatalf("after rotating the secret: %v", err)
	}
	if n := c.sm.Calls(); n != 2 {
		t.Errorf("GetSecretValue calls %d, want 2 (re-read after the 401)", n)
	}
}

func TestHandlerMissingSecretAndBucketNameTheResource(t *testing.T) {
	c := startCloud(t, "sk_test_handler")
	c.env["WORKOS_API_KEY_SECRET_ID"] = "prod/does-not-exist"
	h, err := newHandler(context.Background(), c.getenv, discardLog, nil)
	if err != nil {
		t.Fatal(err)
	}
	h.now = testNow
	_, err = h.Handle(context.Background(), Input{SnapshotDate: "2026-11-29"})
	if err == nil || !strings.Contains(err.Error(), "prod/does-not-exist") {
		t.Errorf("missing secret: err %v, want it named", err)
	}

	// A secret without the configured JSON field names the secret and the
	// fields it has, never their values.
	c.sm.Set("prod/malformed", `{"apikey":"sk_test_handler_secretvalue"}`)
	c.env["WORKOS_API_KEY_SECRET_ID"] = "prod/malformed"
	if h, err = newHandler(context.Background(), c.getenv, discardLog, nil); err != nil {
		t.Fatal(err)
	}
	h.now = testNow
	_, err = h.Handle(context.Background(), Input{SnapshotDate: "2026-11-29"})
	if err == nil || !strings.Contains(err.Error(), "prod/malformed") || !strings.Contains(err.Error(), "api_key") || strings.Contains(err.Error(), "secretvalue") {
		t.Errorf("malformed secret: err %v, want the secret and the missing field named without the value", err)
	}

	c.env["WORKOS_API_KEY_SECRET_ID"] = "prod/workos"
	c.env["EXPORT_DESTINATION"] = "s3://no-such-bucket-here/x"
	h, err = newHandler(context.Background(), c.getenv, discardLog, nil)
	if err == nil {
		h.now = testNow
		_, err = h.Handle(context.Background(), Input{SnapshotDate: "2026-11-29"})
	}
	if err == nil || !strings.Contains(err.Error(), "no-such-bucket-here") {
		t.Errorf("missing bucket: err %v, want the bucket named", err)
	}
}

func TestLoadConfigNamesEveryBadVariable(t *testing.T) {
	env := map[string]string{
		"EXPORT_CONCURRENCY":       "lots",
		"EXPORT_MEMBERSHIP_MODE":   "sometimes",
		"EXPORT_DIRECTORY_IDS":     "directory_01ABC, org_123",
		"WORKOS_BASE_URL":          "api.workos.com",
		"EXPORT_S3_PATH_STYLE":     "yes please",
		"EXPORT_DEADLINE_MARGIN":   "soon",
		"WORKOS_RATE_LIMIT_GLOBAL": "-3",
		"LOG_LEVEL":                "chatty",
	}
	_, err := loadConfig(func(k string) string { return env[k] })
	if err == nil {
		t.Fatal("want an error")
	}
	for _, name := range []string{"EXPORT_DESTINATION", "WORKOS_API_KEY_SECRET_ID", "EXPORT_CONCURRENCY", "EXPORT_MEMBERSHIP_MODE",
		"EXPORT_DIRECTORY_IDS", "WORKOS_BASE_URL", "EXPORT_S3_PATH_STYLE", "EXPORT_DEADLINE_MARGIN", "WORKOS_RATE_LIMIT_GLOBAL", "LOG_LEVEL"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s:\n%v", name, err)
		}
	}
	if strings.Contains(err.Error(), "directory_01ABC") {
		t.Errorf("the valid directory ID is reported as bad:\n%v", err)
	}

	good := map[string]string{"EXPORT_DESTINATION": "s3://b/p", "WORKOS_API_KEY_SECRET_ID": "arn:aws:secretsmanager:eu-west-1:1:secret:x", "EXPORT_ORGANIZATION_IDS": "org_1,org_2"}
	cfg, err := loadConfig(func(k string) string { return good[k] })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SecretField != "api_key" || cfg.Export.Concurrency != export.DefaultConfig().Concurrency || len(cfg.Export.OrganizationIDs) != 2 || cfg.Compression != "zstd" {
		t.Errorf("defaults not applied: %+v", cfg)
	}
}

// TestEventsDecodeIntoInput walks the export's events/*.json, decodes each into
// the handler's input with unknown fields disallowed, and checks the snapshot
// date each one resolves to.
func TestEventsDecodeIntoInput(t *testing.T) {
	for file, wantTrigger := range map[string]string{
		"scheduled.json":       TriggerEventBridge,
		"scheduler.json":       TriggerScheduler,
		"manual.json":          TriggerManual,
		"manual-filtered.json": TriggerManual,
		"manual-full.json":     TriggerManual,
	} {
		b, err := os.ReadFile(filepath.Join("..", "..", "events", file))
		if err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		var in Input
		if err := dec.Decode(&in); err != nil {
			t.Errorf("%s: %v", file, err)
			continue
		}
		// The events' dates are 2026-11-28, scheduled at 02:00 UTC.
		date, trigger, err := in.Resolve(time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC), time.Time{}, "")
		if err != nil || trigger != wantTrigger {
			t.Errorf("%s: resolves to %q %q %v, want trigger %q", file, date, trigger, err, wantTrigger)
		}
		if _, err := snapshot.ParseDate(date); err != nil {
			t.Errorf("%s: %v", file, err)
		}
		cfg := export.DefaultConfig()
		if err := in.Apply(&cfg); err != nil {
			t.Errorf("%s: %v", file, err)
		}
		if err := cfg.Validate(); err != nil {
			t.Errorf("%s: overrides are invalid: %v", file, err)
		}
		if file == "manual-full.json" && cfg.Mode != export.ModeFull {
			t.Errorf("%s: mode %q, want full (a reconcile on demand)", file, cfg.Mode)
		}
		// Re-marshalling keeps every field the file had.
		again, _ := json.Marshal(in)
		var a, bb map[string]any
		_ = json.Unmarshal(b, &a)
		_ = json.Unmarshal(again, &bb)
		for k := range a {
			if _, ok := bb[k]; !ok {
				t.Errorf("%s: field %q lost in a round trip", file, k)
			}
		}
	}
}

func TestRunLocalDemoWritesASnapshot(t *testing.T) {
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	env := map[string]string{}
	code := runLocal([]string{"--demo", "--destination", dir}, func(k string) string { return env[k] }, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d\nstderr: %s", code, stderr.String())
	}
	rest := stdout.String()
	var out Output
	dec := json.NewDecoder(&stdout)
	if err := dec.Decode(&out); err != nil {
		t.Fatalf("summary is not JSON: %v\n%s", err, rest)
	}
	wantUsers := int64(demoDataset.Directories * demoDataset.UsersPerDirectory)
	if out.Rows[schema.TableDirectoryUsers] != wantUsers || out.Rows[schema.TableMemberships] == 0 {
		t.Errorf("demo rows %v, want %d users and some memberships", out.Rows, wantUsers)
	}
	today := time.Now().UTC().Format(schema.PartitionFormat)
	if out.SnapshotDate != today || !out.Demo || out.Trigger != TriggerNow {
		t.Errorf("demo output date %s demo %v trigger %q, want today %s, demo, trigger now", out.SnapshotDate, out.Demo, out.Trigger, today)
	}
	b, err := os.ReadFile(filepath.Join(dir, "_manifests", "dt="+today, "manifest.json"))
	if err != nil {
		t.Fatalf("manifest file: %v", err)
	}
	m, err := snapshot.Unmarshal(b)
	if err != nil || !m.Demo || m.RunID != out.RunID {
		t.Fatalf("manifest %v: demo %v run %q, want demo data of run %q", err, m.Demo, m.RunID, out.RunID)
	}
	if files := m.Tables[schema.TableDirectoryUsers].Files; len(files) != 1 {
		t.Errorf("users files %v, want one: one process runs one work unit of one chunk", files)
	} else if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(files[0].Key))); err != nil {
		t.Errorf("users file: %v", err)
	}
	// The follow-up commands carry the real date and include verify.
	for _, want := range []string{"go run ./functions/verify --destination " + dir + " --date " + today, "dt=" + today, `trigger "now": no date was given`} {
		if !strings.Contains(rest, want) {
			t.Errorf("next steps lack %q:\n%s", want, rest)
		}
	}
	// A second demo run into the same folder is fine: it holds demo data.
	stdout.Reset()
	if code := runLocal([]string{"--demo", "--destination", dir}, func(k string) string { return env[k] }, &stdout, &stderr); code != 0 {
		t.Fatalf("second demo run: exit %d\n%s", code, stderr.String())
	}
}

func TestDemoRefusesS3AndARealSnapshot(t *testing.T) {
	for name, tc := range map[string]struct {
		args []string
		env  map[string]string
	}{
		"s3 flag":        {args: []string{"--demo", "--destination", "s3://prod-bucket/workos"}},
		"s3 environment": {args: []string{"--demo"}, env: map[string]string{"EXPORT_DESTINATION": "s3://prod-bucket/workos"}},
	} {
		var stdout, stderr bytes.Buffer
		code := runLocal(tc.args, func(k string) string { return tc.env[k] }, &stdout, &stderr)
		if code != 2 || !strings.Contains(stderr.String(), "only to a local folder") || !strings.Contains(stderr.String(), "s3://prod-bucket/workos") {
			t.Errorf("%s: exit %d, stderr %q: want a refusal naming the destination", name, code, stderr.String())
		}
	}

	// A folder holding a real (non-demo) snapshot is refused, and left as it was.
	dir := t.TempDir()
	real := &snapshot.Manifest{FormatVersion: snapshot.FormatVersion, SnapshotDate: "2026-11-28", RunID: "20261128T020000.000Z-0a1b2c"}
	body, _ := real.Marshal()
	mk := filepath.Join(dir, filepath.FromSlash(snapshot.ManifestKey("2026-11-28")))
	if err := os.MkdirAll(filepath.Dir(mk), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(mk, body, 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := runLocal([]string{"--demo", "--destination", dir}, func(string) string { return "" }, &stdout, &stderr)
	if code != 2 || !strings.Contains(stderr.String(), "not demo data") {
		t.Fatalf("folder with a real snapshot: exit %d, stderr %q", code, stderr.String())
	}
	if after, _ := os.ReadFile(mk); !bytes.Equal(after, body) {
		t.Error("the real manifest changed")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("the demo wrote into a folder with a real snapshot: %v", entries)
	}
}

func TestHelpListsEveryVariableAndExitsZero(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := runLocal([]string{"--help"}, func(string) string { return "" }, &stdout, &stderr); code != 0 {
		t.Fatalf("--help exit %d, want 0; stderr %q", code, stderr.String())
	}
	help := stdout.String()
	for _, v := range envVars() {
		if !strings.Contains(help, v.Name) {
			t.Errorf("--help does not list %s", v.Name)
		}
	}
	for _, want := range []string{"-demo", "-snapshot-date", "-force", workos.DefaultBaseURL, "32"} {
		if !strings.Contains(help, want) {
			t.Errorf("--help lacks %q", want)
		}
	}
	// Every variable loadConfig reads is in the help: an unknown variable
	// name set to garbage must not change the result, a listed one must.
	read := map[string]bool{}
	_, _ = loadConfig(func(k string) string { read[k] = true; return "" })
	for k := range read {
		if !strings.Contains(help, k) {
			t.Errorf("loadConfig reads %s but --help does not list it", k)
		}
	}
	if code := runLocal([]string{"--no-such-flag"}, func(string) string { return "" }, &stdout, &stderr); code != 2 {
		t.Errorf("unknown flag: exit %d, want 2", code)
	}
}

func TestRunLocalWithoutKeyExplainsHowToRunTheDemo(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := runLocal(nil, func(string) string { return "" }, &stdout, &stderr)
	if code != 2 || !strings.Contains(stderr.String(), "WORKOS_API_KEY_SECRET_ID") || !strings.Contains(stderr.String(), "--demo") {
		t.Errorf("exit %d, stderr %q", code, stderr.String())
	}
}

func TestSetMemoryLimitFromLambdaMemorySize(t *testing.T) {
	env := map[string]string{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512"}
	got := setMemoryLimit(func(k string) string { return env[k] })
	defer debug.SetMemoryLimit(math.MaxInt64)
	if got != 429_496_729 { // 80% of 512 MiB
		t.Errorf("limit %d, want 80%% of 512 MiB", got)
	}
	env["GOMEMLIMIT"] = "100MiB"
	if got := setMemoryLimit(func(k string) string { return env[k] }); got != -1 {
		t.Errorf("GOMEMLIMIT set: limit %d, want untouched (-1)", got)
	}
}

func TestHandlerEmitsFailureMetricForEarlyErrors(t *testing.T) {
	env := map[string]string{"EXPORT_DESTINATION": t.TempDir(), "WORKOS_API_KEY": "sk_test_x", "WORKOS_BASE_URL": "http://127.0.0.1:1/"}
	var metrics bytes.Buffer
	h, err := newHandler(context.Background(), func(k string) string { return env[k] }, discardLog, &metrics)
	if err != nil {
		t.Fatal(err)
	}
	h.now = testNow
	for _, in := range []Input{{SnapshotDate: "2026-13-01"}, {SnapshotDate: "2026-11-28", DirectoryIDs: []string{" "}}} {
		metrics.Reset()
		if _, err := h.Handle(context.Background(), in); err == nil {
			t.Fatalf("%+v: want an error", in)
		}
		var emf map[string]any
		if err := json.Unmarshal(metrics.Bytes(), &emf); err != nil || emf["ExportSucceeded"] != float64(0) {
			t.Errorf("%+v: EMF %q (%v), want ExportSucceeded 0", in, metrics.String(), err)
		}
	}
}

func discardLog(config) *slog.Logger { return slog.New(slog.DiscardHandler) }

// testNow is the clock of handler tests: the day after the sample events
// (a manual date must be today, 2026-11-29; a scheduled one at most a day
// late).
func testNow() time.Time { return time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC) }

// TestRunLocalDemoDays: --demo-days simulates days of churn on the built-in
// fake and exports one snapshot a day; after the first, each is
// incremental, logs exactly the events the fake made that day, and
// verifies.
func TestRunLocalDemoDays(t *testing.T) {
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	env := map[string]string{"LOG_LEVEL": "error"}
	code := runLocal([]string{"--demo", "--demo-days", "3", "--destination", dir}, func(k string) string { return env[k] }, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d\nstderr: %s", code, stderr.String())
	}
	dst, err := objstore.Open(context.Background(), dir, objstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	lines := regexp.MustCompile(`demo day +(\d+) (\S+): (\S+) .*, +(\d+) new events \(the fake made (\d+)\)`).FindAllStringSubmatch(stderr.String(), -1)
	if len(lines) != 4 {
		t.Fatalf("%d day lines, want 4:\n%s", len(lines), stderr.String())
	}
	for i, l := range lines {
		wantMode := schema.SnapshotModeIncremental
		if i == 0 {
			wantMode = schema.SnapshotModeFull
		}
		if l[3] != wantMode || l[4] != l[5] || (i > 0 && l[5] == "0") {
			t.Errorf("day %s: mode %s, %s events logged of %s made; want %s and every event logged", l[1], l[3], l[4], l[5], wantMode)
		}
		rep, err := verify.Verify(context.Background(), dst, l[2], verify.Options{})
		if err != nil || !rep.Valid {
			t.Errorf("verify %s: %v %v", l[2], err, rep.Failed())
		}
	}
	if code := runLocal([]string{"--demo-days", "3", "--destination", dir}, func(k string) string { return env[k] }, &stdout, &stderr); code != 2 {
		t.Errorf("--demo-days without --demo: exit %d, want 2", code)
	}
}

// TestRealExportRefusesADemoFolder (issue 23): an export of real data into a
// folder that holds demo snapshots (make run's ./out) is refused, by the
// CLI, Handle, the whole export through Invoke and the plan step, as a
// configuration error naming the folder and what to do, and writes nothing;
// a folder holding only real snapshots takes a real export as before.
func TestRealExportRefusesADemoFolder(t *testing.T) {
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	if code := runLocal([]string{"--demo", "--destination", dir}, func(string) string { return "" }, &stdout, &stderr); code != 0 {
		t.Fatalf("demo run: exit %d\n%s", code, stderr.String())
	}
	before := folderListing(t, dir)

	fake, err := workostest.New(workostest.Config{APIKey: "sk_test_real", Seed: 4, Directories: 1, UsersPerDirectory: 20, GroupsPerDirectory: 2})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	env := map[string]string{
		"EXPORT_DESTINATION":                dir,
		"WORKOS_API_KEY":                    "sk_test_real",
		"WORKOS_BASE_URL":                   srv.URL,
		"WORKOS_RATE_LIMIT_DIRECTORY_USERS": "0",
		"WORKOS_RATE_LIMIT_GLOBAL":          "0",
	}
	getenv := func(k string) string { return env[k] }
	refused := func(what, msg string) {
		t.Helper()
		for _, want := range []string{dir, "this folder holds demo snapshots from make run", "EXPORT_DESTINATION=", "delete the demo folder"} {
			if !strings.Contains(msg, want) {
				t.Errorf("%s: error %q lacks %q", what, msg, want)
			}
		}
	}

	// The CLI: exit status 2, a configuration error.
	stdout.Reset()
	stderr.Reset()
	if code := runLocal(nil, getenv, &stdout, &stderr); code != 2 {
		t.Errorf("CLI: exit %d, want 2\nstderr: %s", code, stderr.String())
	}
	refused("CLI", stderr.String())

	// Handle, and the Lambda's whole export and plan step: Export.InvalidInput, not retried.
	h, err := newHandler(context.Background(), getenv, discardLog, nil)
	if err != nil {
		t.Fatal(err)
	}
	h.now = testNow
	_, err = h.Handle(context.Background(), Input{SnapshotDate: "2026-11-29"})
	if err == nil || !errors.Is(err, errConfig) || errorType(err) != ErrorInvalidInput {
		t.Fatalf("Handle: %v (type %s), want a configuration error (%s)", err, errorType(err), ErrorInvalidInput)
	}
	refused("Handle", err.Error())
	for _, payload := range []string{`{"snapshot_date":"2026-11-29"}`, `{"step":"plan","trigger":{"scheduled_time":"2026-11-29T02:00:00Z"}}`} {
		ev, err := decodeEvent(t, []byte(payload))
		if err != nil {
			t.Fatal(err)
		}
		_, err = h.Invoke(context.Background(), ev)
		var ie messages.InvokeResponse_Error
		if !errors.As(err, &ie) || ie.Type != ErrorInvalidInput {
			t.Fatalf("Invoke %s: %#v, want %s", payload, err, ErrorInvalidInput)
		}
		refused("Invoke "+payload, ie.Message)
	}
	if after := folderListing(t, dir); !slices.Equal(after, before) {
		t.Errorf("the refused exports wrote into the demo folder:\nbefore %v\nafter  %v", before, after)
	}

	// A folder holding only real snapshots takes the next real export.
	env["EXPORT_DESTINATION"] = t.TempDir()
	h, err = newHandler(context.Background(), getenv, discardLog, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, date := range []string{"2026-11-28", "2026-11-29"} {
		day := testNow().AddDate(0, 0, i-1)
		h.now = func() time.Time { return day }
		out, err := h.Handle(context.Background(), Input{SnapshotDate: date})
		if err != nil || out.Demo || out.SnapshotDate != date {
			t.Fatalf("real export of %s into a real folder: %+v, %v", date, out, err)
		}
	}
}

// folderListing lists every file under dir with its size and modification
// time, sorted.
func folderListing(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		files = append(files, fmt.Sprintf("%s %v %d %s", rel, d.IsDir(), info.Size(), info.ModTime().Format(time.RFC3339Nano)))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(files)
	return files
}
