//go:build unix

package disk

import "syscall"

// fsSpace returns the bytes free for an unprivileged writer on the file system holding dir, and
// its size; ok is false when they cannot be read.
func fsSpace(dir string) (free, size int64, ok bool) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, 0, false
	}
	return int64(st.Bavail) * int64(st.Bsize), int64(st.Blocks) * int64(st.Bsize), true
}
