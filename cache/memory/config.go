package memory

import (
	"fmt"

	"github.com/fedicache/fedicache/origin/fielderr"
)

// Defaults of Config.
const (
	DefaultMaxBytes       = 256 << 20
	DefaultMaxObjectBytes = 1 << 20
)

// Config sizes the memory tier. The zero value works.
type Config struct {
	// MaxBytes bounds what the tier holds, counting for each entry its body, its key and
	// about 450 bytes of bookkeeping. Zero means 256 MiB.
	MaxBytes int64
	// MaxObjectBytes is the largest body the tier stores; Put refuses larger ones. Zero means
	// 1 MiB, or MaxBytes when that is smaller.
	MaxObjectBytes int64
}

// Validate reports the first thing wrong with c: a *fielderr.Error naming the field, what is
// wrong and an example of a right value.
func (c Config) Validate() error {
	switch {
	case c.MaxBytes < 0:
		return &fielderr.Error{Pkg: "memory", Field: "Config.MaxBytes", Value: fmt.Sprint(c.MaxBytes),
			Problem: "is negative", Fix: "set a size in bytes, or 0 for the default", Example: fmt.Sprint(DefaultMaxBytes)}
	case c.MaxObjectBytes < 0:
		return &fielderr.Error{Pkg: "memory", Field: "Config.MaxObjectBytes", Value: fmt.Sprint(c.MaxObjectBytes),
			Problem: "is negative", Fix: "set a size in bytes, or 0 for the default", Example: fmt.Sprint(DefaultMaxObjectBytes)}
	}
	if d := c.filled(); d.MaxObjectBytes > d.MaxBytes {
		return &fielderr.Error{Pkg: "memory", Field: "Config.MaxObjectBytes", Value: fmt.Sprint(d.MaxObjectBytes),
			Problem: fmt.Sprintf("is larger than {Config.MaxBytes} (%d)", d.MaxBytes),
			Fix:     "lower it, or raise {Config.MaxBytes}", Example: fmt.Sprint(min(DefaultMaxObjectBytes, d.MaxBytes))}
	}
	return nil
}

// withDefaults validates c and fills in its defaults.
func (c Config) withDefaults() (Config, error) {
	if err := c.Validate(); err != nil {
		return c, err
	}
	return c.filled(), nil
}

// filled returns c with its zero fields filled in: the one place defaults live.
func (c Config) filled() Config {
	if c.MaxBytes == 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.MaxObjectBytes == 0 {
		c.MaxObjectBytes = min(DefaultMaxObjectBytes, c.MaxBytes)
	}
	return c
}

// Sizing of ristretto's admission counters: about ten per entry the tier holds when full
// (ristretto's own advice), guessing entries from an average object of avgObjectBytes.
const (
	avgObjectBytes = 16 << 10
	countersPerKey = 10
	minCounters    = 1 << 10
	maxCounters    = 1 << 23 // about 25 MB of counters, reached at a 13 GiB tier
)

// numCounters returns ristretto's NumCounters for a tier of maxBytes.
func numCounters(maxBytes int64) int64 {
	return min(max(maxBytes/avgObjectBytes*countersPerKey, minCounters), maxCounters)
}
