package proxy

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestKeyMapping(t *testing.T) {
	m := newKeyMapper([]string{"/my-bucket/", "system"}, []string{"backups/", "imports/"})
	long := strings.Repeat("a", MaxKeyBytes)
	tests := []struct {
		target string
		want   string
		err    error
	}{
		{"/media_attachments/files/000/000/001/original/0123456789abcdef.jpg", "media_attachments/files/000/000/001/original/0123456789abcdef.jpg", nil},
		{"/my-bucket/accounts/avatars/a.png", "accounts/avatars/a.png", nil},
		{"/system/accounts/avatars/a.png", "accounts/avatars/a.png", nil},
		{"/system/my-bucket/a.png", "my-bucket/a.png", nil}, // only the first matching prefix
		{"/my-bucketx/a.png", "my-bucketx/a.png", nil},      // prefixes match whole segments
		{"/a.png?1612345678", "a.png", nil},
		{"/a.png?x=%2e%2e/", "a.png", nil},
		{"/with%20space/%C3%A9.png", "with space/é.png", nil},
		{"/a+b.png", "a+b.png", nil},
		{"/%2541.png", "%41.png", nil}, // decoded once, not twice
		{"http://media.example/a.png", "a.png", nil},
		{"/" + long, long, nil},

		{"/", "", errNoKey},
		{"/?max-keys=1&x-random=42", "", errNoKey},
		{"/my-bucket", "", errNoKey},
		{"/my-bucket/", "", errNoKey},
		{"/my-bucket/?max-keys=1", "", errNoKey},
		{"/accounts/", "", errNoKey},
		{"/accounts%2f", "", errNoKey},

		{"/backups/dumps/1/x.zip", "", errDenied},
		{"/system/imports/x.csv", "", errDenied},

		{"/../etc/passwd", "", errBadKey},
		{"/%2e%2e/etc/passwd", "", errBadKey},
		{"/%2e%2e%2fetc/passwd", "", errBadKey},
		{"/..%2fetc/passwd", "", errBadKey},
		{"/a/./b", "", errBadKey},
		{"/a/%2E/b", "", errBadKey},
		{"/a%5c..%5cb", "", errBadKey},
		{"/a\\b", "", errBadKey},
		{"/a%00.png", "", errBadKey},
		{"/a%0a.png", "", errBadKey},
		{"/a%7f.png", "", errBadKey},
		{"/%c0%ae%c0%ae/etc/passwd", "", errBadKey},
		{"/%ff.png", "", errBadKey},
		{"//etc/passwd", "", errBadKey},
		{"/a//b", "", errBadKey},
		{"/a%2f%2fb", "", errBadKey},
		{"/a%zz", "", errBadKey},
		{"/a%4", "", errBadKey},
		{"/" + long + "b", "", errBadKey},
		{"a.png", "", errBadKey},
		{"*", "", errBadKey},
	}
	for _, tt := range tests {
		got, err := m.key([]byte(tt.target))
		if got != tt.want || !errors.Is(err, tt.err) {
			t.Errorf("key(%q) = %q, %v; want %q, %v", tt.target, got, err, tt.want, tt.err)
		}
	}
}

// FuzzKey checks that every key the mapper accepts satisfies the validation rules, whatever
// the request target.
func FuzzKey(f *testing.F) {
	m := newKeyMapper([]string{"/system"}, []string{"backups/"})
	f.Fuzz(func(t *testing.T, target string) {
		key, err := m.key([]byte(target))
		if err != nil {
			if key != "" {
				t.Fatalf("key(%q) returned %q with error %v", target, key, err)
			}
			return
		}
		if key == "" || len(key) > MaxKeyBytes || !utf8.ValidString(key) {
			t.Fatalf("key(%q) = %q: empty, too long or not UTF-8", target, key)
		}
		if strings.ContainsAny(key, "\\\x00") || strings.HasPrefix(key, "/") || strings.HasSuffix(key, "/") {
			t.Fatalf("key(%q) = %q: backslash, NUL or slash at an end", target, key)
		}
		for _, c := range []byte(key) {
			if c < 0x20 || c == 0x7f {
				t.Fatalf("key(%q) = %q: control byte", target, key)
			}
		}
		for seg := range strings.SplitSeq(key, "/") {
			if seg == "" || seg == "." || seg == ".." {
				t.Fatalf("key(%q) = %q: segment %q", target, key, seg)
			}
		}
		if strings.HasPrefix(key, "backups/") {
			t.Fatalf("key(%q) = %q: a denied prefix", target, key)
		}
	})
}
