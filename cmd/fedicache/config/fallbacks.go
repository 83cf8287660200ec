package config

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/fedicache/fedicache/origin"
	"github.com/fedicache/fedicache/origin/s3"
)

// OldStore is one entry of fallback.stores: an old store asked, in order, after the bucket
// (and after fallback.dir's volume), for the objects a move has not copied yet. Exactly one of
// Dir (an old volume) and S3 (an old bucket) is set.
type OldStore struct {
	Name string
	Dir  string
	S3   *s3.Config
}

// oldStoreKeys are the keys an entry of fallback.stores may have, with what each does (for the
// problems that name them; README's section on moving between providers shows them in use).
var oldStoreKeys = []string{
	"name", "dir", "endpoint", "region", "bucket", "prefix", "force_path_style",
	"access_key_id", "secret_access_key", "anonymous", "permission",
}

var oldStoreName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)

// OldStoreCredentialVariables returns the environment variables that give the old bucket named
// name its credentials, so that they can come from a Secret rather than the file:
// FEDICACHE_FALLBACK_<NAME>_ACCESS_KEY_ID and FEDICACHE_FALLBACK_<NAME>_SECRET_ACCESS_KEY.
func OldStoreCredentialVariables(name string) (accessKeyID, secretAccessKey string) {
	n := envPrefix + "FALLBACK_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
	return n + "_ACCESS_KEY_ID", n + "_SECRET_ACCESS_KEY"
}

// oldStores reads fallback.stores: a list of entries in the file, or a JSON array of them in
// FEDICACHE_FALLBACK_STORES. An old bucket takes s3.timeout and the checksum keys of the
// bucket; the rest is its own.
func (r *reader) oldStores(bucket s3.Config, getenv func(string) string) []OldStore {
	const key = "fallback.stores"
	var items []any
	switch x := r.v.Get(key).(type) {
	case nil:
		return nil
	case []any:
		items = x
	case []map[string]any:
		for _, m := range x {
			items = append(items, m)
		}
	case string:
		if strings.TrimSpace(x) == "" {
			return nil
		}
		if err := json.Unmarshal([]byte(x), &items); err != nil {
			r.fail("%s: %v: in the environment, write a JSON array, e.g. %s='[{\"name\":\"wasabi\",\"endpoint\":\"https://s3.wasabisys.com\",\"bucket\":\"old-media\"}]'",
				key, err, EnvName(key))
			return nil
		}
	default:
		r.fail("%s: a list of old stores belongs here, e.g. %s: [{name: wasabi, endpoint: \"https://s3.wasabisys.com\", bucket: old-media}]", key, key)
		return nil
	}
	var out []OldStore
	seen := map[string]bool{origin.VolumeStoreName: r.str("fallback.dir") != ""}
	for i, item := range items {
		at := key + "[" + strconv.Itoa(i) + "]"
		m, ok := item.(map[string]any)
		if !ok {
			r.fail("%s: an old store is a map with a name and either dir or bucket, e.g. {name: wasabi, bucket: old-media}", at)
			continue
		}
		lower := map[string]any{}
		for k, v := range m {
			k = strings.ToLower(k)
			if !slices.Contains(oldStoreKeys, k) {
				r.fail("%s: unknown key %q: an old store has %s", at, k, strings.Join(oldStoreKeys, ", "))
				continue
			}
			lower[k] = v
		}
		if s, ok := r.oldStore(at, lower, bucket, getenv); ok {
			if seen[s.Name] {
				r.fail("%s: name %q is taken (the old volume of fallback.dir is %q): give each old store a name of its own", at, s.Name, origin.VolumeStoreName)
				continue
			}
			seen[s.Name] = true
			out = append(out, s)
		}
	}
	return out
}

// oldStore reads one entry of fallback.stores, at names it in problems.
func (r *reader) oldStore(at string, m map[string]any, bucket s3.Config, getenv func(string) string) (OldStore, bool) {
	ok := true
	str := func(k string) string {
		switch x := m[k].(type) {
		case nil:
			return ""
		case string:
			return strings.TrimSpace(x)
		case bool, int, int64, float64:
			return fmt.Sprint(x)
		}
		r.fail("%s.%s: a single value belongs here", at, k)
		ok = false
		return ""
	}
	boolean := func(k string, def bool) bool {
		s := str(k)
		if s == "" {
			return def
		}
		b, err := strconv.ParseBool(s)
		if err != nil {
			r.fail("%s.%s: %q is not a boolean: use true or false", at, k, s)
			ok = false
		}
		return b
	}
	s := OldStore{Name: str("name")}
	if !oldStoreName.MatchString(s.Name) {
		r.fail("%s.name: %q: name each old store with lower-case letters, digits and dashes (at most 32), e.g. wasabi; it shows in X-Cache-Store and the metrics", at, s.Name)
		return s, false
	}
	at += " (" + s.Name + ")"
	s.Dir = str("dir")
	b := str("bucket")
	switch {
	case s.Dir != "" && b != "":
		r.fail("%s: both dir and bucket are set: an old store is either a volume (dir) or a bucket", at)
		return s, false
	case s.Dir == "" && b == "":
		r.fail("%s: neither dir nor bucket is set: give the old volume's folder (dir: /mnt/old-system) or the old bucket (bucket: old-media, with its endpoint)", at)
		return s, false
	case s.Dir != "":
		for _, k := range oldStoreKeys {
			if k != "name" && k != "dir" && m[k] != nil {
				r.fail("%s.%s: an old volume (dir) has no %s: remove it, or make this entry a bucket", at, k, k)
				ok = false
			}
		}
		return s, ok
	}
	permission := str("permission")
	if _, set := m["permission"]; !set {
		permission = s3.ACLPublicRead
	}
	if permission != s3.ACLPublicRead && permission != "" {
		r.fail("%s.permission: %q: use public-read (objects whose ACL grants the public no read are hidden, as Mastodon's S3_PERMISSION public-read means) or \"\" (no check, a bucket without ACLs)", at, permission)
		ok = false
	}
	c := s3.Config{
		Endpoint:            str("endpoint"),
		Region:              str("region"),
		Bucket:              b,
		Prefix:              str("prefix"),
		ForcePathStyle:      boolean("force_path_style", true),
		AccessKeyID:         str("access_key_id"),
		SecretAccessKey:     str("secret_access_key"),
		Anonymous:           boolean("anonymous", false),
		RequirePublicRead:   permission == s3.ACLPublicRead,
		Timeout:             bucket.Timeout,
		RequestChecksum:     bucket.RequestChecksum,
		ResponseChecksum:    bucket.ResponseChecksum,
		DisableChecksumMode: bucket.DisableChecksumMode,
	}
	idVar, secretVar := OldStoreCredentialVariables(s.Name)
	if v := getenv(idVar); v != "" {
		c.AccessKeyID = v
	}
	if v := getenv(secretVar); v != "" {
		c.SecretAccessKey = v
	}
	if (c.AccessKeyID == "") != (c.SecretAccessKey == "") {
		r.fail("%s: only one of access_key_id and secret_access_key is set: set both (in the file, or in %s and %s from a Secret), or neither for the AWS credential chain",
			at, idVar, secretVar)
		ok = false
	}
	if err := c.Validate(); err != nil {
		for _, p := range problemsOf(err) {
			r.fail("%s: %s", at, oldStoreProblem(p))
		}
		ok = false
	}
	s.S3 = &c
	return s, ok
}

// oldStoreProblem words a problem of s3.Config.Validate, which names the bucket's keys
// ("s3.endpoint: ..."), with an old store's keys ("endpoint: ...").
func oldStoreProblem(p string) string {
	for _, k := range oldStoreKeys {
		p = strings.ReplaceAll(p, "s3."+k, k)
	}
	return p
}
