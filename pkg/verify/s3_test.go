package verify

import (
	"context"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/dsync-export/dsync-export/internal/testenv/awstest"
	"github.com/dsync-export/dsync-export/pkg/objstore"
	"github.com/dsync-export/dsync-export/pkg/schema"
	"github.com/dsync-export/dsync-export/pkg/snapshot"
)

// wireCounter counts, per request kind, the bytes of GetObject response
// bodies as they come off the wire: an independent measure of what the
// verifier downloaded.
type wireCounter struct {
	next http.RoundTripper

	mu            sync.Mutex
	gets, ranged  int
	getBodyBytes  atomic.Int64
	unrangedBytes atomic.Int64
}

func (c *wireCounter) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.next.RoundTrip(req)
	if err != nil || req.Method != http.MethodGet || req.URL.Query().Has("list-type") {
		return resp, err
	}
	c.mu.Lock()
	c.gets++
	rng := req.Header.Get("Range") != ""
	if rng {
		c.ranged++
	}
	c.mu.Unlock()
	resp.Body = &countingBody{ReadCloser: resp.Body, n: &c.getBodyBytes, unranged: !rng, u: &c.unrangedBytes}
	return resp, nil
}

type countingBody struct {
	io.ReadCloser
	n, u     *atomic.Int64
	unranged bool
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	if b.unranged {
		b.u.Add(int64(n))
	}
	return n, err
}

// TestS3RangedReads verifies a snapshot stored in a real S3 server
// (versitygw) and proves, from the HTTP traffic, that it read the data files
// through ranged GetObject requests (never a whole-object GET, which would
// hold a file in memory), fetching each byte exactly once.
func TestS3RangedReads(t *testing.T) {
	t.Parallel()
	srv := awstest.StartS3(t)
	srv.CreateBucket(t, "exports")
	wire := &wireCounter{next: http.DefaultTransport.(*http.Transport).Clone()}
	client := s3.New(s3.Options{
		Region:                     srv.Region,
		Credentials:                credentials.NewStaticCredentialsProvider(srv.AccessKey, srv.SecretKey, ""),
		BaseEndpoint:               aws.String(srv.Endpoint),
		UsePathStyle:               true,
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
		HTTPClient:                 &http.Client{Transport: wire},
	})
	ctx := context.Background()
	s, err := objstore.Open(ctx, "s3://exports/workos/dsync", objstore.Options{S3Client: client})
	if err != nil {
		t.Fatal(err)
	}
	fx := newFixture(4, 800, 10).withAttributes(600)
	fx.write(t, s)
	wire.getBodyBytes.Store(0)
	wire.unrangedBytes.Store(0)
	wire.gets, wire.ranged = 0, 0

	r := mustVerify(t, s, Options{})
	if !r.Valid {
		t.Fatalf("invalid:\n%s", r.JSONLines())
	}
	manifestBytes := wire.unrangedBytes.Load() // the two whole-object GETs: the manifest and the snapshots row
	dataBytes := wire.getBodyBytes.Load() - manifestBytes
	t.Logf("data files: %d bytes; fetched %d bytes in %d ranged GETs (%.1f%%); manifest %d bytes; %d GETs in all",
		r.Stats.BytesTotal, dataBytes, wire.ranged, 100*float64(dataBytes)/float64(r.Stats.BytesTotal), manifestBytes, wire.gets)
	if wire.gets != wire.ranged+2 {
		t.Errorf("%d GETs, %d ranged: want every GET but the manifest's and the snapshots row's ranged", wire.gets, wire.ranged)
	}
	if dataBytes != r.Stats.BytesFetched {
		t.Errorf("wire saw %d bytes, the report says %d", dataBytes, r.Stats.BytesFetched)
	}
	if dataBytes != r.Stats.BytesTotal {
		t.Errorf("fetched %d of %d bytes: want every byte exactly once", dataBytes, r.Stats.BytesTotal)
	}

	// The same snapshot with a stray file and a missing one, through S3.
	stray := snapshot.PartKey(schema.TableDirectoryGroups, testDate, laterRun, 9)
	if err := s.Put(ctx, stray, []byte("x"), "application/octet-stream"); err != nil {
		t.Fatal(err)
	}
	missing := snapshot.PartKey(schema.TableMemberships, testDate, testRun, 0)
	if err := s.Delete(ctx, []string{missing}); err != nil {
		t.Fatal(err)
	}
	r = mustVerify(t, s, Options{})
	wantFailure(t, r, CheckStrayObjects, stray)
	wantFailure(t, r, CheckObjects, missing, "missing")
}
