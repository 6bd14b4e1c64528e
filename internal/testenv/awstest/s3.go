package awstest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/dsync-export/dsync-export/internal/testenv/proc"
)

// Region is the AWS region every fake in this package uses.
const Region = "us-east-1"

// startTimeout bounds how long StartS3 waits for versitygw to answer.
const startTimeout = 30 * time.Second

// S3Server is a running versitygw process: a real S3 API (posix backend in a
// temporary directory) that checks SigV4 signatures against its root
// credentials.
type S3Server struct {
	// Endpoint is the base URL, "http://127.0.0.1:<port>".
	Endpoint string
	// AccessKey and SecretKey are the random root credentials the server accepts.
	AccessKey, SecretKey string
	// Region is the region clients must sign for (Region).
	Region string
	// Dir is the posix backend directory: one subdirectory per bucket.
	Dir string
}

// StartS3 starts versitygw on a free 127.0.0.1 port and waits until it answers.
// The binary comes from $VERSITYGW_BIN, else <repo root>/bin/versitygw, which is
// installed with `go install` when missing (`make tools` does the same ahead of
// time). The process and its process group are stopped when the test ends;
// its output is logged only if the test failed.
func StartS3(t testing.TB) *S3Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	bin, err := versitygwBinary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s := &S3Server{
		AccessKey: "AKTEST" + randomHex(7),
		SecretKey: randomHex(20),
		Region:    Region,
		Dir:       filepath.Join(t.TempDir(), "s3"),
	}
	if err := os.Mkdir(s.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// The free port is found by binding and releasing it, so another process
	// can take it in between: try a few ports before giving up.
	var lastErr error
	for range 3 {
		ports, err := proc.FreePorts(1)
		if err != nil {
			t.Fatalf("awstest: find a free port for versitygw: %v", err)
		}
		if lastErr = s.start(t, bin, ports[0]); lastErr == nil {
			return s
		}
	}
	t.Fatalf("awstest: versitygw did not start: %v", lastErr)
	return nil
}

func (s *S3Server) start(t testing.TB, bin string, port int) error {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	out := proc.NewTailBuffer(64 << 10)
	cmd := exec.Command(bin,
		"--access", s.AccessKey,
		"--secret", s.SecretKey,
		"--region", s.Region,
		"--port", addr,
		"--health", "/health",
		"--quiet",
		"posix", s.Dir,
	)
	// Only the variables versitygw needs: it also reads ROOT_ACCESS_KEY and
	// VGW_* from the environment, which must not leak in from the developer's.
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TMPDIR=" + os.TempDir()}
	cmd.Stdout, cmd.Stderr = out, out
	p, err := proc.Start(cmd)
	if err != nil {
		return err
	}
	// Ask politely, then kill the whole group (versitygw spawns no children
	// today, but a future version might).
	stop := func() { _ = p.Stop(5*time.Second, 10*time.Second) }

	endpoint := "http://" + addr
	if err := p.WaitReady(context.Background(), startTimeout, proc.HTTPOK(endpoint+"/health")); err != nil {
		stop()
		return fmt.Errorf("%w\nversitygw output:\n%s", err, out.String())
	}
	s.Endpoint = endpoint
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("versitygw output (%s):\n%s", endpoint, out.String())
		}
	})
	return nil
}

// Client returns a new S3 client for the server: static credentials,
// path-style addressing, and checksums only where an operation requires them.
func (s *S3Server) Client(t testing.TB) *s3.Client {
	t.Helper()
	return s3.New(s3.Options{
		Region:                     s.Region,
		Credentials:                credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
		BaseEndpoint:               aws.String(s.Endpoint),
		UsePathStyle:               true,
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
}

// CreateBucket creates the bucket name, failing the test on error.
func (s *S3Server) CreateBucket(t testing.TB, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.Client(t).CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("awstest: create bucket %q: %v", name, err)
	}
}

// Env returns the environment under which code that builds its client with
// config.LoadDefaultConfig talks to this server: credentials, region, the S3
// endpoint and EXPORT_S3_PATH_STYLE=true. It blanks AWS_PROFILE and
// AWS_SESSION_TOKEN and disables IMDS so a developer's own AWS setup cannot leak
// in. Merge it with (*SecretsManager).Env after SetCredentials when both are used.
func (s *S3Server) Env() map[string]string {
	return map[string]string{
		"AWS_ACCESS_KEY_ID":         s.AccessKey,
		"AWS_SECRET_ACCESS_KEY":     s.SecretKey,
		"AWS_SESSION_TOKEN":         "",
		"AWS_PROFILE":               "",
		"AWS_REGION":                s.Region,
		"AWS_EC2_METADATA_DISABLED": "true",
		"AWS_ENDPOINT_URL_S3":       s.Endpoint,
		"EXPORT_S3_PATH_STYLE":      "true",
	}
}

// Setenv sets Env for the duration of the test (t.Setenv: not for parallel tests).
func (s *S3Server) Setenv(t testing.TB) {
	t.Helper()
	for k, v := range s.Env() {
		t.Setenv(k, v)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}
