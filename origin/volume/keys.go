package volume

import (
	"io/fs"
	"strings"
)

// validKey reports whether key names a file beneath the volume's directory: a slash-separated
// relative path without empty, "." or ".." elements, backslashes or NUL bytes. The caller has
// validated keys already; this second look keeps a mistake there from reaching the filesystem.
func validKey(key string) bool {
	return key != "." && fs.ValidPath(key) && !strings.ContainsAny(key, "\\\x00")
}
