package soak_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/dsync-export/dsync-export/internal/testenv/snapshottest"
	"github.com/dsync-export/dsync-export/pkg/objstore"
	"github.com/dsync-export/dsync-export/pkg/verify"
)

// checkValid runs pkg/verify on the snapshot and fails unless it is valid.
func checkValid(t *testing.T, ctx context.Context, dst objstore.Store, date string, opts verify.Options) *verify.Report {
	t.Helper()
	rep, err := verify.Verify(ctx, dst, date, opts)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if !rep.Valid {
		t.Errorf("verify: snapshot %s is not valid: failed %v", date, rep.Failed())
		for _, c := range rep.Checks {
			if !c.OK {
				t.Errorf("  %s: %s; %s", c.Name, c.Detail, strings.Join(c.Errors, "; "))
			}
		}
	}
	return rep
}

// checkUncommitted fails unless verify reports the snapshot of date invalid
// because its manifest is missing: an interrupted export must never look
// committed.
func checkUncommitted(t *testing.T, ctx context.Context, dst objstore.Store, date string) {
	t.Helper()
	if m := snapshottest.ReadManifest(t, dst, date); m != nil {
		t.Fatalf("a manifest was written by an export that did not finish (written at %s)", m.FinishedAt)
	}
	rep, err := verify.Verify(ctx, dst, date, verify.Options{})
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if c, ok := rep.Check(verify.CheckManifest); rep.Valid || !ok || c.OK {
		t.Errorf("verify of an uncommitted snapshot: valid %v, manifest check %+v: want invalid because the manifest is missing", rep.Valid, c)
	}
}

// multipartUploads returns the keys of the multipart uploads in progress in
// bucket: a dead or aborted export must not leave any behind (they are billed
// storage that no listing shows).
func multipartUploads(t *testing.T, ctx context.Context, client *s3.Client, bucket string) []string {
	t.Helper()
	out, err := client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatalf("list multipart uploads of %s: %v", bucket, err)
	}
	var keys []string
	for _, u := range out.Uploads {
		keys = append(keys, aws.ToString(u.Key))
	}
	return keys
}
