package disk

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// The mark of a clean shutdown. No entry is flushed to the disk when it is committed (see
// format.go): after a process crash the kernel still writes what the page cache holds, and a
// node failure takes the whole directory (a Kubernetes emptyDir) away. What may lose writes is
// the machine stopping with the directory kept (a power loss); the entries it leaves are whole
// or detected by their length and checksum. The protocol:
//
//   - Close, once the background work has stopped, flushes the file system of the directory
//     (syncfs on Linux) and then writes the file markerName in the directory.
//   - Open removes that file, and flushes the directory so that the removal is on the disk
//     before any entry written after it. A crash, a killed process or a power loss therefore
//     leaves no mark.
//   - Open finding the mark trusts every entry: nothing is re-read. Finding none, it marks every
//     entry it finds in the directory unverified (see verify.go).
//
// Close writes no mark while entries are left unverified (it stopped the rebuild or the
// background pass): the next start verifies them. A Writer that commits after Close flushes its
// file before renaming it, as the mark promises.
const markerName = "clean"

// markerText is what the mark holds, for whoever looks into the directory.
const markerText = "fedicache: the disk cache was closed cleanly; its entries are trusted as they are.\n"

// takeMarker removes the mark from dir, flushes the removal to the disk, and reports whether
// the mark was there. On an error (the mark could not be removed, or its removal not flushed)
// the Disk writes no mark at Close: a crash could leave the old one in place.
func takeMarker(dir string) (clean bool, err error) {
	p := filepath.Join(dir, markerName)
	switch err := os.Remove(p); {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("removing the clean-shutdown mark: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return true, fmt.Errorf("flushing the removal of the clean-shutdown mark: %w", err)
	}
	return true, nil
}

// Close stops the rebuild and the verification, if they still run, and waits for them and for
// the mtime touches under way; then it flushes the file system and marks the shutdown clean
// (see above). Entries and Writers stay usable; Close is for shutdown. Close is idempotent.
func (d *Disk) Close() error {
	if !d.stopWork() {
		return nil
	}
	return d.markClean()
}

// stopWork stops the background work and waits for it. It reports whether this call stopped it.
func (d *Disk) stopWork() bool {
	d.mu.Lock()
	first := !d.closed
	if first {
		d.closed = true
		close(d.stop)
	}
	d.mu.Unlock()
	d.wg.Wait()
	return first
}

// markClean is the end of Close: it flushes the file system of the directory and writes the
// mark, unless entries are left unverified or the mark could not be taken at Open.
func (d *Disk) markClean() error {
	d.mu.Lock()
	pending := d.idx.unverifiedLen()
	d.mu.Unlock()
	switch {
	case d.noMarker:
		return nil
	case d.unclean && (!d.ready.Load() || pending > 0):
		d.log.Info("disk cache: closed before every entry was verified; the next start verifies them",
			"dir", d.dir, "unverified", pending, "rebuilt", d.ready.Load())
		return nil
	}
	if err := syncFS(d.dir); err != nil {
		d.log.Warn("disk cache: cannot flush the file system at close; the next start verifies the entries",
			"dir", d.dir, "err", err)
		return fmt.Errorf("disk: close: %w", err)
	}
	p := filepath.Join(d.dir, markerName)
	if err := os.WriteFile(p, []byte(markerText), 0o600); err != nil {
		d.log.Warn("disk cache: cannot write the clean-shutdown mark; the next start verifies the entries",
			"dir", d.dir, "err", err)
		return fmt.Errorf("disk: close: %w", err)
	}
	// Best effort: a mark lost with a power loss only makes the next start verify the entries.
	_ = syncDir(d.dir)
	return nil
}

// syncDir flushes the directory dir (the names in it) to the disk.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
