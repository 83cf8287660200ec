package origin

import (
	"context"
	"errors"
	"io"
)

// FallbackOrigin asks Primary first and Secondary when Primary has no such object or fails.
// Build one with Fallback.
type FallbackOrigin struct {
	Primary, Secondary Origin
}

// Fallback returns an Origin that asks primary (the bucket) first and secondary (the old volume)
// when primary says not found or fails. When secondary lacks the key too, the error is primary's,
// so a failing bucket surfaces as a failure rather than a 404. A nil secondary returns primary.
func Fallback(primary, secondary Origin) Origin {
	if secondary == nil {
		return primary
	}
	return &FallbackOrigin{Primary: primary, Secondary: secondary}
}

// useSecondary reports whether a primary error sends the request on to the secondary:
// anything but success, a range beyond the end (the object exists), a hidden object (hidden
// everywhere) and the caller giving up.
func useSecondary(ctx context.Context, err error) bool {
	return err != nil && !errors.Is(err, ErrRangeNotSatisfiable) && !errors.Is(err, ErrHidden) && ctx.Err() == nil
}

// pickErr picks the error to return when the secondary failed too: the primary's when the
// secondary merely lacks the key, so a bucket outage is not reported as a 404.
func pickErr(primaryErr, secondaryErr error) error {
	if errors.Is(secondaryErr, ErrNotFound) {
		return primaryErr
	}
	return secondaryErr
}

// Stat implements Origin.
func (f *FallbackOrigin) Stat(ctx context.Context, key string) (Meta, error) {
	m, err := f.Primary.Stat(ctx, key)
	if !useSecondary(ctx, err) {
		return m, err
	}
	m, err2 := f.Secondary.Stat(ctx, key)
	if err2 != nil {
		return Meta{}, pickErr(err, err2)
	}
	return m, nil
}

// Get implements Origin.
func (f *FallbackOrigin) Get(ctx context.Context, key string, r *Range) (io.ReadCloser, Meta, error) {
	body, m, err := f.Primary.Get(ctx, key, r)
	if !useSecondary(ctx, err) {
		return body, m, err
	}
	body, m, err2 := f.Secondary.Get(ctx, key, r)
	if err2 != nil {
		return nil, Meta{}, pickErr(err, err2)
	}
	return body, m, nil
}

// Validate implements Validator: the primary decides unless it lacks the key or fails, and
// then the secondary does, as for Stat. While the primary fails (rather than lacks the key),
// the secondary may only confirm the version: another version there is the primary's error, so
// that a cache keeps serving what the primary gave it (stale) rather than swapping it for the
// secondary's copy during an outage.
func (f *FallbackOrigin) Validate(ctx context.Context, key, etag string) (Meta, bool, error) {
	m, same, err := Validate(ctx, f.Primary, key, etag)
	if !useSecondary(ctx, err) {
		return m, same, err
	}
	m, same, err2 := Validate(ctx, f.Secondary, key, etag)
	switch {
	case err2 != nil:
		return Meta{}, false, pickErr(err, err2)
	case !same && !errors.Is(err, ErrNotFound):
		return Meta{}, false, err
	}
	return m, same, nil
}

// Validate asks o whether key still has entity tag etag: with o's conditional request when it is
// a Validator, else by comparing the ETag of a Stat.
func Validate(ctx context.Context, o Origin, key, etag string) (Meta, bool, error) {
	if v, ok := o.(Validator); ok {
		return v.Validate(ctx, key, etag)
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
	_ Origin    = (*FallbackOrigin)(nil)
	_ Pinger    = (*FallbackOrigin)(nil)
	_ Validator = (*FallbackOrigin)(nil)
)
