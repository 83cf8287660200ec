package config

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/fedicache/fedicache/origin/fielderr"
)

// fieldKeys maps each field of a library's Config that the library's errors may name (as
// *fielderr.Error: the package, then the field, "s3.Config.Bucket") to what sets it: a key of
// settings, or a flag ("--include"). An empty value is a field that no setting sets, which
// fedicache fills in itself: an error about it is reported as such, under the field's Go name.
// TestFieldKeys checks that every field a library's error names is here, and every key a
// setting.
var fieldKeys = map[string]string{
	"s3.Config.Endpoint":            "s3.endpoint",
	"s3.Config.Region":              "s3.region",
	"s3.Config.Bucket":              "s3.bucket",
	"s3.Config.Prefix":              "s3.prefix",
	"s3.Config.ForcePathStyle":      "s3.force_path_style",
	"s3.Config.AccessKeyID":         "s3.access_key_id",
	"s3.Config.SecretAccessKey":     "s3.secret_access_key",
	"s3.Config.Anonymous":           "s3.anonymous",
	"s3.Config.RequirePublicRead":   "s3.permission",
	"s3.Config.Timeout":             "s3.timeout",
	"s3.Config.RequestChecksum":     "s3.request_checksum",
	"s3.Config.ResponseChecksum":    "s3.response_checksum",
	"s3.Config.DisableChecksumMode": "s3.disable_checksum_mode",
	"s3.Config.MultipartThreshold":  "",
	"s3.Config.PartSize":            "",
	"s3.Config.MaxAttempts":         "",
	"s3.Config.MaxBackoff":          "",

	"memory.Config.MaxBytes":       "cache.memory.max_bytes",
	"memory.Config.MaxObjectBytes": "cache.memory.max_object_bytes",

	"disk.Config.Dir":        "cache.disk.dir",
	"disk.Config.MaxBytes":   "cache.disk.max_bytes",
	"disk.Config.RetryAfter": "",

	"state.Config.Prefix":       "state_prefix",
	"state.Config.Refresh":      "state_refresh",
	"state.Config.Retention":    "", // cache.ttl + cache.stale_if_error + an hour
	"state.Config.CompactEvery": "",
	"state.Config.Overlap":      "",

	"backfill.Config.Concurrency":      "backfill.concurrency",
	"backfill.Config.Rate":             "backfill.rate",
	"backfill.Config.Bandwidth":        "backfill.bandwidth",
	"backfill.Config.ACL":              "s3.acl",
	"backfill.Config.ConditionalWrite": "s3.conditional_write",
	"backfill.Config.NoContentMD5":     "s3.content_md5",
	"backfill.Config.Include":          "--include",
	"backfill.Config.Exclude":          "--exclude",
	"backfill.Config.StaleUploads":     "",

	"cluster.PeersConfig.Name":           "cluster.peers",
	"cluster.PeersConfig.Port":           "",
	"cluster.PeersConfig.Timeout":        "",
	"cluster.PeersConfig.Attempts":       "",
	"cluster.CloudflareConfig.ZoneID":    "cloudflare.zone_id",
	"cluster.CloudflareConfig.APIToken":  "cloudflare.api_token",
	"cluster.CloudflareConfig.BatchSize": "",
	"cluster.CloudflareConfig.Interval":  "",
	"cluster.CloudflareConfig.Rate":      "",
	"cluster.CloudflareConfig.Attempts":  "",
	"cluster.CloudflareConfig.BaseURL":   "",
}

// problemsOf returns the problems err reports, one a line, each *fielderr.Error in err (errors
// joined with errors.Join included) said with the keys of its fields: see keyedMessage.
func problemsOf(err error) []string {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []string
		for _, e := range j.Unwrap() {
			out = append(out, problemsOf(e)...)
		}
		return out
	}
	return strings.Split(Keyed(err).Error(), "\n")
}

// ErrorOf returns err, a library's error about its Config, as the invalid configuration it is:
// the process exits with status 2, and the problems name keys, not Go fields.
func ErrorOf(err error) *Error {
	return &Error{problemsOf(err)}
}

// FieldFlags returns the flags that fieldKeys names fields by ("--include"): flags of the
// backfill command, which must declare them.
func FieldFlags() []string {
	var flags []string
	for _, key := range fieldKeys {
		if strings.HasPrefix(key, "--") {
			flags = append(flags, key)
		}
	}
	slices.Sort(flags)
	return flags
}

// Keyed returns err with the message of the *fielderr.Error it holds, if any, said with the keys
// of its fields (keyedMessage), within whatever err wraps it in. errors.Is and errors.As see
// what err holds.
func Keyed(err error) error {
	var fe *fielderr.Error
	if !errors.As(err, &fe) {
		return err
	}
	msg := err.Error()
	if own := fe.Error(); strings.Contains(msg, own) {
		msg = strings.Replace(msg, own, keyedMessage(fe), 1)
	} else {
		msg = keyedMessage(fe)
	}
	return &keyedError{msg: msg, err: err}
}

// keyedError is an error whose message names keys where the one it wraps names Go fields.
type keyedError struct {
	msg string
	err error
}

func (e *keyedError) Error() string { return e.msg }
func (e *keyedError) Unwrap() error { return e.err }

// keyedMessage says fe for an admin: its field and the fields its text names by their keys (or
// flags), and the example written as the key is, e.g.
// `s3.bucket is empty: set the bucket's name, e.g. s3.bucket: mastodon-media`. A field that no
// setting sets keeps its Go name, package first, and the message says that no setting sets it.
func keyedMessage(fe *fielderr.Error) string {
	name := func(field string) string {
		if k := fieldKeys[fe.Pkg+"."+field]; k != "" {
			return k
		}
		return fe.Pkg + "." + field
	}
	msg := fe.Message(name)
	key := fieldKeys[fe.Pkg+"."+fe.Field]
	switch {
	case key == "":
		if fe.Example != "" {
			msg += ", e.g. " + fe.Example
		}
		msg += fmt.Sprintf(" (no setting sets %s.%s: fedicache filled it in, which is a fault to report)", fe.Pkg, fe.Field)
	case fe.Example == "":
	case strings.HasPrefix(key, "--"):
		msg += ", e.g. " + key + " '" + fe.Example + "'"
	default:
		msg += ", e.g. " + key + ": " + fe.Example
	}
	return msg
}
