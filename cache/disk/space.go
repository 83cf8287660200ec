package disk

import (
	"errors"
	"fmt"
	"time"
)

// Lock order: roomFor takes Disk.mu alone, to evict; the figure of the free space it keeps
// (Disk.spaceFig, Disk.spent) is atomic and takes no lock.

// ErrNoRoom means that the file system holding the cache has not the free space an entry needs,
// even once the cache's least recently used entries are gone: cache.disk.max_bytes is more than
// the disk holds.
var ErrNoRoom = errors.New("disk: not enough free space on the file system for the entry")

// spaceReserveMax bounds the free space the tier leaves to others on its file system (the
// spool folder, logs): the lesser of this and a twentieth of the file system.
const spaceReserveMax = 16 << 20

// The free space is not read (statfs) on every Create, which cost a system call per stored
// object, but kept as a spaceFigure and read again when the figure is spaceRefreshEvery old,
// when the entries committed since it was read take half the reserve, when the figure says the
// space is short, and after a write found the disk full. A figure is only ever used to let an
// entry in without a look at the disk; every refusal and every eviction for want of space is
// decided on a figure read then, as before the figure was kept. Letting in is safe because the
// figure is made pessimistic: the entries committed since it was read are taken from it
// (spaceBlock-rounded, plus a block for their metadata, and whether or not the figure already
// saw part of them), and nothing that was freed since (evictions, aborted writers) is added
// back. What it cannot see is the space others took since (logs, another process): the reserve
// covers them, for at most spaceRefreshEvery, as it covers whatever they take between a read
// and the writes that follow it. A write that meets a full disk anyway turns writes off as
// before (see writesoff.go) and drops the figure.
const (
	spaceRefreshEvery = time.Second
	// spaceBlock is the unit in which file systems allocate: 4 KiB on ext4, XFS and tmpfs.
	spaceBlock = 4 << 10
)

// spaceFigure is one reading of the file system's free space (see fsSpace).
type spaceFigure struct {
	free, size int64
	ok         bool
	at         time.Time // when it was read (d.now)
	spentAt    int64     // Disk.spent just before it was read
}

// onDisk returns what an entry of total bytes is taken to use on the disk: its blocks, and one
// more for its inode, its name in a directory, or a new hash directory.
func onDisk(total int64) int64 { return (total+spaceBlock-1)/spaceBlock*spaceBlock + spaceBlock }

// reserve returns the free space the tier leaves to others on a file system of size bytes.
func reserve(size int64) int64 { return min(spaceReserveMax, size/20) }

// roomFor makes room for a new entry of total bytes within what the file system has free, less
// a reserve and less what the writers under way have claimed: it evicts least recently used
// entries when the space is short, and fails with ErrNoRoom when even that would not do, saying
// so once in the log. On success the bytes are claimed until the writer commits or aborts.
func (d *Disk) roomFor(key string, total int64) error {
	now := d.now()
	if d.spaceAmple(now, total) {
		d.pending.Add(total)
		return nil
	}
	spentAt := d.spent.Load()
	free, size, ok := d.space(d.dir)
	d.spaceFig.Store(&spaceFigure{free: free, size: size, ok: ok, at: now, spentAt: spentAt})
	if !ok {
		d.pending.Add(total)
		return nil
	}
	need := total + reserve(size) + d.pending.Load() - free
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

// spaceAmple reports whether the last figure of the free space, taken as described above, lets
// an entry of total bytes in without a new reading.
func (d *Disk) spaceAmple(now time.Time, total int64) bool {
	fig := d.spaceFig.Load()
	if fig == nil {
		return false
	}
	if age := now.Sub(fig.at); age < 0 || age >= spaceRefreshEvery {
		return false
	}
	if !fig.ok {
		return true // nothing to read: the tier keeps within MaxBytes only
	}
	res := reserve(fig.size)
	spent := d.spent.Load() - fig.spentAt
	if spent > res/2 {
		return false
	}
	return onDisk(total)+res+d.pending.Load()-(fig.free-spent) <= 0
}

// committed counts the bytes of an entry just committed against the figure of the free space.
func (d *Disk) committed(total int64) { d.spent.Add(onDisk(total)) }

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
