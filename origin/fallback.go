package origin

import (
	"context"
	"errors"
	"io"
)

// OldStore is one of the stores a FallbackOrigin asks after the bucket: the old volume, or an
// old bucket of the provider an instance is moving away from.
type OldStore struct {
	// Name names the store in headers (X-Cache-Store), metrics and /status.
	Name string
	// Source is SourceVolume or SourceOldBucket.
	Source Source
	Origin Origin
}

// VolumeStoreName is the name of the old volume of fallback.dir.
const VolumeStoreName = "volume"

// FallbackOrigin asks Primary (the bucket) first and then each of Old in order, when the
// stores before lack the object or fail. Build one with Fallback or FallbackChain.
type FallbackOrigin struct {
	Primary Origin
	Old     []OldStore
}

// Fallback returns an Origin that asks primary (the bucket) first and secondary (the old
// volume, named VolumeStoreName) when primary says not found or fails; a nil secondary means
// the bucket alone. See FallbackChain.
func Fallback(primary, secondary Origin) *FallbackOrigin {
	if secondary == nil {
		return FallbackChain(primary)
	}
	return FallbackChain(primary, OldStore{Name: VolumeStoreName, Source: SourceVolume, Origin: secondary})
}

// FallbackChain returns an Origin that asks primary (the bucket) first and each of old in
// order when the stores before say not found or fail. The first store that has the object
// answers; its answer says which (From.Source, and From.Store for an old store). A store that
// hides the object (ErrHidden: a private ACL, a 0600 file) ends the search: hidden in one store,
// the object is served from none. When every old store lacks the key, the error is the
// primary's, so a failing bucket surfaces as a failure rather than a 404; when one of them
// failed, its error, so that no store's outage is taken for the object's absence.
func FallbackChain(primary Origin, old ...OldStore) *FallbackOrigin {
	return &FallbackOrigin{Primary: primary, Old: old}
}

// goOn reports whether an error of a store sends the request on to the next one: anything but
// success, a range beyond the end (the object exists), a hidden object (hidden everywhere) and
// the caller giving up.
func goOn(ctx context.Context, err error) bool {
	return err != nil && !errors.Is(err, ErrRangeNotSatisfiable) && !errors.Is(err, ErrHidden) && ctx.Err() == nil
}

// failures picks the error of a search that found the object nowhere: the primary's, unless
// an old store failed (rather than lacked the key), whose error is then the first such.
type failures struct {
	err       error
	oldFailed bool
}

func (f *failures) add(err error) {
	if !f.oldFailed && !errors.Is(err, ErrNotFound) {
		f.err, f.oldFailed = err, true
	}
}

var fromBucket = From{Source: SourceBucket}

func (s *OldStore) from() From { return From{Source: s.Source, Store: s.Name} }

// StatFrom implements Sourced.
func (f *FallbackOrigin) StatFrom(ctx context.Context, key string) (Meta, From, error) {
	m, err := f.Primary.Stat(ctx, key)
	if len(f.Old) == 0 || !goOn(ctx, err) {
		return m, fromBucket, err
	}
	failed := failures{err: err}
	for i := range f.Old {
		s := &f.Old[i]
		m, err2 := s.Origin.Stat(ctx, key)
		if err2 == nil || !goOn(ctx, err2) {
			if err2 != nil {
				return Meta{}, From{}, err2
			}
			return m, s.from(), nil
		}
		failed.add(err2)
	}
	return Meta{}, From{}, failed.err
}

// GetFrom implements Sourced.
func (f *FallbackOrigin) GetFrom(ctx context.Context, key string, r *Range) (io.ReadCloser, Meta, From, error) {
	body, m, err := f.Primary.Get(ctx, key, r)
	if len(f.Old) == 0 || !goOn(ctx, err) {
		return body, m, fromBucket, err
	}
	failed := failures{err: err}
	for i := range f.Old {
		s := &f.Old[i]
		body, m, err2 := s.Origin.Get(ctx, key, r)
		switch {
		case err2 == nil:
			return body, m, s.from(), nil
		case errors.Is(err2, ErrRangeNotSatisfiable):
			return nil, m, s.from(), err2 // the object is there: its Meta gives the size for a 416
		case !goOn(ctx, err2):
			return nil, Meta{}, From{}, err2
		}
		failed.add(err2)
	}
	return nil, Meta{}, From{}, failed.err
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
// then the old stores do in order, as for Stat. While the primary fails (rather than lacks the
// key), an old store may only confirm the version: another version there is the primary's
// error, so that a cache keeps serving what the primary gave it (stale) rather than swapping
// it for an old store's copy during an outage.
func (f *FallbackOrigin) Revalidate(ctx context.Context, key, etag string) (Meta, bool, error) {
	m, same, err := Revalidate(ctx, f.Primary, key, etag)
	if len(f.Old) == 0 || !goOn(ctx, err) {
		return m, same, err
	}
	failed := failures{err: err}
	for i := range f.Old {
		m, same, err2 := Revalidate(ctx, f.Old[i].Origin, key, etag)
		switch {
		case err2 == nil && !same && !errors.Is(err, ErrNotFound):
			return Meta{}, false, err
		case err2 == nil:
			return m, same, nil
		case !goOn(ctx, err2):
			return Meta{}, false, err2
		}
		failed.add(err2)
	}
	return Meta{}, false, failed.err
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

// Ping implements Pinger by pinging the primary, when it can be pinged. The old stores are
// checked apart (PingOld): their failures never make the bucket's objects unservable.
func (f *FallbackOrigin) Ping(ctx context.Context) error {
	if p, ok := f.Primary.(Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

// StoreHealth is an old store's answer to a check.
type StoreHealth struct {
	Name   string `json:"name"`
	Source Source `json:"source"`
	// Err is why the store did not answer ("" when it did, or cannot be checked).
	Err string `json:"error,omitempty"`
}

// PingOld checks each old store that can be pinged, in order.
func (f *FallbackOrigin) PingOld(ctx context.Context) []StoreHealth {
	out := make([]StoreHealth, len(f.Old))
	for i, s := range f.Old {
		out[i] = StoreHealth{Name: s.Name, Source: s.Source}
		if p, ok := s.Origin.(Pinger); ok {
			if err := p.Ping(ctx); err != nil {
				out[i].Err = err.Error()
			}
		}
	}
	return out
}

var (
	_ Sourced     = (*FallbackOrigin)(nil)
	_ Pinger      = (*FallbackOrigin)(nil)
	_ Revalidator = (*FallbackOrigin)(nil)
)
