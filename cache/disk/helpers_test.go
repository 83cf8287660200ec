package disk

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fedicache/fedicache/cache"
	"github.com/fedicache/fedicache/cache/tiertest"
	"github.com/fedicache/fedicache/origin"
	"github.com/fedicache/fedicache/origin/origintest"
)

// newClock returns a settable time for Disk.now.
func newClock() *origintest.Clock {
	return origintest.NewClock(time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC))
}

// logs collects log records, for counting warnings.
type logs struct {
	mu   sync.Mutex
	msgs []string
}

func (l *logs) Enabled(context.Context, slog.Level) bool { return true }
func (l *logs) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logs) WithGroup(string) slog.Handler            { return l }
func (l *logs) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs = append(l.msgs, r.Level.String()+" "+r.Message)
	return nil
}

// count returns how many records contain s.
func (l *logs) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, m := range l.msgs {
		if strings.Contains(m, s) {
			n++
		}
	}
	return n
}

// testDisk opens a Disk on dir, closed at the end of the test, with setup applied before the
// rebuild starts. A nil logger discards the logs.
func testDisk(t testing.TB, cfg Config, setup func(*Disk)) *Disk {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	d, err := open(cfg, setup)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// gate returns a setup that holds the rebuild back until the returned release is called (it
// is also called at the end of the test).
func gate(t testing.TB) (setup func(*Disk), release func()) {
	ch := make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(ch) }) }
	t.Cleanup(release)
	return func(d *Disk) { d.rebuildGate = ch }, release
}

// waitReady waits for the rebuild to end and fails unless it finished.
func waitReady(t testing.TB, d *Disk) {
	t.Helper()
	select {
	case <-d.Rebuilt():
	case <-time.After(30 * time.Second):
		t.Fatal("the rebuild did not end within 30s")
	}
	if !d.Ready() {
		t.Fatal("the rebuild ended without finishing")
	}
}

// store stores key with body through d.Store.
func store(t testing.TB, d *Disk, key string, body []byte) cache.Entry {
	t.Helper()
	e := tiertest.NewEntry(key, body)
	if err := d.Store(e, bytes.NewReader(body)); err != nil {
		t.Fatalf("Store(%q): %v", key, err)
	}
	return e
}

// read opens key whole and returns its body and entry.
func read(t testing.TB, d *Disk, key string) ([]byte, cache.Entry) {
	t.Helper()
	body, e, err := d.Open(key, nil)
	if err != nil {
		t.Fatalf("Open(%q): %v", key, err)
	}
	defer body.Close()
	b, err := io.ReadAll(body)
	if err != nil {
		t.Fatalf("reading %q: %v", key, err)
	}
	return b, e
}

// absent checks that key is not served.
func absent(t testing.TB, d *Disk, key string) {
	t.Helper()
	body, _, err := d.Open(key, nil)
	if body != nil {
		body.Close()
	}
	if !errors.Is(err, origin.ErrNotFound) {
		t.Errorf("Open(%q): %v, want ErrNotFound", key, err)
	}
}

// writeFile writes an entry's file directly, as a Disk would, without the index.
func writeFile(t testing.TB, dir, key string, body []byte, mtime time.Time) {
	t.Helper()
	file, err := entryFile(tiertest.NewEntry(key, body), body)
	if err != nil {
		t.Fatal(err)
	}
	p := pathOf(dir, key)
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, file, 0o600); err != nil {
		t.Fatal(err)
	}
	if !mtime.IsZero() {
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
}

// entryFile returns the whole file of entry e with body, checksum included, as a Writer writes
// it.
func entryFile(e cache.Entry, body []byte) ([]byte, error) {
	prefix, err := encodePrefix(e)
	if err != nil {
		return nil, err
	}
	b := append(prefix, body...)
	binary.BigEndian.PutUint32(b[offChecksum:], crc32.Checksum(b[offHeaderLen:], crcTable))
	return b, nil
}

// exists reports whether the file at p exists.
func exists(t testing.TB, p string) bool {
	t.Helper()
	_, err := os.Stat(p)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return err == nil
}

// files returns the paths of the regular files under dir.
func files(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if de.Type().IsRegular() {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// discard reads r to the end and closes it.
func discard(r io.ReadCloser) {
	io.Copy(io.Discard, r)
	r.Close()
}

// slogger returns a logger writing to h.
func slogger(h slog.Handler) *slog.Logger { return slog.New(h) }

// dirOf returns the directory of p.
func dirOf(p string) string { return filepath.Dir(p) }

// crash ends d as a killed process would: its background work stops (as the process's
// goroutines would), nothing is flushed and no mark of a clean shutdown is written.
func crash(d *Disk) { d.stopWork() }

// marked reports whether dir holds the mark of a clean shutdown.
func marked(t testing.TB, dir string) bool { return exists(t, filepath.Join(dir, markerName)) }

// waitChecked waits for the background verification to end.
func waitChecked(t testing.TB, d *Disk) {
	t.Helper()
	select {
	case <-d.checked:
	case <-time.After(30 * time.Second):
		t.Fatal("the verification did not end within 30s")
	}
}
