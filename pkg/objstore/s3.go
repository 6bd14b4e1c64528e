package objstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// abortTimeout bounds the cleanup of a failed multipart upload, which runs on
// a fresh context so it happens even when the caller's context was cancelled.
const abortTimeout = 30 * time.Second

// maxDeleteBatch is S3's limit of keys per DeleteObjects request.
const maxDeleteBatch = 1000

type s3Store struct {
	client      *s3.Client
	tm          *transfermanager.Client
	bucket      string
	prefix      string // "" or ends with "/"
	deleteBatch int
}

func openS3(ctx context.Context, dest string, opts Options) (*s3Store, error) {
	bucket, prefix, err := ParseS3URL(dest)
	if err != nil {
		return nil, fmt.Errorf("objstore: destination %w", err)
	}
	if prefix != "" {
		prefix += "/"
	}
	if opts.PartSize == 0 {
		opts.PartSize = DefaultPartSize
	}
	if opts.PartSize < minPartSize {
		return nil, fmt.Errorf("objstore: part size %d is below S3's minimum of 5 MiB (%d bytes): raise it", opts.PartSize, minPartSize)
	}
	if opts.Concurrency == 0 {
		opts.Concurrency = DefaultConcurrency
	}
	if opts.Concurrency < 0 {
		return nil, fmt.Errorf("objstore: concurrency %d is negative: use 0 for the default (%d)", opts.Concurrency, DefaultConcurrency)
	}
	client := opts.S3Client
	if client == nil {
		cfg, err := config.LoadDefaultConfig(ctx)
		if err != nil {
			return nil, fmt.Errorf("objstore: load AWS configuration for %s: %w", dest, err)
		}
		client = s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = opts.PathStyle })
	}
	// The transfer manager has its own checksum setting, which defaults to
	// CRC32 on every upload whatever the client says: pass the client's on,
	// so AWS_REQUEST_CHECKSUM_CALCULATION=when_required (for S3-compatible
	// servers that reject checksum headers) covers the data files too.
	checksums := client.Options().RequestChecksumCalculation
	tm := transfermanager.New(client, func(o *transfermanager.Options) {
		o.RequestChecksumCalculation = checksums
		o.PartSizeBytes = opts.PartSize
		// One part's worth is buffered before deciding on multipart, instead
		// of the default 16 MiB: keeps memory at PartSize × (Concurrency+2).
		o.MultipartUploadThreshold = opts.PartSize
		o.Concurrency = opts.Concurrency
		o.FailTimeout = abortTimeout
	})
	return &s3Store{client: client, tm: tm, bucket: bucket, prefix: prefix, deleteBatch: maxDeleteBatch}, nil
}

func (s *s3Store) String() string {
	return "s3://" + s.bucket + "/" + strings.TrimSuffix(s.prefix, "/")
}

func (s *s3Store) url(key string) string { return "s3://" + s.bucket + "/" + s.prefix + key }

func (s *s3Store) Create(ctx context.Context, key, contentType string) (Object, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	o := &s3Object{store: s, key: key, ctx: ctx, pw: pw, done: make(chan struct{})}
	go func() {
		defer close(o.done)
		// A cancelled ctx must also unblock the upload's read of the pipe,
		// or an object that is never closed would hold its part buffers.
		stop := context.AfterFunc(ctx, func() { pw.CloseWithError(context.Cause(ctx)) })
		defer stop()
		_, err := s.tm.UploadObject(ctx, &transfermanager.UploadObjectInput{
			Bucket:      aws.String(s.bucket),
			Key:         aws.String(s.prefix + key),
			Body:        pr,
			ContentType: nonEmpty(contentType),
		})
		if err != nil {
			var mpu transfermanager.MultipartUploadError
			if errors.As(err, &mpu) {
				o.uploadID = mpu.UploadID()
			}
			err = s.describe(opWrite, key, err)
			// Unblock the writer: its next Write returns this error.
			pr.CloseWithError(err)
		}
		o.uploadErr = err
	}()
	return o, nil
}

// s3Object streams writes through an io.Pipe into transfermanager.UploadObject.
type s3Object struct {
	store *s3Store
	key   string
	ctx   context.Context
	pw    *io.PipeWriter
	done  chan struct{}
	// Set by the upload goroutine before done is closed.
	uploadErr error
	uploadID  string

	once     sync.Once
	closeErr error
}

func (o *s3Object) Write(p []byte) (int, error) { return o.pw.Write(p) }

func (o *s3Object) Close() error {
	o.once.Do(func() {
		o.pw.Close()
		<-o.done
		if o.uploadErr != nil {
			o.closeErr = errors.Join(o.uploadErr, o.abort())
		}
	})
	return o.closeErr
}

func (o *s3Object) CloseWithError(err error) error {
	o.once.Do(func() {
		if err == nil {
			err = errors.New("objstore: write aborted")
		}
		o.pw.CloseWithError(err)
		<-o.done
		if o.uploadErr == nil {
			// Unreachable with the pipe (no EOF was sent), but never leave a
			// committed object behind an abort.
			o.closeErr = o.store.Delete(context.WithoutCancel(o.ctx), []string{o.key})
			return
		}
		o.closeErr = o.abort()
	})
	return o.closeErr
}

// abort makes sure a failed multipart upload leaves no parts behind. The
// transfer manager already tries; this confirms it (NoSuchUpload = done).
func (o *s3Object) abort() error {
	if o.uploadID == "" {
		return nil // nothing was created (single PutObject, or failed before)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(o.ctx), abortTimeout)
	defer cancel()
	_, err := o.store.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
		Bucket:   aws.String(o.store.bucket),
		Key:      aws.String(o.store.prefix + o.key),
		UploadId: aws.String(o.uploadID),
	})
	var noUpload *s3types.NoSuchUpload
	if err == nil || errors.As(err, &noUpload) || apiCode(err) == "NoSuchUpload" {
		return nil
	}
	return fmt.Errorf("objstore: abort multipart upload %s of %s (remove it with `aws s3api abort-multipart-upload`, or add a lifecycle rule that aborts incomplete uploads): %w",
		o.uploadID, o.store.url(o.key), err)
}

func (s *s3Store) Put(ctx context.Context, key string, body []byte, contentType string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if err := s.putObject(ctx, key, body, contentType, nil); err != nil {
		return s.describe(opWrite, key, err)
	}
	return nil
}

// putObject writes body to key in one PutObject, with If-None-Match when
// ifNoneMatch is set.
// The caller checks the key.
func (s *s3Store) putObject(ctx context.Context, key string, body []byte, contentType string, ifNoneMatch *string) error {
	_, err := s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        aws.String(s.bucket),
		Key:           aws.String(s.prefix + key),
		Body:          bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body))),
		ContentType:   nonEmpty(contentType),
		IfNoneMatch:   ifNoneMatch,
	})
	return err
}

// PutIfAbsent is a PutObject with If-None-Match: *, which S3 evaluates and
// commits atomically: of concurrent writers the first to finish wins and the
// others get 412 PreconditionFailed. 409 ConditionalRequestConflict means
// another conditional write (or a delete) raced on the key; it also counts as
// lost, so the caller re-reads the key instead of assuming it holds its body.
func (s *s3Store) PutIfAbsent(ctx context.Context, key string, body []byte, contentType string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	err := s.putObject(ctx, key, body, contentType, aws.String("*"))
	if err == nil {
		return nil
	}
	if code := apiCode(err); code == "PreconditionFailed" || code == "ConditionalRequestConflict" || httpStatus(err) == http.StatusPreconditionFailed {
		return &kindError{msg: fmt.Sprintf("objstore: %s already exists: another writer created it first", s.url(key)), kind: ErrExist, err: err}
	}
	return s.describe(opWrite, key, err)
}

func (s *s3Store) Get(ctx context.Context, key string) ([]byte, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(s.prefix + key)})
	if err != nil {
		return nil, s.describe(opRead, key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		return nil, s.describe(opRead, key, err)
	}
	return b, nil
}

func (s *s3Store) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	if err := checkPrefix(prefix); err != nil {
		return nil, err
	}
	var infos []ObjectInfo
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
		Bucket: aws.String(s.bucket),
		Prefix: aws.String(s.prefix + prefix),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, s.describe(opList, prefix, err)
		}
		for _, obj := range page.Contents {
			infos = append(infos, ObjectInfo{
				Key:          strings.TrimPrefix(aws.ToString(obj.Key), s.prefix),
				Size:         aws.ToInt64(obj.Size),
				LastModified: aws.ToTime(obj.LastModified).UTC(),
			})
		}
	}
	return infos, nil
}

func (s *s3Store) Delete(ctx context.Context, keys []string) error {
	for _, k := range keys {
		if err := checkKey(k); err != nil {
			return err
		}
	}
	for start := 0; start < len(keys); start += s.deleteBatch {
		batch := keys[start:min(start+s.deleteBatch, len(keys))]
		ids := make([]s3types.ObjectIdentifier, len(batch))
		for i, k := range batch {
			ids[i] = s3types.ObjectIdentifier{Key: aws.String(s.prefix + k)}
		}
		out, err := s.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{
			Bucket: aws.String(s.bucket),
			Delete: &s3types.Delete{Objects: ids, Quiet: aws.Bool(true)},
		})
		if err != nil {
			return s.describe(opDelete, batch[0], err)
		}
		if len(out.Errors) > 0 {
			// Per-key failures come back in a 200 response.
			var errs []error
			for _, e := range out.Errors {
				key := strings.TrimPrefix(aws.ToString(e.Key), s.prefix)
				errs = append(errs, s.describe(opDelete, key, &smithy.GenericAPIError{Code: aws.ToString(e.Code), Message: aws.ToString(e.Message)}))
				if len(errs) == 5 {
					errs = append(errs, fmt.Errorf("objstore: … and %d more keys failed to delete", len(out.Errors)-5))
					break
				}
			}
			return errors.Join(errs...)
		}
	}
	return nil
}

func (s *s3Store) OpenRange(ctx context.Context, key string) (RangeReader, int64, error) {
	if err := checkKey(key); err != nil {
		return nil, 0, err
	}
	head, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(s.prefix + key)})
	if err != nil {
		return nil, 0, s.describe(opRead, key, err)
	}
	r := &s3RangeReader{
		ctx:   ctx,
		store: s,
		key:   key,
		etag:  head.ETag,
		size:  aws.ToInt64(head.ContentLength),
	}
	return r, r.size, nil
}

// s3RangeReader serves ReadAt with ranged GetObject requests pinned to the
// ETag seen by OpenRange, so a replaced object fails instead of mixing bytes.
type s3RangeReader struct {
	statsCounter
	ctx   context.Context
	store *s3Store
	key   string
	etag  *string
	size  int64
}

func (r *s3RangeReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("objstore: ReadAt %s: negative offset %d", r.store.url(r.key), off)
	}
	if off >= r.size {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	end := min(off+int64(len(p)), r.size) // exclusive
	out, err := r.store.client.GetObject(r.ctx, &s3.GetObjectInput{
		Bucket:  aws.String(r.store.bucket),
		Key:     aws.String(r.store.prefix + r.key),
		Range:   aws.String(fmt.Sprintf("bytes=%d-%d", off, end-1)),
		IfMatch: r.etag,
	})
	if err != nil {
		r.add(0)
		return 0, r.store.describe(opRead, r.key, err)
	}
	defer out.Body.Close()
	n, err := io.ReadFull(out.Body, p[:end-off])
	r.add(n)
	if err != nil {
		return n, fmt.Errorf("objstore: read %s at %d: %w", r.store.url(r.key), off, err)
	}
	if end < off+int64(len(p)) {
		return n, io.EOF
	}
	return n, nil
}

func (r *s3RangeReader) Close() error { return nil }

type op int

const (
	opWrite op = iota
	opRead
	opList
	opDelete
)

func (o op) String() string {
	return [...]string{"write", "read", "list", "delete"}[o]
}

// permission is the IAM action op needs.
func (o op) permission() string {
	return [...]string{"s3:PutObject", "s3:GetObject", "s3:ListBucket", "s3:DeleteObject"}[o]
}

// describe turns an S3 error into one naming the bucket, key and fix.
func (s *s3Store) describe(o op, key string, err error) error {
	where := s.url(key)
	resource := "arn:aws:s3:::" + s.bucket + "/" + s.prefix + "*"
	if o == opList {
		resource = "arn:aws:s3:::" + s.bucket
	}
	code := apiCode(err)
	switch code {
	case "NoSuchBucket":
		return &kindError{msg: fmt.Sprintf("objstore: bucket %s does not exist: create it or fix EXPORT_DESTINATION", s.bucket), kind: ErrNoSuchBucket, err: err}
	case "NoSuchKey", "NotFound":
		return &kindError{msg: fmt.Sprintf("objstore: %s does not exist", where), kind: ErrNotExist, err: err}
	case "AccessDenied", "Forbidden", "AllAccessDisabled":
		hint := ""
		switch o {
		case opRead:
			hint = " (S3 also answers AccessDenied for a missing key when s3:ListBucket is not granted)"
		case opWrite:
			hint = " (and s3:AbortMultipartUpload; kms:GenerateDataKey if the bucket uses SSE-KMS)"
		}
		return &kindError{msg: fmt.Sprintf("objstore: access denied on %s: grant %s on %s to the function's role%s", where, o.permission(), resource, hint), kind: ErrAccessDenied, err: err}
	case "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken", "TokenRefreshRequired", "XAdminUserNotFound":
		return &kindError{msg: fmt.Sprintf("objstore: access denied on %s: S3 rejected the AWS credentials (%s): check the function's role or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN", where, code), kind: ErrAccessDenied, err: err}
	case "PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException":
		return &kindError{msg: fmt.Sprintf("objstore: bucket %s is not in the configured region: set AWS_REGION to the bucket's region", s.bucket), err: err}
	case "PreconditionFailed":
		return &kindError{msg: fmt.Sprintf("objstore: %s changed while being read: read it again", where), err: err}
	}
	return &kindError{msg: fmt.Sprintf("objstore: %s %s", o, where), err: err}
}

// apiCode returns the S3 error code of err, or "".
func apiCode(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode()
	}
	return ""
}

// httpStatus returns the HTTP status code of the response that failed with
// err, or 0.
func httpStatus(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return aws.String(s)
}
