package disk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"sync"
	"time"
)

// An entry is unverified when its file was there at Open and the last shutdown was unclean (see
// clean.go): the disk may have lost some of its writes, which its length may not show. Such an
// entry is checked against its checksum before it is first served (Open), and the background
// pass, which follows the rebuild, checks the others one file at a time. A damaged entry is
// deleted and answered as not found, so that the cache fetches it again. Entries committed by
// this process are never unverified: their bytes are in the page cache that the kernel writes.

// errStopped is what checkSum returns when Close stopped it.
var errStopped = errors.New("stopped")

// sumBufPool holds the buffers checkSum reads files with.
var sumBufPool = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// checkSum reads the entry's file f, size bytes long (its header and length already checked by
// readEntry), from the checksum's slot to the end, and reports errCorrupt when the checksum
// does not match what follows it. It returns errStopped once stop is closed (nil: never).
func checkSum(f *os.File, size int64, stop <-chan struct{}) error {
	var slot [4]byte
	if _, err := f.ReadAt(slot[:], offChecksum); err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%w: %d bytes, shorter than the prefix", errCorrupt, size)
		}
		return err
	}
	bp := sumBufPool.Get().(*[]byte)
	defer sumBufPool.Put(bp)
	buf := *bp
	sum := uint32(0)
	for off := int64(offHeaderLen); off < size; {
		select {
		case <-stop:
			return errStopped
		default:
		}
		n, err := f.ReadAt(buf[:min(int64(len(buf)), size-off)], off)
		sum = crc32.Update(sum, crcTable, buf[:n])
		off += int64(n)
		if errors.Is(err, io.EOF) {
			if off < size {
				return fmt.Errorf("%w: %d bytes, shorter than its %d", errCorrupt, off, size)
			}
			break
		}
		if err != nil {
			return err
		}
	}
	if want := binary.BigEndian.Uint32(slot[:]); sum != want {
		return fmt.Errorf("%w: checksum %08x of the bytes, %08x in the prefix", errCorrupt, sum, want)
	}
	return nil
}

// Verification says how the check of the entries that an unclean shutdown left goes.
type Verification struct {
	// Unclean is true when Open found no mark of a clean shutdown: the entries found in the
	// directory were unverified.
	Unclean bool
	// Pending counts the indexed entries not verified yet (while the rebuild runs, the files
	// it has not reached are not counted).
	Pending int64
	// Verified counts the entries whose checksum matched; Failed those dropped because it did
	// not (also counted in cache.TierStats.Dropped).
	Verified, Failed uint64
	// Done is true once no entry is left to verify: the rebuild has finished, and every entry
	// it found is verified or gone.
	Done bool
}

// Verification returns the state of the check of the entries that an unclean shutdown left.
func (d *Disk) Verification() Verification {
	d.mu.Lock()
	pending := int64(d.idx.unverifiedLen())
	d.mu.Unlock()
	return Verification{
		Unclean:  d.unclean,
		Pending:  pending,
		Verified: d.verified.Load(),
		Failed:   d.verifyFailed.Load(),
		Done:     d.ready.Load() && pending == 0,
	}
}

// verifyOpen checks the unverified entry of key whose file f, opened at p as info, Open is about
// to serve. On success it records the entry as verified (when it is indexed; adopt does it for
// one that is not). A damaged file is dropped and an error wrapping errCorrupt returned.
func (d *Disk) verifyOpen(key, p string, f *os.File, info fs.FileInfo, indexed bool) error {
	if d.onVerify != nil {
		d.onVerify(key, false)
	}
	err := checkSum(f, info.Size(), nil)
	switch {
	case err == nil:
		if indexed {
			d.markVerified(key)
		}
		return nil
	case errors.Is(err, errCorrupt):
		d.verifyFailed.Add(1)
		d.drop(key, p, info, err)
	}
	return err
}

// markVerified records that key's entry, which its checksum showed whole, is verified.
func (d *Disk) markVerified(key string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.idx.setVerified(key) {
		d.verified.Add(1)
	}
}

// verifyAll is the background pass: it checks, one file at a time in the order of entries
// (most recently used first), those still unverified, and reports false when Close stopped it.
// Once every entry is checked, the index stops keeping the unverified set.
func (d *Disk) verifyAll(entries []found) bool {
	d.mu.Lock()
	pending := d.idx.unverifiedLen()
	d.mu.Unlock()
	if pending == 0 {
		d.finishVerification()
		return true
	}
	start, verified, failed := time.Now(), d.verified.Load(), d.verifyFailed.Load()
	d.log.Info("disk cache: the last shutdown was not clean; verifying the entries in the background "+
		"(each is also verified before it is first served)", "dir", d.dir, "entries", pending)
	for _, fd := range entries {
		if d.stopped() {
			return false
		}
		d.mu.Lock()
		todo := d.idx.isUnverified(fd.key)
		d.mu.Unlock()
		if !todo {
			continue // verified by a hit, replaced by a commit, deleted or evicted
		}
		if err := d.verifyOne(fd.key); errors.Is(err, errStopped) {
			return false
		}
	}
	d.finishVerification()
	d.log.Info("disk cache: entries verified", "dir", d.dir, "verified", d.verified.Load()-verified,
		"dropped", d.verifyFailed.Load()-failed, "took", time.Since(start).Round(time.Millisecond))
	return true
}

// verifyOne checks the unverified entry of key for the background pass. A damaged entry is
// dropped; one that cannot be read stays unverified, for Open to try again.
func (d *Disk) verifyOne(key string) error {
	if d.onVerify != nil {
		d.onVerify(key, true)
	}
	p := pathOf(d.dir, key)
	f, err := os.Open(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			d.forget(key, p)
		} else {
			d.log.Warn("disk cache: cannot verify an entry", "key", key, "err", err)
		}
		return err
	}
	defer f.Close()
	_, _, info, err := readEntry(f, key)
	if err == nil {
		err = checkSum(f, info.Size(), d.stop)
		if errors.Is(err, errCorrupt) {
			d.verifyFailed.Add(1)
		}
	}
	switch {
	case err == nil:
		d.markVerified(key)
	case errors.Is(err, errCorrupt):
		d.drop(key, p, info, err)
	case !errors.Is(err, errStopped):
		d.log.Warn("disk cache: cannot verify an entry", "key", key, "err", err)
	}
	return err
}

// finishVerification lets the index stop keeping the unverified set once it is empty (an
// entry that could not be read stays in it, for Open to verify).
func (d *Disk) finishVerification() {
	d.mu.Lock()
	if d.idx.unverifiedLen() == 0 {
		d.idx.dropUnverified()
	}
	d.mu.Unlock()
}
