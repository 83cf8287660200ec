package config

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
)

// envPrefix starts the name of every environment variable that sets a key.
const envPrefix = "FEDICACHE_"

// oldStoreCredential matches the variables that give an old bucket of fallback.stores its
// credentials (OldStoreCredentialVariables).
var oldStoreCredential = regexp.MustCompile(`^FEDICACHE_FALLBACK_[A-Z0-9_]+_(ACCESS_KEY_ID|SECRET_ACCESS_KEY)$`)

// otherVariables are the FEDICACHE_* variables that set no key but are read by fedicache itself
// (FEDICACHE_CONFIG, the default of --config) or by its tests and CI: none of them is reported.
var otherVariables = []string{
	"FEDICACHE_CONFIG",
	"FEDICACHE_UPDATE_README",       // rewrites README's configuration table (readme_test.go)
	"FEDICACHE_BROWSER",             // the status page's browser test
	"FEDICACHE_ARTIFACTS",           // where that test keeps its screenshots
	"FEDICACHE_FAULT_LONG",          // the long fault cases of package proxy
	"FEDICACHE_TEST_BACKFILL_CHILD", // the backfill test's child process
}

// EnvName returns the environment variable that sets key: FEDICACHE_ + the key in capitals,
// "_" for ".".
func EnvName(key string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// unknownVariables returns a warning for each FEDICACHE_* variable of environ (as os.Environ
// gives it) that names no setting, with the closest setting's variable and key. They are
// warnings, not errors like unknown keys of the file: the environment of a pod is often shared
// with other versions and tools, and a variable that sets nothing harms nothing but the intent
// of whoever set it, which the warning shows.
func unknownVariables(environ []string) []string {
	known := map[string]bool{}
	for _, s := range settings {
		known[EnvName(s.key)] = true
	}
	for _, n := range otherVariables {
		known[n] = true
	}
	var out []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(strings.ToUpper(name), envPrefix) || known[name] || oldStoreCredential.MatchString(name) {
			continue
		}
		if key, ok := closestVariable(name); ok {
			out = append(out, fmt.Sprintf("%s is not a setting (did you mean %s, %s?); it is ignored", name, EnvName(key), key))
		} else {
			out = append(out, fmt.Sprintf("%s is not a setting (no setting's variable is close: README's configuration table lists them all); it is ignored", name))
		}
	}
	slices.Sort(out)
	return out
}

// closestVariable returns the key whose variable is nearest to name (letter case aside), when
// it is near enough to be what was meant. A name that leaves words of a variable out, or adds
// some, keeping the others in order (FEDICACHE_S3_SECRET_KEY, FEDICACHE_BUCKET,
// FEDICACHE_S3_BUCKET_NAME) is nearest to the variable with the fewest words left out or added.
// Else the nearest is the variable fewest edits away (Levenshtein), when those are at most two,
// or two in five of the variable's letters after FEDICACHE_ for the longer names.
func closestVariable(name string) (string, bool) {
	n := strings.TrimPrefix(strings.ToUpper(name), envPrefix)
	words := strings.Split(n, "_")
	best, bestWords := "", 1<<30
	for _, s := range settings {
		sw := strings.Split(strings.TrimPrefix(EnvName(s.key), envPrefix), "_")
		if d := len(sw) - len(words); (subsequence(words, sw) || subsequence(sw, words)) && abs(d) < bestWords {
			best, bestWords = s.key, abs(d)
		}
	}
	if best != "" {
		return best, true
	}
	bestD := 1 << 30
	for _, s := range settings {
		if d := editDistance(n, strings.TrimPrefix(EnvName(s.key), envPrefix)); d < bestD {
			best, bestD = s.key, d
		}
	}
	limit := max(2, len(strings.TrimPrefix(EnvName(best), envPrefix))*2/5)
	return best, best != "" && bestD <= limit
}

// subsequence reports whether every word of sub is in words, in the same order.
func subsequence(sub, words []string) bool {
	i := 0
	for _, w := range words {
		if i < len(sub) && sub[i] == w {
			i++
		}
	}
	return i == len(sub)
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// emptyVariables returns the keys whose variable is set but empty. Such a variable sets the
// empty value, over the file and the default, as `key: ""` in the file does.
func emptyVariables() []string {
	var keys []string
	for _, s := range settings {
		if v, ok := os.LookupEnv(EnvName(s.key)); ok && v == "" {
			keys = append(keys, s.key)
		}
	}
	return keys
}

// emptyVariableHint is appended to a problem of key when key's variable is set but empty: an
// empty value is valid for text and lists, not for numbers, durations, sizes and booleans.
func emptyVariableHint(key string) string {
	switch d := Default(key).(type) {
	case string:
		if d != "" {
			return fmt.Sprintf(" (%s is set but empty: unset it for the default, %s, or give it a value)", EnvName(key), d)
		}
	case int, bool:
		return fmt.Sprintf(" (%s is set but empty: unset it for the default, %v, or give it a value)", EnvName(key), d)
	}
	return fmt.Sprintf(" (%s is set but empty: give it a value, or unset it)", EnvName(key))
}
