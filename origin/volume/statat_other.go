//go:build !linux

package volume

import (
	"io/fs"
	"os"
)

// statIn is fstatat(2), which this system's walk does without: it reports errNoBeneath, and the
// walk resolves the key from the volume's directory instead.
func statIn(*os.File, string) (fs.FileInfo, error) { return nil, errNoBeneath }
