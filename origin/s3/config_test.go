package s3

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fedicache/fedicache/origin/fielderr"
)

func TestValidate(t *testing.T) {
	good := Config{Bucket: "mastodon-media"}
	for _, tc := range []struct {
		name   string
		change func(*Config)
		field  string // the field the error names; empty: valid
	}{
		{"zero but bucket", func(*Config) {}, ""},
		{"everything", func(c *Config) {
			*c = Config{Endpoint: "https://s3.example.com:9000/", Region: "auto", Bucket: "b", Prefix: "p/",
				ForcePathStyle: true, AccessKeyID: "a", SecretAccessKey: "s", Timeout: time.Second,
				RequestChecksum: "when_supported", ResponseChecksum: "when_required"}
		}, ""},
		{"no bucket", func(c *Config) { c.Bucket = "" }, "Config.Bucket"},
		{"bucket with path", func(c *Config) { c.Bucket = "media/files" }, "Config.Bucket"},
		{"region with space", func(c *Config) { c.Region = "eu central" }, "Config.Region"},
		{"region is a URL", func(c *Config) { c.Region = "https://s3.example.com" }, "Config.Region"},
		{"endpoint without scheme", func(c *Config) { c.Endpoint = "s3.example.com" }, "Config.Endpoint"},
		{"endpoint ftp", func(c *Config) { c.Endpoint = "ftp://s3.example.com" }, "Config.Endpoint"},
		{"endpoint no host", func(c *Config) { c.Endpoint = "https://" }, "Config.Endpoint"},
		{"endpoint unparsable", func(c *Config) { c.Endpoint = "http://[::1" }, "Config.Endpoint"},
		{"endpoint with query", func(c *Config) { c.Endpoint = "https://s3.example.com/?x=1" }, "Config.Endpoint"},
		{"negative timeout", func(c *Config) { c.Timeout = -time.Second }, "Config.Timeout"},
		{"request checksum", func(c *Config) { c.RequestChecksum = "always" }, "Config.RequestChecksum"},
		{"response checksum", func(c *Config) { c.ResponseChecksum = "WHEN_REQUIRED " }, "Config.ResponseChecksum"},
		{"half the credentials", func(c *Config) { c.AccessKeyID = "a" }, "Config.SecretAccessKey"},
		{"the other half", func(c *Config) { c.SecretAccessKey = "s" }, "Config.AccessKeyID"},
		{"anonymous with credentials", func(c *Config) {
			c.Anonymous, c.AccessKeyID, c.SecretAccessKey = true, "a", "s"
		}, ""},
		{"anonymous with half the credentials", func(c *Config) {
			c.Anonymous, c.SecretAccessKey = true, "s"
		}, "Config.AccessKeyID"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			tc.change(&c)
			checkFieldError(t, c.Validate(), tc.field)
		})
	}
}

func TestNewValidates(t *testing.T) {
	hermetic(t)
	var fe *fielderr.Error
	if _, err := New(context.Background(), Config{}); !errors.As(err, &fe) || fe.Field != "Config.Bucket" {
		t.Errorf("New(Config{}): err %v, want the Config.Bucket error", err)
	}
}

// checkFieldError checks that err is nil when field is empty, else a *fielderr.Error of
// package s3 naming field, saying what to do, and naming no configuration key (those are the
// command's: its settings start "s3."; the values and examples may hold host names).
func checkFieldError(t *testing.T, err error, field string) {
	t.Helper()
	var fe *fielderr.Error
	switch {
	case field == "" && err != nil:
		t.Errorf("Validate: %v, want nil", err)
	case field == "":
	case err == nil:
		t.Errorf("Validate: nil, want an error naming %s", field)
	case !errors.As(err, &fe):
		t.Errorf("Validate: %v (%T), want a *fielderr.Error", err, err)
	case fe.Pkg != "s3" || fe.Field != field || fe.Problem == "" || fe.Fix == "":
		t.Errorf("Validate: %#v, want package s3, field %s, a problem and a fix", fe, field)
	case !strings.HasPrefix(err.Error(), "s3: "+field+" "):
		t.Errorf("Validate: %q, want it to start with s3: %s", err, field)
	case strings.Contains(fe.Problem+" "+fe.Fix, "s3."):
		t.Errorf("Validate: %q names a configuration key", err)
	}
}

func TestDefaults(t *testing.T) {
	c := Config{Bucket: "b", Prefix: "media//"}.withDefaults()
	if c.Region != DefaultRegion || c.Timeout != DefaultTimeout || c.Prefix != "media" ||
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
