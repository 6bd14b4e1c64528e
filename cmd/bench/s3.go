package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// s3Server is a versitygw (bin/versitygw, installed by `make tools`) serving
// a temporary folder on loopback, so the memory runs can also write to S3
// through the real SDK and transfer manager.
type s3Server struct {
	cmd      *exec.Cmd
	dir      string
	endpoint string
}

const (
	s3Access = "BENCHACCESSKEY"
	s3Secret = "benchsecretkey0123456789"
	s3Bucket = "bench"
)

func (b *bench) startS3(ctx context.Context) (*s3Server, error) {
	bin := os.Getenv("VERSITYGW_BIN")
	if bin == "" {
		bin = filepath.Join(b.root, "bin", "versitygw")
	}
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("bench: %s not found: run `make tools` (or make bench, which does)", bin)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	dir, err := os.MkdirTemp("", "dsync-bench-s3-")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "--access", s3Access, "--secret", s3Secret, "--region", "us-east-1",
		"--port", addr, "--health", "/health", "--quiet", "posix", dir)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s := &s3Server{cmd: cmd, dir: dir, endpoint: "http://" + addr}
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get(s.endpoint + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			s.close()
			return nil, fmt.Errorf("bench: versitygw did not start on %s", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	client := s3.New(s3.Options{
		Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider(s3Access, s3Secret, ""),
		BaseEndpoint: aws.String(s.endpoint), UsePathStyle: true,
	})
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(s3Bucket)}); err != nil {
		s.close()
		return nil, fmt.Errorf("bench: create bucket: %w", err)
	}
	return s, nil
}

// env is the export's environment for writing to prefix in the bench bucket.
func (s *s3Server) env(prefix string) []string {
	return []string{
		"EXPORT_DESTINATION=s3://" + s3Bucket + "/" + prefix,
		"EXPORT_S3_PATH_STYLE=true",
		"AWS_ACCESS_KEY_ID=" + s3Access,
		"AWS_SECRET_ACCESS_KEY=" + s3Secret,
		"AWS_REGION=us-east-1",
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_ENDPOINT_URL_S3=" + s.endpoint,
	}
}

func (s *s3Server) close() {
	if s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
	}
	os.RemoveAll(s.dir)
}
