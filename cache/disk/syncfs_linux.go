//go:build linux

package disk

import (
	"os"

	"golang.org/x/sys/unix"
)

// flushEachCommit is false here: Close flushes the whole file system in one call (syncfs), so a
// commit needs no flush of its own (see clean.go).
const flushEachCommit = false

// syncFS flushes to the disk what the page cache holds of the file system holding dir.
func syncFS(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.Syncfs(int(f.Fd()))
}
