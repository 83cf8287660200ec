package s3

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fedicache/fedicache/origin"
)

// listFixture fills a writeFake with 2,500 objects under the prefix pre/fix/ (among them keys
// whose UTF-8 bytes sort differently from their runes' case-folded order), a few beside it,
// and folder markers, and returns the keys List must give, in order.
func listFixture(t *testing.T, f *writeFake) []string {
	t.Helper()
	var want []string
	for i := range 2500 {
		key := fmt.Sprintf("media_attachments/files/%03d/%03d.png", i/100, i%100)
		f.put(t, "pre/fix/"+key, []byte(key), "image/png")
		want = append(want, key)
	}
	for _, key := range []string{"Zebra.png", "zebra.png", "éclair.png", "ä/b.png", "~tilde.png", "a b+c.png"} {
		f.put(t, "pre/fix/"+key, []byte(key), "image/png")
		want = append(want, key)
	}
	for _, key := range []string{"pre/fixed.png", "pre/fix", "pre/fixx/a.png", "other/a.png", "pre/fix/", "pre/fix/media_attachments/"} {
		f.put(t, key, []byte("not listed"), "")
	}
	slices.Sort(want) // byte order, as S3's UTF-8 binary order
	return want
}

func TestList(t *testing.T) {
	f := newWriteFake(t)
	want := listFixture(t, f)
	var (
		mu  sync.Mutex
		ops []string
	)
	cfg := testConfig(f.srv.URL)
	cfg.Prefix = "pre/fix"
	cfg.Observe = func(op string, d time.Duration, err error) {
		mu.Lock()
		ops = append(ops, op)
		mu.Unlock()
	}
	b := newTestBucket(t, cfg)
	ctx := context.Background()

	var got []string
	err := b.List(ctx, "", func(o origin.Object) error {
		got = append(got, o.Key)
		sum := md5.Sum([]byte(o.Key))
		if o.Size != int64(len(o.Key)) || o.ETag != `"`+hex.EncodeToString(sum[:])+`"` {
			t.Errorf("object %q: size %d, ETag %s; want %d and the quoted MD5", o.Key, o.Size, o.ETag, len(o.Key))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("List gave %d keys, want %d in byte order; first differences: %v", len(got), len(want), firstDiff(got, want))
	}
	pages := f.requests(isListObjects)
	if len(pages) != 3 {
		t.Errorf("%d ListObjectsV2 requests, want 3 pages for %d keys", len(pages), len(want))
	}
	for _, p := range pages {
		if p.Query.Get("prefix") != "pre/fix/" || p.Query.Get("max-keys") != "1000" || p.Query.Has("start-after") {
			t.Errorf("ListObjectsV2 query %v, want prefix pre/fix/, max-keys 1000 and no start-after", p.Query)
		}
	}
	mu.Lock()
	if !slices.Equal(ops, []string{"ListObjectsV2", "ListObjectsV2", "ListObjectsV2"}) {
		t.Errorf("observed %v, want ListObjectsV2 once per page", ops)
	}
	mu.Unlock()

	t.Run("after", func(t *testing.T) {
		f.forget()
		after := want[1234]
		var got []string
		if err := b.List(ctx, after, func(o origin.Object) error { got = append(got, o.Key); return nil }); err != nil {
			t.Fatalf("List after %q: %v", after, err)
		}
		if !slices.Equal(got, want[1235:]) {
			t.Errorf("List after %q gave %d keys, want the %d after it: %v", after, len(got), len(want[1235:]), firstDiff(got, want[1235:]))
		}
		if p := f.requests(isListObjects); len(p) == 0 || p[0].Query.Get("start-after") != "pre/fix/"+after {
			t.Errorf("first ListObjectsV2 query %v, want start-after pre/fix/%s", p, after)
		}
	})

	t.Run("after a key that is not there", func(t *testing.T) {
		var got []string
		if err := b.List(ctx, "zz", func(o origin.Object) error { got = append(got, o.Key); return nil }); err != nil {
			t.Fatalf("List: %v", err)
		}
		// "~" and the UTF-8 bytes of "ä" and "é" sort after "z".
		if wantAfter := []string{"~tilde.png", "ä/b.png", "éclair.png"}; !slices.Equal(got, wantAfter) {
			t.Errorf("List after zz gave %v, want %v", got, wantAfter)
		}
	})

	t.Run("fn's error stops the listing", func(t *testing.T) {
		f.forget()
		n := 0
		err := b.List(ctx, "", func(o origin.Object) error {
			n++
			if n == 10 {
				return errStop
			}
			return nil
		})
		if err != errStop {
			t.Errorf("List returned %v, want fn's error as it is", err)
		}
		if n != 10 || len(f.requests(isListObjects)) != 1 {
			t.Errorf("fn called %d times over %d requests, want 10 over 1", n, len(f.requests(isListObjects)))
		}
	})
}

func TestListWithoutPrefix(t *testing.T) {
	f := newWriteFake(t)
	keys := []string{"b.png", "a/b.png", "a.png", "a/", "é.png"}
	for _, k := range keys {
		f.put(t, k, []byte(k), "")
	}
	b := newTestBucket(t, testConfig(f.srv.URL))
	var got []string
	if err := b.List(context.Background(), "", func(o origin.Object) error { got = append(got, o.Key); return nil }); err != nil {
		t.Fatalf("List: %v", err)
	}
	if want := []string{"a.png", "a/b.png", "b.png", "é.png"}; !slices.Equal(got, want) {
		t.Errorf("List gave %v, want %v", got, want)
	}
	if p := f.requests(isListObjects); len(p) != 1 || p[0].Query.Has("prefix") && p[0].Query.Get("prefix") != "" {
		t.Errorf("ListObjectsV2 requests %v, want one without a prefix", p)
	}
}

// TestListOutOfOrder checks that a service listing keys out of byte order is an error, not a
// listing that would mislead a merge.
func TestListOutOfOrder(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/xml")
		io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?>`+
			`<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>media</Name>`+
			`<KeyCount>3</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>`+
			`<Contents><Key>a.png</Key><Size>1</Size><ETag>"x"</ETag></Contents>`+
			`<Contents><Key>c.png</Key><Size>1</Size><ETag>"x"</ETag></Contents>`+
			`<Contents><Key>B.png</Key><Size>1</Size><ETag>"x"</ETag></Contents>`+
			`</ListBucketResult>`)
	}))
	t.Cleanup(srv.Close)
	b := newTestBucket(t, testConfig(srv.URL))
	var got []string
	err := b.List(context.Background(), "", func(o origin.Object) error { got = append(got, o.Key); return nil })
	if err == nil || !strings.Contains(err.Error(), "out of byte order") {
		t.Errorf("List of an unordered listing: err %v, want one saying it is out of order", err)
	}
	if !slices.Equal(got, []string{"a.png", "c.png"}) {
		t.Errorf("List passed on %v before failing, want [a.png c.png]", got)
	}
}

func TestListFails(t *testing.T) {
	f := newWriteFake(t)
	f.put(t, "a.png", []byte("a"), "")
	f.fail(-1, http.StatusInternalServerError, "InternalError", func(r *http.Request) bool { return isListObjects(callOf(r)) })
	cfg := testConfig(f.srv.URL)
	cfg.MaxAttempts = 2
	b := newTestBucket(t, cfg)
	err := b.List(context.Background(), "", func(origin.Object) error { return nil })
	if err == nil || !strings.HasPrefix(err.Error(), "s3: list: ") || errors.Is(err, origin.ErrNotFound) {
		t.Errorf("List of a failing bucket: err %v, want an s3: list: error", err)
	}
	if n := len(f.requests(isListObjects)); n != 2 {
		t.Errorf("%d attempts, want MaxAttempts 2", n)
	}
}

// firstDiff describes where two key lists first differ.
func firstDiff(got, want []string) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Sprintf("at %d: %q, want %q", i, got[i], want[i])
		}
	}
	return fmt.Sprintf("lengths %d and %d", len(got), len(want))
}
