// Package origintest holds the conformance suite every origin.Origin implementation runs, so the
// bucket, the old volume and the caches in front of them all keep one contract.
package origintest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/fedicache/fedicache/origin"
)

// Factory builds the Origin under test holding exactly objects (key -> bytes).
type Factory func(t *testing.T, objects map[string][]byte) origin.Origin

// Objects returns the seeded objects the suite stores: Mastodon-shaped keys of several sizes,
// an empty file and a key with non-ASCII and space characters.
func Objects() map[string][]byte {
	rnd := rand.New(rand.NewPCG(1, 2))
	blob := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rnd.UintN(256))
		}
		return b
	}
	return map[string][]byte{
		"media_attachments/files/000/000/001/original/0123456789abcdef.jpg":          blob(40_000),
		"media_attachments/files/109/852/623/730/091/815/small/fedcba9876543210.png": blob(5_000),
		"accounts/avatars/000/000/042/original/aaaaaaaaaaaaaaaa.gif":                 blob(1),
		"cache/media_attachments/files/000/000/002/original/bbbbbbbbbbbbbbbb.mp4":    blob(300_000),
		"site_uploads/files/000/000/001/favicon/empty.ico":                           {},
		"custom_emojis/images/000/000/007/static/émoji with space.webp":              blob(777),
	}
}

// Run checks the Origin contract on the Origin that newOrigin builds.
func Run(t *testing.T, newOrigin Factory) {
	objects := Objects()
	o := newOrigin(t, objects)
	ctx := context.Background()

	t.Run("GetWhole", func(t *testing.T) {
		for key, want := range objects {
			body, m, err := o.Get(ctx, key, nil)
			if err != nil {
				t.Fatalf("Get(%q): %v", key, err)
			}
			got := ReadAll(t, body)
			if !bytes.Equal(got, want) {
				t.Errorf("Get(%q): %d bytes differ from the %d stored", key, len(got), len(want))
			}
			checkMeta(t, key, m, int64(len(want)))
		}
	})

	t.Run("Stat", func(t *testing.T) {
		for key, want := range objects {
			m, err := o.Stat(ctx, key)
			if err != nil {
				t.Fatalf("Stat(%q): %v", key, err)
			}
			checkMeta(t, key, m, int64(len(want)))
			body, gm, err := o.Get(ctx, key, nil)
			if err != nil {
				t.Fatalf("Get(%q): %v", key, err)
			}
			body.Close()
			if gm.ETag != m.ETag || gm.Size != m.Size || !gm.LastModified.Equal(m.LastModified) {
				t.Errorf("Stat(%q) = %+v, Get says %+v: must agree", key, m, gm)
			}
		}
	})

	t.Run("Ranges", func(t *testing.T) {
		key := "cache/media_attachments/files/000/000/002/original/bbbbbbbbbbbbbbbb.mp4"
		data := objects[key]
		size := int64(len(data))
		for _, r := range []origin.Range{
			{Start: 0, End: 0}, {Start: 0, End: 99}, {Start: 1000, End: 1999},
			{Start: size - 10, End: -1}, {Start: 5, End: size + 1000}, origin.Suffix(500),
			origin.Suffix(size + 10), {Start: size - 1, End: size - 1},
		} {
			body, m, err := o.Get(ctx, key, &r)
			if err != nil {
				t.Fatalf("Get(%s): %v", r, err)
			}
			first, last, _ := r.Resolve(size)
			got := ReadAll(t, body)
			if !bytes.Equal(got, data[first:last+1]) {
				t.Errorf("Get(%s): got %d bytes, want bytes %d-%d", r, len(got), first, last)
			}
			if m.Size != size {
				t.Errorf("Get(%s): Meta.Size %d, want the whole object's %d", r, m.Size, size)
			}
		}
	})

	t.Run("RangeNotSatisfiable", func(t *testing.T) {
		key := "accounts/avatars/000/000/042/original/aaaaaaaaaaaaaaaa.gif"
		for _, r := range []origin.Range{{Start: 1, End: -1}, {Start: 50, End: 60}} {
			body, _, err := o.Get(ctx, key, &r)
			if body != nil {
				body.Close()
			}
			if !errors.Is(err, origin.ErrRangeNotSatisfiable) {
				t.Errorf("Get(%s) of a 1-byte object: err %v, want ErrRangeNotSatisfiable", r, err)
			}
		}
	})

	t.Run("NotFound", func(t *testing.T) {
		for _, key := range []string{
			"media_attachments/files/000/000/001/original/ffffffffffffffff.jpg",
			"media_attachments/files/000/000/001/original", // a "directory"
			"nothing-here",
		} {
			if _, err := o.Stat(ctx, key); !errors.Is(err, origin.ErrNotFound) {
				t.Errorf("Stat(%q): err %v, want ErrNotFound", key, err)
			}
			body, _, err := o.Get(ctx, key, nil)
			if body != nil {
				body.Close()
			}
			if !errors.Is(err, origin.ErrNotFound) {
				t.Errorf("Get(%q): err %v, want ErrNotFound", key, err)
			}
		}
	})

	t.Run("CloseEarly", func(t *testing.T) {
		key := "cache/media_attachments/files/000/000/002/original/bbbbbbbbbbbbbbbb.mp4"
		for range 20 {
			body, _, err := o.Get(ctx, key, nil)
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			buf := make([]byte, 100)
			if _, err := io.ReadFull(body, buf); err != nil {
				t.Fatalf("read: %v", err)
			}
			if err := body.Close(); err != nil {
				t.Errorf("Close after a partial read: %v", err)
			}
		}
		// The origin still serves after bodies were abandoned part way.
		if _, err := o.Stat(ctx, key); err != nil {
			t.Fatalf("Stat after early closes: %v", err)
		}
	})

	t.Run("CanceledContext", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		key := "media_attachments/files/000/000/001/original/0123456789abcdef.jpg"
		body, _, err := o.Get(cctx, key, nil)
		if err == nil {
			// A local store may answer before it looks at ctx; it must then still give the bytes.
			got := ReadAll(t, body)
			if !bytes.Equal(got, objects[key]) {
				t.Errorf("Get with a canceled ctx returned wrong bytes")
			}
		}
	})
}

func checkMeta(t *testing.T, key string, m origin.Meta, size int64) {
	t.Helper()
	var problems []string
	if m.Size != size {
		problems = append(problems, fmt.Sprintf("Size %d, want %d", m.Size, size))
	}
	if m.ContentType == "" {
		problems = append(problems, "empty ContentType")
	}
	if len(m.ETag) < 3 || !strings.HasSuffix(m.ETag, `"`) ||
		!(strings.HasPrefix(m.ETag, `"`) || strings.HasPrefix(m.ETag, `W/"`)) {
		problems = append(problems, fmt.Sprintf("ETag %q is not a quoted entity tag", m.ETag))
	}
	if m.LastModified.IsZero() {
		problems = append(problems, "zero LastModified")
	}
	if len(problems) > 0 {
		t.Errorf("meta of %q: %s", key, strings.Join(problems, "; "))
	}
}

// ReadAll reads and closes body, failing t on a read error.
func ReadAll(t *testing.T, body io.ReadCloser) []byte {
	t.Helper()
	defer body.Close()
	b, err := io.ReadAll(body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	return b
}
