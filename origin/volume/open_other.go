//go:build !unix

package volume

import "os"

// openFlags opens files for reading.
const openFlags = os.O_RDONLY
