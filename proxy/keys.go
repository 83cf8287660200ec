package proxy

import (
	"bytes"
	"errors"
	"strings"
	"unicode/utf8"
)

// MaxKeyBytes is the longest key the front accepts, as S3 does.
const MaxKeyBytes = 1024

// Errors of key mapping: errBadKey answers 400, errNoKey 404 without a listing.
var (
	errBadKey = errors.New("proxy: invalid key")
	errNoKey  = errors.New("proxy: no object key (a listing or a folder)")
	errDenied = errors.New("proxy: key under a denied prefix")
)

// keyMapper turns a request path into an object key.
type keyMapper struct {
	strip []string // normalised: leading "/", no trailing "/"
	deny  []string
}

func newKeyMapper(strip, deny []string) keyMapper {
	m := keyMapper{deny: deny}
	for _, p := range strip {
		p = "/" + strings.Trim(p, "/")
		if p != "/" {
			m.strip = append(m.strip, p)
		}
	}
	return m
}

// key maps the raw request target (path and query as the client sent them) to an object key:
// the query is dropped, the first matching strip prefix removed, the rest percent-decoded once
// and validated. It returns errBadKey for a key that is not valid, errNoKey for the root and any
// path ending in "/", and errDenied for a key under a denied prefix.
func (m *keyMapper) key(target []byte) (string, error) {
	k, err := m.appendKey(nil, target)
	return string(k), err
}

// appendKey is key writing the key into dst, without allocating when dst has room.
func (m *keyMapper) appendKey(dst, target []byte) ([]byte, error) {
	path, err := m.path(target)
	if err != nil {
		return dst[:0], err
	}
	return m.decode(dst, path)
}

// path returns the part of target that becomes the key, still percent-encoded: the query
// dropped, the absolute form and the first matching strip prefix removed, without the leading
// "/". It returns errBadKey for a target that is no path, errNoKey for the root and a path
// ending in "/".
func (m *keyMapper) path(target []byte) ([]byte, error) {
	if i := bytes.IndexByte(target, '?'); i >= 0 {
		target = target[:i]
	}
	if i := bytes.IndexByte(target, '#'); i >= 0 {
		target = target[:i]
	}
	if len(target) > 0 && target[0] != '/' {
		target = stripAbsoluteForm(target)
	}
	if len(target) == 0 || target[0] != '/' {
		return nil, errBadKey
	}
	path := target
	for _, p := range m.strip {
		if len(path) >= len(p) && string(path[:len(p)]) == p && (len(path) == len(p) || path[len(p)] == '/') {
			path = path[len(p):]
			break
		}
	}
	if len(path) > 0 && path[0] == '/' {
		path = path[1:]
	}
	if len(path) == 0 || path[len(path)-1] == '/' {
		return nil, errNoKey
	}
	return path, nil
}

// decode percent-decodes path (as m.path returns it) into dst and checks the key it makes.
func (m *keyMapper) decode(dst, path []byte) ([]byte, error) {
	key, ok := appendUnescaped(dst[:0], path)
	if !ok {
		return dst[:0], errBadKey
	}
	if err := m.check(key); err != nil {
		return dst[:0], err
	}
	return key, nil
}

// check validates a decoded key (see validateKey) and refuses one under a denied prefix, and
// one ending in "/" (an escaped slash at the end of the path).
func (m *keyMapper) check(key []byte) error {
	if len(key) > 0 && key[len(key)-1] == '/' {
		return errNoKey
	}
	if err := validateKey(key); err != nil {
		return err
	}
	for _, d := range m.deny {
		if len(key) >= len(d) && string(key[:len(d)]) == d {
			return errDenied
		}
	}
	return nil
}

// stripAbsoluteForm turns "http://host/path" (a request target in absolute form) into "/path".
func stripAbsoluteForm(t []byte) []byte {
	for _, scheme := range [...]string{"http://", "https://"} {
		if len(t) >= len(scheme) && strings.EqualFold(string(t[:len(scheme)]), scheme) {
			rest := t[len(scheme):]
			if i := bytes.IndexByte(rest, '/'); i >= 0 {
				return rest[i:]
			}
			return []byte("/")
		}
	}
	return t
}

// Classes of the bytes of a decoded key, for validateKey.
const (
	keyPlain = iota // printable ASCII other than '/' and '\\'
	keySlash        // '/', which ends a segment
	keyHigh         // a byte of a multi-byte UTF-8 sequence, checked as UTF-8 at the end
	keyBad          // a control byte or a backslash
)

// keyBytes is the class of every byte value.
var keyBytes = func() (t [256]uint8) {
	for c := range t {
		switch {
		case c < 0x20 || c == 0x7f || c == '\\':
			t[c] = keyBad
		case c == '/':
			t[c] = keySlash
		case c >= utf8.RuneSelf:
			t[c] = keyHigh
		}
	}
	return t
}()

// validateKey checks a decoded key: at most MaxKeyBytes, valid UTF-8, no control byte, no
// backslash, no empty, "." or ".." segment. It reads the key once, byte by byte from a table;
// only a key with non-ASCII bytes is read again, as UTF-8.
func validateKey(key []byte) error {
	if len(key) == 0 || len(key) > MaxKeyBytes {
		return errBadKey
	}
	ascii, segStart := true, 0
	for i, c := range key {
		switch keyBytes[c] {
		case keyPlain:
		case keySlash:
			if badSegment(key[segStart:i]) {
				return errBadKey
			}
			segStart = i + 1
		case keyHigh:
			ascii = false
		default:
			return errBadKey
		}
	}
	if badSegment(key[segStart:]) || !ascii && !utf8.Valid(key) {
		return errBadKey
	}
	return nil
}

// badSegment reports whether seg, a segment of a key, is empty, "." or "..".
func badSegment(seg []byte) bool {
	switch len(seg) {
	case 0:
		return true
	case 1:
		return seg[0] == '.'
	case 2:
		return seg[0] == '.' && seg[1] == '.'
	}
	return false
}

// appendUnescaped appends s percent-decoded once ('+' stays '+') to dst. It reports false for a
// malformed escape.
func appendUnescaped(dst, s []byte) ([]byte, bool) {
	for {
		i := bytes.IndexByte(s, '%')
		if i < 0 {
			return append(dst, s...), true
		}
		dst = append(dst, s[:i]...)
		if i+2 >= len(s) {
			return dst, false
		}
		hi, ok1 := unhex(s[i+1])
		lo, ok2 := unhex(s[i+2])
		if !ok1 || !ok2 {
			return dst, false
		}
		dst = append(dst, hi<<4|lo)
		s = s[i+3:]
	}
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
