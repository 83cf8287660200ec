package s3

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/fedicache/fedicache/origin"
	"github.com/fedicache/fedicache/origin/fielderr"
)

// PingKey is the key, under the prefix, that an anonymous Ping asks for. No one stores it: the
// bucket answers 403 or 404, either of which says it is there.
const PingKey = ".fedicache-ping"

// errNoStateCredentials is StateView's error for an anonymous bucket without credentials.
var errNoStateCredentials error = &fielderr.Error{Pkg: "s3", Field: "Config.Anonymous",
	Problem: "is set and no credentials were found: fedicache's own state (tombstones and cache busts) needs signed requests",
	Fix:     "set {Config.AccessKeyID} and {Config.SecretAccessKey} (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY) beside it"}

// denied returns the error a media read of key (Get, Stat, Validate) returns for err, its
// translated error. For an anonymous bucket a 403 means "not for the public": the object is
// hidden, or missing, since S3 answers 403 for a missing key too when the public may not list
// the bucket. A signed HeadObject tells the two apart when the bucket has credentials: the object
// found is origin.ErrHidden, a 404 origin.ErrNotFound (so the old volume may still serve a key not
// yet copied), any other answer its failure. Without credentials it is origin.ErrHidden: a plain
// failure would make a cache serve its stale copy, and Fallback the old volume's. Every other
// error, and every error of a signed bucket, is err itself.
func (b *Bucket) denied(ctx context.Context, key string, err error) error {
	if !b.anonymous || !forbidden(err) {
		return err
	}
	if b.signed == nil {
		return origin.ErrHidden
	}
	start := time.Now()
	w := newWatchdog(ctx, b.timeout)
	_, err = b.signed.HeadObject(w.ctx, &s3.HeadObjectInput{Bucket: aws.String(b.bucket), Key: aws.String(b.Key(key))})
	if err != nil {
		err = translate(ctx, w, err)
	}
	w.release()
	switch {
	case err == nil:
		err = origin.ErrHidden
	case !errors.Is(err, origin.ErrNotFound):
		err = fmt.Errorf("unsigned read denied, and the signed look failed: %w", err)
	}
	b.observed("HeadObject", start, err)
	return err
}

// forbidden reports whether err is the bucket's 403 to an unsigned read: AccessDenied, or a bare
// 403 (the answer to a HEAD has no body, so no code).
func forbidden(err error) bool {
	var withStatus interface{ HTTPStatusCode() int }
	if !errors.As(err, &withStatus) || withStatus.HTTPStatusCode() != http.StatusForbidden {
		return false
	}
	switch errorCode(err) {
	case "AccessDenied", "Forbidden", "":
		return true
	}
	return false
}

// pingAnonymous is Ping for an anonymous bucket: HeadBucket is not for the public, so it sends an
// unsigned GetObject of PingKey. AccessDenied (403) and NoSuchKey (404) mean the bucket answers;
// NoSuchBucket, a 5xx and a network failure are errors.
func (b *Bucket) pingAnonymous(ctx context.Context) error {
	start := time.Now()
	w := newWatchdog(ctx, b.timeout)
	out, err := b.client.GetObject(w.ctx, &s3.GetObjectInput{Bucket: aws.String(b.bucket), Key: aws.String(b.Key(PingKey))})
	if err == nil {
		out.Body.Close() // someone stored it after all: the bucket answers
	} else {
		noBucket := errorCode(err) == "NoSuchBucket"
		err = translate(ctx, w, err)
		switch {
		case noBucket:
			err = fmt.Errorf("s3: ping bucket %q: %w", b.bucket, errNoSuchBucket)
		case errors.Is(err, origin.ErrNotFound), forbidden(err):
			err = nil
		default:
			err = fmt.Errorf("s3: ping bucket %q: %w", b.bucket, err)
		}
	}
	w.release()
	b.observed("GetObject", start, err)
	return err
}

// StateView returns a Bucket over the same bucket and prefix for fedicache's own objects (the
// tombstones, the log of cache busts, snapshots): it signs every request, Get, Stat and Validate
// included, and never checks ACLs, since those objects are private. For an anonymous bucket it
// uses the credentials New found, and fails, saying what to set, when there were none.
func (b *Bucket) StateView() (*Bucket, error) {
	if b.signed == nil {
		return nil, errNoStateCredentials
	}
	return &Bucket{
		client:  b.signed,
		signed:  b.signed,
		bucket:  b.bucket,
		prefix:  b.prefix,
		timeout: b.timeout,
		observe: b.observe,
		writes:  b.writes,
		sums:    b.sums,
		lean:    newLeanGet(context.Background(), b.signed, b.bucket, false),
		service: b.service,
	}, nil
}

// writer returns the client of fedicache's own requests (lists, writes, deletes): the signed one
// when there is one, else the unsigned one of an anonymous bucket without credentials.
func (b *Bucket) writer() *s3.Client {
	if b.signed != nil {
		return b.signed
	}
	return b.client
}
