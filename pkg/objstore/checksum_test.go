package objstore

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/dsync-export/dsync-export/internal/testenv/awstest"
)

// recordingProxy is a reverse proxy in front of an S3 server that records the
// headers of every request. It keeps the Host header, so SigV4 signatures
// made for the proxy's address still verify at the server.
type recordingProxy struct {
	URL  string
	mu   sync.Mutex
	reqs []recordedRequest
}

type recordedRequest struct {
	method, path, query string
	header              http.Header
}

// operation names the S3 operation of a recorded request.
func (r recordedRequest) operation() string {
	q, _ := url.ParseQuery(r.query)
	switch {
	case r.method == http.MethodPut && q.Has("partNumber"):
		return "UploadPart"
	case r.method == http.MethodPut:
		return "PutObject"
	case r.method == http.MethodPost && q.Has("uploads"):
		return "CreateMultipartUpload"
	case r.method == http.MethodPost && q.Has("uploadId"):
		return "CompleteMultipartUpload"
	}
	return r.method + " " + r.path
}

// checksumHeaders returns the request's headers that carry or announce a
// request checksum.
func (r recordedRequest) checksumHeaders() []string {
	var out []string
	for k, v := range r.header {
		lk := strings.ToLower(k)
		if lk == "x-amz-checksum-mode" {
			continue // asks for the response's checksum: AWS_RESPONSE_CHECKSUM_VALIDATION
		}
		if strings.HasPrefix(lk, "x-amz-checksum-") || lk == "x-amz-sdk-checksum-algorithm" ||
			(lk == "x-amz-trailer" && strings.Contains(strings.ToLower(strings.Join(v, ",")), "checksum")) {
			out = append(out, k+": "+strings.Join(v, ","))
		}
	}
	return out
}

func startRecordingProxy(t *testing.T, target string) *recordingProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &recordingProxy{}
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(u)
		pr.Out.Host = pr.In.Host
	}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.reqs = append(p.reqs, recordedRequest{method: r.Method, path: r.URL.Path, query: r.URL.RawQuery, header: r.Header.Clone()})
		p.mu.Unlock()
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

func (p *recordingProxy) requests() []recordedRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]recordedRequest(nil), p.reqs...)
}

// TestS3ChecksumSetting writes a small object (one PutObject), a multipart
// object (the transfer manager) and a manifest (Put) through a store built
// from the environment, as the export builds it, and records the request
// headers at a proxy in front of versitygw. With
// AWS_REQUEST_CHECKSUM_CALCULATION=when_required no request may carry a
// checksum header, since some S3-compatible servers reject them; with
// when_supported (the SDK's default) every data upload carries one.
func TestS3ChecksumSetting(t *testing.T) {
	srv := awstest.StartS3(t)
	srv.CreateBucket(t, "sums")
	proxy := startRecordingProxy(t, srv.Endpoint)
	for _, setting := range []string{"when_required", "when_supported"} {
		t.Run(setting, func(t *testing.T) {
			srv.Setenv(t)
			t.Setenv("AWS_ENDPOINT_URL_S3", proxy.URL)
			t.Setenv("AWS_REQUEST_CHECKSUM_CALCULATION", setting)
			ctx := testCtx(t)
			s, err := Open(ctx, "s3://sums/"+setting, Options{PathStyle: true, PartSize: minPartSize, Concurrency: 1})
			if err != nil {
				t.Fatal(err)
			}
			start := len(proxy.requests())
			small := []byte("PAR1 small PAR1")
			large := make([]byte, minPartSize+1234)
			if _, err := io.ReadFull(generator(7), large); err != nil {
				t.Fatal(err)
			}
			for key, data := range map[string][]byte{"small.parquet": small, "large.parquet": large} {
				o, err := s.Create(ctx, key, "application/vnd.apache.parquet")
				if err != nil {
					t.Fatal(err)
				}
				if _, err := o.Write(data); err != nil {
					t.Fatal(err)
				}
				if err := o.Close(); err != nil {
					t.Fatalf("Close %s: %v", key, err)
				}
			}
			if err := s.Put(ctx, "manifest.json", []byte(`{}`), "application/json"); err != nil {
				t.Fatal(err)
			}
			for key, want := range map[string][]byte{"small.parquet": small, "large.parquet": large, "manifest.json": []byte(`{}`)} {
				if got, err := s.Get(ctx, key); err != nil || !bytes.Equal(got, want) {
					t.Errorf("Get %s: %d bytes, %v; want the %d bytes written", key, len(got), err, len(want))
				}
			}

			ops := map[string]int{}
			for _, r := range proxy.requests()[start:] {
				op := r.operation()
				ops[op]++
				sums := r.checksumHeaders()
				switch {
				case setting == "when_required" && len(sums) > 0:
					t.Errorf("%s %s sent checksum headers %v with when_required", op, r.path, sums)
				case setting == "when_supported" && len(sums) == 0 &&
					(op == "UploadPart" || op == "PutObject" || op == "CreateMultipartUpload"):
					t.Errorf("%s %s sent no checksum header with when_supported", op, r.path)
				}
			}
			// Both upload paths were taken: one PutObject per small object
			// (data and manifest), and a two-part multipart upload.
			if ops["PutObject"] != 2 || ops["CreateMultipartUpload"] != 1 || ops["UploadPart"] != 2 || ops["CompleteMultipartUpload"] != 1 {
				t.Errorf("requests by operation: %v; want 2 PutObject and a multipart upload of 2 parts", ops)
			}
		})
	}
}
