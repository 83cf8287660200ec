package origin

import (
	"mime"
	"strings"
	"testing"
)

func TestContentType(t *testing.T) {
	for _, tc := range []struct{ key, want string }{
		{"media_attachments/files/000/000/001/original/0123456789abcdef.jpg", "image/jpeg"},
		{"a/b.JPG", "image/jpeg"},
		{"a/b.Jpeg", "image/jpeg"},
		{"x.png", "image/png"},
		{"x.gif", "image/gif"},
		{"x.webp", "image/webp"},
		{"cache/media_attachments/files/1/original/x.mp4", "video/mp4"},
		{"x.webm", "video/webm"},
		{"x.mp3", "audio/mpeg"},
		{"x.ogg", "audio/ogg"},
		{"imports/000/000/001/data.csv", "text/csv; charset=utf-8"},
		{"backups/dumps/000/000/001/original/archive.zip", "application/zip"},
		{"archive.tar.gz", "application/gzip"},
		{"custom_emojis/images/000/000/007/static/émoji with space.webp", "image/webp"},
		{"no-extension", DefaultContentType},
		{"x.unknown", DefaultContentType},
		{"trailing.", DefaultContentType},
		{"dir.jpg/file", DefaultContentType},
		{".jpg", "image/jpeg"},
		{"", DefaultContentType},
	} {
		if got := ContentType(tc.key); got != tc.want {
			t.Errorf("ContentType(%q) = %q, want %q", tc.key, got, tc.want)
		}
	}
}

// TestContentTypesTable checks the table itself: lower-case extensions (the lookup lowers the
// key's) and media types that parse.
func TestContentTypesTable(t *testing.T) {
	for ext, typ := range contentTypes {
		if !strings.HasPrefix(ext, ".") || ext != strings.ToLower(ext) {
			t.Errorf("extension %q: want a dot and lower case", ext)
		}
		if _, _, err := mime.ParseMediaType(typ); err != nil {
			t.Errorf("%s: media type %q does not parse: %v", ext, typ, err)
		}
	}
	if _, _, err := mime.ParseMediaType(DefaultContentType); err != nil {
		t.Errorf("DefaultContentType %q does not parse: %v", DefaultContentType, err)
	}
}
