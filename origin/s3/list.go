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
//
// The requests go through the lean ListObjectsV2 (leanlist.go) wherever the lean GetObject
// can go, and through the SDK's elsewhere.
func (b *Bucket) List(ctx context.Context, after string, fn func(origin.Object) error) error {
	c := newListCursor(b.prefix, after)
	if l := b.listClient(ctx); l != nil {
		return b.listLean(ctx, l, c, fn)
	}
	return b.listSDK(ctx, c, fn)
}

// listSDK is List through the SDK's ListObjectsV2.
func (b *Bucket) listSDK(ctx context.Context, c *listCursor, fn func(origin.Object) error) error {
	in := &s3.ListObjectsV2Input{
		Bucket:  aws.String(b.bucket),
		MaxKeys: aws.Int32(listPageSize),
	}
	if b.prefix != "" {
		in.Prefix = aws.String(b.prefix)
	}
	if c.startAfter != "" {
		in.StartAfter = aws.String(c.startAfter)
	}
	for {
		out, err := send(ctx, b, "ListObjectsV2", false, func(ctx context.Context, p *progressWatch) (*s3.ListObjectsV2Output, error) {
			return b.writer().ListObjectsV2(ctx, in, p.options(b.writes.retryer)...)
		})
		if err != nil {
			return fmt.Errorf("s3: list: %w", err)
		}
		for _, o := range out.Contents {
			if err := c.pass(aws.ToString(o.Key), aws.ToInt64(o.Size), aws.ToString(o.ETag), fn); err != nil {
				return err
			}
		}
		if err := c.more(aws.ToBool(out.IsTruncated), aws.ToString(out.NextContinuationToken)); err != nil {
			return err
		}
		if !aws.ToBool(out.IsTruncated) {
			return nil
		}
		in.ContinuationToken = out.NextContinuationToken
	}
}

// listCursor is where a listing stands: it checks each bucket key listed against the byte
// order and the prefix, and leaves out the keys List does not pass on.
type listCursor struct {
	prefix     string
	startAfter string // the bucket key the listing starts after (StartAfter), or ""
	// last is the last bucket key listed: every key listed must sort after it, or, while strict
	// is false (no after, nothing listed yet), may equal it (the prefix itself).
	last   string
	strict bool
}

func newListCursor(prefix, after string) *listCursor {
	c := &listCursor{prefix: prefix, last: prefix + after, strict: after != ""}
	if after != "" {
		c.startAfter = c.last
	}
	return c
}

// pass checks bucketKey, the next key listed, and calls fn with its object unless List leaves
// it out; it returns the order error or fn's error as it is.
func (c *listCursor) pass(bucketKey string, size int64, etag string, fn func(origin.Object) error) error {
	if bucketKey < c.last || bucketKey == c.last && c.strict || !strings.HasPrefix(bucketKey, c.prefix) {
		return fmt.Errorf("s3: list: the bucket listed %q after %q, out of byte order or outside the prefix %q",
			bucketKey, c.last, c.prefix)
	}
	c.last, c.strict = bucketKey, true
	key := bucketKey[len(c.prefix):]
	if key == "" || strings.HasSuffix(key, "/") {
		return nil
	}
	return fn(origin.Object{Key: key, Size: size, ETag: quoteETag(etag)})
}

// more checks the end of a page: a page that says more follow must say where they start.
func (c *listCursor) more(truncated bool, next string) error {
	if truncated && next == "" {
		return fmt.Errorf("s3: list: the bucket cut the listing short after %q without a continuation token", c.last)
	}
	return nil
}

var _ origin.Lister = (*Bucket)(nil)
