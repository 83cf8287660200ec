package disk

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/fedicache/fedicache/cache"
)

// The layout of an entry's file:
//
//	offset 0   magic "FCD2"                              4 bytes
//	offset 4   ValidatedAt, Unix nanoseconds, big-endian 8 bytes (0: the zero time)
//	offset 12  CRC-32C of all that follows, big-endian   4 bytes
//	offset 16  length of the header, big-endian          4 bytes
//	offset 20  the header, JSON (see header)             at most maxHeaderLen bytes
//	then       the body                                  header.Size bytes
//
// ValidatedAt sits at a fixed offset so that MarkValidated rewrites 8 bytes in place. Nothing
// after the checksum is ever rewritten: the body of a file is served with sendfile while other
// requests may revalidate it.
//
// The checksum (Castagnoli polynomial) covers the header's length, the header and the body. The
// Writer computes it as the body is written and writes the prefix, the checksum in its slot, at
// Commit (the body is written first, after a hole the prefix fills), so that no entry needs a
// flush to the disk of its own: its length and checksum say whether it is whole. They are
// checked when an unclean shutdown may have lost writes (see clean.go); the length always.
//
// The format was "FCD1" before the checksum: files of that format (and of any other magic) are
// corrupt to this version and dropped by the rebuild, so a cache loses its entries once, on the
// upgrade (and on a downgrade), and fetches them again.
const (
	magic        = "FCD2"
	offValidated = 4
	offChecksum  = 12
	offHeaderLen = 16
	prefixLen    = 20
	// maxHeaderLen bounds the header, written and read back: a longer length field means a
	// corrupt file, not a large allocation.
	maxHeaderLen = 64 << 10
	// readAhead is how much of a file a first read takes: the prefix and, for the keys and
	// types Mastodon uses, the whole header.
	readAhead = 1024
	// nameLen is the length of a file's name: the first 128 bits of the key's SHA-256 in hex.
	nameLen = 32
)

// crcTable is CRC-32C's: hash/crc32 computes it with the processor's instructions (SSE 4.2 on
// amd64, the CRC instructions on arm64).
var crcTable = crc32.MakeTable(crc32.Castagnoli)

// errCorrupt marks a file that is not a whole, well-formed entry of the key it is filed under.
// Such files are deleted, never served.
var errCorrupt = errors.New("corrupt entry")

// header is the JSON part of an entry's file: what cache.Entry holds apart from ValidatedAt.
type header struct {
	Key          string    `json:"key"`
	Size         int64     `json:"size"`
	ContentType  string    `json:"content_type,omitempty"`
	ETag         string    `json:"etag,omitempty"`
	LastModified time.Time `json:"last_modified"`
	StoredAt     time.Time `json:"stored_at"`
}

// hashName returns the name of key's file: the first 128 bits of its SHA-256, in hex.
func hashName(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:nameLen/2])
}

// pathOf returns the path of key's file under dir: dir/ab/abcd....
func pathOf(dir, key string) string { return filePath(dir, hashName(key)) }

// filePath returns the path under dir of the file named h (see hashName): in the hash
// directory named by its first two hex digits (see hashDirs).
func filePath(dir, h string) string { return filepath.Join(dir, h[0:2], h) }

// encodeTime returns t as the Unix nanoseconds of the fixed field, 0 for the zero time.
func encodeTime(t time.Time) uint64 {
	if t.IsZero() {
		return 0
	}
	return uint64(t.UnixNano())
}

// decodeTime is the inverse of encodeTime.
func decodeTime(v uint64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.Unix(0, int64(v)).UTC()
}

// putTime writes t into b, the 8 bytes of the ValidatedAt field.
func putTime(b []byte, t time.Time) { binary.BigEndian.PutUint64(b, encodeTime(t)) }

// encodePrefix returns the prefix and header of e's file, ready to be written at offset 0,
// with a zero checksum: the Writer fills it in at Commit (see checksumStart).
func encodePrefix(e cache.Entry) ([]byte, error) {
	h := header{
		Key:          e.Key,
		Size:         e.Meta.Size,
		ContentType:  e.Meta.ContentType,
		ETag:         e.Meta.ETag,
		LastModified: e.Meta.LastModified,
		StoredAt:     e.StoredAt,
	}
	// The header's JSON goes straight into the buffer: json.Marshal took five allocations
	// (two per time) and several times as long. 200 bytes hold what does not vary in length
	// (the names, the size, two times) and the escapes of an ETag's quotes.
	b := make([]byte, prefixLen, prefixLen+200+len(h.Key)+len(h.ContentType)+len(h.ETag))
	b, ok := appendHeader(b, &h)
	if !ok {
		js, err := json.Marshal(h)
		if err != nil {
			return nil, err
		}
		b = append(b[:prefixLen], js...)
	}
	if n := len(b) - prefixLen; n > maxHeaderLen {
		return nil, fmt.Errorf("header of %d bytes exceeds the limit of %d (key or metadata too long)", n, maxHeaderLen)
	}
	copy(b, magic)
	putTime(b[offValidated:], e.ValidatedAt)
	binary.BigEndian.PutUint32(b[offHeaderLen:], uint32(len(b)-prefixLen))
	return b, nil
}

// appendHeader appends h to b as JSON, byte for byte what json.Marshal makes of it, and reports
// whether it could: it leaves to json.Marshal a string with a byte that json.Marshal escapes
// otherwise than with a backslash (a control character, '<', '>', '&', and any byte of a
// non-ASCII character, which it checks as UTF-8) and a time that it refuses (a year out of
// 0-9999).
func appendHeader(b []byte, h *header) ([]byte, bool) {
	ok := true
	b = append(b, `{"key":`...)
	b = appendJSONString(b, h.Key, &ok)
	b = append(b, `,"size":`...)
	b = strconv.AppendInt(b, h.Size, 10)
	if h.ContentType != "" {
		b = append(b, `,"content_type":`...)
		b = appendJSONString(b, h.ContentType, &ok)
	}
	if h.ETag != "" {
		b = append(b, `,"etag":`...)
		b = appendJSONString(b, h.ETag, &ok)
	}
	b = append(b, `,"last_modified":`...)
	b = appendJSONTime(b, h.LastModified, &ok)
	b = append(b, `,"stored_at":`...)
	b = appendJSONTime(b, h.StoredAt, &ok)
	return append(b, '}'), ok
}

// appendJSONString appends s to b as a JSON string, clearing ok when s holds a byte that
// json.Marshal escapes otherwise than with a backslash (see appendHeader).
func appendJSONString(b []byte, s string, ok *bool) []byte {
	b = append(b, '"')
	for i := range len(s) {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20 || c >= 0x80 || c == '<' || c == '>' || c == '&':
			*ok = false
			return b
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// appendJSONTime appends t to b as time.Time's MarshalJSON does, clearing ok when it fails.
func appendJSONTime(b []byte, t time.Time, ok *bool) []byte {
	b = append(b, '"')
	b, err := t.AppendText(b)
	if err != nil {
		*ok = false
		return b
	}
	return append(b, '"')
}

// checksumStart returns the checksum of what prefix, made by encodePrefix, holds after the
// checksum's slot: where the body's checksum starts from.
func checksumStart(prefix []byte) uint32 { return crc32.Update(0, crcTable, prefix[offHeaderLen:]) }

// bufPool holds readAhead-byte buffers for reading prefixes and headers.
var bufPool = sync.Pool{New: func() any { b := make([]byte, readAhead); return &b }}

// readEntry reads and checks the prefix and header of the open file f, which is filed under
// key, or under a name that must be the hash of the key it holds when key is empty. It returns
// the entry, the offset of the body and f's FileInfo. An error wrapping errCorrupt means that f
// is no whole entry of that key: bad magic, an oversized or unparsable header, another key, or
// a length that does not match the header's size (a truncated or overlong file).
func readEntry(f *os.File, key string) (cache.Entry, int64, fs.FileInfo, error) {
	info, err := f.Stat()
	if err != nil {
		return cache.Entry{}, 0, nil, err
	}
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	n, err := f.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return cache.Entry{}, 0, info, err
	}
	if n < prefixLen {
		return cache.Entry{}, 0, info, fmt.Errorf("%w: %d bytes, shorter than the prefix", errCorrupt, n)
	}
	if string(buf[:4]) == "FCD1" {
		return cache.Entry{}, 0, info, fmt.Errorf("%w: an entry of the format before checksums", errCorrupt)
	}
	if string(buf[:4]) != magic {
		return cache.Entry{}, 0, info, fmt.Errorf("%w: bad magic %q", errCorrupt, buf[:4])
	}
	validated := decodeTime(binary.BigEndian.Uint64(buf[offValidated:]))
	hlen := int64(binary.BigEndian.Uint32(buf[offHeaderLen:]))
	if hlen > maxHeaderLen {
		return cache.Entry{}, 0, info, fmt.Errorf("%w: header length %d exceeds %d", errCorrupt, hlen, maxHeaderLen)
	}
	bodyOff := prefixLen + hlen
	if bodyOff > info.Size() {
		return cache.Entry{}, 0, info, fmt.Errorf("%w: %d bytes, shorter than the header", errCorrupt, info.Size())
	}
	js := buf[prefixLen:min(int64(n), bodyOff)]
	if int64(n) < bodyOff {
		js = make([]byte, hlen)
		if _, err := f.ReadAt(js, prefixLen); err != nil {
			if errors.Is(err, io.EOF) {
				return cache.Entry{}, 0, info, fmt.Errorf("%w: truncated header", errCorrupt)
			}
			return cache.Entry{}, 0, info, err
		}
	}
	var h header
	if err := json.Unmarshal(js, &h); err != nil {
		return cache.Entry{}, 0, info, fmt.Errorf("%w: header: %v", errCorrupt, err)
	}
	switch {
	case key != "" && h.Key != key:
		return cache.Entry{}, 0, info, fmt.Errorf("%w: holds key %q", errCorrupt, h.Key)
	case key == "" && hashName(h.Key) != info.Name():
		return cache.Entry{}, 0, info, fmt.Errorf("%w: holds key %q, whose file is not this one", errCorrupt, h.Key)
	case h.Size < 0 || info.Size() != bodyOff+h.Size:
		return cache.Entry{}, 0, info, fmt.Errorf("%w: %d bytes, want %d for a body of %d",
			errCorrupt, info.Size(), bodyOff+h.Size, h.Size)
	}
	e := cache.Entry{
		Key:         h.Key,
		StoredAt:    h.StoredAt,
		ValidatedAt: validated,
	}
	e.Meta.Size = h.Size
	e.Meta.ContentType = h.ContentType
	e.Meta.ETag = h.ETag
	e.Meta.LastModified = h.LastModified
	return e, bodyOff, info, nil
}
