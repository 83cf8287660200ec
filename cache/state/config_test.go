package state

import (
	"errors"
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
		{"all set", Config{Prefix: "state/", Refresh: time.Second, Retention: time.Hour, CompactEvery: time.Hour, Overlap: time.Minute}, ""},
		{"nested prefix", Config{Prefix: "a/b/"}, ""},
		{"prefix without its slash", Config{Prefix: "_fedicache"}, "Config.Prefix"},
		{"prefix from the root", Config{Prefix: "/_fedicache/"}, "Config.Prefix"},
		{"prefix of a slash", Config{Prefix: "/"}, "Config.Prefix"},
		{"negative refresh", Config{Refresh: -time.Second}, "Config.Refresh"},
		{"negative retention", Config{Retention: -time.Hour}, "Config.Retention"},
		{"negative compaction", Config{CompactEvery: -time.Hour}, "Config.CompactEvery"},
		{"negative overlap", Config{Overlap: -time.Minute}, "Config.Overlap"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			var fe *fielderr.Error
			switch {
			case tc.field == "" && err != nil:
				t.Errorf("Validate: %v, want nil", err)
			case tc.field == "":
			case !errors.As(err, &fe) || fe.Pkg != "state" || fe.Field != tc.field || fe.Fix == "" || fe.Example == "":
				t.Errorf("Validate: %v, want a *fielderr.Error naming %s with a fix and an example", err, tc.field)
			case strings.Contains(err.Error(), "state_"):
				t.Errorf("Validate: %q names a configuration key", err)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	c := Config{}.withDefaults()
	if c.Prefix != DefaultPrefix || c.Refresh != DefaultRefresh || c.Retention != DefaultRetention ||
		c.CompactEvery != DefaultCompactEvery || c.Overlap != DefaultOverlap || c.Logger == nil || c.Clock == nil {
		t.Errorf("defaults: %+v", c)
	}
	if err := (Config{Prefix: DefaultPrefix}).Validate(); err != nil {
		t.Errorf("DefaultPrefix does not pass Validate: %v", err)
	}
}
