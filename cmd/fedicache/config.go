package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/fedicache/fedicache/backfill"
	"github.com/fedicache/fedicache/cache"
	"github.com/fedicache/fedicache/cache/disk"
	"github.com/fedicache/fedicache/cache/memory"
	"github.com/fedicache/fedicache/cache/state"
	"github.com/fedicache/fedicache/origin/s3"
	"github.com/fedicache/fedicache/proxy"
	"github.com/fedicache/fedicache/proxy/cluster"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// Config is the whole configuration of the serve command, read by loadConfig.
type Config struct {
	Listen        string
	AdminListen   string
	TLS           TLSConfig
	S3            s3.Config
	FallbackDir   string
	Proxy         proxy.Config
	Cache         CacheConfig
	Backfill      BackfillConfig
	AdminToken    string
	Cloudflare    cluster.CloudflareConfig
	StatePrefix   string
	StateRefresh  time.Duration
	Peers         string
	ShutdownGrace time.Duration
	LogLevel      string
	LogFormat     string
	// Warnings are what is wrong with the configuration without stopping the start: FEDICACHE_*
	// variables that name no setting. Each command logs them once at start.
	Warnings []string
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

// configError is an invalid configuration: the process exits with status 2 and its message.
type configError struct{ problems []string }

func (e *configError) Error() string {
	return "invalid configuration:\n  " + strings.Join(e.problems, "\n  ")
}

// alwaysDenied are the key prefixes Mastodon keeps private in a bucket: user data exports
// (handed out as presigned URLs, never through the alias host) and the files of a removed
// import feature. They are denied beside deny_prefixes.
var alwaysDenied = []string{"backups/", "imports/"}

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

// addConfigFlags declares --config and the flags of flagKeys on fs.
func addConfigFlags(fs *pflag.FlagSet) {
	fs.String("config", os.Getenv("FEDICACHE_CONFIG"), "YAML configuration file (default $FEDICACHE_CONFIG)")
	for _, f := range flagKeys {
		fs.String(f.flag, "", f.usage+" (key "+f.key+")")
	}
}

// commandConfig loads the configuration of a command declared with addConfigFlags.
func commandConfig(cmd *cobra.Command) (Config, error) {
	path, _ := cmd.Flags().GetString("config")
	return loadConfig(path, cmd.Flags())
}

// loadConfig reads the file (when path is not empty), the environment and the flags, in rising
// order of precedence, and checks every key. All problems are reported at once.
func loadConfig(path string, fs *pflag.FlagSet) (Config, error) {
	v := newViper(fs)
	if path != "" {
		v.SetConfigFile(path)
		v.SetConfigType("yaml")
		if err := v.ReadInConfig(); err != nil {
			var pe *os.PathError
			if errors.As(err, &pe) {
				return Config{}, &configError{[]string{fmt.Sprintf("config file %s: %v: pass an existing YAML file, e.g. --config configs/example.yaml", path, pe.Err)}}
			}
			return Config{}, &configError{[]string{fmt.Sprintf("config file %s is not valid YAML: %v", path, err)}}
		}
	}
	return configFrom(v, path)
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
		AdminToken:    r.str("admin.token"),
		StatePrefix:   r.str("state_prefix"),
		StateRefresh:  r.duration("state_refresh"),
		Peers:         r.str("cluster.peers"),
		ShutdownGrace: r.duration("shutdown_grace"),
		LogLevel:      r.oneOf("log.level", "debug", "info", "warn", "error"),
		LogFormat:     r.oneOf("log.format", "json", "text"),
	}
	cfg.Proxy.DenyPrefixes = r.keyPrefixes("deny_prefixes", cfg.Proxy.DenyPrefixes)
	cfg.Proxy.CacheBuster = proxy.BusterConfig{
		Header: r.str("cache_buster.secret_header"),
		Secret: r.str("cache_buster.secret"),
		Method: strings.ToUpper(r.str("cache_buster.method")),
	}
	if cb := cfg.Proxy.CacheBuster; (cb.Header == "") != (cb.Secret == "") {
		r.fail("cache_buster.secret_header and cache_buster.secret go together, as Mastodon's CACHE_BUSTER_SECRET_HEADER and CACHE_BUSTER_SECRET: set both, e.g. cache_buster.secret_header: X-Cache-Buster-Secret")
	}
	// A leading slash is forgiven (keys have none), not an empty prefix: it would deny every key.
	if cfg.StatePrefix = strings.TrimLeft(cfg.StatePrefix, "/"); cfg.StatePrefix == "" {
		r.fail("state_prefix is empty: set a folder-like prefix ending in /, e.g. state_prefix: %s", state.DefaultPrefix)
	} else if err := (state.Config{Prefix: cfg.StatePrefix, Refresh: cfg.StateRefresh}).Validate(); err != nil {
		r.check(err)
	} else {
		// Mastodon's user exports and old imports are never served, whatever deny_prefixes says
		// (an empty FEDICACHE_DENY_PREFIXES= sets it empty), and fedicache's own state is never
		// served nor copied.
		for _, p := range append(slices.Clone(alwaysDenied), cfg.StatePrefix) {
			if !slices.Contains(cfg.Proxy.DenyPrefixes, p) {
				cfg.Proxy.DenyPrefixes = append(cfg.Proxy.DenyPrefixes, p)
			}
		}
	}
	cfg.Cloudflare = cluster.CloudflareConfig{ZoneID: r.str("cloudflare.zone_id"), APIToken: r.str("cloudflare.api_token")}
	if (cfg.Cloudflare.ZoneID == "") != (cfg.Cloudflare.APIToken == "") {
		r.fail("cloudflare.zone_id and cloudflare.api_token go together: set both (a token with Zone > Cache Purge), or neither")
	}
	if cfg.Peers != "" && cfg.AdminToken == "" {
		r.fail("cluster.peers needs admin.token: the replicas authenticate each other with it, e.g. admin.token from a Secret (FEDICACHE_ADMIN_TOKEN)")
	}
	cfg.Backfill.Engine.DenyPrefixes = cfg.Proxy.DenyPrefixes
	r.check(cfg.Backfill.Engine.Validate())
	r.check(cfg.S3.Validate())
	if cfg.FallbackDir != "" {
		if fi, err := os.Stat(cfg.FallbackDir); err != nil || !fi.IsDir() {
			r.fail("fallback.dir: %q is not a readable folder: set it to the old volume's mount, e.g. fallback.dir: /mnt/mastodon-system, or leave it empty", cfg.FallbackDir)
		}
	}
	switch t := cfg.TLS; {
	case (t.CertFile == "") != (t.KeyFile == ""):
		r.fail("tls.cert_file and tls.key_file go together: set both (e.g. tls.cert_file: /etc/fedicache/tls/tls.crt and tls.key_file: /etc/fedicache/tls/tls.key), or neither for plain HTTP")
	case t.CertFile != "":
		if _, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile); err != nil {
			r.fail("tls.cert_file, tls.key_file: %v: give a PEM certificate and its matching private key", err)
		}
	}
	// The tiers' own checks, for the tiers that are on: 0 turns the memory tier off, an empty
	// folder the disk tier (in the libraries they mean the defaults).
	if c := cfg.Cache; c.MemoryMaxBytes > 0 {
		r.check(memory.Config{MaxBytes: c.MemoryMaxBytes, MaxObjectBytes: c.MemoryMaxObjectBytes}.Validate())
	}
	if c := cfg.Cache; c.DiskDir != "" {
		r.check(disk.Config{Dir: c.DiskDir, MaxBytes: c.DiskMaxBytes}.Validate())
	}
	warnings := unknownVariables(os.Environ())
	if len(r.problems) > 0 {
		r.explainEmptyVariables()
		// A misspelled variable may be why a key is missing: say so with the problems.
		return Config{}, &configError{append(r.problems, warnings...)}
	}
	cfg.Warnings = warnings
	return cfg, nil
}

// reader reads typed values from viper and collects a problem per bad key.
type reader struct {
	v        *viper.Viper
	problems []string
}

func (r *reader) fail(format string, args ...any) {
	r.problems = append(r.problems, fmt.Sprintf(format, args...))
}

// explainEmptyVariables adds to each problem of a key whose variable is set but empty that it
// is, and what to do: the problem quotes an empty value that appears nowhere in the file.
func (r *reader) explainEmptyVariables() {
	for _, key := range emptyVariables() {
		if s, ok := r.v.Get(key).(string); !ok || s != "" {
			continue // a flag set it
		}
		for i, p := range r.problems {
			if strings.HasPrefix(p, key+":") || strings.HasPrefix(p, key+" ") {
				r.problems[i] += emptyVariableHint(key)
			}
		}
	}
}

// check adds the problems of err, a library's validation: the fields its *fielderr.Errors name
// are named by their keys (see fieldKeys).
func (r *reader) check(err error) {
	r.problems = append(r.problems, problemsOf(err)...)
}

func (r *reader) str(key string) string {
	switch x := r.v.Get(key).(type) {
	case string:
		return strings.TrimSpace(x)
	case nil:
		return ""
	case int, int64, float64, bool:
		return fmt.Sprint(x)
	default:
		r.fail("%s: a list or map where a single value belongs: write e.g. %s: %v", key, key, defaultOf(key))
		return ""
	}
}

func (r *reader) boolean(key string) bool {
	switch x := r.v.Get(key).(type) {
	case bool:
		return x
	case string:
		b, err := strconv.ParseBool(strings.TrimSpace(x))
		if err == nil {
			return b
		}
	}
	r.fail("%s: %q is not a boolean: use true or false", key, fmt.Sprint(r.v.Get(key)))
	return false
}

func (r *reader) duration(key string) time.Duration {
	raw := r.v.Get(key)
	s, ok := raw.(string)
	if ok {
		if d, err := time.ParseDuration(strings.TrimSpace(s)); err == nil && d > 0 {
			return d
		}
	}
	r.fail("%s: %q is not a positive duration: use a number with a unit, e.g. %s: %v", key, fmt.Sprint(raw), key, defaultOf(key))
	return 0
}

// size reads a byte count: a whole number of bytes or one with a unit (256MiB, 10GiB, 1.5GB).
func (r *reader) size(key string, min int64) int64 {
	raw := r.v.Get(key)
	var n uint64
	var err error
	switch x := raw.(type) {
	case int:
		n, err = uint64(x), nil
		if x < 0 {
			err = errors.New("negative")
		}
	case string:
		n, err = humanize.ParseBytes(strings.TrimSpace(x))
	default:
		err = errors.New("not a size")
	}
	if err != nil || int64(n) < min {
		r.fail("%s: %q is not a size of at least %d bytes: use a number with a unit, e.g. %s: %v", key, fmt.Sprint(raw), min, key, defaultOf(key))
		return 0
	}
	return int64(n)
}

func (r *reader) nonNegativeFloat(key, example string) float64 {
	raw := r.v.Get(key)
	var f float64
	var err error
	switch x := raw.(type) {
	case int:
		f = float64(x)
	case float64:
		f = x
	case string:
		f, err = strconv.ParseFloat(strings.TrimSpace(x), 64)
	default:
		err = errors.New("not a number")
	}
	if err != nil || f < 0 {
		r.fail("%s: %q is not a number of at least 0: use e.g. %s: %s", key, fmt.Sprint(raw), key, example)
		return 0
	}
	return f
}

// positiveInt reads a whole number of at least min; its problem gives the default as the example.
func (r *reader) positiveInt(key string, min int) int {
	raw := r.v.Get(key)
	var n int
	var err error
	switch x := raw.(type) {
	case int:
		n = x
	case int64:
		n = int(x)
	case string:
		n, err = strconv.Atoi(strings.TrimSpace(x))
	default:
		err = errors.New("not a number")
	}
	if err != nil || n < min {
		r.fail("%s: %q is not a whole number of at least %d: use e.g. %s: %v", key, fmt.Sprint(raw), min, key, defaultOf(key))
		return 0
	}
	return n
}

func (r *reader) oneOf(key string, allowed ...string) string {
	s := strings.ToLower(r.str(key))
	for _, a := range allowed {
		if s == a {
			return s
		}
	}
	r.fail("%s: %q is not one of %s: use e.g. %s: %s", key, s, strings.Join(allowed, ", "), key, allowed[0])
	return allowed[0]
}

func (r *reader) hostPort(key string) string {
	s := r.str(key)
	if _, port, err := net.SplitHostPort(s); err != nil || port == "" {
		r.fail("%s: %q is not host:port: use e.g. %s: \"%v\"", key, s, key, defaultOf(key))
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		r.fail("%s: port %q is not a number from 0 to 65535: use e.g. %s: \"%v\"", key, port, key, defaultOf(key))
	}
	return s
}

// list reads a YAML list, or a comma- or space-separated string (as environment variables give).
func (r *reader) list(key string) []string {
	var out []string
	switch x := r.v.Get(key).(type) {
	case nil:
	case string:
		out = strings.FieldsFunc(x, func(c rune) bool { return c == ',' || c == ' ' })
	case []string:
		out = x
	case []any:
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				r.fail("%s: entry %v is not a string: write e.g. %s: [\"/system\"]", key, e, key)
				continue
			}
			out = append(out, s)
		}
	default:
		r.fail("%s: %v is not a list: write e.g. %s: [\"/system\"]", key, x, key)
	}
	for i := range out {
		out[i] = strings.TrimSpace(out[i])
	}
	return out
}

// keyPrefixes checks a list of key prefixes: no empty entry (it would deny everything) and no
// leading slash (keys have none; it is removed).
func (r *reader) keyPrefixes(key string, in []string) []string {
	out := make([]string, 0, len(in))
	for _, p := range in {
		p = strings.TrimLeft(p, "/")
		if p == "" {
			r.fail("%s: an empty entry would deny every key: remove it, e.g. %s: [\"backups/\", \"imports/\"]", key, key)
			continue
		}
		out = append(out, p)
	}
	return out
}

// unknownKeys reports keys of the file that no setting has, with the closest known key.
func (r *reader) unknownKeys(path string) {
	known := map[string]bool{}
	for _, s := range settings {
		known[s.key] = true
	}
	for _, k := range r.v.AllKeys() {
		if !known[k] {
			r.fail("%s: unknown key %q: did you mean %q? (every key is listed in configs/example.yaml)", path, k, closestKey(k))
		}
	}
}

func defaultOf(key string) any {
	for _, s := range settings {
		if s.key == key {
			return s.def
		}
	}
	return ""
}

// closestKey returns the known key nearest to k by edit distance.
func closestKey(k string) string {
	best, bestD := "", 1<<30
	for _, s := range settings {
		if d := editDistance(k, s.key); d < bestD {
			best, bestD = s.key, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
