package volume_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/fedicache/fedicache/origin"
	"github.com/fedicache/fedicache/origin/origintest"
	"github.com/fedicache/fedicache/origin/volume"
)

// writeTree writes files (key -> bytes) beneath dir, readable by all whatever the umask.
func writeTree(tb testing.TB, dir string, files map[string][]byte) {
	tb.Helper()
	for key, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(key))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			tb.Fatal(err)
		}
		if err := os.Chmod(p, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
}

// openVolume opens dir and closes it when the test ends.
func openVolume(tb testing.TB, dir string) *volume.Volume {
	tb.Helper()
	v, err := volume.Open(dir)
	if err != nil {
		tb.Fatalf("Open(%q): %v", dir, err)
	}
	tb.Cleanup(func() { v.Close() })
	return v
}

// expectNotFound checks that Stat and Get (whole and ranged) of key fail with ErrNotFound.
func expectNotFound(t *testing.T, v *volume.Volume, key string) {
	t.Helper()
	ctx := context.Background()
	if m, err := v.Stat(ctx, key); !errors.Is(err, origin.ErrNotFound) {
		t.Errorf("Stat(%q) = %+v, %v; want ErrNotFound", key, m, err)
	}
	for _, r := range []*origin.Range{nil, {Start: 0, End: -1}} {
		body, _, err := v.Get(ctx, key, r)
		if body != nil {
			b, _ := io.ReadAll(body)
			body.Close()
			t.Errorf("Get(%q, %v) returned a body of %d bytes", key, r, len(b))
		}
		if !errors.Is(err, origin.ErrNotFound) {
			t.Errorf("Get(%q, %v): err %v, want ErrNotFound", key, r, err)
		}
	}
}

func TestSuite(t *testing.T) {
	origintest.Run(t, func(t *testing.T, objects map[string][]byte) origin.Origin {
		dir := t.TempDir()
		writeTree(t, dir, objects)
		return openVolume(t, dir)
	})
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	writeTree(t, dir, map[string][]byte{"file": []byte("x")})
	for _, p := range []string{filepath.Join(dir, "missing"), file} {
		v, err := volume.Open(p)
		if err == nil {
			v.Close()
			t.Errorf("Open(%q) succeeded, want an error", p)
			continue
		}
		if !strings.Contains(err.Error(), p) {
			t.Errorf("Open(%q): error %q does not name the path", p, err)
		}
	}
}

func TestMeta(t *testing.T) {
	dir := t.TempDir()
	key := "media_attachments/files/000/000/001/original/0123456789abcdef.mp4"
	writeTree(t, dir, map[string][]byte{key: bytes.Repeat([]byte("m"), 42)})
	mtime := time.Unix(1_600_000_000, 987_654_321) // 0x5f5e1000 seconds
	if err := os.Chtimes(filepath.Join(dir, key), mtime, mtime); err != nil {
		t.Fatal(err)
	}
	v := openVolume(t, dir)
	want := origin.Meta{
		Size:         42,
		ContentType:  "video/mp4",
		ETag:         `"5f5e1000-2a"`,
		LastModified: time.Unix(1_600_000_000, 0).UTC(),
	}
	m, err := v.Stat(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	if m != want {
		t.Errorf("Stat: %+v, want %+v", m, want)
	}
	if m.LastModified.Location() != time.UTC {
		t.Errorf("LastModified in %v, want UTC", m.LastModified.Location())
	}
	body, gm, err := v.Get(context.Background(), key, &origin.Range{Start: 1, End: 2})
	if err != nil {
		t.Fatal(err)
	}
	body.Close()
	if gm != want {
		t.Errorf("Get: %+v, want %+v", gm, want)
	}
}

func TestGetWholeIsFile(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string][]byte{"a/b.png": []byte("png")})
	body, _, err := openVolume(t, dir).Get(context.Background(), "a/b.png", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer body.Close()
	if _, ok := body.(*os.File); !ok {
		t.Errorf("Get without a range returned a %T, want *os.File (for sendfile)", body)
	}
}

func TestRangeBody(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string][]byte{"x.bin": []byte("0123456789")})
	v := openVolume(t, dir)
	ctx := context.Background()

	body, _, err := v.Get(ctx, "x.bin", &origin.Range{Start: 2, End: 5})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, body); err != nil { // through WriteTo
		t.Fatal(err)
	}
	if buf.String() != "2345" {
		t.Errorf("range 2-5 read %q, want %q", buf.String(), "2345")
	}
	if err := body.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	body, _, err = v.Get(ctx, "x.bin", &origin.Range{Start: 7, End: -1})
	if err != nil {
		t.Fatal(err)
	}
	if err := body.Close(); err != nil {
		t.Fatalf("Close before reading: %v", err)
	}
	if _, err := body.Read(make([]byte, 4)); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Read after Close: %v, want os.ErrClosed (Close must close the file)", err)
	}
}

func TestRangeNotSatisfiable(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string][]byte{"one.gif": []byte("1"), "empty.gif": {}})
	v := openVolume(t, dir)
	for _, tc := range []struct {
		key string
		r   origin.Range
	}{
		{"one.gif", origin.Range{Start: 1, End: -1}},
		{"one.gif", origin.Range{Start: 5, End: 9}},
		{"empty.gif", origin.Range{Start: 0, End: -1}},
		{"empty.gif", origin.Suffix(3)},
	} {
		body, m, err := v.Get(context.Background(), tc.key, &tc.r)
		if body != nil {
			body.Close()
			t.Errorf("Get(%q, %s) returned a body", tc.key, tc.r)
		}
		if !errors.Is(err, origin.ErrRangeNotSatisfiable) {
			t.Errorf("Get(%q, %s): err %v, want ErrRangeNotSatisfiable", tc.key, tc.r, err)
		}
		if m.ETag == "" {
			t.Errorf("Get(%q, %s): Meta %+v, want the object's (for Content-Range: bytes */size)", tc.key, tc.r, m)
		}
	}
}

// TestRangeSeeks reads the end of a large sparse file: the volume must seek, not read up to it.
func TestRangeSeeks(t *testing.T) {
	const size = 64 << 20
	dir := t.TempDir()
	writeTree(t, dir, map[string][]byte{"big.mp4": nil})
	f, err := os.OpenFile(filepath.Join(dir, "big.mp4"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("0123456789"), size-10); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	v := openVolume(t, dir)

	read := func(r origin.Range) []byte {
		body, m, err := v.Get(context.Background(), "big.mp4", &r)
		if err != nil {
			t.Fatalf("Get(%s): %v", r, err)
		}
		defer body.Close()
		if m.Size != size {
			t.Errorf("Get(%s): Size %d, want %d", r, m.Size, size)
		}
		b, err := io.ReadAll(body)
		if err != nil {
			t.Fatalf("Get(%s): read: %v", r, err)
		}
		return b
	}
	for _, r := range []origin.Range{origin.Suffix(10), {Start: size - 10, End: size + 5}, {Start: size - 10, End: -1}} {
		if got := read(r); string(got) != "0123456789" {
			t.Errorf("Get(%s) = %q, want the last 10 bytes", r, got)
		}
	}

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	const n = 20
	for range n {
		read(origin.Suffix(10))
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / n; per > 64<<10 {
		t.Errorf("a 10-byte range of a %d-byte file allocated %d bytes: the file is read, not seeked", size, per)
	}
}

func TestHiddenFiles(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string][]byte{
		"owner-only.jpg": []byte("suspended"), "group.jpg": []byte("g"), "others.jpg": []byte("o"),
	})
	for name, mode := range map[string]os.FileMode{"owner-only.jpg": 0o600, "group.jpg": 0o640, "others.jpg": 0o604} {
		if err := os.Chmod(filepath.Join(dir, name), mode); err != nil {
			t.Fatal(err)
		}
	}
	v := openVolume(t, dir)
	// Without o+r a file is hidden, as for a web server that does not own it.
	expectNotFound(t, v, "owner-only.jpg")
	expectNotFound(t, v, "group.jpg")
	for _, key := range []string{"others.jpg"} {
		if _, err := v.Stat(context.Background(), key); err != nil {
			t.Errorf("Stat(%q): %v", key, err)
		}
	}
}

func TestPermissionDenied(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("permissions do not bind the superuser")
	}
	dir := t.TempDir()
	writeTree(t, dir, map[string][]byte{"locked/x.jpg": []byte("x")})
	if err := os.Chmod(filepath.Join(dir, "locked"), 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(filepath.Join(dir, "locked"), 0o755) })
	expectNotFound(t, openVolume(t, dir), "locked/x.jpg")
}

func TestNotFoundKeys(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string][]byte{
		"a/b.jpg":   []byte("b"),
		"a\\b.jpg":  []byte("a file whose name holds a backslash"),
		"nul.jpg":   []byte("n"),
		"dot/x.jpg": []byte("d"),
	})
	v := openVolume(t, dir)
	for _, key := range []string{
		"", ".", "a", "a/", "/a/b.jpg", "./a/b.jpg", "a/./b.jpg", "a//b.jpg", "a/b.jpg/",
		"a/b.jpg/x", "a\\b.jpg", "nul.jpg\x00", "\x00", "dot/../a/b.jpg", "missing.jpg",
		strings.Repeat("x", 300) + ".jpg", strings.Repeat("d/", 3000) + "x.jpg",
	} {
		expectNotFound(t, v, key)
	}
}

func TestCanceledContext(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string][]byte{"a.jpg": []byte("a")})
	v := openVolume(t, dir)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := v.Stat(ctx, "a.jpg"); !errors.Is(err, context.Canceled) || errors.Is(err, origin.ErrNotFound) {
		t.Errorf("Stat with a canceled ctx: %v, want context.Canceled", err)
	}
	if _, _, err := v.Get(ctx, "a.jpg", nil); !errors.Is(err, context.Canceled) || errors.Is(err, origin.ErrNotFound) {
		t.Errorf("Get with a canceled ctx: %v, want context.Canceled", err)
	}
}

// TestNoDescriptorLeak checks that every failed Get closes what it opened.
func TestNoDescriptorLeak(t *testing.T) {
	fds := func() int {
		des, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Skipf("cannot count descriptors: %v", err)
		}
		return len(des)
	}
	dir := t.TempDir()
	writeTree(t, dir, map[string][]byte{"one.gif": []byte("1"), "d/x.jpg": []byte("x")})
	v := openVolume(t, dir)
	ctx := context.Background()
	before := fds()
	for range 100 {
		for _, tc := range []struct {
			key string
			r   *origin.Range
		}{{"one.gif", &origin.Range{Start: 3, End: -1}}, {"d", nil}, {"missing", nil}, {"one.gif", nil}, {"d/x.jpg", &origin.Range{Start: 0, End: 0}}} {
			if body, _, err := v.Get(ctx, tc.key, tc.r); err == nil {
				body.Close()
			}
		}
	}
	if after := fds(); after > before+5 {
		t.Errorf("%d descriptors open after 500 Gets, %d before", after, before)
	}
}

// TestClosed checks that a closed volume fails, without claiming that its files are absent.
func TestClosed(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string][]byte{"d/a.jpg": []byte("a")})
	v, err := volume.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	ctx := context.Background()
	if _, err := v.Stat(ctx, "d/a.jpg"); !errors.Is(err, os.ErrClosed) || errors.Is(err, origin.ErrNotFound) {
		t.Errorf("Stat after Close: %v, want os.ErrClosed", err)
	}
	if body, _, err := v.Get(ctx, "d/a.jpg", nil); !errors.Is(err, os.ErrClosed) || errors.Is(err, origin.ErrNotFound) {
		if body != nil {
			body.Close()
		}
		t.Errorf("Get after Close: %v, want os.ErrClosed", err)
	}
	if err := v.Walk(ctx, func(string, fs.FileInfo) error { return nil }); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Walk after Close: %v, want os.ErrClosed", err)
	}
	if err := v.Close(); err != nil {
		t.Errorf("second Close: %v, want nil (as os.Root's)", err)
	}
}

// TestCloseWhileGetting closes a volume under Gets (for the race detector): each Get serves the
// file or fails, none finds the file absent.
func TestCloseWhileGetting(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string][]byte{"d/a.jpg": []byte("a")})
	v, err := volume.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	started := make(chan struct{})
	done := make(chan struct{})
	for i := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for n := 0; ; n++ {
				if n == 10 && i == 0 {
					close(started)
				}
				body, _, err := v.Get(ctx, "d/a.jpg", nil)
				if err != nil {
					if errors.Is(err, origin.ErrNotFound) {
						t.Errorf("Get while closing: %v, want the file or os.ErrClosed", err)
					}
					return
				}
				body.Close()
			}
		}()
	}
	<-started
	if err := v.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	for range 4 {
		<-done
	}
}

func TestOpenFileForACopier(t *testing.T) {
	v, _ := canaryVolume(t)
	dir := t.TempDir()
	writeTree(t, dir, map[string][]byte{"hidden.jpg": []byte("suspended"), "shown.jpg": []byte("public")})
	if err := os.Chmod(filepath.Join(dir, "hidden.jpg"), 0o600); err != nil {
		t.Fatal(err)
	}
	vol := openVolume(t, dir)
	for key, want := range map[string]string{"hidden.jpg": "suspended", "shown.jpg": "public"} {
		f, info, err := vol.OpenFile(key)
		if err != nil {
			t.Fatalf("OpenFile(%q): %v", key, err)
		}
		b, _ := io.ReadAll(f)
		f.Close()
		if string(b) != want || info.Size() != int64(len(want)) {
			t.Errorf("OpenFile(%q) = %q (%d bytes), want %q", key, b, info.Size(), want)
		}
	}
	expectNotFound(t, vol, "hidden.jpg") // served: never
	for _, key := range []string{"../canary", "link-abs", "link-rel", "a/link-rel", "link-passwd", "link-dir-out/canary", "fifo", "/etc/passwd"} {
		if f, _, err := v.OpenFile(key); err == nil {
			f.Close()
			t.Errorf("OpenFile(%q) opened a file outside the volume", key)
		}
	}
}
