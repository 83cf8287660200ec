package s3

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

func TestValidateWrites(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Config)
		key    string // the key the error names; empty: valid
	}{
		{"zero", func(*Config) {}, ""},
		{"all set", func(c *Config) {
			c.MultipartThreshold, c.PartSize, c.MaxAttempts, c.MaxBackoff = 100<<20, 8<<20, 10, time.Minute
		}, ""},
		{"smallest part", func(c *Config) { c.PartSize = 5 << 20 }, ""},
		{"largest single put", func(c *Config) { c.MultipartThreshold = 5 << 30 }, ""},
		{"negative threshold", func(c *Config) { c.MultipartThreshold = -1 }, "s3.multipart_threshold"},
		{"threshold above 5 GiB", func(c *Config) { c.MultipartThreshold = 5<<30 + 1 }, "s3.multipart_threshold"},
		{"part below 5 MiB", func(c *Config) { c.PartSize = 5<<20 - 1 }, "s3.part_size"},
		{"negative part", func(c *Config) { c.PartSize = -1 }, "s3.part_size"},
		{"part above 5 GiB", func(c *Config) { c.PartSize = 5<<30 + 1 }, "s3.part_size"},
		{"negative attempts", func(c *Config) { c.MaxAttempts = -1 }, "s3.max_attempts"},
		{"negative backoff", func(c *Config) { c.MaxBackoff = -time.Second }, "s3.max_backoff"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Config{Bucket: "mastodon-media"}
			tc.change(&c)
			err := c.Validate()
			switch {
			case tc.key == "" && err != nil:
				t.Errorf("Validate: %v, want nil", err)
			case tc.key != "" && err == nil:
				t.Errorf("Validate: nil, want an error naming %s", tc.key)
			case tc.key != "" && (!strings.HasPrefix(err.Error(), tc.key+" ") || !strings.Contains(err.Error(), "e.g. ")):
				t.Errorf("Validate: %q, want it to start with %s and give an example", err, tc.key)
			}
		})
	}
}

func TestWriteDefaults(t *testing.T) {
	c := Config{Bucket: "b"}.withDefaults()
	if c.MultipartThreshold != 64<<20 || c.PartSize != 16<<20 || c.MaxAttempts != 3 || c.MaxBackoff != 20*time.Second {
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
