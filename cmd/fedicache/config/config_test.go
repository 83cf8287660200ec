package config

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func writeConfig(t *testing.T, yaml string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// flagSet returns the flags of a command that AddFlags declared, parsed from args.
func flagSet(t *testing.T, args ...string) *pflag.FlagSet {
	t.Helper()
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return fs
}

// invalid returns the message of err, an invalid configuration (an *Error: the command exits
// with status 2 and the message).
func invalid(t *testing.T, err error) string {
	t.Helper()
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("%v: want an invalid configuration (*Error), the command's exit status 2", err)
	}
	return err.Error()
}

// TestInvalidConfigsNameTheKey: every invalid configuration is an *Error (the command exits
// with status 2; package main's TestInvalidConfigsExitTwo runs some through the command line)
// whose problems name the key and the fix.
func TestInvalidConfigsNameTheKey(t *testing.T) {
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, yaml string
		env        map[string]string
		args       []string
		want       []string // every one must appear in the message
	}{
		{"no bucket", "listen: \":8080\"\n", nil, nil, []string{"s3.bucket", "e.g."}},
		{"bad duration", "s3:\n  bucket: b\n  timeout: soon\n", nil, nil, []string{"s3.timeout", `"soon"`, "30s"}},
		{"negative duration", "s3:\n  bucket: b\nshutdown_grace: -5s\n", nil, nil, []string{"shutdown_grace", "25s"}},
		{"bad bool", "s3:\n  bucket: b\n  force_path_style: maybe\n", nil, nil, []string{"s3.force_path_style", "true or false"}},
		{"bad listen", "s3:\n  bucket: b\nlisten: 8080\n", nil, nil, []string{"listen", "host:port", `":8080"`}},
		{"bad port", "s3:\n  bucket: b\nadmin_listen: \":99999\"\n", nil, nil, []string{"admin_listen", "65535"}},
		{"bad checksum", "s3:\n  bucket: b\n  request_checksum: always\n", nil, nil, []string{"s3.request_checksum", "when_required"}},
		{"bad endpoint", "s3:\n  bucket: b\n  endpoint: \"minio:9000\"\n", nil, nil, []string{"s3.endpoint"}},
		{"unknown key", "s3:\n  bucket: b\n  bukcet: c\n", nil, nil, []string{"s3.bukcet", `did you mean "s3.bucket"`}},
		{"half credentials", "s3:\n  bucket: b\n  access_key_id: AKID\n", nil, nil, []string{"s3.secret_access_key is empty while s3.access_key_id is set", "set both"}},
		// The libraries' own checks name their Config's fields; cmd names the keys (fieldKeys).
		{"bucket with a path", "s3:\n  bucket: media/files\n", nil, nil,
			[]string{`s3.bucket "media/files" is not a bucket name`, "a path in s3.prefix", "e.g. s3.bucket: mastodon-media"}},
		{"bad region", "s3:\n  bucket: b\n  region: \"eu central\"\n", nil, nil,
			[]string{`s3.region "eu central" is not a region name`, "e.g. s3.region: eu-central-1"}},
		{"bad region from the environment", "s3:\n  bucket: b\n", map[string]string{"FEDICACHE_S3_REGION": "eu/central"}, nil,
			[]string{`s3.region "eu/central"`, "e.g. s3.region:"}},
		{"disk dir is a file", "s3:\n  bucket: b\ncache:\n  disk:\n    dir: " + file + "\n", nil, nil,
			[]string{"cache.disk.dir " + strconv.Quote(file) + " is a file", "e.g. cache.disk.dir: /var/cache/fedicache"}},
		{"disk dir under a file", "s3:\n  bucket: b\ncache:\n  disk:\n    dir: " + filepath.Join(file, "cache") + "\n", nil, nil,
			[]string{"cache.disk.dir", "under one", "e.g. cache.disk.dir:"}},
		{"object larger than the memory tier", "s3:\n  bucket: b\ncache:\n  memory:\n    max_bytes: 1MiB\n    max_object_bytes: 2MiB\n", nil, nil,
			[]string{"cache.memory.max_object_bytes 2097152 is larger than cache.memory.max_bytes", "e.g. cache.memory.max_object_bytes: 1048576"}},
		{"state prefix not a folder", "s3:\n  bucket: b\nstate_prefix: state\n", nil, nil,
			[]string{`state_prefix "state" is not a folder-like prefix`, "e.g. state_prefix: _fedicache/"}},
		{"empty state prefix", "s3:\n  bucket: b\n", map[string]string{"FEDICACHE_STATE_PREFIX": ""}, nil,
			[]string{"state_prefix is empty", "e.g. state_prefix: _fedicache/", "FEDICACHE_STATE_PREFIX is set but empty"}},
		{"unknown ACL", "s3:\n  bucket: b\n  acl: public\n", nil, nil,
			[]string{`s3.acl "public" is not a canned ACL`, "e.g. s3.acl: public-read"}},
		{"missing volume", "s3:\n  bucket: b\nfallback:\n  dir: " + filepath.Join(dir, "nope") + "\n", nil, nil, []string{"fallback.dir", "e.g."}},
		{"empty deny prefix", "s3:\n  bucket: b\ndeny_prefixes: [\"\"]\n", nil, nil, []string{"deny_prefixes", "every key"}},
		{"list as map", "s3:\n  bucket: b\nstrip_prefix:\n  a: b\n", nil, nil, []string{"strip_prefix"}},
		{"bad log level", "s3:\n  bucket: b\nlog:\n  level: loud\n", nil, nil, []string{"log.level", "info"}},
		{"bad number", "s3:\n  bucket: b\nserver:\n  max_header_bytes: lots\n", nil, nil, []string{"server.max_header_bytes", "16384"}},
		{"bad yaml", "s3: [bucket\n", nil, nil, []string{"not valid YAML"}},
		{"env is checked too", "s3:\n  bucket: b\n", map[string]string{"FEDICACHE_S3_TIMEOUT": "forever"}, nil, []string{"s3.timeout", `"forever"`}},
		{"flag is checked too", "s3:\n  bucket: b\n", nil, []string{"--listen", "nowhere"}, []string{"listen", `"nowhere"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			_, err := LoadFlags(flagSet(t, append([]string{"--config", writeConfig(t, tt.yaml)}, tt.args...)...))
			msg := invalid(t, err)
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("the message does not say %q:\n%s", w, msg)
				}
			}
			if strings.Contains(msg, "goroutine ") || strings.Contains(msg, "panic") {
				t.Errorf("the message holds a stack trace:\n%s", msg)
			}
			if strings.Contains(msg, "Config.") {
				t.Errorf("the message names a Go field, not its key:\n%s", msg)
			}
		})
	}
	_, err := Load(filepath.Join(dir, "missing.yaml"), nil)
	if msg := invalid(t, err); !strings.Contains(msg, "missing.yaml") {
		t.Errorf("missing config file: %q", msg)
	}
}

func TestConfigPrecedence(t *testing.T) {
	vol := t.TempDir()
	path := writeConfig(t, `
listen: "127.0.0.1:1111"
admin_listen: "127.0.0.1:2222"
s3:
  bucket: from-file
  prefix: from-file
  timeout: 10s
  force_path_style: false
strip_prefix: ["/my-bucket", "/system"]
fallback:
  dir: `+vol+`
`)
	t.Setenv("FEDICACHE_S3_BUCKET", "from-env")
	t.Setenv("FEDICACHE_S3_PREFIX", "from-env")
	t.Setenv("FEDICACHE_DENY_PREFIXES", "backups/,imports/,/secret/")
	cfg, err := Load(path, flagSet(t, "--s3-prefix", "from-flag"))
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct{ name, got, want string }{
		{"listen (file)", cfg.Listen, "127.0.0.1:1111"},
		{"s3.bucket (env over file)", cfg.S3.Bucket, "from-env"},
		{"s3.prefix (flag over env)", cfg.S3.Prefix, "from-flag"},
		{"s3.timeout (file)", cfg.S3.Timeout.String(), "10s"},
		{"s3.region (default)", cfg.S3.Region, "us-east-1"},
		{"s3.request_checksum (default)", cfg.S3.RequestChecksum, "when_required"},
		{"headers.cache_control (default)", cfg.Proxy.CacheControl, "public, max-age=31536000, immutable"},
		{"strip_prefix (file)", strings.Join(cfg.Proxy.StripPrefixes, ","), "/my-bucket,/system"},
		{"deny_prefixes (env, then the state prefix)", strings.Join(cfg.Proxy.DenyPrefixes, ","), "backups/,imports/,secret/,_fedicache/"},
		{"fallback.dir", cfg.FallbackDir, vol},
		{"shutdown_grace (default)", cfg.ShutdownGrace.String(), "25s"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	if cfg.S3.ForcePathStyle {
		t.Error("s3.force_path_style: the file's false was not applied")
	}
}

func TestExampleConfigLoads(t *testing.T) {
	cfg, err := Load(filepath.Join("..", "..", "..", "configs", "example.yaml"), nil)
	if err != nil {
		t.Fatalf("configs/example.yaml: %v", err)
	}
	if cfg.S3.Bucket == "" {
		t.Error("configs/example.yaml sets no bucket")
	}
	// Every key is documented in the example.
	raw, err := os.ReadFile(filepath.Join("..", "..", "..", "configs", "example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range settings {
		leaf := s.key[strings.LastIndex(s.key, ".")+1:]
		if !strings.Contains(string(raw), leaf+":") {
			t.Errorf("configs/example.yaml does not mention %s", s.key)
		}
	}
}
