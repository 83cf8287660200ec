package disk

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/fedicache/fedicache/cache"
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

// FuzzHeaderJSON checks that the header encodePrefix writes is byte for byte what json.Marshal
// makes of it (the encoding of files before appendHeader), whatever the strings and the times,
// and that encodePrefix fails where json.Marshal does.
func FuzzHeaderJSON(f *testing.F) {
	f.Add("media_attachments/files/000/000/001/original/0123456789abcdef.jpg", "image/jpeg", `"d41d8cd98f00b204e9800998ecf8427e"`,
		int64(40_000), int64(1748779200), int64(0), 0)
	f.Add("a", "", "", int64(0), int64(0), int64(0), 3600) // the zero time
	f.Add(`k"\<>&`, "text/html; charset=utf-8", "W/\"x\"", int64(1), int64(1), int64(999999999), -34200)
	f.Add("caf\u00e9\u2028\x7f\x00\t\n", "\xff", "\u00e9", int64(-1), int64(253402300800), int64(5), 86399) // year 10000
	f.Add("k", "t", "e", int64(9e18), int64(-62135596801), int64(1), -59)                                   // year 0
	f.Fuzz(func(t *testing.T, key, ctype, etag string, size, sec, nsec int64, zone int) {
		at := func(sec, nsec int64) time.Time {
			if sec == 0 && nsec == 0 {
				return time.Time{}
			}
			return time.Unix(sec, nsec).In(time.FixedZone("", zone%(100*3600)))
		}
		h := header{Key: key, Size: size, ContentType: ctype, ETag: etag, LastModified: at(sec, nsec), StoredAt: at(nsec, sec)}
		want, wantErr := json.Marshal(h)
		var e cache.Entry
		e.Key, e.Meta.Size, e.Meta.ContentType, e.Meta.ETag = h.Key, h.Size, h.ContentType, h.ETag
		e.Meta.LastModified, e.StoredAt = h.LastModified, h.StoredAt
		got, err := encodePrefix(e)
		switch {
		case wantErr != nil:
			if err == nil {
				t.Fatalf("encodePrefix of %+v succeeded, json.Marshal failed: %v", h, wantErr)
			}
		case len(want) > maxHeaderLen:
			if err == nil {
				t.Fatalf("encodePrefix of a header of %d bytes succeeded", len(want))
			}
		case err != nil:
			t.Fatalf("encodePrefix of %+v: %v", h, err)
		case string(got[prefixLen:]) != string(want):
			t.Fatalf("encodePrefix of %+v wrote\n%s\njson.Marshal\n%s", h, got[prefixLen:], want)
		case int(binary.BigEndian.Uint32(got[offHeaderLen:])) != len(want):
			t.Fatalf("header length %d, want %d", binary.BigEndian.Uint32(got[offHeaderLen:]), len(want))
		}
		// json.Marshal is left only what appendHeader does not encode itself.
		if _, ok := appendHeader(nil, &h); !ok && wantErr == nil && plain(key) && plain(ctype) && plain(etag) {
			t.Fatalf("appendHeader left %+v to json.Marshal", h)
		}
	})
}

// plain reports whether s is printable ASCII without '<', '>' and '&'.
func plain(s string) bool {
	for i := range len(s) {
		if c := s[i]; c < 0x20 || c >= 0x80 || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}
