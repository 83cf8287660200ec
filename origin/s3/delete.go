package s3

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/fedicache/fedicache/origin"
)

// Delete implements origin.Deleter with a DeleteObject request for key under the configured
// prefix, sent as the writes are: signed (see StateView), retried as Config.MaxAttempts and
// MaxBackoff say, and bounded by Config.Timeout per silence of the bucket. S3 answers 204 for a
// key that does not exist; a service that answers NoSuchKey instead is no error either.
func (b *Bucket) Delete(ctx context.Context, key string) error {
	_, err := send(ctx, b, "DeleteObject", false, func(ctx context.Context, p *progressWatch) (*s3.DeleteObjectOutput, error) {
		out, err := b.writer().DeleteObject(ctx, &s3.DeleteObjectInput{
			Bucket: aws.String(b.bucket),
			Key:    aws.String(b.Key(key)),
		}, p.options(b.writes.retryer)...)
		if errorCode(err) == "NoSuchKey" {
			return out, nil
		}
		return out, err
	})
	if err != nil {
		return fmt.Errorf("s3: delete %q: %w", key, err)
	}
	return nil
}

var _ origin.Deleter = (*Bucket)(nil)
