package config

import (
	"strings"
	"testing"
)

func TestUnknownVariables(t *testing.T) {
	tests := []struct{ variable, want string }{
		{"FEDICACHE_S3_BUKCET", "(did you mean FEDICACHE_S3_BUCKET, s3.bucket?)"},
		{"FEDICACHE_S3_SECRET_KEY", "(did you mean FEDICACHE_S3_SECRET_ACCESS_KEY, s3.secret_access_key?)"},
		{"FEDICACHE_BUCKET", "(did you mean FEDICACHE_S3_BUCKET, s3.bucket?)"},
		{"fedicache_log_level", "(did you mean FEDICACHE_LOG_LEVEL, log.level?)"},
		{"FEDICACHE_CACHE_DISK_MAXBYTES", "(did you mean FEDICACHE_CACHE_DISK_MAX_BYTES, cache.disk.max_bytes?)"},
		{"FEDICACHE_S3_BUCKET_NAME", "(did you mean FEDICACHE_S3_BUCKET, s3.bucket?)"},
		{"FEDICACHE_CACHE_DIR", "(did you mean FEDICACHE_CACHE_DISK_DIR, cache.disk.dir?)"},
		{"FEDICACHE_LOGLEVEL", "(did you mean FEDICACHE_LOG_LEVEL, log.level?)"},
		{"FEDICACHE_VERSION", "(no setting's variable is close"},
		{"FEDICACHE_PORT", "(no setting's variable is close"},
		{"FEDICACHE_S3_BUCKET", ""},
		{"FEDICACHE_CONFIG", ""},
		{"FEDICACHE_UPDATE_README", ""},
		{"FEDICACHE_BROWSER", ""},
		{"FEDICACHE_ARTIFACTS", ""},
		{"FEDICACHE_CACHE_MEMORY_MAX_OBJECT_BYTES", ""},
		{"S3_BUCKET", ""},
	}
	for _, tt := range tests {
		got := unknownVariables([]string{tt.variable + "=x", "HOME=/root"})
		switch {
		case tt.want == "" && len(got) != 0:
			t.Errorf("%s: warned %q, want nothing", tt.variable, got)
		case tt.want != "" && (len(got) != 1 || !strings.HasPrefix(got[0], tt.variable+" is not a setting "+tt.want) ||
			!strings.HasSuffix(got[0], "; it is ignored")):
			t.Errorf("%s: warned %q, want one warning with %q", tt.variable, got, tt.want)
		}
	}
}

// TestEmptyVariableSetsEmptyValue: a variable set but empty sets the empty value over the file
// and the default (an empty list for a list); for a duration it is an error that names the
// variable.
func TestEmptyVariableSetsEmptyValue(t *testing.T) {
	path := writeConfig(t, `
s3:
  bucket: media
  permission: public-read
  acl: public-read
strip_prefix: ["/media"]
`)
	t.Setenv("FEDICACHE_S3_PERMISSION", "")
	t.Setenv("FEDICACHE_S3_ACL", "")
	t.Setenv("FEDICACHE_STRIP_PREFIX", "")
	t.Setenv("FEDICACHE_DENY_PREFIXES", "")
	cfg, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.S3.RequirePublicRead {
		t.Error("FEDICACHE_S3_PERMISSION= left the ACL check on")
	}
	if cfg.Backfill.Engine.ACL != "" {
		t.Errorf("FEDICACHE_S3_ACL= gave s3.acl %q, want \"\"", cfg.Backfill.Engine.ACL)
	}
	if len(cfg.Proxy.StripPrefixes) != 0 {
		t.Errorf("FEDICACHE_STRIP_PREFIX= gave %q, want an empty list", cfg.Proxy.StripPrefixes)
	}
	if got := strings.Join(cfg.Proxy.DenyPrefixes, ","); got != "backups/,imports/,_fedicache/" {
		t.Errorf("FEDICACHE_DENY_PREFIXES= gave %q, want Mastodon's private prefixes and the state prefix, always denied", got)
	}

	t.Setenv("FEDICACHE_S3_TIMEOUT", "")
	t.Setenv("FEDICACHE_BACKFILL_ENABLED", "")
	_, err = Load(path, nil)
	msg := invalid(t, err)
	for _, w := range []string{
		`s3.timeout: "" is not a positive duration`,
		"FEDICACHE_S3_TIMEOUT is set but empty: unset it for the default, 30s, or give it a value",
		"FEDICACHE_BACKFILL_ENABLED is set but empty: unset it for the default, false, or give it a value",
	} {
		if !strings.Contains(msg, w) {
			t.Errorf("the message does not say %q:\n%s", w, msg)
		}
	}
}
