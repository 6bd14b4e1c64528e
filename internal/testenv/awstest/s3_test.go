package awstest_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/dsync-export/dsync-export/internal/testenv/awstest"
)

func TestS3ServerRoundTrip(t *testing.T) {
	srv := awstest.StartS3(t)
	srv.CreateBucket(t, "snapshots")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	client := srv.Client(t)
	body := []byte("hello, parquet")
	if _, err := client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String("snapshots"), Key: aws.String("a/b/c.txt"), Body: bytes.NewReader(body),
	}); err != nil {
		t.Fatalf("PutObject: %v", err)
	}
	out, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("snapshots"), Key: aws.String("a/b/c.txt")})
	if err != nil {
		t.Fatalf("GetObject: %v", err)
	}
	got, err := io.ReadAll(out.Body)
	out.Body.Close()
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("GetObject body = %q, %v; want %q", got, err, body)
	}
	// The posix backend stores objects as plain files under Dir.
	onDisk, err := os.ReadFile(filepath.Join(srv.Dir, "snapshots", "a", "b", "c.txt"))
	if err != nil || !bytes.Equal(onDisk, body) {
		t.Fatalf("object on disk = %q, %v; want %q", onDisk, err, body)
	}
}

func TestS3ServerChecksSignatures(t *testing.T) {
	srv := awstest.StartS3(t)
	srv.CreateBucket(t, "sig-bucket")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	for name, creds := range map[string]aws.Credentials{
		"wrong secret":     {AccessKeyID: srv.AccessKey, SecretAccessKey: "not-the-secret"},
		"wrong access key": {AccessKeyID: "AKIAWRONGWRONGWRONG0", SecretAccessKey: srv.SecretKey},
	} {
		t.Run(name, func(t *testing.T) {
			client := s3.New(s3.Options{
				Region:       srv.Region,
				Credentials:  credentials.StaticCredentialsProvider{Value: creds},
				BaseEndpoint: aws.String(srv.Endpoint),
				UsePathStyle: true,
			})
			_, err := client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("sig-bucket")})
			var apiErr smithy.APIError
			if !errors.As(err, &apiErr) {
				t.Fatalf("ListObjectsV2 with %s: err = %v, want an S3 API error", name, err)
			}
			// versitygw answers an unknown key with 404 XAdminUserNotFound where S3
			// answers 403 InvalidAccessKeyId.
			switch code := apiErr.ErrorCode(); code {
			case "SignatureDoesNotMatch", "InvalidAccessKeyId", "XAdminUserNotFound":
			default:
				t.Errorf("error code = %q, want a signature/credential error", code)
			}

		})
	}

	// An unsigned request is refused too.
	resp, err := http.Get(srv.Endpoint + "/sig-bucket")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("unsigned GET status = %d, want 403", resp.StatusCode)
	}
}

func TestS3ServerEnvWithDefaultConfig(t *testing.T) {
	srv := awstest.StartS3(t)
	srv.CreateBucket(t, "env-bucket")
	env := srv.Env()
	if env["EXPORT_S3_PATH_STYLE"] != "true" || env["AWS_ENDPOINT_URL_S3"] != srv.Endpoint {
		t.Fatalf("Env() = %v, want path-style switch and endpoint %s", env, srv.Endpoint)
	}
	srv.Setenv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
	out, err := client.ListBuckets(ctx, &s3.ListBucketsInput{})
	if err != nil {
		t.Fatalf("ListBuckets through the environment: %v", err)
	}
	if len(out.Buckets) != 1 || aws.ToString(out.Buckets[0].Name) != "env-bucket" {
		t.Errorf("buckets = %+v, want [env-bucket]", out.Buckets)
	}
}

func TestS3ServerStopsOnCleanup(t *testing.T) {
	var endpoint string
	t.Run("server", func(t *testing.T) {
		endpoint = awstest.StartS3(t).Endpoint
	})
	client := &http.Client{Timeout: 2 * time.Second}
	if resp, err := client.Get(endpoint + "/health"); err == nil {
		resp.Body.Close()
		t.Fatalf("versitygw at %s still answers after its test ended", endpoint)
	}
}
