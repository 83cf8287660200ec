package volume_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fedicache/fedicache/origin/volume"
)

// inside is the content of the one real file of a canary volume.
const inside = "the bytes of a file inside the volume"

// canaryVolume builds a volume directory with a canary file beside it (in the parent directory)
// and symbolic links inside that lead to the canary, to /etc/passwd, to /proc and back inside,
// a hidden file and a FIFO, and opens it. It returns the canary's bytes.
func canaryVolume(tb testing.TB) (*volume.Volume, []byte) {
	tb.Helper()
	parent := tb.TempDir()
	canary := []byte("CANARY: bytes beside the volume, never to be served")
	if err := os.WriteFile(filepath.Join(parent, "canary"), canary, 0o644); err != nil {
		tb.Fatal(err)
	}
	dir := filepath.Join(parent, "vol")
	writeTree(tb, dir, map[string][]byte{
		"files/real.jpg": []byte(inside), "a/b.jpg": []byte("b"), "hidden.jpg": []byte("suspended"),
	})
	if err := os.Chmod(filepath.Join(dir, "hidden.jpg"), 0o600); err != nil {
		tb.Fatal(err)
	}
	for link, target := range map[string]string{
		"link-abs":     filepath.Join(parent, "canary"),
		"link-rel":     "../canary",
		"a/link-rel":   "../../canary",
		"link-passwd":  "/etc/passwd",
		"link-dir-out": "..",
		"link-dir-abs": parent,
		"a/out-in":     "../../vol/files/real.jpg", // out of the volume and back in
		"link-proc":    "/proc/self/root",
		"link-fd":      "/proc/self/fd/3",
		"link-hidden":  "hidden.jpg",
		"link-in":      "files/real.jpg",
		"link-in-abs":  filepath.Join(dir, "files", "real.jpg"),
		"a/up-in":      "../files/real.jpg", // up, staying inside
		"a/dir-up-in":  "../files",
		"chain":        "a/up-in",
		"dir-in":       "files",
		"loop":         "loop",
	} {
		if err := os.Symlink(target, filepath.Join(dir, filepath.FromSlash(link))); err != nil {
			tb.Skipf("cannot make symbolic links: %v", err)
		}
	}
	// The links work outside the volume: the canary is one read away.
	if b, err := os.ReadFile(filepath.Join(dir, "a", "link-rel")); err != nil || !bytes.Equal(b, canary) {
		tb.Fatalf("the planted link does not reach the canary: %q, %v", b, err)
	}
	if err := mkfifo(filepath.Join(dir, "fifo")); err != nil && !errors.Is(err, errors.ErrUnsupported) {
		tb.Fatal(err)
	}
	return openVolume(tb, dir), canary
}

func TestTraversal(t *testing.T) {
	v, canary := canaryVolume(t)
	for _, key := range []string{
		"link-abs", "link-rel", "a/link-rel", "link-passwd", "link-dir-out/canary",
		"link-dir-out/vol/files/real.jpg", "link-in-abs", "loop", "../canary", "a/../../canary",
		"files/../../canary", "/etc/passwd", "..\\canary", "a\\..\\..\\canary", "canary\x00",
		"link-rel\x00", "\x00../canary", "../vol/files/real.jpg", "%2e%2e/canary", "..", "../",
		"link-dir-out", "dir-in", "link-dir-abs/canary", "link-dir-abs/vol/files/real.jpg",
		"a/out-in", "link-proc/etc/passwd", "link-fd", "hidden.jpg", "link-hidden",
		"files/../files/real.jpg", "fifo",
	} {
		t.Run("", func(t *testing.T) {
			ctx := context.Background()
			body, _, err := v.Get(ctx, key, nil)
			if err == nil {
				b, _ := io.ReadAll(body)
				body.Close()
				if bytes.Contains(b, canary) {
					t.Fatalf("Get(%q) returned the canary", key)
				}
			}
			expectNotFound(t, v, key)
		})
	}
}

func TestSymlinkInside(t *testing.T) {
	v, _ := canaryVolume(t)
	for _, key := range []string{
		"link-in", "dir-in/real.jpg", "files/real.jpg", "a/up-in", "a/dir-up-in/real.jpg", "chain",
	} {
		body, m, err := v.Get(context.Background(), key, nil)
		if err != nil {
			t.Errorf("Get(%q): %v", key, err)
			continue
		}
		b, err := io.ReadAll(body)
		body.Close()
		if err != nil || string(b) != inside || m.Size != int64(len(inside)) {
			t.Errorf("Get(%q) = %q (Size %d), %v; want %q", key, b, m.Size, err, inside)
		}
	}
}

// TestSpecialFiles checks that FIFOs and sockets look absent and that neither Stat nor Get
// waits on them.
func TestSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string][]byte{"media/real.mp4": []byte("mp4")})
	keys := []string{"media"}
	if err := mkfifo(filepath.Join(dir, "media", "fifo.mp4")); err == nil {
		keys = append(keys, "media/fifo.mp4", "fifo-link.mp4")
		if err := os.Symlink("media/fifo.mp4", filepath.Join(dir, "fifo-link.mp4")); err != nil {
			t.Fatal(err)
		}
	} else if !errors.Is(err, errors.ErrUnsupported) {
		t.Fatal(err)
	}
	if l, err := net.Listen("unix", filepath.Join(dir, "media", "sock.mp4")); err == nil {
		defer l.Close()
		keys = append(keys, "media/sock.mp4")
	}
	v := openVolume(t, dir)

	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, key := range keys {
			expectNotFound(t, v, key)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("Stat or Get of a special file blocked")
	}
}
