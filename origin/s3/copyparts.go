package s3

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"golang.org/x/sync/errgroup"

	"github.com/fedicache/fedicache/origin"
)

// maxParts is the most parts S3 takes in one multipart upload.
const maxParts = 10_000

// copyParts copies key (size bytes) from src as a multipart upload whose parts are copied by
// the service (UploadPartCopy), uploadConcurrency at a time. A HeadObject of the source first
// checks that it still holds size bytes and takes its ETag, which every part then requires
// (x-amz-copy-source-if-match), so that a source replaced during the copy fails it rather than
// leaving an object made of two. opts.IfNoneMatch is sent on CompleteMultipartUpload, as
// putMultipart does. A copy that fails after its upload started aborts it, even when ctx is
// done, so that no parts are left behind (AbortStaleUploads sweeps any whose abort failed).
func (b *Bucket) copyParts(ctx context.Context, src *Bucket, key string, size int64, opts origin.PutOptions) (etag *string, err error) {
	head, err := src.headOwn(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("the source: %w", err)
	}
	if *head.ContentLength != size {
		return nil, fmt.Errorf("the source holds %d bytes, not the %d to copy", *head.ContentLength, size)
	}
	create := &s3.CreateMultipartUploadInput{Bucket: aws.String(b.bucket), Key: aws.String(b.Key(key))}
	create.ContentType, create.CacheControl, create.ACL, _ = writeFields(opts) // If-None-Match goes on the completion
	if create.ContentType == nil && create.CacheControl == nil {
		// The source's headers, as CopyObject's COPY directive keeps them: an upload starts
		// with none of its own.
		create.ContentType, create.CacheControl = head.ContentType, head.CacheControl
	}
	up, err := send(ctx, b, "CreateMultipartUpload", false, func(ctx context.Context, p *progressWatch) (*s3.CreateMultipartUploadOutput, error) {
		return b.writer().CreateMultipartUpload(ctx, create, p.options(b.writes.retryer)...)
	})
	if err != nil {
		return nil, err
	}
	if up.UploadId == nil {
		return nil, errors.New("the bucket started an upload without an id")
	}
	parts, err := b.copyEachPart(ctx, src, key, size, head.ETag, up.UploadId)
	if err == nil {
		complete := &s3.CompleteMultipartUploadInput{
			Bucket:          aws.String(b.bucket),
			Key:             aws.String(b.Key(key)),
			UploadId:        up.UploadId,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
		}
		if opts.IfNoneMatch {
			complete.IfNoneMatch = aws.String("*")
		}
		_, err = send(ctx, b, "CompleteMultipartUpload", opts.IfNoneMatch, func(ctx context.Context, p *progressWatch) (*s3.CompleteMultipartUploadOutput, error) {
			return b.writer().CompleteMultipartUpload(ctx, complete, p.options(b.writes.retryer)...)
		})
	}
	if err != nil {
		_, abortErr := b.abortUpload(context.WithoutCancel(ctx), &s3.AbortMultipartUploadInput{
			Bucket:   aws.String(b.bucket),
			Key:      aws.String(b.Key(key)),
			UploadId: up.UploadId,
		})
		if abortErr != nil {
			return nil, fmt.Errorf("%w (and the abort of upload %s failed: %v)", err, *up.UploadId, abortErr)
		}
		return nil, err
	}
	return nil, nil // a multipart copy's ETag is no MD5 of its bytes
}

// copyEachPart copies the parts of upload id, key's bytes in src whose ETag is etag, and
// returns them in order, or the first error.
func (b *Bucket) copyEachPart(ctx context.Context, src *Bucket, key string, size int64, etag, id *string) ([]types.CompletedPart, error) {
	partSize := copyPartSize(size, b.writes.partSize)
	parts := make([]types.CompletedPart, (size+partSize-1)/partSize)
	source := aws.String(copySource(src.bucket, src.Key(key)))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(uploadConcurrency)
	for i := range parts {
		if gctx.Err() != nil {
			break
		}
		n := int32(i + 1)
		first := int64(i) * partSize
		in := &s3.UploadPartCopyInput{
			Bucket:            aws.String(b.bucket),
			Key:               aws.String(b.Key(key)),
			UploadId:          id,
			PartNumber:        aws.Int32(n),
			CopySource:        source,
			CopySourceRange:   aws.String(fmt.Sprintf("bytes=%d-%d", first, min(first+partSize, size)-1)),
			CopySourceIfMatch: etag,
		}
		g.Go(func() error {
			out, err := send(gctx, b, "UploadPartCopy", false, func(ctx context.Context, p *progressWatch) (*s3.UploadPartCopyOutput, error) {
				return b.writer().UploadPartCopy(ctx, in, p.options(b.writes.retryer)...)
			})
			switch {
			case err != nil && conditionFailed(err):
				return fmt.Errorf("part %d: the source changed during the copy: %w", n, err)
			case err != nil:
				return fmt.Errorf("part %d: %w", n, sourceMissing(err))
			case out.CopyPartResult == nil || out.CopyPartResult.ETag == nil:
				return fmt.Errorf("part %d: the bucket's answer has no ETag", n)
			}
			parts[i] = types.CompletedPart{ETag: out.CopyPartResult.ETag, PartNumber: aws.Int32(n)}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err // given up between parts: some were never copied
	}
	return parts, nil
}

// copyPartSize returns the size of the parts of a copy of size bytes: partSize, or more when
// that would make more than maxParts parts.
func copyPartSize(size, partSize int64) int64 {
	if size > partSize*maxParts {
		return (size + maxParts - 1) / maxParts
	}
	return partSize
}
