package disk

import (
	"errors"
	"fmt"
)

// ErrNoRoom means that the file system holding the cache has not the free space an entry needs,
// even once the cache's least recently used entries are gone: cache.disk.max_bytes is more than
// the disk holds.
var ErrNoRoom = errors.New("disk: not enough free space on the file system for the entry")

// spaceReserveMax bounds the free space the tier leaves to others on its file system (the
// spool folder, logs): the lesser of this and a twentieth of the file system.
const spaceReserveMax = 16 << 20

// roomFor makes room for a new entry of total bytes within what the file system has free, less
// a reserve and less what the writers under way have claimed: it evicts least recently used
// entries when the space is short, and fails with ErrNoRoom when even that would not do, saying
// so once in the log. On success the bytes are claimed until the writer commits or aborts.
func (d *Disk) roomFor(key string, total int64) error {
	free, size, ok := d.space(d.dir)
	if !ok {
		d.pending.Add(total)
		return nil
	}
	need := total + min(spaceReserveMax, size/20) + d.pending.Load() - free
	if need > 0 {
		d.mu.Lock()
		for freed := int64(0); freed < need; {
			n := d.idx.back()
			if n == nil {
				break
			}
			k := n.key // remove recycles the node
			freed += n.size
			d.idx.remove(n)
			d.purge.removed(k)
			d.removeFileLocked(k, pathOf(d.dir, k))
			d.evictions.Add(1)
			if freed >= need {
				need = 0
			}
		}
		d.mu.Unlock()
		if need > 0 {
			if d.lowSpace.CompareAndSwap(false, true) {
				d.log.Warn("disk cache: the file system has less free space than cache.disk.max_bytes allows; "+
					"the tier keeps within the free space (lower cache.disk.max_bytes to silence this)",
					"dir", d.dir, "free_bytes", free, "max_bytes", d.maxBytes, "key", key, "entry_bytes", total)
			}
			return fmt.Errorf("disk: create %q: %d bytes with %d free: %w", key, total, free, ErrNoRoom)
		}
	}
	d.pending.Add(total)
	return nil
}

// warnIfLarger says once, at start, when cache.disk.max_bytes is more than the file system
// could ever hold.
func (d *Disk) warnIfLarger() {
	free, size, ok := d.space(d.dir)
	if ok && d.maxBytes > size && d.lowSpace.CompareAndSwap(false, true) {
		d.log.Warn("disk cache: cache.disk.max_bytes is more than the file system holds; the tier keeps within "+
			"the free space (lower cache.disk.max_bytes to silence this)",
			"dir", d.dir, "max_bytes", d.maxBytes, "fs_bytes", size, "free_bytes", free)
	}
}

// evictLocked removes least recently used entries until the files take at most MaxBytes, or
// until it removed limit entries when limit > 0, and reports whether it is done. d.mu is held.
func (d *Disk) evictLocked(limit int) bool {
	for i := 0; d.idx.bytes > d.maxBytes; i++ {
		if limit > 0 && i == limit {
			return false
		}
		n := d.idx.back()
		if n == nil {
			break
		}
		key := n.key
		d.idx.remove(n)
		d.purge.removed(key)
		d.removeFileLocked(key, pathOf(d.dir, key))
		d.evictions.Add(1)
	}
	return true
}
