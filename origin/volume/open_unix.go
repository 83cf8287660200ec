//go:build unix

package volume

import (
	"os"
	"syscall"
)

// openFlags opens files for reading without blocking: should a FIFO replace a file between the
// look at its type and the open, the open returns at once instead of waiting for a writer. The
// flag has no effect on reads of regular files.
const openFlags = os.O_RDONLY | syscall.O_NONBLOCK
