package s3

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/fedicache/fedicache/origin"
)

// ObjectACL implements origin.ACLReader with a GetObjectAcl request of key. It is one of
// fedicache's own requests, a copier's: signed even for an anonymous bucket (see writer), and
// answered for hidden objects too, whatever Config.RequirePublicRead says. The object is
// origin.ACLPublicRead when the AllUsers group may read it, else origin.ACLPrivate; a service
// without ACLs (as RequirePublicRead finds it) gives origin.ErrNoACLs, a missing key
// origin.ErrNotFound.
func (b *Bucket) ObjectACL(ctx context.Context, key string) (string, error) {
	start := time.Now()
	w := newWatchdog(ctx, b.timeout)
	out, err := b.writer().GetObjectAcl(w.ctx, &s3.GetObjectAclInput{Bucket: aws.String(b.bucket), Key: aws.String(b.Key(key))})
	if err != nil {
		err = translate(ctx, w, err)
		if aclsUnsupported(err) {
			err = origin.ErrNoACLs
		}
		err = fmt.Errorf("s3: acl of %q: %w", key, err)
	}
	w.release()
	b.observed("GetObjectAcl", start, err)
	if err != nil {
		return "", err
	}
	if publicRead(out.Grants) {
		return origin.ACLPublicRead, nil
	}
	return origin.ACLPrivate, nil
}

// ObjectHeaders implements origin.HeadersReader with a HeadObject request of key, signed and
// blind to ACLs as ObjectACL is. The headers are those stored (empty when none, where Meta's
// ContentType is guessed from the key, as Stat's is).
func (b *Bucket) ObjectHeaders(ctx context.Context, key string) (origin.Meta, origin.ObjectHeaders, error) {
	out, err := b.headOwn(ctx, key)
	if err != nil {
		return origin.Meta{}, origin.ObjectHeaders{}, fmt.Errorf("s3: headers of %q: %w", key, err)
	}
	h := origin.ObjectHeaders{ContentType: aws.ToString(out.ContentType), CacheControl: aws.ToString(out.CacheControl)}
	return newMeta(key, *out.ContentLength, out.ContentType, out.ETag, out.LastModified), h, nil
}

// headOwn sends a HeadObject of key with the client of fedicache's own requests (see writer)
// and returns its answer, which has a Content-Length, or the translated error.
func (b *Bucket) headOwn(ctx context.Context, key string) (*s3.HeadObjectOutput, error) {
	start := time.Now()
	w := newWatchdog(ctx, b.timeout)
	out, err := b.writer().HeadObject(w.ctx, &s3.HeadObjectInput{Bucket: aws.String(b.bucket), Key: aws.String(b.Key(key))})
	switch {
	case err != nil:
		err = translate(ctx, w, err)
	case out.ContentLength == nil:
		err = errors.New("the bucket's answer has no Content-Length")
	}
	w.release()
	b.observed("HeadObject", start, err)
	return out, err
}

var (
	_ origin.ACLReader     = (*Bucket)(nil)
	_ origin.HeadersReader = (*Bucket)(nil)
)
