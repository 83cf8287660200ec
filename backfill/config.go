// Package backfill copies old stores into the bucket: the old volume, or an old bucket (a
// Source). It walks the source and lists the bucket in the same key order and merge-joins the
// two (one list request per thousand keys, not one HEAD per object), copies what the bucket
// lacks with a bounded pool of workers (from an old bucket, server-side when the bucket can),
// never overwrites (other bytes under a key are reported as a conflict, conditional writes
// keep two copiers from clobbering each other), and is resumable: a rerun copies only what is
// still missing. Nothing ever writes to or deletes from a source.
package backfill

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path"
	"slices"
	"time"

	"github.com/fedicache/fedicache/origin"
	"github.com/fedicache/fedicache/origin/fielderr"
)

// MastodonCacheControl is the Cache-Control Mastodon stores its uploads with.
const MastodonCacheControl = "public, max-age=315576000, immutable"

// MastodonACL is the canned ACL Mastodon stores its uploads with by default (its S3_PERMISSION),
// the ACL to give Config.ACL for a bucket that has ACLs.
const MastodonACL = "public-read"

// Defaults of Config.
const (
	DefaultConcurrency  = 8
	DefaultStaleUploads = 24 * time.Hour
)

// cannedACLs are the values Config.ACL may take: the canned ACLs of objects, and "" for none.
var cannedACLs = []string{"", MastodonACL, "private", "authenticated-read", "bucket-owner-read", "bucket-owner-full-control"}

// Volume is what the backfill reads: the old volume.
type Volume interface {
	// Walk visits every regular file in the byte order of keys, hidden files included.
	Walk(ctx context.Context, fn func(key string, info fs.FileInfo) error) error
	// OpenFile opens key's file for reading.
	OpenFile(key string) (*os.File, fs.FileInfo, error)
}

// Bucket is what the backfill writes to.
type Bucket interface {
	origin.Lister
	origin.Putter
}

// staleUploadAborter is the optional ability of a bucket to clean up multipart uploads that a
// killed copier left behind.
type staleUploadAborter interface {
	AbortStaleUploads(ctx context.Context, olderThan time.Duration) (int, error)
}

// Config tunes a run. The zero value copies with 8 workers, no limits, no ACL, Content-MD5 on
// and conditional writes off.
type Config struct {
	// Concurrency is the number of files copied at once. Zero means DefaultConcurrency, 8.
	Concurrency int
	// Bandwidth caps the bytes read from the source per second (a server-side copy reads
	// none). Zero means no cap.
	Bandwidth int64
	// Rate caps the files started per second. Zero means no cap.
	Rate float64
	// Include, when not empty, copies only keys matching one of these globs; Exclude skips
	// keys matching one. A glob with a "/" matches the whole key (path.Match), one without
	// matches the file name.
	Include, Exclude []string
	// DenyPrefixes are key prefixes never copied (user exports, old imports).
	DenyPrefixes []string
	// Skip, when set, names keys never copied: those Mastodon deleted (tombstones).
	Skip func(key string) bool
	// ACL is the canned ACL of copied objects (Mastodon's S3_PERMISSION, MastodonACL by
	// default there), also of every object of a source without ACLs; files hidden on the volume
	// and private objects of an old bucket get "private". Empty sends no ACL, for buckets
	// without ACLs: hidden and private objects are then skipped and listed.
	ACL string
	// CacheControl is stored with each object. Zero means MastodonCacheControl.
	CacheControl string
	// NoContentMD5 turns off the Content-MD5 that lets the bucket check every single-part
	// upload's bytes.
	NoContentMD5 bool
	// ConditionalWrite sends If-None-Match: * so that an object another copier stored first is
	// never overwritten (for providers that support it).
	ConditionalWrite bool
	// DryRun decides and reports without writing anything.
	DryRun bool
	// Ranges, when set, keeps the record of each run's ranges (see RangeStore): a rerun
	// leaves the bucket's listing alone over the ranges of the source that are unchanged since a
	// run found them all in the bucket. Full ignores the record (the run still saves its own).
	Ranges RangeStore
	Full   bool
	// StaleUploads is the age beyond which incomplete multipart uploads under the prefix are
	// aborted at the start of a run. Zero means DefaultStaleUploads, 24h.
	StaleUploads time.Duration
	// OnCopied, when set, is called with each key stored (serve drops it from its not-found
	// memory), from the workers: concurrently.
	OnCopied func(key string)
	// OnPlan, when set, is called in DryRun mode with each key that would be copied, in key
	// order, from one goroutine. The ACL of an old bucket's object is read only when it is
	// copied, so a dry run plans each with ACL (hidden files of a volume are known: private).
	OnPlan func(key string, size int64, acl string)
	// Logger receives failures and conflicts. Zero means slog.Default().
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.Concurrency <= 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.CacheControl == "" {
		c.CacheControl = MastodonCacheControl
	}
	if c.StaleUploads <= 0 {
		c.StaleUploads = DefaultStaleUploads
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate reports the first thing wrong with c: a *fielderr.Error naming the field, what is
// wrong and an example of a right value.
func (c Config) Validate() error {
	switch {
	case c.Concurrency < 0:
		return &fielderr.Error{Pkg: "backfill", Field: "Config.Concurrency", Value: fmt.Sprint(c.Concurrency),
			Problem: "is negative", Fix: "set the number of files copied at once, or 0 for the default", Example: "16"}
	case c.Bandwidth < 0:
		return &fielderr.Error{Pkg: "backfill", Field: "Config.Bandwidth", Value: fmt.Sprint(c.Bandwidth),
			Problem: "is negative", Fix: "set bytes per second, or 0 for no cap", Example: "52428800 (50 MiB)"}
	case c.Rate < 0 || math.IsNaN(c.Rate):
		return &fielderr.Error{Pkg: "backfill", Field: "Config.Rate", Value: fmt.Sprint(c.Rate),
			Problem: "is not a rate", Fix: "set files started per second, or 0 for no cap", Example: "200"}
	case c.StaleUploads < 0:
		return &fielderr.Error{Pkg: "backfill", Field: "Config.StaleUploads", Value: c.StaleUploads.String(),
			Problem: "is negative", Fix: "set a positive duration, or 0 for the default", Example: DefaultStaleUploads.String()}
	case !slices.Contains(cannedACLs, c.ACL):
		return &fielderr.Error{Pkg: "backfill", Field: "Config.ACL", Value: fmt.Sprintf("%q", c.ACL),
			Problem: "is not a canned ACL", Fix: "set " + MastodonACL + " (Mastodon's default S3_PERMISSION), private, " +
				"or \"\" to send none (buckets without ACLs)", Example: MastodonACL}
	}
	for _, g := range []struct {
		field, example string
		globs          []string
	}{{"Config.Include", "media_attachments/*", c.Include}, {"Config.Exclude", "*.mp4", c.Exclude}} {
		for _, glob := range g.globs {
			if _, err := path.Match(glob, ""); err != nil {
				return &fielderr.Error{Pkg: "backfill", Field: g.field, Value: fmt.Sprintf("%q", glob), Problem: "is not a glob",
					Err: err, Fix: "write it as path.Match reads it", Example: g.example}
			}
		}
	}
	return nil
}
