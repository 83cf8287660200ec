package disk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/fedicache/fedicache/cache"
)

// Writer streams one entry into the cache: a temporary file that Commit renames into place.
//
// Lifecycle: Create, then Write the body (from one goroutine), then Commit to keep the entry or
// Abort to drop it, then Close. ReadAt may be called from any goroutine from Create until
// Close, also after Commit or Abort, so that readers served from a fill in progress read its
// bytes from the file while it is written. Commit and Abort are idempotent, and Abort after a
// successful Commit does nothing; Close without Commit aborts. Close releases the file, so
// every Writer must be closed.
//
// Lock order: Writer.mu, then Disk.mu (Commit holds both).
type Writer struct {
	d       *Disk
	e       cache.Entry
	f       *os.File
	tmp     string
	name    string // the name of the entry's file (see hashName)
	bodyOff int64
	// written counts the body bytes written; ReadAt reads no further.
	written atomic.Int64

	// mu serialises Write, Commit, Abort and Close, and guards what follows.
	mu      sync.Mutex
	state   writerState
	closed  bool
	err     error  // the first failed write, which dooms the entry
	claimed int64  // free space claimed by roomFor, given back at commit or abort
	sum     uint32 // the checksum of the header's length, the header and the body so far
	// prefix is the prefix and header of the file, written at Commit with the checksum in its
	// slot; until then the body is written at bodyOff and the file begins with a hole.
	prefix []byte
}

// writerState is where a Writer is in its lifecycle.
type writerState int

const (
	writing writerState = iota
	committed
	aborted
)

// errAborted is returned by Write and Commit after Abort.
var errAborted = errors.New("aborted")

// Create starts writing entry e, whose body has e.Meta.Size bytes, to a temporary file. It
// fails fast with ErrDisabled while writes are off (see Config.RetryAfter) and with ErrTooLarge
// for an entry larger than the cache; a caller treats any error as "don't cache".
func (d *Disk) Create(e cache.Entry) (*Writer, error) {
	if d.writesOff() {
		return nil, fmt.Errorf("disk: create %q: %w", e.Key, ErrDisabled)
	}
	if e.Meta.Size < 0 {
		return nil, fmt.Errorf("disk: create %q: negative size %d", e.Key, e.Meta.Size)
	}
	prefix, err := encodePrefix(e)
	if err != nil {
		return nil, fmt.Errorf("disk: create %q: %w", e.Key, err)
	}
	if total := int64(len(prefix)) + e.Meta.Size; total > d.maxBytes || total < 0 {
		return nil, fmt.Errorf("disk: create %q: %d bytes: %w of %d bytes", e.Key, total, ErrTooLarge, d.maxBytes)
	}
	total := int64(len(prefix)) + e.Meta.Size
	if err := d.roomFor(e.Key, total); err != nil {
		return nil, err
	}
	f, err := d.createTemp(d.tmp, "w-*")
	if err != nil {
		d.pending.Add(-total)
		d.writeFailed("create", e.Key, err)
		return nil, fmt.Errorf("disk: create %q: %w", e.Key, err)
	}
	// The prefix is written at Commit, with the checksum: one write fewer than writing it now
	// and its checksum's slot then.
	return &Writer{d: d, e: e, f: f, tmp: f.Name(), name: hashName(e.Key), bodyOff: int64(len(prefix)),
		claimed: total, sum: checksumStart(prefix), prefix: prefix}, nil
}

// Store writes entry e with the body read from body: Create, copy, Commit and Close, for
// callers that need not read the entry while it is written.
func (d *Disk) Store(e cache.Entry, body io.Reader) error {
	w, err := d.Create(e)
	if err != nil {
		return err
	}
	defer w.Close()
	src := &sourceReader{r: body}
	if _, err := io.Copy(w, src); err != nil {
		w.Abort()
		if src.err != nil {
			return fmt.Errorf("disk: store %q: reading the body: %w", e.Key, err)
		}
		return err
	}
	return w.Commit()
}

// sourceReader remembers whether its reader failed, to tell the body's errors from the disk's.
type sourceReader struct {
	r   io.Reader
	err error
}

// Read reads from the reader.
func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		s.err = err
	}
	return n, err
}

// Write appends p to the body. Bytes beyond e.Meta.Size are refused.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.state != writing:
		return 0, fmt.Errorf("disk: write %q: %w", w.e.Key, w.stateErr())
	case w.err != nil:
		return 0, fmt.Errorf("disk: write %q: %w", w.e.Key, w.err)
	}
	have := w.written.Load()
	if int64(len(p)) > w.e.Meta.Size-have {
		w.err = fmt.Errorf("body longer than the %d bytes of its metadata", w.e.Meta.Size)
		return 0, fmt.Errorf("disk: write %q: %w", w.e.Key, w.err)
	}
	n, err := w.f.WriteAt(p, w.bodyOff+have)
	w.sum = crc32.Update(w.sum, crcTable, p[:n])
	w.written.Add(int64(n))
	if err != nil {
		w.err = err
		w.d.writeFailed("write", w.e.Key, err)
		return n, fmt.Errorf("disk: write %q: %w", w.e.Key, err)
	}
	return n, nil
}

// Written returns how many body bytes have been written so far.
func (w *Writer) Written() int64 { return w.written.Load() }

// ReadAt reads body bytes at offset off (relative to the body) among those written so far. When
// fewer than len(p) bytes are there yet it returns them with io.EOF, as at the end of a file:
// whether more will come is the fill's business (see Written). It may be called concurrently
// with Write and with other ReadAt calls, until Close.
func (w *Writer) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("disk: read %q: negative offset %d", w.e.Key, off)
	}
	avail := w.written.Load() - off
	if avail <= 0 {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	short := int64(len(p)) > avail
	if short {
		p = p[:avail]
	}
	n, err := w.f.ReadAt(p, w.bodyOff+off)
	if err != nil {
		return n, fmt.Errorf("disk: read %q: %w", w.e.Key, err)
	}
	if short {
		return n, io.EOF
	}
	return n, nil
}

// Reopen opens the entry's file once more, read-only, for a reader that sends the body by
// sendfile from a file offset of its own: the body starts at bodyOff in it, and bytes beyond
// Written are not there yet. It is the same file whatever renames or removes it meanwhile (it
// is opened through /proc/self/fd); the caller closes it. Where /proc is not mounted it fails,
// and the reader uses ReadAt.
func (w *Writer) Reopen() (f *os.File, bodyOff int64, err error) {
	sc, err := w.f.SyscallConn()
	if err != nil {
		return nil, 0, err
	}
	var path string
	if err := sc.Control(func(fd uintptr) { path = "/proc/self/fd/" + strconv.FormatUint(uint64(fd), 10) }); err != nil {
		return nil, 0, err
	}
	f, err = os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	return f, w.bodyOff, nil
}

// Commit keeps the entry: it checks that the body has e.Meta.Size bytes, writes the prefix with
// the checksum, renames the file into place (replacing an older version of the key), indexes
// it as the most recently used entry and evicts least recently used entries until the cache
// fits MaxBytes. It does not flush the file to the disk (see clean.go), but after Close and
// where the system has no syncfs. On any failure the entry is dropped and the error returned. A
// second Commit returns what the first did, nil when it kept the entry.
func (w *Writer) Commit() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch w.state {
	case committed:
		return nil
	case aborted:
		return fmt.Errorf("disk: commit %q: %w", w.e.Key, w.stateErr())
	}
	key := w.e.Key
	if w.err != nil {
		w.abortLocked(w.err)
		return fmt.Errorf("disk: commit %q: %w", key, w.err)
	}
	if n := w.written.Load(); n != w.e.Meta.Size {
		err := fmt.Errorf("body of %d bytes, want %d", n, w.e.Meta.Size)
		w.abortLocked(err)
		return fmt.Errorf("disk: commit %q: %w", key, err)
	}
	binary.BigEndian.PutUint32(w.prefix[offChecksum:], w.sum)
	if _, err := w.f.WriteAt(w.prefix, 0); err != nil {
		return w.failLocked(err)
	}
	d := w.d
	flushed := d.flushEach
	if flushed {
		if err := w.f.Sync(); err != nil {
			return w.failLocked(err)
		}
	}
	if err := d.dirs.makeHashDir(d.dir, w.name); err != nil {
		return w.failLocked(err)
	}
	p := filePath(d.dir, w.name)
	now := minutes(d.now())
	d.mu.Lock()
	if d.closed && !flushed {
		// Close may have flushed the file system and marked it clean: an entry committed now
		// must be on the disk before its name is.
		d.mu.Unlock()
		if err := w.f.Sync(); err != nil {
			return w.failLocked(err)
		}
		d.mu.Lock()
	}
	err := rename(w.tmp, p)
	if errors.Is(err, fs.ErrNotExist) {
		// The hash directory was known to exist but was removed behind the tier's back.
		if err = os.MkdirAll(filepath.Dir(p), 0o750); err == nil {
			err = rename(w.tmp, p)
		}
	}
	if err != nil {
		d.mu.Unlock()
		return w.failLocked(err)
	}
	d.idx.pushFront(key, w.bodyOff+w.e.Meta.Size, now)
	d.evictLocked(0)
	d.mu.Unlock()
	w.state = committed
	d.committed(w.claimed) // before the claim is given back: the bytes are always counted
	w.unclaimLocked()      // the file's bytes are now the index's
	d.writeSucceeded()
	return nil
}

// failLocked counts err, a failure of the disk during Commit, drops the entry and returns err
// wrapped. w.mu is held.
func (w *Writer) failLocked(err error) error {
	w.d.writeFailed("commit", w.e.Key, err)
	w.abortLocked(err)
	return fmt.Errorf("disk: commit %q: %w", w.e.Key, err)
}

// Abort drops the entry: it removes the temporary file. ReadAt keeps reading what was written
// until Close. Abort after Commit does nothing.
func (w *Writer) Abort() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.state == writing {
		w.abortLocked(errAborted)
	}
}

// abortLocked removes the temporary file and records why the entry was dropped. w.mu is held.
func (w *Writer) abortLocked(why error) {
	w.state = aborted
	w.unclaimLocked()
	if w.err == nil {
		w.err = why
	}
	if err := os.Remove(w.tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		w.d.log.Warn("disk cache: cannot remove a temporary file", "file", w.tmp, "err", err)
	}
}

// unclaimLocked gives back the free space roomFor claimed for the writer. w.mu is held.
func (w *Writer) unclaimLocked() {
	w.d.pending.Add(-w.claimed)
	w.claimed = 0
}

// stateErr says why a Writer that is no longer writing refuses.
func (w *Writer) stateErr() error {
	if w.state == committed {
		return errors.New("already committed")
	}
	if w.err != nil && !errors.Is(w.err, errAborted) {
		return fmt.Errorf("%w: %w", errAborted, w.err)
	}
	return errAborted
}

// Close releases the file, aborting the entry first unless it was committed. Close is
// idempotent; ReadAt fails after it.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	if w.state == writing {
		w.abortLocked(errAborted)
	}
	w.closed = true
	return w.f.Close()
}
