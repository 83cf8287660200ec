package s3

// The parser of the lean ListObjectsV2's pages: a byte scanner over one whole page.

import (
	"bytes"
	"errors"
	"fmt"
	"unicode/utf8"
)

// listPage is one page of a listing, as List goes through it.
type listPage struct {
	objects   []listedObject
	truncated bool   // IsTruncated: more pages follow
	next      string // NextContinuationToken
}

// listedObject is one <Contents> of a page. key (the bucket key) and etag are one allocation.
type listedObject struct {
	key, etag string
	size      int64
}

// listParser reads the pages of a ListObjectsV2 answer: a byte scanner over the whole body,
// which reads the elements List needs in any order, skips the others (Owner, StorageClass,
// ChecksumAlgorithm, RestoreStatus, CommonPrefixes, ...) whatever they hold, decodes XML's
// entities and CDATA sections, and fails, rather than return a short page, on a body that
// ends early, that says IsTruncated neither way, or whose KeyCount is not the number of keys
// it holds. Its buffers serve page after page.
type listParser struct {
	buf []byte // the page's body
	pos int    // where the scanner stands in buf

	// What the page says. Texts stay spans of buf until the page is read whole, since
	// EncodingType, which says how to read the keys, may follow them.
	objects    []rawObject
	prefixes   int   // <CommonPrefixes>, which KeyCount counts too
	keyCount   int64 // -1: no <KeyCount>
	truncated  int   // -1: no <IsTruncated>; 0 false; 1 true
	token      span
	hasToken   bool
	urlEncoded bool // <EncodingType>url</EncodingType>: keys are URL-encoded

	text   []byte // a decoded text (textOf)
	joined []byte // a key and its ETag, decoded (decode)
	page   listPage
}

// span is a text of the page: buf[start:end], raw.
type span struct {
	start, end int
	// plain says the raw text is the text: it holds no entity, CDATA section or carriage
	// return (which XML reads as a line feed).
	plain bool
}

// rawObject is a <Contents> read but not yet decoded.
type rawObject struct {
	key, etag span
	size      int64
}

// maxSkipDepth bounds how deep the elements skipped may nest (S3's nest two deep).
const maxSkipDepth = 32

// The XML markup the scanner knows.
var (
	utf8BOM      = []byte("\xef\xbb\xbf")
	cdataStart   = []byte("<![CDATA[")
	cdataEnd     = []byte("]]>")
	commentStart = []byte("<!--")
	commentEnd   = []byte("-->")
	piStart      = []byte("<?")
	piEnd        = []byte("?>")
)

// parse reads body, a whole page, and returns it, valid until the next parse.
func (p *listParser) parse(body []byte) (*listPage, error) {
	p.buf, p.pos = body, 0
	p.objects = p.objects[:0]
	p.prefixes, p.keyCount, p.truncated = 0, -1, -1
	p.token, p.hasToken, p.urlEncoded = span{}, false, false
	if err := p.document(); err != nil {
		return nil, err
	}
	return p.decode()
}

// document reads the whole body: the prolog, <ListBucketResult> and what may follow it.
func (p *listParser) document() error {
	if bytes.HasPrefix(p.buf, utf8BOM) {
		p.pos = len(utf8BOM)
	}
	if err := p.misc(); err != nil {
		return err
	}
	if p.pos >= len(p.buf) {
		return p.endsEarly()
	}
	if p.buf[p.pos] != '<' {
		return fmt.Errorf("the listing page is not XML: it starts with %q", snippet(p.buf[p.pos:]))
	}
	name, empty, err := p.startTag()
	if err != nil {
		return err
	}
	if string(localName(name)) != "ListBucketResult" {
		return fmt.Errorf("the listing page is a <%s>, not a <ListBucketResult>", name)
	}
	for !empty {
		child, childEmpty, done, err := p.next(name)
		if err != nil {
			return err
		}
		if done {
			break
		}
		if err := p.result(child, childEmpty); err != nil {
			return err
		}
	}
	if err := p.misc(); err != nil {
		return err
	}
	if p.pos != len(p.buf) {
		return fmt.Errorf("the listing page goes on after its </ListBucketResult>: %q", snippet(p.buf[p.pos:]))
	}
	if p.truncated < 0 {
		return errors.New("the listing page says neither way whether more follow: it has no <IsTruncated>")
	}
	if n := len(p.objects) + p.prefixes; p.keyCount >= 0 && p.keyCount != int64(n) {
		return fmt.Errorf("the listing page says <KeyCount>%d</KeyCount> and holds %d keys", p.keyCount, n)
	}
	return nil
}

// result reads the child name of <ListBucketResult>, whose start tag was just read (empty:
// it was <name/>).
func (p *listParser) result(name []byte, empty bool) error {
	switch string(localName(name)) {
	case "Contents":
		return p.contents(name, empty)
	case "CommonPrefixes":
		p.prefixes++
	case "KeyCount":
		n, err := p.count(name, empty)
		p.keyCount = n
		return err
	case "IsTruncated":
		v, err := p.value(name, empty)
		if err != nil {
			return err
		}
		switch string(v) {
		case "true":
			p.truncated = 1
		case "false":
			p.truncated = 0
		default:
			return fmt.Errorf("the listing page says <IsTruncated>%s</IsTruncated>", snippet(v))
		}
		return nil
	case "NextContinuationToken":
		var err error
		p.token, err = p.textSpan(name, empty)
		p.hasToken = true
		return err
	case "EncodingType":
		v, err := p.value(name, empty)
		p.urlEncoded = bytes.EqualFold(v, []byte("url"))
		return err
	}
	return p.skip(name, empty, 0)
}

// contents reads a <Contents> element, whose start tag was just read.
func (p *listParser) contents(name []byte, empty bool) error {
	var (
		o               rawObject
		hasKey, hasSize bool
	)
	for !empty {
		child, childEmpty, done, err := p.next(name)
		if err != nil {
			return err
		}
		if done {
			break
		}
		switch string(localName(child)) {
		case "Key":
			if hasKey {
				return fmt.Errorf("the listing page has a <Contents> with two <Key>s, after %d keys", len(p.objects))
			}
			o.key, err = p.textSpan(child, childEmpty)
			hasKey = true
		case "ETag":
			o.etag, err = p.textSpan(child, childEmpty)
		case "Size":
			o.size, err = p.count(child, childEmpty)
			hasSize = true
		default:
			err = p.skip(child, childEmpty, 0)
		}
		if err != nil {
			return err
		}
	}
	if !hasKey || !hasSize {
		return fmt.Errorf("the listing page has a <Contents> without a <Key> or a <Size>, after %d keys", len(p.objects))
	}
	p.objects = append(p.objects, o)
	return nil
}

// decode turns the page read into p.page: keys decoded (from XML, then from the URL encoding
// when the page says so) and the continuation token.
func (p *listParser) decode() (*listPage, error) {
	page := &p.page
	page.objects = page.objects[:0]
	page.truncated = p.truncated == 1
	page.next = ""
	if p.hasToken {
		t, err := p.textOf(p.token)
		if err != nil {
			return nil, fmt.Errorf("the listing page's <NextContinuationToken>: %w", err)
		}
		page.next = string(t)
	}
	for i, o := range p.objects {
		b, err := p.appendKey(p.joined[:0], o.key)
		if err != nil {
			return nil, fmt.Errorf("the listing page's key %q (key %d): %w", snippet(p.buf[o.key.start:o.key.end]), i+1, err)
		}
		k := len(b)
		if b, err = p.appendText(b, o.etag); err != nil {
			return nil, fmt.Errorf("the listing page's ETag %q (key %d): %w", snippet(p.buf[o.etag.start:o.etag.end]), i+1, err)
		}
		p.joined = b
		s := string(b)
		page.objects = append(page.objects, listedObject{key: s[:k], etag: s[k:], size: o.size})
	}
	return page, nil
}

// appendKey appends the key of s to dst, decoded.
func (p *listParser) appendKey(dst []byte, s span) ([]byte, error) {
	raw := p.buf[s.start:s.end]
	if !p.urlEncoded || s.plain && bytes.IndexByte(raw, '%') < 0 && bytes.IndexByte(raw, '+') < 0 {
		return p.appendText(dst, s)
	}
	n := len(dst)
	dst, err := p.appendText(dst, s)
	if err != nil {
		return dst, err
	}
	key, err := unescapeURL(dst[n:])
	return dst[:n+len(key)], err
}

// appendText appends the text of s to dst.
func (p *listParser) appendText(dst []byte, s span) ([]byte, error) {
	raw := p.buf[s.start:s.end]
	if s.plain {
		return append(dst, raw...), nil
	}
	return appendXMLText(dst, raw)
}

// textOf returns the text of s, valid until the next textOf.
func (p *listParser) textOf(s span) ([]byte, error) {
	if s.plain {
		return p.buf[s.start:s.end], nil
	}
	var err error
	p.text, err = appendXMLText(p.text[:0], p.buf[s.start:s.end])
	return p.text, err
}

// value reads the text of the element name, whose start tag was just read, without the
// white space around it.
func (p *listParser) value(name []byte, empty bool) ([]byte, error) {
	s, err := p.textSpan(name, empty)
	if err != nil {
		return nil, err
	}
	v, err := p.textOf(s)
	if err != nil {
		return nil, fmt.Errorf("the listing page's <%s>: %w", name, err)
	}
	return trimSpace(v), nil
}

// count reads the text of the element name, whose start tag was just read, as a count or a
// size: decimal digits.
func (p *listParser) count(name []byte, empty bool) (int64, error) {
	v, err := p.value(name, empty)
	if err != nil {
		return 0, err
	}
	if len(v) == 0 || len(v) > 18 {
		return 0, fmt.Errorf("the listing page says <%s>%s</%s>, not a count", name, snippet(v), name)
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("the listing page says <%s>%s</%s>, not a count", name, snippet(v), name)
		}
		n = n*10 + int64(c-'0')
	}
	return n, nil
}

// textSpan reads the text of the element name, whose start tag was just read, to its end tag.
// The text may hold entities and CDATA sections, no element.
func (p *listParser) textSpan(name []byte, empty bool) (span, error) {
	s := span{start: p.pos, end: p.pos, plain: true}
	if empty {
		return s, nil
	}
	for {
		i := bytes.IndexByte(p.buf[p.pos:], '<')
		if i < 0 {
			return s, p.endsEarly()
		}
		p.pos += i
		if p.pos+1 < len(p.buf) && p.buf[p.pos+1] != '/' && bytes.HasPrefix(p.buf[p.pos:], cdataStart) {
			end := bytes.Index(p.buf[p.pos+len(cdataStart):], cdataEnd)
			if end < 0 {
				return s, p.endsEarly()
			}
			p.pos += len(cdataStart) + end + len(cdataEnd)
			s.plain = false
			continue
		}
		s.end = p.pos
		if p.pos+1 >= len(p.buf) {
			return s, p.endsEarly()
		}
		if p.buf[p.pos+1] != '/' {
			return s, fmt.Errorf("the listing page's <%s> holds markup: %q", name, snippet(p.buf[p.pos:]))
		}
		if err := p.endTag(name); err != nil {
			return s, err
		}
		break
	}
	raw := p.buf[s.start:s.end]
	if s.plain && (bytes.IndexByte(raw, '&') >= 0 || bytes.IndexByte(raw, '\r') >= 0) {
		s.plain = false
	}
	return s, nil
}

// next reads on inside the element parent to the start tag of its next child (its name, and
// empty for <name/>), or through parent's end tag (done). Space and comments between children
// are skipped; other text is an error.
func (p *listParser) next(parent []byte) (name []byte, empty, done bool, err error) {
	for {
		p.skipSpace()
		if p.pos >= len(p.buf) {
			return nil, false, false, p.endsEarly()
		}
		rest := p.buf[p.pos:]
		if rest[0] != '<' {
			return nil, false, false, fmt.Errorf("the listing page has text in <%s>: %q", parent, snippet(rest))
		}
		var second byte
		if len(rest) > 1 {
			second = rest[1]
		}
		switch {
		case second == '/':
			return nil, false, true, p.endTag(parent)
		case second == '!' && bytes.HasPrefix(rest, commentStart):
			if err := p.skipPast(len(commentStart), commentEnd); err != nil {
				return nil, false, false, err
			}
		case second == '?':
			if err := p.skipPast(2, piEnd); err != nil {
				return nil, false, false, err
			}
		default:
			name, empty, err = p.startTag()
			return name, empty, false, err
		}
	}
}

// skip reads on past the element name, whose start tag was just read, whatever it holds;
// depth is how deep it is in the elements skipped.
func (p *listParser) skip(name []byte, empty bool, depth int) error {
	if empty {
		return nil
	}
	if depth > maxSkipDepth {
		return fmt.Errorf("the listing page nests elements more than %d deep in <%s>", maxSkipDepth, name)
	}
	for {
		i := bytes.IndexByte(p.buf[p.pos:], '<')
		if i < 0 {
			return p.endsEarly()
		}
		p.pos += i
		rest := p.buf[p.pos:]
		var err error
		switch {
		case len(rest) > 1 && rest[1] == '/':
			return p.endTag(name)
		case bytes.HasPrefix(rest, commentStart):
			err = p.skipPast(4, commentEnd)
		case bytes.HasPrefix(rest, cdataStart):
			err = p.skipPast(len(cdataStart), cdataEnd)
		case bytes.HasPrefix(rest, piStart):
			err = p.skipPast(2, piEnd)
		default:
			var child []byte
			var childEmpty bool
			if child, childEmpty, err = p.startTag(); err == nil {
				err = p.skip(child, childEmpty, depth+1)
			}
		}
		if err != nil {
			return err
		}
	}
}

// startTag reads the start tag at p.pos and returns its name, and empty for <name/>.
func (p *listParser) startTag() (name []byte, empty bool, err error) {
	i := len(p.buf)
	for j, c := range p.buf[p.pos+1:] {
		if endsName[c] {
			i = p.pos + 1 + j
			break
		}
	}
	name = p.buf[p.pos+1 : i]
	if i < len(p.buf) && (len(name) == 0 || p.buf[i] == '<') {
		return nil, false, fmt.Errorf("the listing page has a bad tag: %q", snippet(p.buf[p.pos:]))
	}
	if i < len(p.buf) && p.buf[i] == '>' { // no attribute, the usual case
		p.pos = i + 1
		return name, false, nil
	}
	var quote byte
	for ; i < len(p.buf); i++ {
		switch c := p.buf[i]; {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
			empty = false
		case c == '>':
			p.pos = i + 1
			return name, empty, nil
		case c == '/':
			empty = true
		case !isSpace(c):
			empty = false
		}
	}
	return nil, false, p.endsEarly()
}

// endTag reads the end tag of the element name at p.pos.
func (p *listParser) endTag(name []byte) error {
	i := p.pos + 2
	rest := p.buf[i:]
	if len(rest) < len(name) && bytes.HasPrefix(name, rest) {
		return p.endsEarly()
	}
	if bytes.HasPrefix(rest, name) {
		i += len(name)
		for i < len(p.buf) && isSpace(p.buf[i]) {
			i++
		}
		if i >= len(p.buf) {
			return p.endsEarly()
		}
		if p.buf[i] == '>' {
			p.pos = i + 1
			return nil
		}
	}
	return fmt.Errorf("the listing page closes <%s> with %q", name, snippet(p.buf[p.pos:]))
}

// skipPast moves p.pos past the first end after the opener of n bytes at p.pos.
func (p *listParser) skipPast(n int, end []byte) error {
	i := bytes.Index(p.buf[p.pos+n:], end)
	if i < 0 {
		return p.endsEarly()
	}
	p.pos += n + i + len(end)
	return nil
}

// misc skips what may come before and after the document's element: space, the XML
// declaration and other processing instructions, comments.
func (p *listParser) misc() error {
	for {
		p.skipSpace()
		rest := p.buf[p.pos:]
		var err error
		switch {
		case bytes.HasPrefix(rest, piStart):
			err = p.skipPast(2, piEnd)
		case bytes.HasPrefix(rest, commentStart):
			err = p.skipPast(4, commentEnd)
		default:
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func (p *listParser) skipSpace() {
	for p.pos < len(p.buf) && isSpace(p.buf[p.pos]) {
		p.pos++
	}
}

// endsEarly is the error for a body that ends before the page does.
func (p *listParser) endsEarly() error {
	return fmt.Errorf("the listing page ends early, after %d bytes", len(p.buf))
}

// localName returns name without its namespace prefix.
func localName(name []byte) []byte {
	if i := bytes.LastIndexByte(name, ':'); i >= 0 {
		return name[i+1:]
	}
	return name
}

// endsName holds the bytes that end a tag's name.
var endsName = [256]bool{'>': true, '/': true, '<': true, ' ': true, '\t': true, '\n': true, '\r': true}

// isSpace reports whether c is XML's white space.
func isSpace(c byte) bool { return c == ' ' || c == '\n' || c == '\t' || c == '\r' }

func trimSpace(b []byte) []byte {
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

// snippet returns the start of b, for errors.
func snippet(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}

// appendXMLText appends raw, the text of an element as the page has it, to dst as XML reads
// it: entities (&quot; &amp; &lt; &gt; &apos;, &#n; and &#xh;) replaced, CDATA sections
// unwrapped, line ends as line feeds.
func appendXMLText(dst, raw []byte) ([]byte, error) {
	for i := 0; i < len(raw); {
		switch c := raw[i]; c {
		case '&':
			end := bytes.IndexByte(raw[i+1:min(len(raw), i+12)], ';')
			if end < 0 {
				return dst, fmt.Errorf("an unfinished entity %q", snippet(raw[i:]))
			}
			r, ok := entity(raw[i+1 : i+1+end])
			if !ok {
				return dst, fmt.Errorf("an unknown entity %q", raw[i:i+end+2])
			}
			dst = utf8.AppendRune(dst, r)
			i += end + 2
		case '<': // a CDATA section, the only markup textSpan lets through
			body, ok := bytes.CutPrefix(raw[i:], cdataStart)
			end := bytes.Index(body, cdataEnd)
			if !ok || end < 0 {
				return dst, fmt.Errorf("markup in a text: %q", snippet(raw[i:]))
			}
			dst = appendLines(dst, body[:end])
			i += len(cdataStart) + end + len(cdataEnd)
		case '\r':
			dst = append(dst, '\n')
			i++
			if i < len(raw) && raw[i] == '\n' {
				i++
			}
		default:
			j := i + 1
			for j < len(raw) && raw[j] != '&' && raw[j] != '<' && raw[j] != '\r' {
				j++
			}
			dst = append(dst, raw[i:j]...)
			i = j
		}
	}
	return dst, nil
}

// appendLines appends b to dst with its line ends (CR LF, a lone CR) as line feeds.
func appendLines(dst, b []byte) []byte {
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c == '\r' {
			c = '\n'
			if i+1 < len(b) && b[i+1] == '\n' {
				i++
			}
		}
		dst = append(dst, c)
	}
	return dst
}

// entity returns the character the entity name (between & and ;) stands for.
func entity(name []byte) (rune, bool) {
	switch string(name) {
	case "quot":
		return '"', true
	case "amp":
		return '&', true
	case "lt":
		return '<', true
	case "gt":
		return '>', true
	case "apos":
		return '\'', true
	}
	if len(name) < 2 || name[0] != '#' {
		return 0, false
	}
	digits, base := name[1:], rune(10)
	if digits[0] == 'x' {
		digits, base = digits[1:], 16
	}
	if len(digits) == 0 || len(digits) > 7 {
		return 0, false
	}
	var r rune
	for _, c := range digits {
		d := rune(unhex(c))
		if d >= base {
			return 0, false
		}
		r = r*base + d
	}
	return r, r != 0 && utf8.ValidRune(r)
}

// unescapeURL decodes, in place, a key S3 URL-encoded for encoding-type=url: %XX escapes, and
// '+' for a space, as url.QueryUnescape reads them (a '+' of the key comes as %2B).
func unescapeURL(b []byte) ([]byte, error) {
	j := 0
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch c {
		case '+':
			c = ' '
		case '%':
			if i+2 >= len(b) || unhex(b[i+1]) > 15 || unhex(b[i+2]) > 15 {
				return b[:j], fmt.Errorf("a bad URL escape %q", snippet(b[i:]))
			}
			c = unhex(b[i+1])<<4 | unhex(b[i+2])
			i += 2
		}
		b[j] = c
		j++
	}
	return b[:j], nil
}

// unhex returns the value of the hexadecimal digit c, or 255.
func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10
	}
	return 255
}
