package memory

import "fmt"

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

// withDefaults validates c and fills in its defaults. Its errors name the configuration key,
// what is wrong and an example of a right value.
func (c Config) withDefaults() (Config, error) {
	switch {
	case c.MaxBytes < 0:
		return c, fmt.Errorf("memory: cache.memory.max_bytes %d is negative: set a size in bytes, "+
			"e.g. cache.memory.max_bytes: 268435456 (256 MiB), or 0 for that default", c.MaxBytes)
	case c.MaxObjectBytes < 0:
		return c, fmt.Errorf("memory: cache.memory.max_object_bytes %d is negative: set a size in bytes, "+
			"e.g. cache.memory.max_object_bytes: 1048576 (1 MiB), or 0 for that default", c.MaxObjectBytes)
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.MaxObjectBytes == 0 {
		c.MaxObjectBytes = min(DefaultMaxObjectBytes, c.MaxBytes)
	}
	if c.MaxObjectBytes > c.MaxBytes {
		return c, fmt.Errorf("memory: cache.memory.max_object_bytes %d is larger than cache.memory.max_bytes %d: "+
			"lower it, e.g. cache.memory.max_object_bytes: %d, or raise cache.memory.max_bytes",
			c.MaxObjectBytes, c.MaxBytes, min(DefaultMaxObjectBytes, c.MaxBytes))
	}
	return c, nil
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
