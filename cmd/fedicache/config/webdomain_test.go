package config

import (
	"strings"
	"testing"
)

// TestWebDomain: mastodon.web_domain takes a host name, with a port if it has one, in any case
// (kept in lower case); anything else stops the start with the key, the problem and a right value.
func TestWebDomain(t *testing.T) {
	for _, c := range []struct{ value, want string }{
		{"", ""},
		{"example.social", "example.social"},
		{"  Social.Example.ORG ", "social.example.org"},
		{"localhost:3000", "localhost:3000"},
		{"xn--bcher-kva.example", "xn--bcher-kva.example"},
	} {
		cfg, err := LoadValues(map[string]any{"s3.bucket": "media", "mastodon.web_domain": c.value})
		if err != nil || cfg.Proxy.MediaProxy.WebDomain != c.want {
			t.Errorf("mastodon.web_domain %q: %q, %v; want %q", c.value, cfg.Proxy.MediaProxy.WebDomain, err, c.want)
		}
	}
	for _, c := range []struct{ value, problem string }{
		{"https://example.social", "is a URL, not a host name"},
		{"example.social/", "is a URL, not a host name"},
		{"example.social/media_proxy", "is a URL, not a host name"},
		{"example.social:0", `port "0" is not a number from 1 to 65535`},
		{"example.social:http", `port "http" is not a number from 1 to 65535`},
		{"example..social", "is not a host name"},
		{"-example.social", "is not a host name"},
		{"exa_mple.social", "is not a host name"},
		{"example.social.", "is not a host name"},
		{"[::1]:443", "is not a host name"},
		{strings.Repeat("a", 64) + ".social", "is not a host name"},
	} {
		_, err := LoadValues(map[string]any{"s3.bucket": "media", "mastodon.web_domain": c.value})
		if err == nil || !strings.Contains(err.Error(), "mastodon.web_domain: ") || !strings.Contains(err.Error(), c.problem) ||
			!strings.Contains(err.Error(), "e.g. mastodon.web_domain: example.social") {
			t.Errorf("mastodon.web_domain %q: %v; want the key, %q and an example", c.value, err, c.problem)
		}
	}
}
