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
	if i := bytes.IndexByte(target, '?'); i >= 0 {
		target = target[:i]
	}
	if i := bytes.IndexByte(target, '#'); i >= 0 {
		target = target[:i]
	}
	target = stripAbsoluteForm(target)
	if len(target) == 0 || target[0] != '/' {
		return dst[:0], errBadKey
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
		return dst[:0], errNoKey
	}
	key, ok := appendUnescaped(dst[:0], path)
	if !ok {
		return dst[:0], errBadKey
	}
	if key[len(key)-1] == '/' {
		return dst[:0], errNoKey
	}
	if err := validateKey(key); err != nil {
		return dst[:0], err
	}
	for _, d := range m.deny {
		if len(key) >= len(d) && string(key[:len(d)]) == d {
			return dst[:0], errDenied
		}
	}
	return key, nil
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

// validateKey checks a decoded key: at most MaxKeyBytes, valid UTF-8, no control byte, no
// backslash, no empty, "." or ".." segment.
func validateKey(key []byte) error {
	if len(key) == 0 || len(key) > MaxKeyBytes || !utf8.Valid(key) {
		return errBadKey
	}
	segStart := 0
	for i := 0; i <= len(key); i++ {
		if i < len(key) {
			c := key[i]
			if c < 0x20 || c == 0x7f || c == '\\' {
				return errBadKey
			}
			if c != '/' {
				continue
			}
		}
		switch seg := key[segStart:i]; {
		case len(seg) == 0, len(seg) == 1 && seg[0] == '.', len(seg) == 2 && seg[0] == '.' && seg[1] == '.':
			return errBadKey
		}
		segStart = i + 1
	}
	return nil
}

// appendUnescaped appends s percent-decoded once ('+' stays '+') to dst. It reports false for a
// malformed escape.
func appendUnescaped(dst, s []byte) ([]byte, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			dst = append(dst, s[i])
			continue
		}
		if i+2 >= len(s) {
			return dst, false
		}
		hi, ok1 := unhex(s[i+1])
		lo, ok2 := unhex(s[i+2])
		if !ok1 || !ok2 {
			return dst, false
		}
		dst = append(dst, hi<<4|lo)
		i += 2
	}
	return dst, true
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
