package origin_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/fedicache/fedicache/origin"
)

// TestFallbackChain: the bucket, then each old store in order; the first that has the object
// answers and is named; a store that hides it ends the search; a store's failure is never
// taken for the object's absence.
func TestFallbackChain(t *testing.T) {
	errDown := errors.New("old bucket down")
	errBucket := errors.New("bucket down")
	hidden := fmt.Errorf("private ACL: %w", origin.ErrHidden)
	ctx := context.Background()
	tests := []struct {
		name         string
		bucket       *fakeOrigin
		olds         []*fakeOrigin
		wantStore    string // "" with wantErr
		wantBody     string
		wantErr      error
		wantAsked    []int // calls per old store for one GetFrom
		wantRevalErr error
	}{
		{name: "the bucket has it", bucket: &fakeOrigin{objects: map[string]string{"k": "new"}},
			olds: []*fakeOrigin{{objects: map[string]string{"k": "old"}}}, wantBody: "new", wantAsked: []int{0}},
		{name: "the second old store has it", bucket: &fakeOrigin{},
			olds: []*fakeOrigin{{}, {objects: map[string]string{"k": "older"}}}, wantStore: "b", wantBody: "older", wantAsked: []int{1, 1}},
		{name: "the first old store has it", bucket: &fakeOrigin{},
			olds: []*fakeOrigin{{objects: map[string]string{"k": "old"}}, {objects: map[string]string{"k": "older"}}}, wantStore: "a", wantBody: "old", wantAsked: []int{1, 0}},
		{name: "hidden in the first old store", bucket: &fakeOrigin{},
			olds: []*fakeOrigin{{err: hidden}, {objects: map[string]string{"k": "older"}}}, wantErr: origin.ErrHidden, wantAsked: []int{1, 0}},
		{name: "nowhere", bucket: &fakeOrigin{}, olds: []*fakeOrigin{{}, {}}, wantErr: origin.ErrNotFound, wantAsked: []int{1, 1}},
		{name: "an old store down, the others lack it", bucket: &fakeOrigin{},
			olds: []*fakeOrigin{{err: errDown}, {}}, wantErr: errDown, wantAsked: []int{1, 1}},
		{name: "an old store down, the next has it", bucket: &fakeOrigin{},
			olds: []*fakeOrigin{{err: errDown}, {objects: map[string]string{"k": "older"}}}, wantStore: "b", wantBody: "older", wantAsked: []int{1, 1}},
		{name: "the bucket down, no old store has it", bucket: &fakeOrigin{err: errBucket},
			olds: []*fakeOrigin{{}, {}}, wantErr: errBucket, wantAsked: []int{1, 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var olds []origin.OldStore
			for i, o := range tc.olds {
				olds = append(olds, origin.OldStore{Name: string(rune('a' + i)), Source: origin.SourceOldBucket, Origin: o})
			}
			f := origin.FallbackChain(tc.bucket, olds...)
			body, _, from, err := f.GetFrom(ctx, "k", nil)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("GetFrom: %v, want %v", err, tc.wantErr)
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(body)
				body.Close()
				if string(b) != tc.wantBody || from.Store != tc.wantStore {
					t.Errorf("GetFrom: %q from %+v, want %q from store %q", b, from, tc.wantBody, tc.wantStore)
				}
				if tc.wantStore != "" && from.Source != origin.SourceOldBucket || tc.wantStore == "" && from.Source != origin.SourceBucket {
					t.Errorf("source %q", from.Source)
				}
			}
			for i, o := range tc.olds {
				if o.calls != tc.wantAsked[i] {
					t.Errorf("old store %d asked %d times, want %d", i, o.calls, tc.wantAsked[i])
				}
			}
			_, from, err = f.StatFrom(ctx, "k")
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) || tc.wantErr == nil && (err != nil || from.Store != tc.wantStore) {
				t.Errorf("StatFrom: %+v, %v", from, err)
			}
			_, same, err := f.Revalidate(ctx, "k", `"x"`)
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) || tc.wantErr == nil && (err != nil || !same) {
				t.Errorf("Revalidate: same %v, %v", same, err)
			}
		})
	}
}

// TestFallbackChainRange: a range past the end in an old store is that store's 416, with the
// object's size, not a search on.
func TestFallbackChainRange(t *testing.T) {
	a := &fakeOrigin{objects: map[string]string{"k": "old"}}
	b := &fakeOrigin{objects: map[string]string{"k": "much older"}}
	f := origin.FallbackChain(&fakeOrigin{}, origin.OldStore{Name: "a", Source: origin.SourceVolume, Origin: a},
		origin.OldStore{Name: "b", Source: origin.SourceOldBucket, Origin: b})
	_, m, from, err := f.GetFrom(context.Background(), "k", &origin.Range{Start: 5, End: -1})
	if !errors.Is(err, origin.ErrRangeNotSatisfiable) || m.Size != 3 || from.Store != "a" || b.calls != 0 {
		t.Errorf("GetFrom past the end: size %d from %+v, %v; the next store asked %d times", m.Size, from, err, b.calls)
	}
}

// TestFallbackChainPingOld: each old store's health, in order, apart from the bucket's.
func TestFallbackChainPingOld(t *testing.T) {
	errDown := errors.New("wrong key")
	f := origin.FallbackChain(&pingOrigin{pingErr: errors.New("bucket")},
		origin.OldStore{Name: "volume", Source: origin.SourceVolume, Origin: &fakeOrigin{}},
		origin.OldStore{Name: "wasabi", Source: origin.SourceOldBucket, Origin: &pingOrigin{pingErr: errDown}},
		origin.OldStore{Name: "e2", Source: origin.SourceOldBucket, Origin: &pingOrigin{}})
	got := f.PingOld(context.Background())
	want := []origin.StoreHealth{{Name: "volume", Source: origin.SourceVolume}, {Name: "wasabi", Source: origin.SourceOldBucket, Err: "wrong key"},
		{Name: "e2", Source: origin.SourceOldBucket}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("PingOld: %+v, want %+v", got, want)
	}
}
