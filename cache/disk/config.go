package disk

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/fedicache/fedicache/origin/fielderr"
)

// Defaults of Config.
const (
	DefaultMaxBytes   = 10 << 30
	DefaultRetryAfter = time.Minute
)

// Config configures a Disk. Only Dir must be set.
type Config struct {
	// Dir is the cache's directory, created (mode 0750) when missing. It must not be empty.
	Dir string
	// MaxBytes bounds what the entries' files take (prefix, header and body). Zero means 10 GiB.
	MaxBytes int64
	// Logger receives warnings (dropped entries, writes turned off) and the rebuild's summary.
	// Zero means slog.Default().
	Logger *slog.Logger
	// RetryAfter is how long writes stay off after the disk reported full, over quota or
	// read-only. Zero means 1 minute.
	RetryAfter time.Duration
}

// Validate reports the first thing wrong with c: a *fielderr.Error naming the field, what is
// wrong and an example of a right value. Of Dir it checks, without creating anything, that it
// is not a file and not under one; whether it can be created is for Open to find.
func (c Config) Validate() error {
	switch {
	case c.Dir == "":
		return &fielderr.Error{Pkg: "disk", Field: "Config.Dir", Problem: "is empty",
			Fix: "set the directory of the disk cache", Example: "/var/cache/fedicache"}
	case c.MaxBytes < 0:
		return &fielderr.Error{Pkg: "disk", Field: "Config.MaxBytes", Value: fmt.Sprint(c.MaxBytes),
			Problem: "is negative", Fix: "set the cache's size in bytes, or 0 for the default", Example: fmt.Sprint(int64(DefaultMaxBytes))}
	case c.RetryAfter < 0:
		return &fielderr.Error{Pkg: "disk", Field: "Config.RetryAfter", Value: c.RetryAfter.String(),
			Problem: "is negative", Fix: "set a positive duration, or 0 for the default", Example: DefaultRetryAfter.String()}
	}
	// The nearest part of Dir that exists must be a directory.
	for p := filepath.Clean(c.Dir); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err == nil && !fi.IsDir() {
			return &fielderr.Error{Pkg: "disk", Field: "Config.Dir", Value: fmt.Sprintf("%q", c.Dir),
				Problem: "is a file, or under one", Fix: "set a directory, or a path where one can be created",
				Example: "/var/cache/fedicache"}
		}
		if err == nil || filepath.Dir(p) == p {
			return nil // a directory, or nothing to be found: Open says what is wrong
		}
	}
}
