// Package s3 owns the bucket: an origin.Origin over an S3-compatible object store (AWS S3,
// Cloudflare R2, iDrive E2, Wasabi, MinIO, ...) reached through aws-sdk-go-v2 with signed
// requests, so the bucket can stay private, or with unsigned media reads (Config.Anonymous),
// so the bucket decides as for the public. It maps keys under Mastodon's S3_KEY_PREFIX,
// translates the service's errors into package origin's sentinels, and bounds every silence of
// the bucket (before the headers and while the body streams) by a timeout.
package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/fedicache/fedicache/origin"
)

// Bucket is one bucket, read as an origin.Origin. Build it with New; it is safe for concurrent use.
type Bucket struct {
	// client sends the media reads (Get, Stat, Validate, Ping): unsigned with Config.Anonymous.
	client *s3.Client
	// signed sends fedicache's own requests (lists, writes, deletes) and, for an anonymous
	// bucket, the signed look that tells a hidden object from a missing one. It is client
	// itself unless the bucket is anonymous, and nil for an anonymous bucket without
	// credentials.
	signed    *s3.Client
	anonymous bool
	bucket    string
	prefix    string // Config.Prefix with one trailing slash, or empty
	timeout   time.Duration
	observe   func(op string, d time.Duration, err error)
	writes    writeConfig // how List, Put, AbortStaleUploads and Delete send their requests
	acl       aclCheck
	sums      *checksumMode // shared with StateView's Bucket: a refusal holds for both
	lean      *leanGet      // sends client's GetObject; nil: the SDK's GetObject does
	service   service       // the service and credentials, for CanCopyFrom
	received  atomic.Uint64 // body bytes of GetObject answers read (see BytesReceived)
}

// BytesReceived returns how many body bytes of its GetObject answers the bucket has sent that
// were read: what a cache in front of it fetched (a StateView counts its own).
func (b *Bucket) BytesReceived() uint64 { return b.received.Load() }

// New returns the bucket cfg describes. It checks cfg and loads the AWS configuration
// (credentials, AWS_CA_BUNDLE, ...) but sends no request to the bucket; use Ping to see that it
// answers. With cfg.Anonymous and no static keys it looks for credentials in the AWS chain once,
// for a few seconds at most, and goes on without them when there are none.
func New(ctx context.Context, cfg Config) (*Bucket, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	client, err := newClient(ctx, cfg, cfg.Anonymous)
	if err != nil {
		return nil, err
	}
	signed := client
	if cfg.Anonymous {
		if signed, err = newSignedClient(ctx, cfg); err != nil {
			return nil, err
		}
	}
	b := &Bucket{
		client:    client,
		signed:    signed,
		anonymous: cfg.Anonymous,
		bucket:    cfg.Bucket,
		timeout:   cfg.Timeout,
		observe:   cfg.Observe,
		writes:    newWriteConfig(cfg),
		acl:       aclCheck{on: cfg.RequirePublicRead && !cfg.Anonymous},
		sums:      &checksumMode{off: cfg.DisableChecksumMode},
		lean:      newLeanGet(ctx, client, cfg.Bucket, cfg.Anonymous),
		service:   newService(cfg, signed != nil),
	}
	if cfg.Prefix != "" {
		b.prefix = cfg.Prefix + "/"
	}
	return b, nil
}

// Key returns the bucket key that holds key: key under the configured prefix.
func (b *Bucket) Key(key string) string { return b.prefix + key }

// Stat implements origin.Origin with a HeadObject request.
func (b *Bucket) Stat(ctx context.Context, key string) (origin.Meta, error) {
	return readObject(ctx, b, "HeadObject", "stat", key, func() (origin.Meta, error) {
		return b.stat(ctx, key)
	}, nil)
}

// readObject runs call, one request reading key's object (op is its S3 operation, verb names it
// in errors), then the steps every such read shares: the error wrapped with the verb and key
// (an unsigned 403 told apart by denied), the request's time observed, and the object's ACL
// read where hidden media must answer as absent (checkPublic). The ACL request runs alongside
// call, so that it adds no round trip before the first byte; what call returned is handed out
// only once the ACL allows it (undo, when set, releases it when the ACL refuses it), so a
// hidden object's bytes never leave this function.
func readObject[T any](ctx context.Context, b *Bucket, op, verb, key string, call func() (T, error), undo func(T)) (T, error) {
	acl := b.checkPublicAsync(ctx, key)
	start := time.Now()
	v, err := call()
	took := time.Since(start)
	if err != nil {
		err = fmt.Errorf("s3: %s %q: %w", verb, key, b.denied(ctx, key, err))
	}
	b.observedTook(op, took, err)
	if err != nil {
		acl.abandon()
		return v, err
	}
	if err := acl.wait(); err != nil {
		if undo != nil {
			undo(v)
		}
		var zero T
		return zero, err
	}
	return v, nil
}

func (b *Bucket) stat(ctx context.Context, key string) (origin.Meta, error) {
	w := newWatchdog(ctx, b.timeout)
	defer w.release()
	out, err := b.client.HeadObject(w.ctx, &s3.HeadObjectInput{
		Bucket: aws.String(b.bucket),
		Key:    aws.String(b.Key(key)),
	})
	if err != nil {
		return origin.Meta{}, translate(ctx, w, err)
	}
	if out.ContentLength == nil {
		return origin.Meta{}, errors.New("the bucket's answer has no Content-Length")
	}
	return newMeta(key, *out.ContentLength, out.ContentType, out.ETag, out.LastModified), nil
}

// Get implements origin.Origin with a GetObject request, ranged when r is not nil. A service that
// ignores the range and sends the whole object is served too: the body is cut to the range. A
// whole-object Get asks for the object's checksum (see Config.DisableChecksumMode): when the
// answer carries a full-object one, the body's final Read fails with ErrChecksumMismatch if the
// bytes do not match it. A service that refuses the question is sent the request again without
// it, once, and not asked again.
func (b *Bucket) Get(ctx context.Context, key string, r *origin.Range) (io.ReadCloser, origin.Meta, error) {
	type answer struct {
		body io.ReadCloser
		m    origin.Meta
	}
	a, err := readObject(ctx, b, "GetObject", "get", key, func() (answer, error) {
		body, m, err := b.get(ctx, key, r)
		return answer{body, m}, err
	}, func(a answer) { a.body.Close() })
	return a.body, a.m, err
}

func (b *Bucket) get(ctx context.Context, key string, r *origin.Range) (io.ReadCloser, origin.Meta, error) {
	// S3 sends no checksum for a range: only whole-object Gets ask.
	ask := r == nil && b.sums.asking()
	out, w, err := b.getObject(ctx, key, r, ask)
	if err != nil && ask && checksumModeRefused(err) {
		b.sums.refused.Store(true)
		out, w, err = b.getObject(ctx, key, r, false)
	}
	if err != nil {
		return nil, origin.Meta{}, err
	}
	checked, ok := checkedBody(key, out)
	body := &watchedBody{body: checked, w: w, checked: ok, received: &b.received}
	size, cut, err := fit(out, r)
	if errors.Is(err, origin.ErrRangeNotSatisfiable) {
		// The service sent the whole object for a range beyond its end: its size is known.
		body.Close()
		return nil, newMeta(key, size, out.ContentType, out.ETag, out.LastModified), err
	}
	if err != nil {
		body.Close()
		return nil, origin.Meta{}, err
	}
	var rc io.ReadCloser = body
	if cut != nil {
		cut.body = body
		rc = cut
	}
	return rc, newMeta(key, size, out.ContentType, out.ETag, out.LastModified), nil
}

// getObject sends the GetObject of key, asking for the object's checksum when checksums is set,
// and returns the answer with its watchdog, disarmed, which the body's Close releases; or the
// translated error, with the watchdog released.
func (b *Bucket) getObject(ctx context.Context, key string, r *origin.Range, checksums bool) (*s3.GetObjectOutput, *watchdog, error) {
	in := &s3.GetObjectInput{
		Bucket: aws.String(b.bucket),
		Key:    aws.String(b.Key(key)),
	}
	if r != nil {
		in.Range = aws.String(r.String())
	}
	if checksums {
		in.ChecksumMode = types.ChecksumModeEnabled
	}
	w := newWatchdog(ctx, b.timeout)
	var out *s3.GetObjectOutput
	var err error
	if b.lean != nil {
		out, err = b.lean.getObject(w.ctx, in)
	} else {
		out, err = b.client.GetObject(w.ctx, in)
	}
	w.disarm()
	if err != nil {
		err = translate(ctx, w, err)
		w.release()
		return nil, nil, err
	}
	return out, w, nil
}

// fit checks the answer to a GetObject against the range r asked for (nil: the whole object)
// and returns the whole object's size and, when the service sent the whole object for a range,
// the cut to apply to the body.
func fit(out *s3.GetObjectOutput, r *origin.Range) (size int64, cut *sliceBody, err error) {
	if out.ContentRange != nil {
		first, last, total, err := parseContentRange(*out.ContentRange)
		if err != nil {
			return 0, nil, fmt.Errorf("the bucket's answer has Content-Range %q: %w", *out.ContentRange, err)
		}
		wantFirst, wantLast, ok := int64(0), total-1, true
		if r != nil {
			wantFirst, wantLast, ok = r.Resolve(total)
		}
		if !ok || first != wantFirst || last != wantLast {
			return 0, nil, fmt.Errorf("the bucket answered bytes %d-%d/%d to a request for %s", first, last, total, rangeString(r))
		}
		return total, nil, nil
	}
	if out.ContentLength == nil {
		return 0, nil, errors.New("the bucket's answer has no Content-Length")
	}
	size = *out.ContentLength
	if r == nil {
		return size, nil, nil
	}
	first, last, ok := r.Resolve(size)
	if !ok {
		return size, nil, origin.ErrRangeNotSatisfiable
	}
	return size, &sliceBody{skip: first, remain: last - first + 1}, nil
}

// rangeString describes the range r asks for, for errors.
func rangeString(r *origin.Range) string {
	if r == nil {
		return "the whole object"
	}
	return r.String()
}

// Ping implements origin.Pinger with a HeadBucket request, or for an anonymous bucket (which
// the public may not ask about itself) with an unsigned GetObject of a key that does not exist,
// answered 403 or 404 by a bucket that is there.
func (b *Bucket) Ping(ctx context.Context) error {
	if b.anonymous {
		return b.pingAnonymous(ctx)
	}
	start := time.Now()
	w := newWatchdog(ctx, b.timeout)
	_, err := b.client.HeadBucket(w.ctx, &s3.HeadBucketInput{Bucket: aws.String(b.bucket)})
	if err != nil {
		err = translate(ctx, w, err)
		if errors.Is(err, origin.ErrNotFound) {
			err = errNoSuchBucket
		}
		err = fmt.Errorf("s3: ping bucket %q: %w", b.bucket, err)
	}
	w.release()
	b.observed("HeadBucket", start, err)
	return err
}

// errNoSuchBucket is Ping's error for a bucket the service does not have.
var errNoSuchBucket = errors.New("no such bucket (check the bucket's name, the endpoint and the region)")

// observed tells Config.Observe, when set, about one request that started at start.
func (b *Bucket) observed(op string, start time.Time, err error) {
	b.observedTook(op, time.Since(start), err)
}

// observedTook tells Config.Observe, when set, about one request that took d.
func (b *Bucket) observedTook(op string, d time.Duration, err error) {
	if b.observe != nil {
		b.observe(op, d, err)
	}
}

var (
	_ origin.Origin = (*Bucket)(nil)
	_ origin.Pinger = (*Bucket)(nil)
)
