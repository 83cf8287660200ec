package disk

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fedicache/fedicache/cache"
	"github.com/fedicache/fedicache/cache/tiertest"
	"github.com/fedicache/fedicache/origin"
	"github.com/fedicache/fedicache/origin/fielderr"
)

func TestTier(t *testing.T) {
	factory := func(held bool) tiertest.Factory {
		return func(t *testing.T, maxBytes int64) (cache.Tier, tiertest.Store) {
			var setup func(*Disk)
			if held {
				setup, _ = gate(t)
			}
			d := testDisk(t, Config{Dir: t.TempDir(), MaxBytes: maxBytes}, setup)
			if !held {
				waitReady(t, d)
			}
			return d, func(e cache.Entry, body []byte) error {
				return d.Store(e, bytes.NewReader(body))
			}
		}
	}
	t.Run("Rebuilt", func(t *testing.T) { tiertest.Run(t, factory(false)) })
	// The same contract holds while the rebuild has not finished.
	t.Run("Rebuilding", func(t *testing.T) { tiertest.Run(t, factory(true)) })
}

func TestOpenConfig(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"empty dir", Config{}, "Config.Dir"},
		{"dir is a file", Config{Dir: file}, "Config.Dir"},
		{"dir under a file", Config{Dir: filepath.Join(file, "cache", "media")}, "Config.Dir"},
		{"negative size", Config{Dir: t.TempDir(), MaxBytes: -1}, "Config.MaxBytes"},
		{"negative retry", Config{Dir: t.TempDir(), RetryAfter: -time.Second}, "Config.RetryAfter"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.cfg.Validate(); err == nil {
				t.Errorf("Validate(%+v) found nothing wrong", tc.cfg)
			}
			d, err := Open(tc.cfg)
			if err == nil {
				d.Close()
				t.Fatalf("Open(%+v) succeeded", tc.cfg)
			}
			var fe *fielderr.Error
			if !errors.As(err, &fe) || fe.Pkg != "disk" || fe.Field != tc.want || fe.Fix == "" {
				t.Errorf("Open(%+v): %v, want a *fielderr.Error naming %s and the fix", tc.cfg, err, tc.want)
			}
			if strings.Contains(err.Error(), "cache.disk.") {
				t.Errorf("Open(%+v): %v names a configuration key", tc.cfg, err)
			}
		})
	}
	if err := (Config{Dir: filepath.Join(t.TempDir(), "new", "cache")}).Validate(); err != nil {
		t.Errorf("Validate of a directory to be created: %v", err)
	}
	// What only creating finds (here, a file where the temporary directory goes) is the same
	// error, with its cause.
	blocked := t.TempDir()
	if err := os.WriteFile(filepath.Join(blocked, "tmp"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var fe *fielderr.Error
	if d, err := Open(Config{Dir: blocked}); err == nil {
		d.Close()
		t.Error("Open of a directory whose tmp is a file succeeded")
	} else if !errors.As(err, &fe) || fe.Field != "Config.Dir" || fe.Err == nil {
		t.Errorf("Open of a directory whose tmp is a file: %v, want a *fielderr.Error of Config.Dir with the cause", err)
	}
	d := testDisk(t, Config{Dir: t.TempDir()}, nil)
	if st := d.Stats(); st.MaxBytes != DefaultMaxBytes || d.retryAfter != DefaultRetryAfter || d.Name() != "disk" {
		t.Errorf("defaults: %+v, retry after %s, name %q", st, d.retryAfter, d.Name())
	}
}

func TestOpenRemovesTemps(t *testing.T) {
	dir := t.TempDir()
	left := filepath.Join(dir, "tmp", "w-123")
	if err := os.MkdirAll(filepath.Dir(left), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(left, []byte("half an entry"), 0o600); err != nil {
		t.Fatal(err)
	}
	testDisk(t, Config{Dir: dir}, nil)
	if exists(t, left) {
		t.Error("a temporary file of an earlier process survived Open")
	}
}

func TestWholeBodyIsTheFile(t *testing.T) {
	d := testDisk(t, Config{Dir: t.TempDir()}, nil)
	waitReady(t, d)
	const key = "media_attachments/files/000/000/001/original/a.mp4"
	data := tiertest.Blob(1, 10_000)
	store(t, d, key, data)

	body, e, err := d.Open(key, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer body.Close()
	f, ok := body.(*os.File)
	if !ok {
		t.Fatalf("whole body is a %T, want the *os.File for sendfile", body)
	}
	off, err := f.Seek(0, 1)
	if err != nil {
		t.Fatal(err)
	}
	info, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if info.Size()-off != e.Meta.Size {
		t.Errorf("file positioned at %d of %d: %d bytes follow, want the body's %d", off, info.Size(), info.Size()-off, e.Meta.Size)
	}

	r := origin.Range{Start: 100, End: 199}
	rb, _, err := d.Open(key, &r)
	if err != nil {
		t.Fatal(err)
	}
	defer rb.Close()
	if _, ok := rb.(io.WriterTo); !ok {
		t.Errorf("range body is a %T without WriteTo: it cannot go by sendfile", rb)
	}
	r = origin.Range{Start: 20_000, End: -1}
	_, e, err = d.Open(key, &r)
	if !errors.Is(err, origin.ErrRangeNotSatisfiable) || e.Meta.Size != 10_000 {
		t.Errorf("Open(%s): %v, size %d; want ErrRangeNotSatisfiable with the entry", r, err, e.Meta.Size)
	}
}

func TestMissAfterRebuildSkipsDisk(t *testing.T) {
	dir := t.TempDir()
	d := testDisk(t, Config{Dir: dir}, nil)
	waitReady(t, d)
	// A file the index does not know, put there behind the Disk's back, is not served once
	// the index answers for the directory.
	writeFile(t, dir, "stray/file.png", []byte("x"), time.Time{})
	absent(t, d, "stray/file.png")
}

func TestStaleNodeForgotten(t *testing.T) {
	dir := t.TempDir()
	d := testDisk(t, Config{Dir: dir}, nil)
	waitReady(t, d)
	const key = "a/b.png"
	store(t, d, key, []byte("hello"))
	if err := os.Remove(pathOf(dir, key)); err != nil {
		t.Fatal(err)
	}
	absent(t, d, key)
	if st := d.Stats(); st.Entries != 0 || st.Bytes != 0 {
		t.Errorf("after the file vanished: %+v", st)
	}
}

func TestMarkValidated(t *testing.T) {
	dir := t.TempDir()
	d := testDisk(t, Config{Dir: dir}, nil)
	waitReady(t, d)
	const key = "accounts/avatars/1.png"
	e := tiertest.NewEntry(key, []byte("avatar"))
	e.ValidatedAt = time.Time{}
	if err := d.Store(e, strings.NewReader("avatar")); err != nil {
		t.Fatal(err)
	}
	if _, got := read(t, d, key); !got.ValidatedAt.IsZero() {
		t.Errorf("zero ValidatedAt read back as %v", got.ValidatedAt)
	}
	at := time.Date(2031, 2, 3, 4, 5, 6, 789, time.UTC)
	if !d.MarkValidated(key, at) {
		t.Fatal("MarkValidated reported false")
	}
	d.Close()

	d2 := testDisk(t, Config{Dir: dir}, nil)
	body, got := read(t, d2, key)
	if !got.ValidatedAt.Equal(at) || string(body) != "avatar" {
		t.Errorf("after reopening: ValidatedAt %v, body %q; want %v, avatar", got.ValidatedAt, body, at)
	}
	if d2.MarkValidated("nothing/here.png", at) {
		t.Error("MarkValidated of an absent key during the rebuild reported true")
	}
}

func TestCreateRefusesOversized(t *testing.T) {
	dir := t.TempDir()
	d := testDisk(t, Config{Dir: dir, MaxBytes: 1000}, nil)
	waitReady(t, d)
	body := make([]byte, 1000)
	err := d.Store(tiertest.NewEntry("big.bin", body), bytes.NewReader(body))
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Store of an entry larger than the cache: %v, want ErrTooLarge", err)
	}
	if fs := files(t, dir); len(fs) != 0 {
		t.Errorf("files left: %v", fs)
	}
	if st := d.Stats(); st.WriteErrors != 0 || st.Disabled {
		t.Errorf("an oversized entry counted as a write error: %+v", st)
	}
	if _, err := d.Create(cache.Entry{Key: strings.Repeat("k", maxHeaderLen)}); err == nil {
		t.Error("Create with a key longer than the header limit succeeded")
	}
}

func TestDeleteNames(t *testing.T) {
	dir := t.TempDir()
	d := testDisk(t, Config{Dir: dir}, nil)
	waitReady(t, d)
	for i := range 5 {
		store(t, d, fmt.Sprintf("p/%d", i), []byte("x"))
	}
	if n := d.DeletePrefix(""); n != 5 {
		t.Errorf("DeletePrefix(\"\") = %d, want 5", n)
	}
	if fs := files(t, dir); len(fs) != 0 {
		t.Errorf("files left after deleting everything: %v", fs)
	}
}

// TestReopen: a reopened spool file holds the body written so far from bodyOff on, with an
// offset of its own, and stays the same file once the commit has renamed it into place.
func TestReopen(t *testing.T) {
	d := testDisk(t, Config{Dir: t.TempDir()}, nil)
	waitReady(t, d)
	const key = "media_attachments/files/000/000/002/original/b.mp4"
	data := tiertest.Blob(2, 300_000)
	e := tiertest.NewEntry(key, data)
	w, err := d.Create(e)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Write(data[:100_000]); err != nil {
		t.Fatal(err)
	}
	f, bodyOff, err := w.Reopen()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := make([]byte, 100_000)
	if _, err := f.ReadAt(got, bodyOff); err != nil || !bytes.Equal(got, data[:100_000]) {
		t.Fatalf("reopened before the commit: %v, bytes match %v", err, bytes.Equal(got, data[:100_000]))
	}
	if _, err := w.Write(data[100_000:]); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Seek(bodyOff+200_000, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(f)
	if err != nil || !bytes.Equal(rest, data[200_000:]) {
		t.Errorf("reopened, read after the commit: %v, %d bytes, match %v", err, len(rest), bytes.Equal(rest, data[200_000:]))
	}
}
