package s3

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

func TestValidateWrites(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Config)
		field  string // the field the error names; empty: valid
	}{
		{"zero", func(*Config) {}, ""},
		{"all set", func(c *Config) {
			c.MultipartThreshold, c.PartSize, c.MaxAttempts, c.MaxBackoff = 100<<20, 8<<20, 10, time.Minute
		}, ""},
		{"smallest part", func(c *Config) { c.PartSize = 5 << 20 }, ""},
		{"largest single put", func(c *Config) { c.MultipartThreshold = 5 << 30 }, ""},
		{"negative threshold", func(c *Config) { c.MultipartThreshold = -1 }, "Config.MultipartThreshold"},
		{"threshold above 5 GiB", func(c *Config) { c.MultipartThreshold = 5<<30 + 1 }, "Config.MultipartThreshold"},
		{"part below 5 MiB", func(c *Config) { c.PartSize = 5<<20 - 1 }, "Config.PartSize"},
		{"negative part", func(c *Config) { c.PartSize = -1 }, "Config.PartSize"},
		{"part above 5 GiB", func(c *Config) { c.PartSize = 5<<30 + 1 }, "Config.PartSize"},
		{"negative attempts", func(c *Config) { c.MaxAttempts = -1 }, "Config.MaxAttempts"},
		{"negative backoff", func(c *Config) { c.MaxBackoff = -time.Second }, "Config.MaxBackoff"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Config{Bucket: "mastodon-media"}
			tc.change(&c)
			checkFieldError(t, c.Validate(), tc.field)
		})
	}
}

func TestWriteDefaults(t *testing.T) {
	c := Config{Bucket: "b"}.withDefaults()
	if c.MultipartThreshold != DefaultMultipartThreshold || c.PartSize != DefaultPartSize ||
		c.MaxAttempts != DefaultMaxAttempts || c.MaxBackoff != DefaultMaxBackoff {
		t.Errorf("defaults: threshold %d, part %d, attempts %d, backoff %s", c.MultipartThreshold, c.PartSize, c.MaxAttempts, c.MaxBackoff)
	}
	w := newWriteConfig(c)
	if w.threshold != c.MultipartThreshold || w.partSize != c.PartSize || w.retryer.MaxAttempts() != 3 {
		t.Errorf("writeConfig %+v does not follow %+v", w, c)
	}
	c = Config{Bucket: "b", MaxAttempts: 10, RequestChecksum: ChecksumWhenSupported}.withDefaults()
	if w := newWriteConfig(c); w.retryer.MaxAttempts() != 10 || w.checksum != aws.RequestChecksumCalculationWhenSupported {
		t.Errorf("writeConfig of MaxAttempts 10, when_supported: %d attempts, checksum %v", w.retryer.MaxAttempts(), w.checksum)
	}
}
