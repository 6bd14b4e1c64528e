package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Defaults for Options.
const (
	DefaultPartSize    = 8 << 20 // bytes per multipart part
	DefaultConcurrency = 4       // parts uploaded in parallel per object
	minPartSize        = 5 << 20 // S3's minimum for every part but the last
)

// ErrNotExist is wrapped by the errors of Get and OpenRange when the key does
// not exist: test with errors.Is(err, objstore.ErrNotExist).
var ErrNotExist = errors.New("objstore: object does not exist")

// ErrExist is wrapped by the error of PutIfAbsent when the key already exists:
// another writer created it first. Test with errors.Is(err, objstore.ErrExist).
var ErrExist = errors.New("objstore: object already exists")

// ErrAccessDenied is wrapped by errors caused by missing permissions or
// rejected credentials.
var ErrAccessDenied = errors.New("objstore: access denied")

// ErrNoSuchBucket is wrapped by errors caused by a missing S3 bucket.
var ErrNoSuchBucket = errors.New("objstore: bucket does not exist")

// ObjectInfo describes one object returned by List.
type ObjectInfo struct {
	// Key is relative to the store's destination prefix, "/"-separated.
	Key string
	// Size is the object's size in bytes.
	Size int64
	// LastModified is when the object was last written (S3: its
	// LastModified, to the second; a folder: the file's modification time).
	LastModified time.Time
}

// Store is where snapshot files go: an S3 bucket prefix or a local folder. Keys
// are "/"-separated paths relative to the destination (the store prepends its
// prefix); they must be valid fs.ValidPath names (no leading or trailing "/",
// no "." or ".." elements). A Store is safe for concurrent use.
type Store interface {
	// Create opens key for streaming writes. Close() commits it (S3: completes
	// the upload; local: fsync and rename from a temporary name, so readers
	// never see a partial file). CloseWithError(err) aborts: no object is left.
	// ctx bounds the whole write, up to Close.
	Create(ctx context.Context, key string, contentType string) (Object, error)
	// Put writes a small object (e.g. the manifest) in one request.
	Put(ctx context.Context, key string, body []byte, contentType string) error
	// PutIfAbsent writes a small object only if key does not exist yet, in one
	// atomic step (S3: PutObject with If-None-Match: *; a folder: O_EXCL). The
	// error wraps ErrExist when the key exists: another writer won.
	//
	// Of any number of concurrent PutIfAbsent calls on one key, at most one
	// succeeds, and readers never see a partial body. A call whose answer was
	// lost and retried (S3) can find its own object and report ErrExist: a
	// caller that must know whether it won compares Get's body with its own,
	// so bodies should be unique per writer (e.g. carry a run ID).
	PutIfAbsent(ctx context.Context, key string, body []byte, contentType string) error
	// Get reads a whole object; the error wraps ErrNotExist when it is missing.
	Get(ctx context.Context, key string) ([]byte, error)
	// List returns every object whose key starts with prefix (a plain string
	// prefix, as in S3), sorted by key, following pagination.
	List(ctx context.Context, prefix string) ([]ObjectInfo, error)
	// Delete removes keys (S3: DeleteObjects in batches of 1000). Missing keys
	// are not an error.
	Delete(ctx context.Context, keys []string) error
	// OpenRange opens key for random access and returns its size: each ReadAt
	// on S3 is one ranged GetObject (the whole file is never downloaded).
	// ReadAt uses ctx, so ctx must outlive the reader. The error wraps
	// ErrNotExist when the key is missing.
	OpenRange(ctx context.Context, key string) (RangeReader, int64, error)
	// String returns the destination: "s3://bucket/prefix" or "file:///path".
	String() string
}

// Object is an object being written by Store.Create. Exactly one of Close and
// CloseWithError takes effect; later calls return the first call's result.
type Object interface {
	io.Writer
	// Close commits the object and reports whether it was stored.
	Close() error
	// CloseWithError aborts the write, leaving no object, and returns an error
	// only if the abort itself failed. err is passed to the upload as the
	// reason; nil is allowed.
	CloseWithError(err error) error
}

// RangeReader gives random access to a stored object, e.g. for
// parquet.OpenFile(r, size).
type RangeReader interface {
	io.ReaderAt
	io.Closer
	// Stats reports the reads done so far, so callers can prove they did not
	// fetch whole files.
	Stats() ReadStats
}

// ReadStats counts the reads of a RangeReader.
type ReadStats struct {
	// Requests is the number of reads issued: ranged GetObject requests on S3,
	// ReadAt calls on local files.
	Requests int64
	// Bytes is the number of bytes fetched.
	Bytes int64
}

// Options configures Open. The zero value is ready to use.
type Options struct {
	// S3Client is used for s3:// destinations; when nil, Open builds one with
	// config.LoadDefaultConfig (honouring AWS_REGION, AWS_ENDPOINT_URL_S3,
	// AWS_REQUEST_CHECKSUM_CALCULATION, …). Uploads through the transfer
	// manager follow the client's RequestChecksumCalculation.
	S3Client *s3.Client
	// PathStyle selects path-style addressing (http://endpoint/bucket/key) for
	// the client Open builds, as S3-compatible servers need. Ignored when
	// S3Client is set.
	PathStyle bool
	// PartSize is the multipart part size in bytes (default DefaultPartSize,
	// minimum 5 MiB). Objects smaller than one part are sent with one PutObject.
	PartSize int64
	// Concurrency is how many parts of one object upload in parallel (default
	// DefaultConcurrency). Memory per open object is about
	// PartSize × (Concurrency + 2).
	Concurrency int
}

// Open returns the Store for dest: "s3://bucket/prefix" for S3, or a local
// folder given as a path or a "file://" URL (created if missing). Open does no
// S3 request; access problems surface on the first operation, with an error
// naming the bucket, key and fix.
func Open(ctx context.Context, dest string, opts Options) (Store, error) {
	switch {
	case strings.HasPrefix(dest, "s3://"):
		return openS3(ctx, dest, opts)
	case strings.HasPrefix(dest, "file://"):
		u, err := url.Parse(dest)
		if err != nil || (u.Host != "" && u.Host != "localhost") || u.Path == "" {
			return nil, fmt.Errorf("objstore: destination %q is not a valid file URL: use file:///absolute/path or a plain path", dest)
		}
		return openLocal(u.Path)
	case dest == "":
		return nil, errors.New("objstore: empty destination: set it to s3://bucket/prefix or a local folder")
	case strings.Contains(dest, "://"):
		return nil, fmt.Errorf("objstore: destination %q has an unsupported scheme: use s3://bucket/prefix or a local folder", dest)
	default:
		return openLocal(dest)
	}
}

// ParseS3URL splits an S3 destination, "s3://bucket/prefix", into its bucket
// and its prefix without slashes at either end ("" when there is none). The
// prefix must be a clean relative path: no empty, "." or ".." elements. The
// error quotes s and says how to fix it; it has no package prefix, so callers
// can put it after the name of the setting it came from.
func ParseS3URL(s string) (bucket, prefix string, err error) {
	rest, ok := strings.CutPrefix(s, "s3://")
	if !ok {
		return "", "", fmt.Errorf("%q is not an S3 URL: use s3://bucket/prefix", s)
	}
	bucket, prefix, _ = strings.Cut(rest, "/")
	if bucket == "" {
		return "", "", fmt.Errorf("%q has no bucket: use s3://bucket/prefix", s)
	}
	prefix = strings.Trim(prefix, "/")
	if prefix != "" && checkKey(prefix) != nil {
		return "", "", fmt.Errorf("%q has an invalid prefix: use s3://bucket/some/prefix", s)
	}
	return bucket, prefix, nil
}

// checkKey rejects keys that are not clean relative paths.
func checkKey(key string) error {
	if key == "" || key == "." || !fs.ValidPath(key) || strings.Contains(key, `\`) {
		return fmt.Errorf("objstore: invalid key %q: keys are relative \"/\"-separated paths without \".\", \"..\" or empty elements", key)
	}
	return nil
}

// checkPrefix rejects List prefixes that could escape the destination.
func checkPrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	if p := strings.TrimSuffix(prefix, "/"); strings.HasPrefix(prefix, "/") || (p != "" && !fs.ValidPath(p)) || strings.Contains(prefix, `\`) {
		return fmt.Errorf("objstore: invalid list prefix %q: use a relative \"/\"-separated prefix without \".\" or \"..\" elements", prefix)
	}
	return nil
}

// statsCounter implements Stats for the readers.
type statsCounter struct {
	requests, bytes atomic.Int64
}

func (c *statsCounter) add(n int) {
	c.requests.Add(1)
	c.bytes.Add(int64(n))
}

// Stats implements RangeReader.
func (c *statsCounter) Stats() ReadStats {
	return ReadStats{Requests: c.requests.Load(), Bytes: c.bytes.Load()}
}

// kindError carries a message, a sentinel kind and the underlying error.
type kindError struct {
	msg  string
	kind error // may be nil
	err  error
}

func (e *kindError) Error() string {
	if e.err == nil {
		return e.msg
	}
	return e.msg + ": " + e.err.Error()
}

func (e *kindError) Unwrap() []error {
	errs := make([]error, 0, 2)
	if e.kind != nil {
		errs = append(errs, e.kind)
	}
	if e.err != nil {
		errs = append(errs, e.err)
	}
	return errs
}

// toSlash converts an OS path below root to a key.
func toSlash(root, p string) (string, error) {
	rel, err := filepath.Rel(root, p)
	if err != nil {
		return "", err
	}
	return filepath.ToSlash(rel), nil
}
