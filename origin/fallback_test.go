package origin_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/fedicache/fedicache/origin"
)

// fakeOrigin is a map-backed Origin that counts the calls it gets. When err is set every call
// fails with it; a canceled ctx fails a call with ctx's error.
type fakeOrigin struct {
	objects map[string]string
	err     error
	calls   int
}

func (o *fakeOrigin) Stat(ctx context.Context, key string) (origin.Meta, error) {
	o.calls++
	if err := ctx.Err(); err != nil {
		return origin.Meta{}, err
	}
	if o.err != nil {
		return origin.Meta{}, o.err
	}
	data, ok := o.objects[key]
	if !ok {
		return origin.Meta{}, origin.ErrNotFound
	}
	return origin.Meta{Size: int64(len(data)), ETag: `"x"`, LastModified: time.Unix(1, 0)}, nil
}

func (o *fakeOrigin) Get(ctx context.Context, key string, r *origin.Range) (io.ReadCloser, origin.Meta, error) {
	m, err := o.Stat(ctx, key)
	if err != nil {
		return nil, origin.Meta{}, err
	}
	data := o.objects[key]
	if r != nil {
		first, last, ok := r.Resolve(m.Size)
		if !ok {
			return nil, m, origin.ErrRangeNotSatisfiable
		}
		data = data[first : last+1]
	}
	return io.NopCloser(strings.NewReader(data)), m, nil
}

// pingOrigin is a fakeOrigin that can be pinged.
type pingOrigin struct {
	fakeOrigin
	pingErr error
}

func (o *pingOrigin) Ping(context.Context) error { return o.pingErr }

func TestFallback(t *testing.T) {
	errDown := errors.New("bucket: 503 slow down")
	errDisk := errors.New("volume: input/output error")
	canceled, cancel := context.WithCancel(context.Background())
	cancel()

	for _, tc := range []struct {
		name         string
		ctx          context.Context
		primary      fakeOrigin
		secondary    fakeOrigin
		r            *origin.Range
		wantBody     string
		wantSource   origin.Source
		wantErr      error // nil: success
		wantSize     int64 // with a range error: the Meta's Size, for the 416
		notErr       error // the error must not be this
		askSecondary bool
	}{{
		name:       "primary hit",
		primary:    fakeOrigin{objects: map[string]string{"k": "bucket"}},
		secondary:  fakeOrigin{objects: map[string]string{"k": "volume"}},
		wantBody:   "bucket",
		wantSource: origin.SourceBucket,
	}, {
		name:         "primary lacks the key",
		secondary:    fakeOrigin{objects: map[string]string{"k": "volume"}},
		wantBody:     "volume",
		wantSource:   origin.SourceVolume,
		askSecondary: true,
	}, {
		name:         "primary fails, secondary has the key",
		primary:      fakeOrigin{err: errDown},
		secondary:    fakeOrigin{objects: map[string]string{"k": "volume"}},
		wantBody:     "volume",
		wantSource:   origin.SourceVolume,
		askSecondary: true,
	}, {
		name:         "both lack the key",
		wantErr:      origin.ErrNotFound,
		askSecondary: true,
	}, {
		name:         "primary fails, secondary lacks the key",
		primary:      fakeOrigin{err: errDown},
		wantErr:      errDown,
		notErr:       origin.ErrNotFound,
		askSecondary: true,
	}, {
		name:         "primary lacks the key, secondary fails",
		secondary:    fakeOrigin{err: errDisk},
		wantErr:      errDisk,
		askSecondary: true,
	}, {
		name:      "range beyond the primary's object",
		primary:   fakeOrigin{objects: map[string]string{"k": "bucket"}},
		secondary: fakeOrigin{objects: map[string]string{"k": "a longer volume object"}},
		r:         &origin.Range{Start: 10, End: -1},
		wantErr:   origin.ErrRangeNotSatisfiable,
		wantSize:  6,
	}, {
		name:         "range beyond the secondary's object",
		secondary:    fakeOrigin{objects: map[string]string{"k": "volume"}},
		r:            &origin.Range{Start: 10, End: -1},
		wantErr:      origin.ErrRangeNotSatisfiable,
		wantSize:     6,
		askSecondary: true,
	}, {
		name:         "range from the secondary",
		secondary:    fakeOrigin{objects: map[string]string{"k": "volume"}},
		r:            &origin.Range{Start: 1, End: 3},
		wantBody:     "olu",
		wantSource:   origin.SourceVolume,
		askSecondary: true,
	}, {
		name:      "canceled",
		ctx:       canceled,
		secondary: fakeOrigin{objects: map[string]string{"k": "volume"}},
		wantErr:   context.Canceled,
		notErr:    origin.ErrNotFound,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := tc.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			for _, op := range []string{"Stat", "Get"} {
				if op == "Stat" && tc.r != nil {
					continue
				}
				p, s := tc.primary, tc.secondary
				o := origin.Fallback(&p, &s)
				var (
					m    origin.Meta
					from origin.From
					body string
					err  error
				)
				if op == "Stat" {
					m, from, err = o.StatFrom(ctx, "k")
				} else {
					var rc io.ReadCloser
					rc, m, from, err = o.GetFrom(ctx, "k", tc.r)
					if err == nil {
						b, _ := io.ReadAll(rc)
						rc.Close()
						body = string(b)
					} else if rc != nil {
						t.Errorf("Get failed (%v) and returned a body", err)
					}
				}
				if p.calls != 1 {
					t.Errorf("%s asked the primary %d times, want once", op, p.calls)
				}
				if asked := s.calls > 0; asked != tc.askSecondary {
					t.Errorf("%s asked the secondary %d times, want asked=%v", op, s.calls, tc.askSecondary)
				}
				if tc.wantErr != nil {
					if !errors.Is(err, tc.wantErr) {
						t.Errorf("%s: err %v, want %v", op, err, tc.wantErr)
					}
					if tc.notErr != nil && errors.Is(err, tc.notErr) {
						t.Errorf("%s: err %v must not be %v", op, err, tc.notErr)
					}
					if m.Size != tc.wantSize {
						t.Errorf("%s: Meta.Size %d with the error, want %d", op, m.Size, tc.wantSize)
					}
					continue
				}
				if err != nil {
					t.Errorf("%s: %v", op, err)
					continue
				}
				if from.Source != tc.wantSource || from.Stale {
					t.Errorf("%s: from %+v, want source %q, not stale", op, from, tc.wantSource)
				}
				if op == "Get" && body != tc.wantBody {
					t.Errorf("Get: body %q, want %q", body, tc.wantBody)
				}
			}
		})
	}
}

func TestFallbackNilSecondary(t *testing.T) {
	ctx := context.Background()
	p := &fakeOrigin{}
	o := origin.Fallback(p, nil)
	if _, _, from, err := o.GetFrom(ctx, "k", nil); !errors.Is(err, origin.ErrNotFound) || from.Source != origin.SourceBucket {
		t.Errorf("GetFrom of a key the bucket lacks: from %+v, err %v; want the bucket's not found", from, err)
	}
	if p.calls != 1 {
		t.Errorf("asked the bucket %d times, want once", p.calls)
	}
}

func TestFallbackPing(t *testing.T) {
	errPing := errors.New("unreachable")
	p := &pingOrigin{pingErr: errPing}
	if err := origin.Fallback(p, &fakeOrigin{}).Ping(context.Background()); !errors.Is(err, errPing) {
		t.Errorf("Ping with a pingable primary: %v, want %v", err, errPing)
	}
	if err := origin.Fallback(&fakeOrigin{}, p).Ping(context.Background()); err != nil {
		t.Errorf("Ping with a primary that cannot be pinged: %v, want nil", err)
	}
}

func TestFallbackNeverServesWhatThePrimaryHides(t *testing.T) {
	hidden := fmt.Errorf("acl: %w", origin.ErrHidden)
	if !errors.Is(hidden, origin.ErrNotFound) {
		t.Fatal("ErrHidden must count as not found")
	}
	p := &fakeOrigin{err: hidden}
	s := &fakeOrigin{objects: map[string]string{"k": "old copy"}}
	f := origin.Fallback(p, s)
	if _, err := f.Stat(context.Background(), "k"); !errors.Is(err, origin.ErrHidden) {
		t.Errorf("Stat: %v, want ErrHidden", err)
	}
	if _, _, err := f.Get(context.Background(), "k", nil); !errors.Is(err, origin.ErrHidden) {
		t.Errorf("Get: %v, want ErrHidden", err)
	}
	if s.calls != 0 {
		t.Errorf("the secondary was asked %d times for a hidden key", s.calls)
	}
}
