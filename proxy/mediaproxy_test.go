package proxy

import (
	"testing"
)

// TestMediaProxyTarget: the id and style of the keys Mastodon's MediaProxyController serves,
// read from the id partition as Paperclip writes it, and no target for anything else.
func TestMediaProxyTarget(t *testing.T) {
	for _, c := range []struct {
		key, id, style string
	}{
		// A snowflake id (18 digits, 6 groups), the original and the small style.
		{"cache/media_attachments/files/111/222/333/444/555/666/original/abcdef0123456789.png", "111222333444555666", "original"},
		{"cache/media_attachments/files/109/852/623/730/091/815/small/0123456789abcdef.jpg", "109852623730091815", "small"},
		// An id below a billion: 9 digits, zero-padded; the padding is dropped.
		{"cache/media_attachments/files/000/000/042/original/0123456789abcdef.mp4", "42", "original"},
		{"cache/media_attachments/files/000/001/234/small/0123456789abcdef.png", "1234", "small"},
		{"cache/media_attachments/files/999/999/999/original/0123456789abcdef.png", "999999999", "original"},
		// From a billion on: "%012d", padded to 12 digits in 4 groups.
		{"cache/media_attachments/files/001/000/000/000/original/0123456789abcdef.png", "1000000000", "original"},
		{"cache/media_attachments/files/123/456/789/012/original/0123456789abcdef.png", "123456789012", "original"},
		// 15 digits in 5 groups, no padding.
		{"cache/media_attachments/files/100/000/000/000/007/original/a.gif", "100000000000007", "original"},
		// Not served by the media proxy, or not Mastodon's shape:
		{"media_attachments/files/111/222/333/444/555/666/original/abcdef0123456789.png", "", ""},           // local media
		{"cache/media_attachments/thumbnails/111/222/333/444/555/666/original/abcdef.png", "", ""},          // a custom thumbnail
		{"cache/accounts/avatars/111/222/333/444/555/666/original/abcdef0123456789.png", "", ""},            // an avatar
		{"cache/accounts/headers/000/000/001/original/abcdef0123456789.png", "", ""},                        // a header
		{"cache/custom_emojis/images/000/000/007/static/abcdef0123456789.png", "", ""},                      // an emoji
		{"cache/preview_cards/images/000/000/007/original/abcdef0123456789.png", "", ""},                    // a preview card
		{"cache/media_attachments/files/111/222/333/444/555/666/static/abcdef0123456789.png", "", ""},       // no such style
		{"cache/media_attachments/files/111/222/333/444/555/666/original/", "", ""},                         // no file name
		{"cache/media_attachments/files/111/222/333/444/555/666/original/x/y.png", "", ""},                  // a path below the file
		{"cache/media_attachments/files/000/042/original/0123456789abcdef.png", "", ""},                     // 2 groups
		{"cache/media_attachments/files/11/222/333/original/0123456789abcdef.png", "", ""},                  // a group of 2 digits
		{"cache/media_attachments/files/1a1/222/333/original/0123456789abcdef.png", "", ""},                 // not digits
		{"cache/media_attachments/files/000/000/000/original/0123456789abcdef.png", "", ""},                 // id 0
		{"cache/media_attachments/files/000/000/004/200/original/0123456789abcdef.png", "", ""},             // below a billion in 4 groups
		{"cache/media_attachments/files/011/222/333/444/555/666/original/abcdef0123456789.png", "", ""},     // padded beyond 12 digits
		{"cache/media_attachments/files/111/222/333/444/555/666/777/original/abcdef0123456789.png", "", ""}, // 7 groups
	} {
		id, style, ok := mediaProxyTarget(c.key)
		if ok != (c.id != "") || id != c.id || style != c.style {
			t.Errorf("mediaProxyTarget(%q) = %q, %q, %v; want %q, %q", c.key, id, style, ok, c.id, c.style)
		}
	}
}

// TestSameHost: the Host a request arrived on is compared with the web domain without ports,
// a trailing dot or case.
func TestSameHost(t *testing.T) {
	for _, c := range []struct {
		host, domain string
		same         bool
	}{
		{"example.social", "example.social", true},
		{"Example.Social:443", "example.social", true},
		{"example.social.", "example.social:8443", true},
		{"media.example.social", "example.social", false},
		{"", "example.social", false},
	} {
		if got := sameHost([]byte(c.host), c.domain); got != c.same {
			t.Errorf("sameHost(%q, %q) = %v, want %v", c.host, c.domain, got, c.same)
		}
	}
}

// TestRewrittenHLS: the keys PeerTube rewrites in place under the same name, and those it
// never does.
func TestRewrittenHLS(t *testing.T) {
	for key, want := range map[string]bool{
		"streaming-playlists/hls/0b7e3b1c-9b8a-4f61-a7f1-3c1e5d4a2b10/master.m3u8":                                               true,
		"streaming-playlists/hls/0b7e3b1c-9b8a-4f61-a7f1-3c1e5d4a2b10/0.m3u8":                                                    true,
		"streaming-playlists/hls/0b7e3b1c-9b8a-4f61-a7f1-3c1e5d4a2b10/segments-sha256.json":                                      true,
		"streaming-playlists/hls/0b7e3b1c-9b8a-4f61-a7f1-3c1e5d4a2b10/0-000042.ts":                                               true,
		"streaming-playlists/hls/0b7e3b1c-9b8a-4f61-a7f1-3c1e5d4a2b10/1f7c1b9e-0d7a-4d8e-9b61-2a4f0e6c3d21-720.M3U8":             true,
		"streaming-playlists/hls/0b7e3b1c-9b8a-4f61-a7f1-3c1e5d4a2b10/1f7c1b9e-0d7a-4d8e-9b61-2a4f0e6c3d21-720-fragmented.mp4":   false,
		"streaming-playlists/hls/0b7e3b1c-9b8a-4f61-a7f1-3c1e5d4a2b10/5d2c8e7a-3b1f-4c9d-8e6a-7f0b1a2c3d4e-segments-sha256.json": false,
		"web-videos/1f7c1b9e-0d7a-4d8e-9b61-2a4f0e6c3d21-720.mp4":                                                                false,
		"media_attachments/files/109/852/623/730/091/815/original/0123456789abcdef.mp4":                                          false,
		"m3u8": false,
		"":     false,
	} {
		if got := RewrittenHLS([]byte(key)); got != want {
			t.Errorf("RewrittenHLS(%q) = %v, want %v", key, got, want)
		}
	}
	key := []byte("streaming-playlists/hls/0b7e3b1c-9b8a-4f61-a7f1-3c1e5d4a2b10/0.m3u8")
	if n := testing.AllocsPerRun(100, func() { RewrittenHLS(key) }); n != 0 {
		t.Errorf("RewrittenHLS allocates %v times a call; it runs on every request", n)
	}
}
