// Package tiertest holds the conformance suite every cache.Tier runs, so the memory and disk
// tiers keep one contract.
package tiertest

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/fedicache/fedicache/cache"
	"github.com/fedicache/fedicache/origin"
	"github.com/fedicache/fedicache/origin/origintest"
)

// Store puts an entry with its body into the tier under test and returns once the entry is
// readable (for ristretto: after Wait).
type Store func(e cache.Entry, body []byte) error

// Factory builds an empty tier of capacity maxBytes and its Store.
type Factory func(t *testing.T, maxBytes int64) (cache.Tier, Store)

// NewEntry returns an entry for key describing body.
func NewEntry(key string, body []byte) cache.Entry {
	now := time.Now().UTC().Truncate(time.Second)
	return cache.Entry{
		Key: key,
		Meta: origin.Meta{
			Size:         int64(len(body)),
			ContentType:  origin.ContentType(key),
			ETag:         fmt.Sprintf(`"%x"`, len(body)*7919+len(key)),
			LastModified: now.Add(-time.Hour),
		},
		StoredAt:    now,
		ValidatedAt: now,
	}
}

// Blob returns n deterministic bytes for seed.
func Blob(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 3))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.UintN(256))
	}
	return b
}

// Run checks the Tier contract.
func Run(t *testing.T, newTier Factory) {
	t.Run("StoreOpen", func(t *testing.T) {
		tier, store := newTier(t, 64<<20)
		objects := map[string][]byte{
			"media_attachments/files/000/000/001/original/0123456789abcdef.jpg": Blob(1, 40_000),
			"accounts/avatars/000/000/002/original/aaaaaaaaaaaaaaaa.png":        Blob(2, 1),
			"cache/custom_emojis/images/000/000/003/static/é moji.webp":         Blob(3, 777),
			"site_uploads/files/000/000/004/favicon/empty.ico":                  {},
		}
		stored := map[string]cache.Entry{}
		for k, v := range objects {
			stored[k] = NewEntry(k, v)
			if err := store(stored[k], v); err != nil {
				t.Fatalf("store %q: %v", k, err)
			}
		}
		for k, v := range objects {
			body, e, err := tier.Open(k, nil)
			if err != nil {
				t.Fatalf("Open(%q): %v", k, err)
			}
			got := origintest.ReadAll(t, body)
			if !bytes.Equal(got, v) {
				t.Errorf("Open(%q): %d bytes differ from the %d stored", k, len(got), len(v))
			}
			want := stored[k]
			if e.Key != k || e.Meta.Size != want.Meta.Size || e.Meta.ETag != want.Meta.ETag ||
				e.Meta.ContentType != want.Meta.ContentType || !e.Meta.LastModified.Equal(want.Meta.LastModified) {
				t.Errorf("Open(%q): entry %+v, want %+v", k, e, want)
			}
			if e.ValidatedAt.IsZero() || e.StoredAt.IsZero() {
				t.Errorf("Open(%q): StoredAt or ValidatedAt lost", k)
			}
		}
		if st := tier.Stats(); st.Entries != int64(len(objects)) || st.Bytes < 40_000 {
			t.Errorf("Stats after %d stores: %+v", len(objects), st)
		}
	})

	t.Run("Ranges", func(t *testing.T) {
		tier, store := newTier(t, 64<<20)
		const key = "media_attachments/files/000/000/009/original/9999999999999999.mp4"
		data := Blob(9, 100_000)
		if err := store(NewEntry(key, data), data); err != nil {
			t.Fatal(err)
		}
		size := int64(len(data))
		for _, r := range []origin.Range{{Start: 0, End: 0}, {Start: 10, End: 99}, {Start: size - 5, End: -1},
			{Start: 50, End: size + 10}, origin.Suffix(300), origin.Suffix(size + 1)} {
			body, e, err := tier.Open(key, &r)
			if err != nil {
				t.Fatalf("Open(%s): %v", r, err)
			}
			first, last, _ := r.Resolve(size)
			if got := origintest.ReadAll(t, body); !bytes.Equal(got, data[first:last+1]) {
				t.Errorf("Open(%s): %d bytes, want bytes %d-%d", r, len(got), first, last)
			}
			if e.Meta.Size != size {
				t.Errorf("Open(%s): Size %d, want the whole %d", r, e.Meta.Size, size)
			}
		}
		for _, r := range []origin.Range{{Start: size, End: -1}, {Start: size + 5, End: size + 9}} {
			body, _, err := tier.Open(key, &r)
			if body != nil {
				body.Close()
			}
			if !errors.Is(err, origin.ErrRangeNotSatisfiable) {
				t.Errorf("Open(%s): %v, want ErrRangeNotSatisfiable", r, err)
			}
		}
	})

	t.Run("MissAndDelete", func(t *testing.T) {
		tier, store := newTier(t, 64<<20)
		if _, _, err := tier.Open("nothing/here.png", nil); !errors.Is(err, origin.ErrNotFound) {
			t.Errorf("Open of an absent key: %v, want ErrNotFound", err)
		}
		keys := []string{"cache/a/1.png", "cache/a/2.png", "cache/b/1.png", "local/a/1.png"}
		for _, k := range keys {
			if err := store(NewEntry(k, []byte(k)), []byte(k)); err != nil {
				t.Fatal(err)
			}
		}
		if !tier.Delete("local/a/1.png") {
			t.Error("Delete of a present key reported false")
		}
		if tier.Delete("local/a/1.png") {
			t.Error("a second Delete reported true")
		}
		if n := tier.DeletePrefix("cache/a/"); n != 2 {
			t.Errorf("DeletePrefix(cache/a/) removed %d, want 2", n)
		}
		for _, k := range []string{"cache/a/1.png", "cache/a/2.png", "local/a/1.png"} {
			if _, _, err := tier.Open(k, nil); !errors.Is(err, origin.ErrNotFound) {
				t.Errorf("Open(%q) after delete: %v", k, err)
			}
		}
		if body, _, err := tier.Open("cache/b/1.png", nil); err != nil {
			t.Errorf("Open(cache/b/1.png), which no delete named: %v", err)
		} else {
			body.Close()
		}
		if st := tier.Stats(); st.Entries != 1 {
			t.Errorf("Stats after deletes: %d entries, want 1", st.Entries)
		}
	})

	t.Run("MarkValidated", func(t *testing.T) {
		tier, store := newTier(t, 64<<20)
		const key = "accounts/headers/000/000/001/original/bbbbbbbbbbbbbbbb.jpg"
		e := NewEntry(key, []byte("header"))
		e.ValidatedAt = e.ValidatedAt.Add(-48 * time.Hour)
		if err := store(e, []byte("header")); err != nil {
			t.Fatal(err)
		}
		at := time.Now().UTC().Truncate(time.Second)
		if !tier.MarkValidated(key, at) {
			t.Fatal("MarkValidated of a present key reported false")
		}
		body, got, err := tier.Open(key, nil)
		if err != nil {
			t.Fatal(err)
		}
		body.Close()
		if got.ValidatedAt.Before(at) {
			t.Errorf("ValidatedAt %v after MarkValidated(%v)", got.ValidatedAt, at)
		}
		if tier.MarkValidated("nothing/here.png", at) {
			t.Error("MarkValidated of an absent key reported true")
		}
	})

	t.Run("StaysWithinMaxBytes", func(t *testing.T) {
		const max = 1 << 20
		tier, store := newTier(t, max)
		for i := range 100 {
			k := fmt.Sprintf("media_attachments/files/000/000/%03d/original/%016x.jpg", i, i)
			b := Blob(uint64(i), 40_000)
			if err := store(NewEntry(k, b), b); err != nil {
				t.Fatal(err)
			}
		}
		st := tier.Stats()
		if st.Bytes > max {
			t.Errorf("after 4 MB of stores into a 1 MiB tier: %d bytes held", st.Bytes)
		}
		if st.Evictions == 0 && st.Entries >= 100 {
			t.Errorf("nothing was evicted or refused: %+v", st)
		}
	})
}
