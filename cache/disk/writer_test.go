package disk

import (
	"bytes"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fedicache/fedicache/cache/tiertest"
)

func TestReadWhileWriting(t *testing.T) {
	d := testDisk(t, Config{Dir: t.TempDir()}, nil)
	waitReady(t, d)
	const key = "media_attachments/files/1/original/v.mp4"
	data := tiertest.Blob(5, 1<<20)
	w, err := d.Create(tiertest.NewEntry(key, data))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()

	progress := make(chan int64, 1)
	got := make(chan []byte)
	go func() {
		// A reader served from the fill: it reads whatever has been written, in small
		// pieces, and waits for more when it caught up.
		var out []byte
		buf := make([]byte, 10_000)
		for written := range progress {
			for int64(len(out)) < written {
				n, err := w.ReadAt(buf, int64(len(out)))
				out = append(out, buf[:n]...)
				if err != nil && !errors.Is(err, io.EOF) {
					t.Errorf("ReadAt: %v", err)
					break
				}
				if n == 0 {
					break
				}
			}
		}
		got <- out
	}()
	for off := 0; off < len(data); {
		n := min(7777, len(data)-off)
		if _, err := w.Write(data[off : off+n]); err != nil {
			t.Fatal(err)
		}
		off += n
		select { // the reader is told of the latest count, never blocks the writer
		case <-progress:
		default:
		}
		progress <- w.Written()
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	// ReadAt keeps working after Commit.
	tail := make([]byte, 100)
	if n, err := w.ReadAt(tail, int64(len(data)-100)); n != 100 || err != nil || !bytes.Equal(tail, data[len(data)-100:]) {
		t.Errorf("ReadAt after Commit: %d, %v", n, err)
	}
	close(progress)
	if out := <-got; !bytes.Equal(out, data) {
		t.Errorf("the concurrent reader got %d bytes that differ from the %d written", len(out), len(data))
	}
	if n, err := w.ReadAt(tail, int64(len(data))); n != 0 || err != io.EOF {
		t.Errorf("ReadAt at the end: %d, %v; want 0, EOF", n, err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.ReadAt(tail, 0); err == nil {
		t.Error("ReadAt after Close succeeded")
	}
	if body, _ := read(t, d, key); !bytes.Equal(body, data) {
		t.Error("committed entry differs")
	}
}

func TestCommitShortBody(t *testing.T) {
	dir := t.TempDir()
	d := testDisk(t, Config{Dir: dir}, nil)
	waitReady(t, d)
	const key = "short.png"
	data := tiertest.Blob(1, 1000)
	w, err := d.Create(tiertest.NewEntry(key, data))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Write(data[:999]); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err == nil {
		t.Fatal("Commit of 999 of 1000 bytes succeeded")
	}
	if err := w.Commit(); err == nil {
		t.Error("a second Commit succeeded")
	}
	w.Abort()
	if err := w.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if fs := files(t, dir); len(fs) != 0 {
		t.Errorf("files left: %v", fs)
	}
	absent(t, d, key)
	if st := d.Stats(); st.Entries != 0 || st.Bytes != 0 {
		t.Errorf("Stats: %+v", st)
	}
}

func TestWriteBeyondSize(t *testing.T) {
	dir := t.TempDir()
	d := testDisk(t, Config{Dir: dir}, nil)
	w, err := d.Create(tiertest.NewEntry("k", []byte("abc")))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Write([]byte("abcd")); err == nil {
		t.Error("Write of 4 bytes into a 3-byte entry succeeded")
	}
	if err := w.Commit(); err == nil {
		t.Error("Commit after a refused Write succeeded")
	}
	if fs := files(t, dir); len(fs) != 0 {
		t.Errorf("files left: %v", fs)
	}
}

func TestWriterLifecycle(t *testing.T) {
	dir := t.TempDir()
	d := testDisk(t, Config{Dir: dir}, nil)
	waitReady(t, d)

	// Close without Commit aborts.
	w, err := d.Create(tiertest.NewEntry("a", []byte("a")))
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("a"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if fs := files(t, filepath.Join(dir, "tmp")); len(fs) != 0 {
		t.Errorf("temporary files left after Close: %v", fs)
	}
	absent(t, d, "a")

	// Abort after Commit keeps the entry; Commit is idempotent.
	w, err = d.Create(tiertest.NewEntry("b", []byte("b")))
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("b"))
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Errorf("second Commit: %v", err)
	}
	w.Abort()
	if _, err := w.Write([]byte("x")); err == nil {
		t.Error("Write after Commit succeeded")
	}
	w.Close()
	if body, _ := read(t, d, "b"); string(body) != "b" {
		t.Errorf("entry after Commit, Abort: %q", body)
	}

	// Commit after Abort fails; ReadAt works until Close.
	w, err = d.Create(tiertest.NewEntry("c", []byte("cc")))
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("cc"))
	w.Abort()
	if err := w.Commit(); err == nil {
		t.Error("Commit after Abort succeeded")
	}
	buf := make([]byte, 2)
	if n, err := w.ReadAt(buf, 0); n != 2 || err != nil || string(buf) != "cc" {
		t.Errorf("ReadAt after Abort: %d %v %q", n, err, buf)
	}
	w.Close()
	absent(t, d, "c")
	if st := d.Stats(); st.Entries != 1 || st.WriteErrors != 0 {
		t.Errorf("Stats: %+v", st)
	}
}

func TestStoreBodyError(t *testing.T) {
	dir := t.TempDir()
	d := testDisk(t, Config{Dir: dir}, nil)
	broken := errors.New("connection reset")
	r := io.MultiReader(bytes.NewReader([]byte("half")), iotestErr{broken})
	err := d.Store(tiertest.NewEntry("k", []byte("halfhalf")), r)
	if !errors.Is(err, broken) || !strings.Contains(err.Error(), `disk: store "k"`) {
		t.Errorf("Store with a failing body: %v", err)
	}
	if fs := files(t, dir); len(fs) != 0 {
		t.Errorf("files left: %v", fs)
	}
	if st := d.Stats(); st.WriteErrors != 0 {
		t.Errorf("a failing body counted as a write error: %+v", st)
	}
}

// iotestErr is a reader that fails with its error.
type iotestErr struct{ err error }

func (r iotestErr) Read([]byte) (int, error) { return 0, r.err }
