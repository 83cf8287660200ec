package s3

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// AbortStaleUploads aborts the multipart uploads under the configured prefix that were started
// more than olderThan ago, and returns how many it aborted. An upload that failed and could not
// be aborted (a crash, a lost connection) keeps its parts, and their cost, until someone does.
//
// It aborts uploads by anyone, not only by Put: Mastodon itself uploads large media in parts,
// so olderThan must be longer than any writer of the bucket takes for one upload (a day is
// plenty). Zero or less aborts every upload started before now. The start times are the
// bucket's, compared with this machine's clock.
//
// It stops at the first request that fails all its attempts; an upload that is gone by the
// time it is aborted is not counted and is no error.
func (b *Bucket) AbortStaleUploads(ctx context.Context, olderThan time.Duration) (int, error) {
	cutoff := time.Now().Add(-max(olderThan, 0))
	in := &s3.ListMultipartUploadsInput{Bucket: aws.String(b.bucket)}
	if b.prefix != "" {
		in.Prefix = aws.String(b.prefix)
	}
	aborted := 0
	for {
		out, err := send(ctx, b, "ListMultipartUploads", false, func(ctx context.Context, p *progressWatch) (*s3.ListMultipartUploadsOutput, error) {
			return b.writer().ListMultipartUploads(ctx, in, p.options(b.writes.retryer)...)
		})
		if err != nil {
			if errorCode(err) == "NoSuchUpload" {
				// S3 answers an empty list; some compatible services say this when a bucket
				// never had an upload.
				return aborted, nil
			}
			return aborted, fmt.Errorf("s3: list uploads: %w", err)
		}
		for _, up := range out.Uploads {
			if up.Key == nil || up.UploadId == nil || up.Initiated == nil || !up.Initiated.Before(cutoff) {
				continue
			}
			_, err := b.abortUpload(ctx, &s3.AbortMultipartUploadInput{
				Bucket:   aws.String(b.bucket),
				Key:      up.Key,
				UploadId: up.UploadId,
			})
			switch {
			case err == nil:
				aborted++
			case errorCode(err) == "NoSuchUpload": // completed or aborted meanwhile
			default:
				key := strings.TrimPrefix(*up.Key, b.prefix)
				return aborted, fmt.Errorf("s3: abort upload %s of %q: %w", *up.UploadId, key, err)
			}
		}
		if !aws.ToBool(out.IsTruncated) {
			return aborted, nil
		}
		if out.NextKeyMarker == nil && out.NextUploadIdMarker == nil {
			return aborted, errors.New("s3: list uploads: the bucket cut the listing short without a marker")
		}
		in.KeyMarker, in.UploadIdMarker = out.NextKeyMarker, out.NextUploadIdMarker
	}
}
