package objstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/dsync-export/dsync-export/internal/testenv/awstest"
)

// awsDummyClient is a client for tests that never send a request.
func awsDummyClient() *s3.Client {
	return s3.New(s3.Options{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("AK", "SK", "")})
}

// generator yields a reproducible pseudo-random byte stream.
func generator(seed uint64) io.Reader {
	return &genReader{r: rand.NewChaCha8([32]byte{byte(seed)})}
}

type genReader struct{ r *rand.ChaCha8 }

func (g *genReader) Read(p []byte) (int, error) { return g.r.Read(p) }

// countingDoer counts S3 requests by kind.
type countingDoer struct {
	inner                 aws.HTTPClient
	lists, deletes, total atomic.Int64
}

func (c *countingDoer) Do(r *http.Request) (*http.Response, error) {
	c.total.Add(1)
	q := r.URL.Query()
	switch {
	case r.Method == http.MethodGet && q.Get("list-type") == "2":
		c.lists.Add(1)
	case r.Method == http.MethodPost && q.Has("delete"):
		c.deletes.Add(1)
	}
	return c.inner.Do(r)
}

func countingClient(srv *awstest.S3Server, d *countingDoer) *s3.Client {
	d.inner = awshttp.NewBuildableClient()
	return s3.New(s3.Options{
		Region:       srv.Region,
		Credentials:  credentials.NewStaticCredentialsProvider(srv.AccessKey, srv.SecretKey, ""),
		BaseEndpoint: aws.String(srv.Endpoint),
		UsePathStyle: true,
		HTTPClient:   d,
	})
}

// TestS3MultipartStreaming writes a 17 MiB object from a generator through a
// store built from the environment (the export's path) with 5 MiB parts, and
// checks the exact bytes, the part count, and that parts reach S3 while the
// writer is still writing.
func TestS3MultipartStreaming(t *testing.T) {
	srv := awstest.StartS3(t)
	srv.CreateBucket(t, "stream")
	srv.Setenv(t)
	ctx := testCtx(t)
	s, err := Open(ctx, "s3://stream/snap", Options{PathStyle: true, PartSize: minPartSize, Concurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	const size = 17<<20 + 123
	key := "users/dt=2026-01-02/big.parquet"
	o, err := s.Create(ctx, key, "application/vnd.apache.parquet")
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	src := io.TeeReader(io.LimitReader(generator(1), size), h)
	// First 12 MiB, then check that a multipart upload with parts exists
	// before the rest is written.
	if _, err := io.CopyBuffer(o, io.LimitReader(src, 12<<20), make([]byte, 64<<10)); err != nil {
		t.Fatalf("write: %v", err)
	}
	client := srv.Client(t)
	waitFor(t, "a part uploaded while writing", func() bool {
		ups, err := client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String("stream")})
		if err != nil || len(ups.Uploads) != 1 {
			return false
		}
		parts, err := client.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String("stream"), Key: ups.Uploads[0].Key, UploadId: ups.Uploads[0].UploadId})
		return err == nil && len(parts.Parts) >= 1
	})
	if _, err := io.CopyBuffer(o, src, make([]byte, 64<<10)); err != nil {
		t.Fatalf("write: %v", err)
	}
	if err := o.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	want := h.Sum(nil)

	head, err := client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("stream"), Key: aws.String("snap/" + key)})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToInt64(head.ContentLength) != size || !strings.HasSuffix(strings.Trim(aws.ToString(head.ETag), `"`), "-4") {
		t.Errorf("object: %d bytes, ETag %s; want %d bytes in 4 parts", aws.ToInt64(head.ContentLength), aws.ToString(head.ETag), size)
	}
	if aws.ToString(head.ContentType) != "application/vnd.apache.parquet" {
		t.Errorf("Content-Type = %q", aws.ToString(head.ContentType))
	}
	got, err := s.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(got); len(got) != size || !bytes.Equal(sum[:], want) {
		t.Errorf("read back %d bytes with sha256 %x; want %d bytes with %x", len(got), sum, size, want)
	}

	// Ranged reads fetch only what is asked for, across a part boundary.
	r, n, err := s.OpenRange(ctx, key)
	if err != nil || n != size {
		t.Fatalf("OpenRange = %d, %v", n, err)
	}
	buf := make([]byte, 1<<20)
	off := int64(5<<20 - 512<<10)
	if k, err := r.ReadAt(buf, off); k != len(buf) || err != nil || !bytes.Equal(buf, got[off:off+int64(len(buf))]) {
		t.Errorf("ReadAt across the part boundary = %d, %v (bytes equal: %v)", k, err, bytes.Equal(buf, got[off:off+int64(len(buf))]))
	}
	tail := make([]byte, 8)
	if k, err := r.ReadAt(tail, size-8); k != 8 || err != nil || !bytes.Equal(tail, got[size-8:]) {
		t.Errorf("ReadAt of the footer = %d, %v", k, err)
	}
	if st := r.Stats(); st != (ReadStats{Requests: 2, Bytes: 1<<20 + 8}) {
		t.Errorf("Stats = %+v, want 2 requests for 1 MiB + 8 bytes", st)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestS3AbortLeavesNothing(t *testing.T) {
	t.Parallel()
	srv := awstest.StartS3(t)
	srv.CreateBucket(t, "abort")
	client := srv.Client(t)
	ctx := testCtx(t)
	s, err := Open(ctx, "s3://abort", Options{S3Client: client, PartSize: minPartSize, Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	o, err := s.Create(ctx, "t/f.parquet", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(o, generator(2), 11<<20); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the multipart upload to start", func() bool {
		ups, err := client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String("abort")})
		return err == nil && len(ups.Uploads) == 1
	})
	if err := o.CloseWithError(errors.New("parquet writer failed")); err != nil {
		t.Fatalf("CloseWithError: %v", err)
	}
	if err := o.Close(); err != nil {
		t.Errorf("Close after CloseWithError = %v, want the abort result (nil)", err)
	}
	ups, err := client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String("abort")})
	if err != nil || len(ups.Uploads) != 0 {
		t.Errorf("after abort: %d multipart uploads left, %v", len(ups.Uploads), err)
	}
	if infos, err := s.List(ctx, ""); err != nil || len(infos) != 0 {
		t.Errorf("after abort: List = %v, %v; want nothing", infos, err)
	}

	// A cancelled context aborts too.
	cctx, cancel := context.WithCancel(ctx)
	o, err = s.Create(cctx, "t/g.parquet", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(o, generator(3), 6<<20); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := io.CopyN(o, generator(4), 6<<20); err == nil {
		t.Error("Write after cancel succeeded")
	}
	if err := o.Close(); !errors.Is(err, context.Canceled) {
		t.Errorf("Close after cancel = %v, want context.Canceled", err)
	}
	waitFor(t, "no multipart upload left after cancel", func() bool {
		ups, err := client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String("abort")})
		return err == nil && len(ups.Uploads) == 0
	})
}

func TestS3ListAndDeleteManyKeys(t *testing.T) {
	t.Parallel()
	srv := awstest.StartS3(t)
	srv.CreateBucket(t, "many")
	ctx := testCtx(t)
	var reqs countingDoer
	s, err := Open(ctx, "s3://many/pre", Options{S3Client: countingClient(srv, &reqs)})
	if err != nil {
		t.Fatal(err)
	}
	const n = 1050
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("t/dt=1/%04d", i)
	}
	var wg sync.WaitGroup
	var failed atomic.Int64
	start := time.Now()
	for w := range 16 {
		wg.Go(func() {
			for i := w; i < n; i += 16 {
				if err := s.Put(ctx, keys[i], []byte{byte(i)}, ""); err != nil {
					t.Error(err)
					failed.Add(1)
					return
				}
			}
		})
	}
	wg.Wait()
	if failed.Load() > 0 {
		t.FailNow()
	}
	t.Logf("%d puts in %v", n, time.Since(start))

	infos, err := s.List(ctx, "t/")
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != n || infos[0].Key != keys[0] || infos[n-1].Key != keys[n-1] || infos[7].Size != 1 {
		t.Fatalf("List = %d objects (first %v), want %d", len(infos), infos[:1], n)
	}
	if got := reqs.lists.Load(); got != 2 {
		t.Errorf("List of %d keys made %d ListObjectsV2 requests, want 2 pages", n, got)
	}

	if err := s.Delete(ctx, keys); err != nil {
		t.Fatal(err)
	}
	if got := reqs.deletes.Load(); got != 2 {
		t.Errorf("Delete of %d keys made %d DeleteObjects requests, want 2", n, got)
	}
	if infos, err := s.List(ctx, ""); err != nil || len(infos) != 0 {
		t.Errorf("after Delete: %d objects, %v", len(infos), err)
	}

	// Smaller batches, to check the chunking arithmetic.
	s.(*s3Store).deleteBatch = 2
	for _, k := range keys[:5] {
		if err := s.Put(ctx, k, nil, ""); err != nil {
			t.Fatal(err)
		}
	}
	before := reqs.deletes.Load()
	if err := s.Delete(ctx, keys[:5]); err != nil {
		t.Fatal(err)
	}
	if got := reqs.deletes.Load() - before; got != 3 {
		t.Errorf("Delete of 5 keys in batches of 2 made %d requests, want 3", got)
	}
	if infos, _ := s.List(ctx, ""); len(infos) != 0 {
		t.Errorf("after batched Delete: %d objects left", len(infos))
	}
}

func TestS3Errors(t *testing.T) {
	t.Parallel()
	srv := awstest.StartS3(t)
	srv.CreateBucket(t, "real-bucket")
	ctx := testCtx(t)

	missing, err := Open(ctx, "s3://no-such-bucket/pre", Options{S3Client: srv.Client(t), PartSize: minPartSize, Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	const wantMissing = "objstore: bucket no-such-bucket does not exist: create it or fix EXPORT_DESTINATION"
	check := func(what string, err error, kind error, text string) {
		t.Helper()
		if !errors.Is(err, kind) || !strings.Contains(err.Error(), text) {
			t.Errorf("%s: err = %v\nwant %q (errors.Is %v)", what, err, text, kind)
		}
	}
	check("Put", missing.Put(ctx, "k", []byte("x"), ""), ErrNoSuchBucket, wantMissing)
	_, err = missing.List(ctx, "")
	check("List", err, ErrNoSuchBucket, wantMissing)
	_, err = missing.Get(ctx, "k")
	check("Get", err, ErrNoSuchBucket, wantMissing)
	o, err := missing.Create(ctx, "small", "")
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(o, "small object: one PutObject at Close")
	check("Create+Close", o.Close(), ErrNoSuchBucket, wantMissing)
	o, err = missing.Create(ctx, "large", "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.CopyN(o, generator(5), 12<<20) // multipart: fails while writing
	check("Create+Write", err, ErrNoSuchBucket, wantMissing)
	if err := o.CloseWithError(err); err != nil {
		t.Errorf("CloseWithError after a failed upload: %v", err)
	}

	for name, creds := range map[string][2]string{
		"wrong secret":     {srv.AccessKey, "wrong"},
		"wrong access key": {"AKIAUNKNOWN000000000", srv.SecretKey},
	} {
		client := s3.New(s3.Options{
			Region:       srv.Region,
			Credentials:  credentials.NewStaticCredentialsProvider(creds[0], creds[1], ""),
			BaseEndpoint: aws.String(srv.Endpoint),
			UsePathStyle: true,
		})
		denied, err := Open(ctx, "s3://real-bucket/pre", Options{S3Client: client})
		if err != nil {
			t.Fatal(err)
		}
		check(name+": Put", denied.Put(ctx, "t/k", []byte("x"), ""), ErrAccessDenied, "objstore: access denied on s3://real-bucket/pre/t/k: S3 rejected the AWS credentials")
		_, err = denied.List(ctx, "t/")
		check(name+": List", err, ErrAccessDenied, "access denied on s3://real-bucket/pre/t/")
	}
}

func TestS3OpenRangeDetectsReplacement(t *testing.T) {
	t.Parallel()
	srv := awstest.StartS3(t)
	srv.CreateBucket(t, "replace")
	ctx := testCtx(t)
	s, err := Open(ctx, "s3://replace", Options{S3Client: srv.Client(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "f", []byte("version one"), ""); err != nil {
		t.Fatal(err)
	}
	r, _, err := s.OpenRange(ctx, "f")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "f", []byte("version two"), ""); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 3)
	if _, err := r.ReadAt(buf, 0); err == nil || !strings.Contains(err.Error(), "changed while being read") {
		t.Errorf("ReadAt after the object was replaced: %q, %v; want a 'changed while being read' error", buf, err)
	}
}

// TestS3MemoryIsBounded streams 80 MiB with 5 MiB parts and checks the heap
// never grows by more than half the object: it is never buffered whole. The
// expected figure is PartSize × (Concurrency + 2) = 15 MiB plus garbage not yet
// collected (about 17 MiB measured, 27 MiB under -race). Not parallel: other
// tests would skew the heap.
func TestS3MemoryIsBounded(t *testing.T) {
	srv := awstest.StartS3(t)
	srv.CreateBucket(t, "mem")
	ctx := testCtx(t)
	s, err := Open(ctx, "s3://mem", Options{S3Client: srv.Client(t), PartSize: minPartSize, Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var peak atomic.Uint64
	stop, sampled := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	const size = 80 << 20
	o, err := s.Create(ctx, "big", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyBuffer(o, io.LimitReader(generator(9), size), make([]byte, 64<<10)); err != nil {
		t.Fatal(err)
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	close(stop)
	<-sampled
	growth := int64(peak.Load()) - int64(base)
	const bound = size / 2
	t.Logf("peak heap growth %.1f MiB for a %d MiB object (bound %d MiB)", float64(growth)/(1<<20), size>>20, bound>>20)
	if growth > bound {
		t.Errorf("heap grew by %d bytes writing %d bytes, want at most %d", growth, size, bound)
	}
}

// TestS3DescribeCodes covers error codes versitygw does not produce in these
// tests (policy denials, wrong region).
func TestS3DescribeCodes(t *testing.T) {
	t.Parallel()
	s := &s3Store{bucket: "b", prefix: "p/"}
	for _, tc := range []struct {
		op   op
		code string
		kind error
		want string
	}{
		{opWrite, "AccessDenied", ErrAccessDenied, "objstore: access denied on s3://b/p/k: grant s3:PutObject on arn:aws:s3:::b/p/* to the function's role (and s3:AbortMultipartUpload"},
		{opRead, "AccessDenied", ErrAccessDenied, "grant s3:GetObject on arn:aws:s3:::b/p/* to the function's role (S3 also answers AccessDenied for a missing key"},
		{opList, "AccessDenied", ErrAccessDenied, "grant s3:ListBucket on arn:aws:s3:::b to"},
		{opDelete, "AccessDenied", ErrAccessDenied, "grant s3:DeleteObject on arn:aws:s3:::b/p/*"},
		{opRead, "Forbidden", ErrAccessDenied, "access denied on s3://b/p/k"},
		{opRead, "NotFound", ErrNotExist, "objstore: s3://b/p/k does not exist"},
		{opWrite, "ExpiredToken", ErrAccessDenied, "S3 rejected the AWS credentials (ExpiredToken)"},
		{opWrite, "PermanentRedirect", nil, "set AWS_REGION to the bucket's region"},
		{opWrite, "SlowDown", nil, "objstore: write s3://b/p/k: api error SlowDown"},
	} {
		err := s.describe(tc.op, "k", &smithy.GenericAPIError{Code: tc.code, Message: "m"})
		if !strings.Contains(err.Error(), tc.want) || (tc.kind != nil && !errors.Is(err, tc.kind)) {
			t.Errorf("%s %s: %v\nwant %q (kind %v)", tc.op, tc.code, err, tc.want, tc.kind)
		}
		var apiErr smithy.APIError
		if !errors.As(err, &apiErr) || apiErr.ErrorCode() != tc.code {
			t.Errorf("%s %s: the S3 error is not reachable with errors.As", tc.op, tc.code)
		}
	}
}

// TestS3VersitygwHonoursIfNoneMatch pins the server behaviour the S3 half of
// TestPutIfAbsentOneWinner relies on: versitygw (v1.8.0, posix backend)
// answers a PutObject with If-None-Match: * on an existing key with 412
// PreconditionFailed and leaves the object alone. If a versitygw upgrade
// stops honouring the header, this fails first and says so.
func TestS3VersitygwHonoursIfNoneMatch(t *testing.T) {
	t.Parallel()
	srv := awstest.StartS3(t)
	srv.CreateBucket(t, "cond")
	ctx := testCtx(t)
	client := srv.Client(t)
	put := func(body string) error {
		_, err := client.PutObject(ctx, &s3.PutObjectInput{
			Bucket:      aws.String("cond"),
			Key:         aws.String("k"),
			Body:        strings.NewReader(body),
			IfNoneMatch: aws.String("*"),
		})
		return err
	}
	if err := put("first"); err != nil {
		t.Fatalf("conditional PutObject of a new key: %v", err)
	}
	err := put("second")
	var re *awshttp.ResponseError
	if !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusPreconditionFailed || apiCode(err) != "PreconditionFailed" {
		t.Fatalf("conditional PutObject of an existing key: err = %v; want 412 PreconditionFailed (versitygw no longer honours If-None-Match: *)", err)
	}
	out, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("cond"), Key: aws.String("k")})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Body.Close()
	if b, _ := io.ReadAll(out.Body); string(b) != "first" {
		t.Errorf("object after the refused PutObject = %q, want \"first\"", b)
	}
}

// TestS3PutIfAbsentAnswers covers the answers versitygw does not give: an S3
// endpoint that answers PutObject with a fixed status and error code. It also
// checks the request carries If-None-Match: *.
func TestS3PutIfAbsentAnswers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status int
		code   string
		exist  bool
	}{
		{http.StatusPreconditionFailed, "PreconditionFailed", true},
		// S3: another conditional write or a delete raced on the key.
		{http.StatusConflict, "ConditionalRequestConflict", true},
		{http.StatusConflict, "OperationAborted", false},
		{http.StatusForbidden, "AccessDenied", false},
	} {
		t.Run(tc.code, func(t *testing.T) {
			t.Parallel()
			var ifNoneMatch atomic.Value
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				ifNoneMatch.Store(r.Header.Get("If-None-Match"))
				io.Copy(io.Discard, r.Body)
				w.Header().Set("Content-Type", "application/xml")
				w.WriteHeader(tc.status)
				fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>m</Message><Key>p/k</Key></Error>`, tc.code)
			}))
			t.Cleanup(srv.Close)
			client := s3.New(s3.Options{
				Region:           "us-east-1",
				Credentials:      credentials.NewStaticCredentialsProvider("AK", "SK", ""),
				BaseEndpoint:     aws.String(srv.URL),
				UsePathStyle:     true,
				RetryMaxAttempts: 1,
			})
			s, err := Open(testCtx(t), "s3://b/p", Options{S3Client: client})
			if err != nil {
				t.Fatal(err)
			}
			err = s.PutIfAbsent(testCtx(t), "k", []byte("body"), "")
			if got, _ := ifNoneMatch.Load().(string); got != "*" {
				t.Errorf("If-None-Match = %q, want *", got)
			}
			if err == nil || errors.Is(err, ErrExist) != tc.exist || apiCode(err) != tc.code {
				t.Errorf("%d %s: err = %v; want errors.Is(err, ErrExist) = %v and the S3 error reachable", tc.status, tc.code, err, tc.exist)
			}
			if tc.exist && !strings.Contains(err.Error(), "s3://b/p/k already exists: another writer created it first") {
				t.Errorf("err = %q, want it to name the key", err)
			}
		})
	}
}
