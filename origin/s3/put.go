package s3

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/fedicache/fedicache/origin"
)

// Put implements origin.Putter. It sends bytes [0, size) of body, whatever body's current
// offset: up to Config.MultipartThreshold (and any object that fits in one part) in one
// PutObject request, larger objects in parts of Config.PartSize, two at a time, read with
// concurrent ReadAt calls (see putMultipart). A failed request is retried as
// Config.MaxAttempts and MaxBackoff say, with the body read again for each attempt.
//
// opts.ContentMD5 is sent with a PutObject and checked by the bucket. It is not sent with an
// object in parts: S3 has no Content-MD5 for a whole multipart object.
//
// With opts.IfNoneMatch the write is conditional (If-None-Match: *; for an object in parts, on
// the request that completes it) and Put returns origin.ErrExists when the key already holds an
// object. A conditional PutObject whose first attempt was stored but whose answer was lost
// returns origin.ErrExists too, since its retry finds the object. A service that ignores
// If-None-Match (AWS S3 honours it on both requests) overwrites the object.
func (b *Bucket) Put(ctx context.Context, key string, body origin.Body, size int64, opts origin.PutOptions) error {
	var err error
	switch {
	case size < 0:
		err = fmt.Errorf("size %d is negative", size)
	case size <= b.writes.threshold || size <= b.writes.partSize:
		err = b.putObject(ctx, key, body, size, opts)
	default:
		err = b.putMultipart(ctx, key, body, size, opts)
	}
	if err != nil {
		return fmt.Errorf("s3: put %q: %w", key, err)
	}
	return nil
}

// putObject stores key with one PutObject request.
func (b *Bucket) putObject(ctx context.Context, key string, body origin.Body, size int64, opts origin.PutOptions) error {
	in := b.putInput(key, opts)
	in.ContentLength = aws.Int64(size)
	if opts.ContentMD5 != nil {
		in.ContentMD5 = aws.String(base64.StdEncoding.EncodeToString(opts.ContentMD5))
	}
	_, err := send(ctx, b, "PutObject", opts.IfNoneMatch, func(ctx context.Context, p *progressWatch) (*s3.PutObjectOutput, error) {
		in.Body = p.body(io.NewSectionReader(body, 0, size))
		return b.writer().PutObject(ctx, in, p.options(b.writes.retryer)...)
	})
	return err
}

// putInput returns the PutObjectInput of key with opts, without a body, its length or its MD5.
func (b *Bucket) putInput(key string, opts origin.PutOptions) *s3.PutObjectInput {
	in := &s3.PutObjectInput{
		Bucket: aws.String(b.bucket),
		Key:    aws.String(b.Key(key)),
	}
	in.ContentType, in.CacheControl, in.ACL, in.IfNoneMatch = writeFields(opts)
	return in
}

var _ origin.Putter = (*Bucket)(nil)

// writeFields are opts as the fields of a write request (PutObject, CopyObject,
// CreateMultipartUpload): nil or empty where opts sets nothing.
func writeFields(opts origin.PutOptions) (contentType, cacheControl *string, acl types.ObjectCannedACL, ifNoneMatch *string) {
	if opts.ContentType != "" {
		contentType = aws.String(opts.ContentType)
	}
	if opts.CacheControl != "" {
		cacheControl = aws.String(opts.CacheControl)
	}
	if opts.IfNoneMatch {
		ifNoneMatch = aws.String("*")
	}
	return contentType, cacheControl, types.ObjectCannedACL(opts.ACL), ifNoneMatch
}
