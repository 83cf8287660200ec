package origin

import (
	"context"
	"errors"
	"io"
)

// FallbackOrigin asks Primary (the bucket) first and Secondary (the old volume, may be nil)
// when Primary has no such object or fails. Build one with Fallback.
type FallbackOrigin struct {
	Primary, Secondary Origin
}

// Fallback returns an Origin that asks primary (the bucket) first and secondary (the old volume)
// when primary says not found or fails. When secondary lacks the key too, the error is primary's,
// so a failing bucket surfaces as a failure rather than a 404. A nil secondary means the bucket
// alone. Its answers say which of the two gave them (SourceBucket, SourceVolume).
func Fallback(primary, secondary Origin) *FallbackOrigin {
	return &FallbackOrigin{Primary: primary, Secondary: secondary}
}

// useSecondary reports whether a primary error sends the request on to the secondary:
// anything but success, a range beyond the end (the object exists), a hidden object (hidden
// everywhere) and the caller giving up.
func (f *FallbackOrigin) useSecondary(ctx context.Context, err error) bool {
	return f.Secondary != nil && err != nil && !errors.Is(err, ErrRangeNotSatisfiable) &&
		!errors.Is(err, ErrHidden) && ctx.Err() == nil
}

// pickErr picks the error to return when the secondary failed too: the primary's when the
// secondary merely lacks the key, so a bucket outage is not reported as a 404.
func pickErr(primaryErr, secondaryErr error) error {
	if errors.Is(secondaryErr, ErrNotFound) {
		return primaryErr
	}
	return secondaryErr
}

var (
	fromBucket = From{Source: SourceBucket}
	fromVolume = From{Source: SourceVolume}
)

// StatFrom implements Sourced.
func (f *FallbackOrigin) StatFrom(ctx context.Context, key string) (Meta, From, error) {
	m, err := f.Primary.Stat(ctx, key)
	if !f.useSecondary(ctx, err) {
		return m, fromBucket, err
	}
	m, err2 := f.Secondary.Stat(ctx, key)
	if err2 != nil {
		return Meta{}, From{}, pickErr(err, err2)
	}
	return m, fromVolume, nil
}

// GetFrom implements Sourced.
func (f *FallbackOrigin) GetFrom(ctx context.Context, key string, r *Range) (io.ReadCloser, Meta, From, error) {
	body, m, err := f.Primary.Get(ctx, key, r)
	if !f.useSecondary(ctx, err) {
		return body, m, fromBucket, err
	}
	body, m, err2 := f.Secondary.Get(ctx, key, r)
	switch {
	case errors.Is(err2, ErrRangeNotSatisfiable):
		return nil, m, fromVolume, err2 // the object is there: its Meta gives the size for a 416
	case err2 != nil:
		return nil, Meta{}, From{}, pickErr(err, err2)
	}
	return body, m, fromVolume, nil
}

// Stat implements Origin.
func (f *FallbackOrigin) Stat(ctx context.Context, key string) (Meta, error) {
	m, _, err := f.StatFrom(ctx, key)
	return m, err
}

// Get implements Origin.
func (f *FallbackOrigin) Get(ctx context.Context, key string, r *Range) (io.ReadCloser, Meta, error) {
	body, m, _, err := f.GetFrom(ctx, key, r)
	return body, m, err
}

// Revalidate implements Revalidator: the primary decides unless it lacks the key or fails, and
// then the secondary does, as for Stat. While the primary fails (rather than lacks the key),
// the secondary may only confirm the version: another version there is the primary's error, so
// that a cache keeps serving what the primary gave it (stale) rather than swapping it for the
// secondary's copy during an outage.
func (f *FallbackOrigin) Revalidate(ctx context.Context, key, etag string) (Meta, bool, error) {
	m, same, err := Revalidate(ctx, f.Primary, key, etag)
	if !f.useSecondary(ctx, err) {
		return m, same, err
	}
	m, same, err2 := Revalidate(ctx, f.Secondary, key, etag)
	switch {
	case err2 != nil:
		return Meta{}, false, pickErr(err, err2)
	case !same && !errors.Is(err, ErrNotFound):
		return Meta{}, false, err
	}
	return m, same, nil
}

// Revalidate asks o whether key still has entity tag etag: with o's conditional request when it is
// a Revalidator, else by comparing the ETag of a Stat.
func Revalidate(ctx context.Context, o Origin, key, etag string) (Meta, bool, error) {
	if v, ok := o.(Revalidator); ok {
		return v.Revalidate(ctx, key, etag)
	}
	m, err := o.Stat(ctx, key)
	if err != nil {
		return Meta{}, false, err
	}
	return m, m.ETag == etag, nil
}

// Ping implements Pinger by pinging the primary, when it can be pinged.
func (f *FallbackOrigin) Ping(ctx context.Context) error {
	if p, ok := f.Primary.(Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

var (
	_ Sourced     = (*FallbackOrigin)(nil)
	_ Pinger      = (*FallbackOrigin)(nil)
	_ Revalidator = (*FallbackOrigin)(nil)
)
