package s3

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"golang.org/x/sync/errgroup"

	"github.com/fedicache/fedicache/origin"
)

// uploadConcurrency is how many parts of one object go up at once.
const uploadConcurrency = 2

// putMultipart stores key as a multipart upload (see uploader): parts of Config.PartSize
// (larger when the object would need more than 10,000), two at a time, each read straight from
// body and never held in memory.
//
// opts.IfNoneMatch is sent on CompleteMultipartUpload, so the parts go up whatever the key
// holds and the completion fails with origin.ErrExists if it holds an object by then; the
// upload is then aborted, and the object the key held is left as it was.
func (b *Bucket) putMultipart(ctx context.Context, key string, body origin.Body, size int64, opts origin.PutOptions) error {
	in := b.putInput(key, opts)
	in.Body = io.NewSectionReader(body, 0, size)
	_, err := newUploader(uploadAPI{b}, b.writes).Upload(ctx, in)
	return err
}

// uploader sends objects as multipart uploads, in place of the SDK's deprecated
// feature/s3/manager. Neither that nor its successor feature/s3/transfermanager is used: the
// manager is deprecated, and transfermanager (as of v0.5.9) never reads a body through
// io.ReaderAt, but copies the first part into memory with io.ReadAll and every later one into
// one of Concurrency+1 part-sized buffers it allocates up front (api_op_UploadObject.go
// nextReader, pool.go newDefaultSlicePool), with no option to do otherwise, which would take
// the backfill's memory from a few buffers to three parts per object copied.
//
// Each part is an io.SectionReader over the body, which the SDK reads as the request goes out
// and seeks back to the start for another attempt; the parts' ReadAt calls run concurrently,
// as io.ReaderAt allows. A part that fails all its attempts, a refused completion or a caller
// that gives up fails the upload, which is then aborted: neither an object nor orphaned parts
// are left behind. The abort is sent even when ctx is done, since an abandoned upload keeps
// costing storage; it is bounded by the client's own watch of each request (uploadAPI sends it
// under a progressWatch), and AbortStaleUploads sweeps up any whose abort failed all the same.
type uploader struct {
	client   uploadClient
	partSize int64
	// checksum says whether parts carry checksums: with
	// aws.RequestChecksumCalculationWhenSupported the upload is created with the CRC32
	// algorithm, the SDK computes each part's checksum and the completion lists them; with
	// WhenRequired (the default) no request carries one.
	checksum aws.RequestChecksumCalculation
}

// uploadClient is the part of the S3 API a multipart upload sends; uploadAPI sends it through
// the bucket.
type uploadClient interface {
	CreateMultipartUpload(ctx context.Context, in *s3.CreateMultipartUploadInput, optFns ...func(*s3.Options)) (*s3.CreateMultipartUploadOutput, error)
	UploadPart(ctx context.Context, in *s3.UploadPartInput, optFns ...func(*s3.Options)) (*s3.UploadPartOutput, error)
	CompleteMultipartUpload(ctx context.Context, in *s3.CompleteMultipartUploadInput, optFns ...func(*s3.Options)) (*s3.CompleteMultipartUploadOutput, error)
	AbortMultipartUpload(ctx context.Context, in *s3.AbortMultipartUploadInput, optFns ...func(*s3.Options)) (*s3.AbortMultipartUploadOutput, error)
}

// newUploader returns an uploader sending its requests through client, with the part size and
// checksum setting of w.
func newUploader(client uploadClient, w writeConfig) *uploader {
	return &uploader{client: client, partSize: w.partSize, checksum: w.checksum}
}

// sectionBody is the body Upload takes: bytes read at any offset, of a known size, as an
// *io.SectionReader is.
type sectionBody interface {
	io.ReaderAt
	Size() int64
}

// Upload stores in.Body, which must be a sectionBody of at least one byte, as in.Key in one
// multipart upload: in's headers (ContentType, CacheControl, ACL, Metadata...) go on
// CreateMultipartUpload, its If-None-Match and If-Match on CompleteMultipartUpload.
func (u *uploader) Upload(ctx context.Context, in *s3.PutObjectInput) (*s3.CompleteMultipartUploadOutput, error) {
	body, ok := in.Body.(sectionBody)
	switch {
	case !ok:
		return nil, fmt.Errorf("a multipart upload reads its body at offsets, which a %T cannot be", in.Body)
	case body.Size() <= 0:
		return nil, errors.New("a multipart upload needs at least one byte")
	}
	algorithm := in.ChecksumAlgorithm
	if algorithm == "" && u.checksum != aws.RequestChecksumCalculationWhenRequired {
		algorithm = types.ChecksumAlgorithmCrc32
	}
	up, err := u.client.CreateMultipartUpload(ctx, createInput(in, algorithm))
	if err != nil {
		return nil, err
	}
	if up.UploadId == nil {
		return nil, errors.New("the bucket started an upload without an id")
	}
	var out *s3.CompleteMultipartUploadOutput
	parts, err := u.uploadEachPart(ctx, in, body, algorithm, up.UploadId)
	if err == nil {
		out, err = u.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
			Bucket:          in.Bucket,
			Key:             in.Key,
			UploadId:        up.UploadId,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
			IfNoneMatch:     in.IfNoneMatch,
			IfMatch:         in.IfMatch,
		})
	}
	if err != nil {
		_, abortErr := u.client.AbortMultipartUpload(context.WithoutCancel(ctx), &s3.AbortMultipartUploadInput{
			Bucket:   in.Bucket,
			Key:      in.Key,
			UploadId: up.UploadId,
		})
		if abortErr != nil {
			return nil, fmt.Errorf("%w (and the abort of upload %s failed: %v)", err, *up.UploadId, abortErr)
		}
		return nil, err
	}
	return out, nil
}

// uploadEachPart sends the parts of upload id, uploadConcurrency at a time, and returns them
// in order of their numbers, with their ETags and checksums, or the first error.
func (u *uploader) uploadEachPart(ctx context.Context, in *s3.PutObjectInput, body sectionBody, algorithm types.ChecksumAlgorithm, id *string) (
	[]types.CompletedPart, error,
) {
	size := body.Size()
	partSize := copyPartSize(size, u.partSize)
	parts := make([]types.CompletedPart, (size+partSize-1)/partSize)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(uploadConcurrency)
	for i := range parts {
		if gctx.Err() != nil {
			break // a part failed: send no more
		}
		n := int32(i + 1)
		off := int64(i) * partSize
		length := min(partSize, size-off)
		g.Go(func() error {
			out, err := u.client.UploadPart(gctx, &s3.UploadPartInput{
				Bucket:            in.Bucket,
				Key:               in.Key,
				UploadId:          id,
				PartNumber:        aws.Int32(n),
				ContentLength:     aws.Int64(length),
				ChecksumAlgorithm: algorithm,
				Body:              io.NewSectionReader(body, off, length),
			})
			switch {
			case err != nil:
				return fmt.Errorf("part %d: %w", n, err)
			case out.ETag == nil:
				return fmt.Errorf("part %d: the bucket's answer has no ETag", n)
			}
			parts[i] = types.CompletedPart{
				PartNumber:        aws.Int32(n),
				ETag:              out.ETag,
				ChecksumCRC32:     out.ChecksumCRC32,
				ChecksumCRC32C:    out.ChecksumCRC32C,
				ChecksumCRC64NVME: out.ChecksumCRC64NVME,
				ChecksumSHA1:      out.ChecksumSHA1,
				ChecksumSHA256:    out.ChecksumSHA256,
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err // given up between parts: some were never sent
	}
	return parts, nil
}

// createInput returns the CreateMultipartUploadInput of in: its bucket, key and the headers the
// object keeps, with algorithm as its checksum algorithm.
func createInput(in *s3.PutObjectInput, algorithm types.ChecksumAlgorithm) *s3.CreateMultipartUploadInput {
	return &s3.CreateMultipartUploadInput{
		Bucket:               in.Bucket,
		Key:                  in.Key,
		ACL:                  in.ACL,
		CacheControl:         in.CacheControl,
		ContentDisposition:   in.ContentDisposition,
		ContentEncoding:      in.ContentEncoding,
		ContentLanguage:      in.ContentLanguage,
		ContentType:          in.ContentType,
		Expires:              in.Expires,
		Metadata:             in.Metadata,
		StorageClass:         in.StorageClass,
		Tagging:              in.Tagging,
		ServerSideEncryption: in.ServerSideEncryption,
		SSEKMSKeyId:          in.SSEKMSKeyId,
		ChecksumAlgorithm:    algorithm,
	}
}

// uploadAPI is the bucket's client of writes (see writer) as an uploader sees it: each request
// goes out under a progressWatch, with the retries of writes, told to Config.Observe, and its
// error translated (a refused If-None-Match on the completion is origin.ErrExists).
type uploadAPI struct{ b *Bucket }

func (u uploadAPI) CreateMultipartUpload(ctx context.Context, in *s3.CreateMultipartUploadInput, optFns ...func(*s3.Options)) (
	*s3.CreateMultipartUploadOutput, error,
) {
	return send(ctx, u.b, "CreateMultipartUpload", false, func(ctx context.Context, p *progressWatch) (*s3.CreateMultipartUploadOutput, error) {
		return u.b.writer().CreateMultipartUpload(ctx, in, p.options(u.b.writes.retryer, optFns...)...)
	})
}

func (u uploadAPI) UploadPart(ctx context.Context, in *s3.UploadPartInput, optFns ...func(*s3.Options)) (*s3.UploadPartOutput, error) {
	return send(ctx, u.b, "UploadPart", false, func(ctx context.Context, p *progressWatch) (*s3.UploadPartOutput, error) {
		params := *in
		if rs, ok := params.Body.(io.ReadSeeker); ok {
			params.Body = p.body(rs)
		}
		return u.b.writer().UploadPart(ctx, &params, p.options(u.b.writes.retryer, optFns...)...)
	})
}

func (u uploadAPI) CompleteMultipartUpload(ctx context.Context, in *s3.CompleteMultipartUploadInput, optFns ...func(*s3.Options)) (
	*s3.CompleteMultipartUploadOutput, error,
) {
	return send(ctx, u.b, "CompleteMultipartUpload", in.IfNoneMatch != nil, func(ctx context.Context, p *progressWatch) (*s3.CompleteMultipartUploadOutput, error) {
		return u.b.writer().CompleteMultipartUpload(ctx, in, p.options(u.b.writes.retryer, optFns...)...)
	})
}

// AbortMultipartUpload sends the abort under ctx as it is: the uploader hands it a context
// that is never canceled.
func (u uploadAPI) AbortMultipartUpload(ctx context.Context, in *s3.AbortMultipartUploadInput, optFns ...func(*s3.Options)) (
	*s3.AbortMultipartUploadOutput, error,
) {
	return u.b.abortUpload(ctx, in, optFns...)
}

// abortUpload sends one AbortMultipartUpload.
func (b *Bucket) abortUpload(ctx context.Context, in *s3.AbortMultipartUploadInput, optFns ...func(*s3.Options)) (
	*s3.AbortMultipartUploadOutput, error,
) {
	return send(ctx, b, "AbortMultipartUpload", false, func(ctx context.Context, p *progressWatch) (*s3.AbortMultipartUploadOutput, error) {
		return b.writer().AbortMultipartUpload(ctx, in, p.options(b.writes.retryer, optFns...)...)
	})
}

var _ uploadClient = uploadAPI{}
