package s3

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	good := Config{Bucket: "mastodon-media"}
	for _, tc := range []struct {
		name   string
		change func(*Config)
		key    string // the key the error names; empty: valid
	}{
		{"zero but bucket", func(*Config) {}, ""},
		{"everything", func(c *Config) {
			*c = Config{Endpoint: "https://s3.example.com:9000/", Region: "auto", Bucket: "b", Prefix: "p/",
				ForcePathStyle: true, AccessKeyID: "a", SecretAccessKey: "s", Timeout: time.Second,
				RequestChecksum: "when_supported", ResponseChecksum: "when_required"}
		}, ""},
		{"no bucket", func(c *Config) { c.Bucket = "" }, "s3.bucket"},
		{"bucket with path", func(c *Config) { c.Bucket = "media/files" }, "s3.bucket"},
		{"region with space", func(c *Config) { c.Region = "eu central" }, "s3.region"},
		{"region is a URL", func(c *Config) { c.Region = "https://s3.example.com" }, "s3.region"},
		{"endpoint without scheme", func(c *Config) { c.Endpoint = "s3.example.com" }, "s3.endpoint"},
		{"endpoint ftp", func(c *Config) { c.Endpoint = "ftp://s3.example.com" }, "s3.endpoint"},
		{"endpoint no host", func(c *Config) { c.Endpoint = "https://" }, "s3.endpoint"},
		{"endpoint unparsable", func(c *Config) { c.Endpoint = "http://[::1" }, "s3.endpoint"},
		{"endpoint with query", func(c *Config) { c.Endpoint = "https://s3.example.com/?x=1" }, "s3.endpoint"},
		{"negative timeout", func(c *Config) { c.Timeout = -time.Second }, "s3.timeout"},
		{"request checksum", func(c *Config) { c.RequestChecksum = "always" }, "s3.request_checksum"},
		{"response checksum", func(c *Config) { c.ResponseChecksum = "WHEN_REQUIRED " }, "s3.response_checksum"},
		{"half the credentials", func(c *Config) { c.AccessKeyID = "a" }, "s3.access_key_id"},
		{"anonymous with credentials", func(c *Config) {
			c.Anonymous, c.AccessKeyID, c.SecretAccessKey = true, "a", "s"
		}, ""},
		{"anonymous with half the credentials", func(c *Config) {
			c.Anonymous, c.SecretAccessKey = true, "s"
		}, "s3.access_key_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			tc.change(&c)
			err := c.Validate()
			switch {
			case tc.key == "" && err != nil:
				t.Errorf("Validate: %v, want nil", err)
			case tc.key != "" && err == nil:
				t.Errorf("Validate: nil, want an error naming %s", tc.key)
			case tc.key != "" && !strings.HasPrefix(err.Error(), tc.key+" "):
				t.Errorf("Validate: %q, want it to start with the key %s", err, tc.key)
			case tc.key != "" && !strings.Contains(err.Error(), "e.g. "):
				t.Errorf("Validate: %q, want an example of a right value", err)
			}
		})
	}
}

func TestNewValidates(t *testing.T) {
	hermetic(t)
	if _, err := New(context.Background(), Config{}); err == nil || !strings.Contains(err.Error(), "s3.bucket") {
		t.Errorf("New(Config{}): err %v, want the s3.bucket error", err)
	}
}

func TestDefaults(t *testing.T) {
	c := Config{Bucket: "b", Prefix: "media//"}.withDefaults()
	if c.Region != "us-east-1" || c.Timeout != 30*time.Second || c.Prefix != "media" ||
		c.RequestChecksum != ChecksumWhenRequired || c.ResponseChecksum != ChecksumWhenRequired {
		t.Errorf("defaults: %+v", c)
	}
}

func TestAnonymous(t *testing.T) {
	f := newFake(t, "", map[string][]byte{"a.png": []byte("png")})
	cfg := testConfig(f.srv.URL)
	cfg.AccessKeyID, cfg.SecretAccessKey, cfg.Anonymous = "", "", true
	b := newTestBucket(t, cfg)
	if _, err := b.Stat(context.Background(), "a.png"); err != nil {
		t.Fatalf("Stat: %v", err)
	}
	for _, r := range f.requests() {
		if auth := r.Header.Get("Authorization"); auth != "" {
			t.Errorf("anonymous %s carries Authorization %q", r.Method, auth)
		}
	}
}
