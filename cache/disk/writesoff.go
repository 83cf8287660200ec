package disk

import (
	"errors"
	"io/fs"
	"syscall"
)

// writesOffError reports whether err says that the disk takes no writes for now: it is full,
// the quota is used up, it is mounted read-only, or the process may not write the directory.
// Such errors turn writes off for Config.RetryAfter instead of failing every fill.
func writesOffError(err error) bool {
	return errors.Is(err, syscall.ENOSPC) ||
		errors.Is(err, syscall.EDQUOT) ||
		errors.Is(err, syscall.EROFS) ||
		errors.Is(err, fs.ErrPermission) // EACCES, EPERM
}

// writesOff reports whether writes are off now.
func (d *Disk) writesOff() bool {
	until := d.offUntil.Load()
	return until != 0 && d.now().UnixNano() < until
}

// writeFailed counts a failed write of op on key. When err says that the disk takes no
// writes, it turns writes off for RetryAfter, logging once when they were on; a retry that
// fails again turns them off again quietly.
func (d *Disk) writeFailed(op, key string, err error) {
	d.writeErrors.Add(1)
	if !writesOffError(err) {
		d.log.Warn("disk cache: write failed", "op", op, "key", key, "err", err)
		return
	}
	d.spaceFig.Store(nil) // the disk may be fuller than the figure says: read it again
	until := d.now().Add(d.retryAfter).UnixNano()
	if d.offUntil.Swap(until) == 0 {
		d.log.Warn("disk cache: writes off: the disk is full or read-only",
			"dir", d.dir, "retry_after", d.retryAfter, "op", op, "key", key, "err", err)
	}
}

// writeSucceeded turns writes back on after a write went through, logging the transition.
func (d *Disk) writeSucceeded() {
	if d.offUntil.Load() != 0 && d.offUntil.Swap(0) != 0 {
		d.log.Info("disk cache: writes on again", "dir", d.dir)
	}
}
