package backfill

import (
	"path"
	"strings"
)

// selected reports whether key is to be considered at all: not under a denied prefix, matching
// an include glob when there are some, no exclude glob, and not skipped (deleted).
func (c *Config) selected(key string) bool {
	for _, d := range c.DenyPrefixes {
		if strings.HasPrefix(key, d) {
			return false
		}
	}
	if len(c.Include) > 0 && !matchAny(c.Include, key) {
		return false
	}
	if matchAny(c.Exclude, key) {
		return false
	}
	return c.Skip == nil || !c.Skip(key)
}

// matchAny reports whether key matches one of globs: a glob with a "/" against the whole key,
// a glob without one against the file name, and a glob ending in "/" as a key prefix.
func matchAny(globs []string, key string) bool {
	for _, g := range globs {
		switch {
		case strings.HasSuffix(g, "/"):
			if strings.HasPrefix(key, g) {
				return true
			}
		case strings.Contains(g, "/"):
			if ok, _ := path.Match(g, key); ok {
				return true
			}
		default:
			if ok, _ := path.Match(g, path.Base(key)); ok {
				return true
			}
		}
	}
	return false
}
