package s3

import (
	"context"
	"io"

	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/fedicache/fedicache/origin"
)

// uploadConcurrency is how many parts of one object go up at once.
const uploadConcurrency = 2

// putMultipart stores key as a multipart upload with the SDK's upload manager: parts of
// Config.PartSize (larger when the object would need more than 10,000), two at a time.
//
// The manager reads each part through an io.SectionReader over body, since body is an
// io.ReaderAt and an io.Seeker, so it holds no part in memory (it would buffer whole parts for
// a plain reader); the parts' ReadAt calls run concurrently, as io.ReaderAt allows. A part
// that fails all its attempts fails the upload, which is then aborted (LeavePartsOnError
// false): neither an object nor orphaned parts are left behind. The abort is sent even when
// ctx is done, under its own timeout, since an abandoned upload keeps costing storage;
// AbortStaleUploads sweeps up any whose abort failed all the same.
//
// opts.IfNoneMatch is sent on CompleteMultipartUpload (the manager copies it there from the
// PutObjectInput), so the parts go up whatever the key holds and the completion fails with
// origin.ErrExists if it holds an object by then.
func (b *Bucket) putMultipart(ctx context.Context, key string, body origin.Body, size int64, opts origin.PutOptions) error {
	in := b.putInput(key, opts)
	in.Body = io.NewSectionReader(body, 0, size)
	_, err := newUploader(uploadAPI{b}, b.writes).Upload(ctx, in)
	return err
}

// newUploader returns the upload manager of putMultipart, sending its requests through client.
//
// The manager is deprecated for feature/s3/transfermanager, which is not used as of v0.5.9: its
// UploadObject never reads a body through io.ReaderAt, but copies the first part into memory
// with io.ReadAll and every later one into one of Concurrency+1 part-sized buffers it allocates
// up front (api_op_UploadObject.go nextReader, pool.go newDefaultSlicePool), with no option to
// do otherwise, and reads the body from one goroutine.
func newUploader(client manager.UploadAPIClient, w writeConfig) *manager.Uploader {
	return manager.NewUploader(client, func(u *manager.Uploader) {
		u.PartSize = w.partSize
		u.Concurrency = uploadConcurrency
		u.LeavePartsOnError = false
		u.BufferProvider = nil // the default, but on Windows, where it copies each part to memory
		u.RequestChecksumCalculation = w.checksum
	})
}

// uploadAPI is the bucket's client of writes (see writer) as the upload manager sees it: each
// request it makes goes out under a progressWatch, with the retries of writes, told to
// Config.Observe, and its error translated.
type uploadAPI struct{ b *Bucket }

// PutObject is made by the manager for an object of one part only, which putMultipart never
// hands it; it is here to complete the manager's interface.
func (u uploadAPI) PutObject(ctx context.Context, in *s3.PutObjectInput, optFns ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	return send(ctx, u.b, "PutObject", in.IfNoneMatch != nil, func(ctx context.Context, p *progressWatch) (*s3.PutObjectOutput, error) {
		params := *in
		if rs, ok := params.Body.(io.ReadSeeker); ok {
			params.Body = p.body(rs)
		}
		return u.b.writer().PutObject(ctx, &params, p.options(u.b.writes.retryer, optFns...)...)
	})
}

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

// AbortMultipartUpload is sent even when ctx is done: an upload left behind keeps its parts.
func (u uploadAPI) AbortMultipartUpload(ctx context.Context, in *s3.AbortMultipartUploadInput, optFns ...func(*s3.Options)) (
	*s3.AbortMultipartUploadOutput, error,
) {
	return u.b.abortUpload(context.WithoutCancel(ctx), in, optFns...)
}

// abortUpload sends one AbortMultipartUpload.
func (b *Bucket) abortUpload(ctx context.Context, in *s3.AbortMultipartUploadInput, optFns ...func(*s3.Options)) (
	*s3.AbortMultipartUploadOutput, error,
) {
	return send(ctx, b, "AbortMultipartUpload", false, func(ctx context.Context, p *progressWatch) (*s3.AbortMultipartUploadOutput, error) {
		return b.writer().AbortMultipartUpload(ctx, in, p.options(b.writes.retryer, optFns...)...)
	})
}

var _ manager.UploadAPIClient = uploadAPI{}
