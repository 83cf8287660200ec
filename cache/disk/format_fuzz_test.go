package disk

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"

	"github.com/fedicache/fedicache/cache/tiertest"
)

// FuzzDiskEntry feeds arbitrary file contents to the decoder of entry files, filed under the
// name of key (or checked against its own name when key is empty). Whatever the bytes, it must
// not panic; what it refuses must be marked corrupt (so that Open and the rebuild delete it);
// what it accepts must hold exactly the key asked for and a body whose size is what the file
// holds after the header. An entry written by encodePrefix must read back as written.
func FuzzDiskEntry(f *testing.F) {
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, content []byte, key string) {
		p := filepath.Join(dir, hashName(key))
		check := func(content []byte, key string) (ok bool, bodyOff int64, size int64, gotKey string) {
			t.Helper()
			if err := os.WriteFile(p, content, 0o600); err != nil {
				t.Fatal(err)
			}
			file, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			defer file.Close()
			e, bodyOff, info, err := readEntry(file, key)
			if err != nil {
				if !errors.Is(err, errCorrupt) {
					t.Fatalf("readEntry(%q) of %d bytes: %v, not marked corrupt", key, len(content), err)
				}
				return false, 0, 0, ""
			}
			switch {
			case key != "" && e.Key != key:
				t.Fatalf("readEntry(%q) accepted an entry of key %q", key, e.Key)
			case key == "" && hashName(e.Key) != info.Name():
				t.Fatalf("readEntry accepted key %q, whose file is not %s", e.Key, info.Name())
			case e.Meta.Size < 0 || bodyOff < prefixLen || bodyOff > prefixLen+maxHeaderLen:
				t.Fatalf("readEntry(%q): size %d, body at %d", key, e.Meta.Size, bodyOff)
			case info.Size() != int64(len(content)) || bodyOff+e.Meta.Size != int64(len(content)):
				t.Fatalf("readEntry(%q): a body of %d bytes at %d in a file of %d", key, e.Meta.Size, bodyOff, len(content))
			case string(content[:4]) != magic:
				t.Fatalf("readEntry(%q) accepted magic %q", key, content[:4])
			}
			return true, bodyOff, e.Meta.Size, e.Key
		}
		check(content, key)
		check(content, "")

		// What the writer writes reads back.
		if key == "" || !utf8.ValidString(key) {
			return // keys the front never makes: empty, or not UTF-8 (JSON would alter them)
		}
		e := tiertest.NewEntry(key, content)
		prefix, err := encodePrefix(e)
		if err != nil {
			return // a key too long for the header
		}
		ok, bodyOff, size, gotKey := check(append(prefix, content...), key)
		if !ok || bodyOff != int64(len(prefix)) || size != int64(len(content)) || gotKey != key {
			t.Fatalf("an entry of %q with a %d-byte body read back as %v, body at %d of %d bytes", key, len(content), ok, bodyOff, size)
		}
	})
}
