package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/dsync-export/dsync-export/internal/testenv/awstest"
	"github.com/dsync-export/dsync-export/internal/testenv/proc"
	"github.com/dsync-export/dsync-export/internal/testenv/rie"
	"github.com/dsync-export/dsync-export/internal/testenv/workostest"
	"github.com/dsync-export/dsync-export/pkg/objstore"
	"github.com/dsync-export/dsync-export/pkg/schema"
	"github.com/dsync-export/dsync-export/pkg/snapshot"
)

// The bucket and prefix of events/manifest-created.json and events/env.json.
const (
	bucket = "dsync-export-local"
	prefix = "workos"
)

// TestLambdasUnderRuntimeEmulator exports through the emulator with
// events/scheduled.json, checks the snapshot in S3, verifies it through the
// emulator with events/manifest-created.json, then corrupts one object and
// checks that verify fails the invocation.
func TestLambdasUnderRuntimeEmulator(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	root, err := proc.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	emulator, err := rie.BuildEmulator(ctx, filepath.Join(root, "bin"))
	if err != nil {
		t.Fatal(err)
	}
	exportBoot, err := rie.BuildBootstrap(ctx, "./functions/export", filepath.Join(t.TempDir(), "export"))
	if err != nil {
		t.Fatal(err)
	}
	verifyBoot, err := rie.BuildBootstrap(ctx, "./functions/verify", filepath.Join(t.TempDir(), "verify"))
	if err != nil {
		t.Fatal(err)
	}

	fake, err := workostest.New(workostest.Config{APIKey: "sk_test_e2e", Seed: 21, Directories: 3, UsersPerDirectory: 200, GroupsPerDirectory: 6})
	if err != nil {
		t.Fatal(err)
	}
	base, err := fake.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fake.Close() })
	s3srv := awstest.StartS3(t)
	s3srv.CreateBucket(t, bucket)
	sm := awstest.StartSecretsManager(t, map[string]string{"dsync-export/workos": `{"api_key":"sk_test_e2e"}`})
	sm.SetCredentials(s3srv.AccessKey, s3srv.SecretKey)

	env := map[string]string{
		"PATH": os.Getenv("PATH"), "HOME": os.Getenv("HOME"),
		"AWS_LAMBDA_FUNCTION_TIMEOUT":       "120",
		"EXPORT_DESTINATION":                "s3://" + bucket + "/" + prefix,
		"WORKOS_API_KEY_SECRET_ID":          sm.ARN("dsync-export/workos"),
		"WORKOS_BASE_URL":                   base,
		"WORKOS_RATE_LIMIT_DIRECTORY_USERS": "0",
		"WORKOS_RATE_LIMIT_GLOBAL":          "0",
		"EXPORT_DEADLINE_MARGIN":            "10s",
	}
	for k, v := range s3srv.Env() {
		env[k] = v
	}
	for k, v := range sm.Env() {
		env[k] = v
	}
	var envList []string
	for k, v := range env {
		envList = append(envList, k+"="+v)
	}

	// Export, triggered by the EventBridge scheduled event.
	exp, err := rie.Start(ctx, emulator, exportBoot, envList)
	if err != nil {
		t.Fatal(err)
	}
	defer exp.Close()
	// The sample events are dated 2026-11-28; the export refuses a date more
	// than a day from today, so the test moves them to today.
	today := time.Now().UTC().Format(schema.PartitionFormat)
	resp, err := exp.Invoke(ctx, readEvent(t, root, "scheduled.json", today))
	if err != nil {
		t.Fatalf("export invocation: %v\nlogs:\n%s", err, exp.Logs())
	}
	// Any other event is refused, through the real runtime's decoding: an
	// S3 notification (Records) and an S3 EventBridge event.
	for name, tc := range map[string]struct{ event, want string }{
		"records":     {`{"Records":[{"eventSource":"aws:s3","eventTime":"0001-01-01T00:00:00Z"}]}`, `unknown field "Records"`},
		"s3 event":    {`{"version":"0","source":"aws.s3","detail-type":"Object Created","time":"0001-01-01T00:00:00Z","detail":{}}`, `source "aws.s3" and detail-type "Object Created"`},
		"misspelt":    {`{"snapshot_dt":"` + today + `"}`, `unknown field "snapshot_dt"`},
		"future date": {`{"snapshot_date":"2099-12-31"}`, "in the future"},
	} {
		_, err := exp.Invoke(ctx, []byte(tc.event))
		var fe *rie.FunctionError
		if !errors.As(err, &fe) || !strings.Contains(fe.Message, tc.want) {
			t.Errorf("%s: err %v, want a function error containing %q", name, err, tc.want)
		}
	}

	var out struct {
		SnapshotDate string           `json:"snapshot_date"`
		ManifestKey  string           `json:"manifest_key"`
		Rows         map[string]int64 `json:"rows"`
	}
	if err := json.Unmarshal(resp.Payload, &out); err != nil {
		t.Fatalf("export output %s: %v", resp.Payload, err)
	}
	if out.SnapshotDate != today || out.ManifestKey != snapshot.ManifestKey(today) {
		t.Fatalf("export output %s", resp.Payload)
	}
	var users int64
	for _, d := range fake.Directories() {
		u, _, _ := fake.Counts(d.ID)
		users += int64(u)
	}
	if out.Rows[schema.TableDirectoryUsers] != users {
		t.Errorf("exported %d users, the fake has %d", out.Rows[schema.TableDirectoryUsers], users)
	}

	// The snapshot is in S3: the manifest, and exactly its objects.
	dst, err := objstore.Open(ctx, "s3://"+bucket+"/"+prefix, objstore.Options{S3Client: s3srv.Client(t)})
	if err != nil {
		t.Fatal(err)
	}
	b, err := dst.Get(ctx, out.ManifestKey)
	if err != nil {
		t.Fatal(err)
	}
	m, err := snapshot.Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Keys()) != 4 {
		t.Errorf("manifest lists %v, want one file per table", m.Keys())
	}

	// Verify, triggered by the S3 Object Created event of that manifest.
	ver, err := rie.Start(ctx, emulator, verifyBoot, envList)
	if err != nil {
		t.Fatal(err)
	}
	defer ver.Close()
	event := readEvent(t, root, "manifest-created.json", today)
	resp, err = ver.Invoke(ctx, event)
	if err != nil {
		t.Fatalf("verify of a good snapshot failed: %v\nlogs:\n%s", err, ver.Logs())
	}
	if !strings.Contains(string(resp.Payload), today) {
		t.Errorf("verify output %s", resp.Payload)
	}

	// Corrupt the users file: verify must fail the invocation and name it.
	usersPart := m.Tables[schema.TableDirectoryUsers].Files[0].Key
	if want := snapshot.ChunkPartKey(schema.TableDirectoryUsers, today, m.RunID, "0000", 0, 0); usersPart != want || len(m.Tables[schema.TableDirectoryUsers].Files) != 1 {
		t.Errorf("users parts %v, want one, %s (the run's own key: one process runs one unit in one chunk)", m.Tables[schema.TableDirectoryUsers].Files, want)
	}
	usersKey := prefix + "/" + usersPart
	if _, err := s3srv.Client(t).PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(usersKey), Body: strings.NewReader("PAR1 this is not a parquet file PAR1"),
	}); err != nil {
		t.Fatal(err)
	}
	_, err = ver.Invoke(ctx, event)
	var fe *rie.FunctionError
	if !errors.As(err, &fe) {
		t.Fatalf("verify of a corrupt snapshot: err %v, want a function error\nlogs:\n%s", err, ver.Logs())
	}
	if !strings.Contains(fe.Message, usersPart) {
		t.Errorf("verify error %q does not name the corrupt object", fe.Message)
	}
}

// readEvent reads events/name with its sample date 2026-11-28 replaced by date.
func readEvent(t *testing.T, root, name, date string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "events", name))
	if err != nil {
		t.Fatal(err)
	}
	return bytes.ReplaceAll(b, []byte("2026-11-28"), []byte(date))
}
