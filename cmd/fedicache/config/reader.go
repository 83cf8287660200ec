package config

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/viper"
)

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
		r.fail("%s: a list or map where a single value belongs: write e.g. %s: %v", key, key, Default(key))
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
	r.fail("%s: %q is not a positive duration: use a number with a unit, e.g. %s: %v", key, fmt.Sprint(raw), key, Default(key))
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
		r.fail("%s: %q is not a size of at least %d bytes: use a number with a unit, e.g. %s: %v", key, fmt.Sprint(raw), min, key, Default(key))
		return 0
	}
	return int64(n)
}

// float reads key as a number, from YAML (0.5, 1) or the environment ("0.5"), with the raw
// value for the problems that name it.
func (r *reader) float(key string) (f float64, raw any, err error) {
	raw = r.v.Get(key)
	switch x := raw.(type) {
	case int:
		f = float64(x)
	case int64:
		f = float64(x)
	case float64:
		f = x
	case string:
		f, err = strconv.ParseFloat(strings.TrimSpace(x), 64)
	default:
		err = errors.New("not a number")
	}
	return f, raw, err
}

func (r *reader) nonNegativeFloat(key, example string) float64 {
	f, raw, err := r.float(key)
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
		r.fail("%s: %q is not a whole number of at least %d: use e.g. %s: %v", key, fmt.Sprint(raw), min, key, Default(key))
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
		r.fail("%s: %q is not host:port: use e.g. %s: \"%v\"", key, s, key, Default(key))
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		r.fail("%s: port %q is not a number from 0 to 65535: use e.g. %s: \"%v\"", key, port, key, Default(key))
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
