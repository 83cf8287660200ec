// Package config is fedicache's configuration: the table of every key (default, environment
// variable, help), reading the YAML file, the FEDICACHE_* environment and the flags into a
// Config, the checks of every key with problems that name the key and the fix, and the naming
// of the libraries' field errors (*fielderr.Error) by keys. It also makes the libraries'
// Configs that come from keys alone; the commands of package main wire the parts.
package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/fedicache/fedicache/backfill"
	"github.com/fedicache/fedicache/cache"
	"github.com/fedicache/fedicache/origin/s3"
	"github.com/fedicache/fedicache/proxy"
	"github.com/fedicache/fedicache/proxy/cluster"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// Config is the whole configuration of the serve command, read by Load.
type Config struct {
	Listen      string
	AdminListen string
	TLS         TLSConfig
	S3          s3.Config
	FallbackDir string
	// FallbackStores are fallback.stores: the old stores asked after the bucket and the old
	// volume of FallbackDir, in order.
	FallbackStores []OldStore
	Proxy          proxy.Config
	Cache          CacheConfig
	Backfill       BackfillConfig
	AdminToken     string
	Cloudflare     cluster.CloudflareConfig
	StatePrefix    string
	StateRefresh   time.Duration
	Peers          string
	// ClusterFill and ClusterFillTimeout are cluster.fill and cluster.fill_timeout: with Peers,
	// a miss on a key another replica owns asks that replica.
	ClusterFill        bool
	ClusterFillTimeout time.Duration
	ShutdownGrace      time.Duration
	LogLevel           string
	LogFormat          string
	// Warnings are what is wrong with the configuration without stopping the start: FEDICACHE_*
	// variables that name no setting. Each command logs them once at start.
	Warnings []string
	// Cost is the bucket's prices (cost.*), for the money the cache saved.
	Cost CostConfig
}

// TLSConfig configures TLS on the public listener.
type TLSConfig struct {
	CertFile       string
	KeyFile        string
	ReloadInterval time.Duration
}

// CacheConfig configures the cache tiers.
type CacheConfig struct {
	MemoryMaxBytes       int64
	MemoryMaxObjectBytes int64
	DiskDir              string
	DiskMaxBytes         int64
	Layered              cache.Config
}

// BackfillConfig configures the copy of the old volume into the bucket.
type BackfillConfig struct {
	// Enabled runs the copy in the background of serve.
	Enabled bool
	// Engine holds the settings the one-shot command shares with serve.
	Engine backfill.Config
}

// Error is an invalid configuration: every problem names its key (or flag) and the fix. A
// command that returns it exits with status 2 and its message.
type Error struct{ problems []string }

func (e *Error) Error() string {
	return "invalid configuration:\n  " + strings.Join(e.problems, "\n  ")
}

// Errorf returns the invalid configuration of one problem, which names its key or flag and the
// fix.
func Errorf(format string, args ...any) *Error {
	return &Error{[]string{fmt.Sprintf(format, args...)}}
}

// AddFlags declares --config and the flags that set keys (listen, s3-bucket, ...) on fs.
func AddFlags(fs *pflag.FlagSet) {
	fs.String("config", os.Getenv("FEDICACHE_CONFIG"), "YAML configuration file (default $FEDICACHE_CONFIG)")
	for _, f := range flagKeys {
		fs.String(f.flag, "", f.usage+" (key "+f.key+")")
	}
}

// LoadFlags loads the configuration of a command whose flags AddFlags declared: the file that
// --config names, the environment and the flags (see Load).
func LoadFlags(fs *pflag.FlagSet) (Config, error) {
	path, _ := fs.GetString("config")
	return Load(path, fs)
}

// Load reads the file (when path is not empty), the environment and the flags of fs (when not
// nil), in rising order of precedence, and checks every key. All problems are reported at once,
// in an *Error.
func Load(path string, fs *pflag.FlagSet) (Config, error) {
	v := newViper(fs)
	if path != "" {
		v.SetConfigFile(path)
		v.SetConfigType("yaml")
		if err := v.ReadInConfig(); err != nil {
			var pe *os.PathError
			if errors.As(err, &pe) {
				return Config{}, Errorf("config file %s: %v: pass an existing YAML file, e.g. --config configs/example.yaml", path, pe.Err)
			}
			return Config{}, Errorf("config file %s is not valid YAML: %v", path, err)
		}
	}
	return configFrom(v, path)
}

// LoadValues is Load without a file or flags: the defaults and the environment, with values (a
// value per key, as the file writes it) set over both.
func LoadValues(values map[string]any) (Config, error) {
	v := newViper(nil)
	for key, value := range values {
		v.Set(key, value)
	}
	return configFrom(v, "")
}

// newViper returns a viper holding the defaults, the FEDICACHE_* environment and the flags of fs
// (when not nil) bound to their keys. A variable that is set but empty sets the empty value (an
// empty list for a list), as `key: ""` in the file does: FEDICACHE_S3_PERMISSION= turns the ACL
// check off, and FEDICACHE_S3_TIMEOUT= is an invalid duration, reported as such.
func newViper(fs *pflag.FlagSet) *viper.Viper {
	v := viper.New()
	for _, s := range settings {
		v.SetDefault(s.key, s.def)
	}
	v.SetEnvPrefix("FEDICACHE")
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AllowEmptyEnv(true)
	v.AutomaticEnv()
	if fs != nil {
		for _, f := range flagKeys {
			if fl := fs.Lookup(f.flag); fl != nil {
				_ = v.BindPFlag(f.key, fl)
			}
		}
	}
	return v
}

// configFrom reads and checks every key of v; path names the file the values came from.
func configFrom(v *viper.Viper, path string) (Config, error) {
	r := reader{v: v}
	r.unknownKeys(path)
	cfg := Config{
		Listen:      r.hostPort("listen"),
		AdminListen: r.hostPort("admin_listen"),
		TLS: TLSConfig{
			CertFile:       r.str("tls.cert_file"),
			KeyFile:        r.str("tls.key_file"),
			ReloadInterval: r.duration("tls.reload_interval"),
		},
		S3: s3.Config{
			Endpoint:            r.str("s3.endpoint"),
			Region:              r.str("s3.region"),
			Bucket:              r.str("s3.bucket"),
			Prefix:              r.str("s3.prefix"),
			ForcePathStyle:      r.boolean("s3.force_path_style"),
			AccessKeyID:         r.str("s3.access_key_id"),
			SecretAccessKey:     r.str("s3.secret_access_key"),
			Anonymous:           r.boolean("s3.anonymous"),
			RequirePublicRead:   r.oneOf("s3.permission", s3.ACLPublicRead, "") == s3.ACLPublicRead,
			Timeout:             r.duration("s3.timeout"),
			RequestChecksum:     r.str("s3.request_checksum"),
			ResponseChecksum:    r.str("s3.response_checksum"),
			DisableChecksumMode: r.boolean("s3.disable_checksum_mode"),
		},
		FallbackDir: r.str("fallback.dir"),
		Proxy: proxy.Config{
			StripPrefixes:  r.list("strip_prefix"),
			DenyPrefixes:   r.list("deny_prefixes"),
			CacheControl:   r.str("headers.cache_control"),
			ReadTimeout:    r.duration("server.read_timeout"),
			WriteTimeout:   r.duration("server.write_timeout"),
			IdleTimeout:    r.duration("server.idle_timeout"),
			MaxHeaderBytes: r.positiveInt("server.max_header_bytes", 1024),
			MaxConns:       r.positiveInt("server.max_conns", 1),
			RequestSample:  r.positiveInt("log.request_sample", 0),
			MediaProxy:     proxy.MediaProxyConfig{WebDomain: r.webDomain("mastodon.web_domain")},
		},
		Cache: CacheConfig{
			MemoryMaxBytes:       r.size("cache.memory.max_bytes", 0),
			MemoryMaxObjectBytes: r.size("cache.memory.max_object_bytes", 1),
			DiskDir:              r.str("cache.disk.dir"),
			DiskMaxBytes:         r.size("cache.disk.max_bytes", 1<<20),
			Layered: cache.Config{
				TTL:          r.duration("cache.ttl"),
				StaleIfError: r.duration("cache.stale_if_error"),
				NegativeTTL:  r.duration("cache.negative_ttl"),
			},
		},
		Backfill: BackfillConfig{
			Enabled: r.boolean("backfill.enabled"),
			Engine: backfill.Config{
				Concurrency:      r.positiveInt("backfill.concurrency", 1),
				Rate:             r.nonNegativeFloat("backfill.rate", "200"),
				Bandwidth:        r.size("backfill.bandwidth", 0),
				ACL:              r.str("s3.acl"),
				ConditionalWrite: r.boolean("s3.conditional_write"),
				NoContentMD5:     !r.boolean("s3.content_md5"),
			},
		},
		AdminToken:         r.str("admin.token"),
		StatePrefix:        r.str("state_prefix"),
		StateRefresh:       r.duration("state_refresh"),
		Peers:              r.str("cluster.peers"),
		ClusterFill:        r.boolean("cluster.fill"),
		ClusterFillTimeout: r.duration("cluster.fill_timeout"),
		ShutdownGrace:      r.duration("shutdown_grace"),
		Cost:               r.cost(),
		LogLevel:           r.oneOf("log.level", "debug", "info", "warn", "error"),
		LogFormat:          r.oneOf("log.format", "json", "text"),
	}
	cfg.FallbackStores = r.oldStores(cfg.S3, os.Getenv)
	r.checkTogether(&cfg)
	warnings := unknownVariables(os.Environ())
	if len(r.problems) > 0 {
		r.explainEmptyVariables()
		// A misspelled variable may be why a key is missing: say so with the problems.
		return Config{}, &Error{append(r.problems, warnings...)}
	}
	cfg.Warnings = warnings
	return cfg, nil
}

// webDomain reads key, Mastodon's WEB_DOMAIN: a host name as Mastodon writes it, with a port
// if it has one, without scheme or path, in lower case. Empty turns the feature off.
func (r *reader) webDomain(key string) string {
	s := r.str(key)
	if s == "" {
		return ""
	}
	fix := "give Mastodon's WEB_DOMAIN alone, e.g. " + key + ": example.social"
	host, port := s, ""
	if h, p, err := net.SplitHostPort(s); err == nil {
		host, port = h, p
	}
	switch {
	case strings.Contains(s, "://") || strings.ContainsAny(s, "/?#@"):
		r.fail("%s: %q is a URL, not a host name: %s", key, s, fix)
	case port != "" && !validPort(port):
		r.fail("%s: port %q is not a number from 1 to 65535: %s", key, port, fix)
	case !hostName(host):
		r.fail("%s: %q is not a host name (labels of letters, digits and hyphens, separated by dots): %s", key, s, fix)
	default:
		return strings.ToLower(s)
	}
	return ""
}

func validPort(p string) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n >= 1 && n <= 65535
}

// hostName reports whether h is a DNS host name: at most 253 bytes of labels separated by
// dots, each 1 to 63 letters, digits and hyphens, not starting or ending with a hyphen.
func hostName(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range []byte(label) {
			if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '-' {
				return false
			}
		}
	}
	return true
}
