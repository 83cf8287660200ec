package volume

import (
	"io/fs"
	"strconv"
)

// etag returns the strong entity tag nginx gives a static file: its modification time in Unix
// seconds and its size, both in hexadecimal, e.g. `"5f5e1000-2a"`. Content under a Mastodon key
// never changes, so the tag stays the same for as long as the file does, and the bucket copy of
// a file can be compared with the file by size and time.
func etag(info fs.FileInfo) string {
	b := make([]byte, 0, 40)
	b = append(b, '"')
	b = strconv.AppendInt(b, info.ModTime().Unix(), 16)
	b = append(b, '-')
	b = strconv.AppendInt(b, info.Size(), 16)
	b = append(b, '"')
	return string(b)
}
