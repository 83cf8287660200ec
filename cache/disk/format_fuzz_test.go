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
// holds after the header. The check of the checksum of what it accepts must not panic either,
// and may only refuse it as corrupt. An entry written as the Writer writes it must read back as
// written and pass the check; with one byte of its body altered, it must fail the check.
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
			if err := checkSum(file, info.Size(), nil); err != nil && !errors.Is(err, errCorrupt) {
				t.Fatalf("checkSum of an entry of %q: %v, not marked corrupt", key, err)
			}
			return true, bodyOff, e.Meta.Size, e.Key
		}
		check(content, key)
		check(content, "")

		// What the writer writes reads back.
		if key == "" || !utf8.ValidString(key) {
			return // keys the front never makes: empty, or not UTF-8 (JSON would alter them)
		}
		whole, err := entryFile(tiertest.NewEntry(key, content), content)
		if err != nil {
			return // a key too long for the header
		}
		ok, bodyOff, size, gotKey := check(whole, key)
		if !ok || bodyOff != int64(len(whole)-len(content)) || size != int64(len(content)) || gotKey != key {
			t.Fatalf("an entry of %q with a %d-byte body read back as %v, body at %d of %d bytes", key, len(content), ok, bodyOff, size)
		}
		if err := sumOf(t, p); err != nil {
			t.Fatalf("checkSum of an entry of %q as written: %v", key, err)
		}
		if len(content) > 0 {
			whole[len(whole)-1-len(content)/2] ^= 0x20 // a bit of the body, as a lost write leaves it
			check(whole, key)
			if err := sumOf(t, p); !errors.Is(err, errCorrupt) {
				t.Fatalf("checkSum of an entry of %q with a byte of its body altered: %v, want corrupt", key, err)
			}
		}
	})
}

// sumOf checks the checksum of the entry's file at p.
func sumOf(t *testing.T, p string) error {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return checkSum(f, info.Size(), nil)
}
