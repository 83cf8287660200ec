package s3

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/fedicache/fedicache/origin"
)

// service is what two buckets must share for one to copy from the other server-side: the
// service's endpoint and region, and the credentials of their signed requests.
type service struct {
	endpoint string // Config.Endpoint, normalised; empty for AWS S3 itself
	region   string
	// creds is the SHA-256 of the static keys, or zero for the AWS credential chain: two
	// buckets compare their keys without a second copy of the secret being kept.
	creds [sha256.Size]byte
	// signed says the bucket has a signed client: an anonymous bucket without credentials
	// can copy nothing.
	signed bool
}

// newService returns the service of cfg, which has its defaults filled in and is valid.
func newService(cfg Config, signed bool) service {
	s := service{endpoint: normalEndpoint(cfg.Endpoint), region: cfg.Region, signed: signed}
	if cfg.AccessKeyID != "" {
		s.creds = sha256.Sum256([]byte(cfg.AccessKeyID + "\x00" + cfg.SecretAccessKey))
	}
	return s
}

// normalEndpoint returns endpoint, a valid Config.Endpoint, in the form two spellings of one
// service share: scheme and host in lower case, no default port, no trailing slash.
func normalEndpoint(endpoint string) string {
	u, err := url.Parse(endpoint)
	if endpoint == "" || err != nil {
		return endpoint
	}
	u.Scheme, u.Host = strings.ToLower(u.Scheme), strings.ToLower(u.Host)
	if port := u.Port(); u.Scheme == "https" && port == "443" || u.Scheme == "http" && port == "80" {
		u.Host = u.Hostname()
	}
	u.Path = strings.TrimRight(u.Path, "/")
	return u.String()
}

// CanCopyFrom implements origin.ServerCopier: src must be a *Bucket of the same endpoint and
// region, reached with the same credentials (the same static keys, or both the AWS credential
// chain), and both must sign their own requests (an anonymous bucket without credentials
// cannot). Bucket and prefix may differ.
func (b *Bucket) CanCopyFrom(src origin.Origin) bool {
	s, ok := src.(*Bucket)
	return ok && b.service.signed && b.service == s.service
}

// errNotCopyable is CopyFrom's error for a source CanCopyFrom refuses.
var errNotCopyable = errors.New("the source is not a bucket of the same service with the same credentials")

// CopyFrom implements origin.ServerCopier: it stores the object src holds under key (src's
// prefix) under key in b (b's prefix), the bytes never leaving the service. Objects up to
// Config.MultipartThreshold (and those that fit in one part) are copied with one CopyObject
// request, larger ones in parts of Config.PartSize (larger when the object would need more than
// 10,000), two at a time, with UploadPartCopy (see copyParts): a single request copying
// gigabytes could stay silent for longer than Config.Timeout while the service works.
//
// The copy is stored with opts' ContentType, CacheControl and ACL; with neither header set, it
// keeps the source's as stored (MetadataDirective COPY, so that no HEAD of the source is needed
// to carry them; the ACL is set all the same). opts.ContentMD5 is not used.
// With opts.IfNoneMatch the copy is conditional, as Put's write is (on CopyObject, or on the
// request completing the parts), and CopyFrom returns origin.ErrExists when key already holds
// an object in b. A source that is not there (or goes while its parts are copied) gives
// origin.ErrNotFound. A failed CopyFrom leaves no object and no pending upload behind. The
// requests are retried as Put's are (Config.MaxAttempts, MaxBackoff). It returns the copy's
// ETag as the service answered it.
func (b *Bucket) CopyFrom(ctx context.Context, src origin.Origin, key string, size int64, opts origin.PutOptions) (string, error) {
	s, _ := src.(*Bucket)
	var err error
	var etag *string
	switch {
	case !b.CanCopyFrom(src):
		err = errNotCopyable
	case size < 0:
		err = fmt.Errorf("size %d is negative", size)
	case size <= b.writes.threshold || size <= b.writes.partSize:
		etag, err = b.copyObject(ctx, s, key, opts)
	default:
		etag, err = b.copyParts(ctx, s, key, size, opts)
	}
	if err != nil {
		return "", fmt.Errorf("s3: copy %q: %w", key, err)
	}
	if etag == nil || *etag == "" {
		return "", nil
	}
	return quoteETag(*etag), nil
}

// copyObject copies key from src with one CopyObject request.
func (b *Bucket) copyObject(ctx context.Context, src *Bucket, key string, opts origin.PutOptions) (etag *string, err error) {
	in := &s3.CopyObjectInput{
		Bucket:            aws.String(b.bucket),
		Key:               aws.String(b.Key(key)),
		CopySource:        aws.String(copySource(src.bucket, src.Key(key))),
		MetadataDirective: types.MetadataDirectiveReplace,
	}
	in.ContentType, in.CacheControl, in.ACL, in.IfNoneMatch = writeFields(opts)
	if in.ContentType == nil && in.CacheControl == nil {
		in.MetadataDirective = types.MetadataDirectiveCopy
	}
	out, err := send(ctx, b, "CopyObject", opts.IfNoneMatch, func(ctx context.Context, p *progressWatch) (*s3.CopyObjectOutput, error) {
		return b.writer().CopyObject(ctx, in, p.options(b.writes.retryer)...)
	})
	if err != nil {
		return nil, sourceMissing(err)
	}
	if out.CopyObjectResult != nil {
		etag = out.CopyObjectResult.ETag
	}
	return etag, nil
}

// copySource returns the x-amz-copy-source of key in bucket: "bucket/key", every byte but the
// unreserved ones and the slashes percent-encoded ('+' too, which some services read as a space).
func copySource(bucket, key string) string {
	const hex = "0123456789ABCDEF"
	var sb strings.Builder
	for _, c := range []byte(bucket + "/" + key) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '-', c == '.', c == '_', c == '~', c == '/':
			sb.WriteByte(c)
		default:
			sb.WriteByte('%')
			sb.WriteByte(hex[c>>4])
			sb.WriteByte(hex[c&15])
		}
	}
	return sb.String()
}

// sourceMissing returns err, or origin.ErrNotFound when err says the copy's source is not
// there (NoSuchKey: a copy's destination need not exist, so it is always the source).
func sourceMissing(err error) error {
	if err != nil && errorCode(err) == "NoSuchKey" {
		return fmt.Errorf("the source: %w", origin.ErrNotFound)
	}
	return err
}

var _ origin.ServerCopier = (*Bucket)(nil)
