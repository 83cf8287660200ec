package backfill

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/fedicache/fedicache/origin/fielderr"
)

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cfg   Config
		field string // the field the error names; empty: valid
	}{
		{"zero", Config{}, ""},
		{"all set", Config{Concurrency: 16, Bandwidth: 50 << 20, Rate: 200, StaleUploads: time.Hour, ACL: MastodonACL,
			Include: []string{"media_attachments/*"}, Exclude: []string{"*.mp4"}}, ""},
		{"private", Config{ACL: "private"}, ""},
		{"negative concurrency", Config{Concurrency: -1}, "Config.Concurrency"},
		{"negative bandwidth", Config{Bandwidth: -1}, "Config.Bandwidth"},
		{"negative rate", Config{Rate: -1}, "Config.Rate"},
		{"rate NaN", Config{Rate: math.NaN()}, "Config.Rate"},
		{"negative stale uploads", Config{StaleUploads: -time.Hour}, "Config.StaleUploads"},
		{"unknown ACL", Config{ACL: "public"}, "Config.ACL"},
		{"bad include", Config{Include: []string{"ok/*", "[x"}}, "Config.Include"},
		{"bad exclude", Config{Exclude: []string{"[x"}}, "Config.Exclude"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			var fe *fielderr.Error
			switch {
			case tc.field == "" && err != nil:
				t.Errorf("Validate: %v, want nil", err)
			case tc.field == "":
			case !errors.As(err, &fe) || fe.Pkg != "backfill" || fe.Field != tc.field || fe.Fix == "" || fe.Example == "":
				t.Errorf("Validate: %v, want a *fielderr.Error naming %s with a fix and an example", err, tc.field)
			case strings.Contains(err.Error(), "backfill.") || strings.Contains(err.Error(), "s3.") || strings.Contains(err.Error(), "--"):
				t.Errorf("Validate: %q names a configuration key or a flag", err)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	c := Config{}.withDefaults()
	if c.Concurrency != DefaultConcurrency || c.StaleUploads != DefaultStaleUploads ||
		c.CacheControl != MastodonCacheControl || c.Logger == nil {
		t.Errorf("defaults: %+v", c)
	}
}
