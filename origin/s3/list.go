package s3

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/fedicache/fedicache/origin"
)

// listPageSize is how many keys one ListObjectsV2 request asks for: S3's most.
const listPageSize = 1000

// List implements origin.Lister with ListObjectsV2 requests, one page of up to 1000 keys at a
// time, under the configured prefix; the keys it passes to fn are without the prefix, and
// start after after when it is not empty.
//
// S3 lists keys in ascending order of their UTF-8 bytes, which is the order of Go's string
// comparison, so the listing can be merged with a sorted walk of another store. List checks
// that order as it goes and fails on a service that breaks it, rather than let a merge go
// wrong. Keys ending in "/" (the empty "folder" objects some tools create) and the prefix
// itself are left out: no file of the old volume has such a key.
//
// fn is called between requests, never during one, so it may take its time. List returns fn's
// first error as it is; a failed request is retried as Config.MaxAttempts and MaxBackoff say.
func (b *Bucket) List(ctx context.Context, after string, fn func(origin.Object) error) error {
	in := &s3.ListObjectsV2Input{
		Bucket:  aws.String(b.bucket),
		MaxKeys: aws.Int32(listPageSize),
	}
	if b.prefix != "" {
		in.Prefix = aws.String(b.prefix)
	}
	// Every bucket key listed must sort after last; with no after, the prefix itself may come.
	last, strict := b.prefix+after, after != ""
	if after != "" {
		in.StartAfter = aws.String(last)
	}
	for {
		out, err := send(ctx, b, "ListObjectsV2", false, func(ctx context.Context, p *progressWatch) (*s3.ListObjectsV2Output, error) {
			return b.writer().ListObjectsV2(ctx, in, p.options(b.writes.retryer)...)
		})
		if err != nil {
			return fmt.Errorf("s3: list: %w", err)
		}
		for _, o := range out.Contents {
			bucketKey := aws.ToString(o.Key)
			if bucketKey < last || bucketKey == last && strict || !strings.HasPrefix(bucketKey, b.prefix) {
				return fmt.Errorf("s3: list: the bucket listed %q after %q, out of byte order or outside the prefix %q",
					bucketKey, last, b.prefix)
			}
			last, strict = bucketKey, true
			key := bucketKey[len(b.prefix):]
			if key == "" || strings.HasSuffix(key, "/") {
				continue
			}
			err := fn(origin.Object{Key: key, Size: aws.ToInt64(o.Size), ETag: quoteETag(aws.ToString(o.ETag))})
			if err != nil {
				return err
			}
		}
		if !aws.ToBool(out.IsTruncated) {
			return nil
		}
		if aws.ToString(out.NextContinuationToken) == "" {
			return fmt.Errorf("s3: list: the bucket cut the listing short after %q without a continuation token", last)
		}
		in.ContinuationToken = out.NextContinuationToken
	}
}

var _ origin.Lister = (*Bucket)(nil)
