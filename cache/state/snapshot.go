package state

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// snapshotMagic opens every snapshot.
const snapshotMagic = "fedicache-tombstones 1\n"

// maxSnapshotHashes bounds the count a snapshot's header may claim (256 Mi hashes, 4 GiB), so a
// damaged header cannot ask for an absurd allocation.
const maxSnapshotHashes = 1 << 28

var errBadSnapshot = errors.New("state: damaged tombstone snapshot")

// encodeSnapshot returns a snapshot of hs (sorted, without duplicates) as a body that can be
// read again from any offset (for a retried upload), without copying the hashes.
func encodeSnapshot(hs []hash) *io.SectionReader {
	sum := sha256.New()
	for i := range hs {
		sum.Write(hs[i][:])
	}
	s := &snapshotBytes{head: snapshotMagic + strconv.Itoa(len(hs)) + "\n", hs: hs, tail: sum.Sum(nil)}
	return io.NewSectionReader(s, 0, s.size())
}

// snapshotBytes reads a snapshot's bytes at any offset: the header, the hashes, the checksum.
type snapshotBytes struct {
	head string
	hs   []hash
	tail []byte
}

func (s *snapshotBytes) size() int64 {
	return int64(len(s.head)) + int64(len(s.hs))*int64(len(hash{})) + int64(len(s.tail))
}

func (s *snapshotBytes) ReadAt(p []byte, off int64) (int, error) {
	const size = int64(len(hash{}))
	head, body := int64(len(s.head)), int64(len(s.hs))*size
	n := 0
	for n < len(p) {
		at := off + int64(n)
		var c int
		switch {
		case at < head:
			c = copy(p[n:], s.head[at:])
		case at < head+body:
			i := (at - head) / size
			c = copy(p[n:], s.hs[i][(at-head)%size:])
		case at < head+body+int64(len(s.tail)):
			c = copy(p[n:], s.tail[at-head-body:])
		default:
			return n, io.EOF
		}
		n += c
	}
	return n, nil
}

// decodeSnapshot reads a whole snapshot and returns its hashes. A snapshot that is cut short,
// too long, unsorted or fails its checksum is refused: loading less than the record holds would
// let deleted media be served.
func decodeSnapshot(r io.Reader) ([]hash, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	magic := make([]byte, len(snapshotMagic))
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != snapshotMagic {
		return nil, fmt.Errorf("%w: no header (%v)", errBadSnapshot, err)
	}
	line, err := br.ReadString('\n')
	if err != nil {
		return nil, fmt.Errorf("%w: no count: %v", errBadSnapshot, err)
	}
	count, err := strconv.Atoi(strings.TrimSuffix(line, "\n"))
	if err != nil || count < 0 || count > maxSnapshotHashes {
		return nil, fmt.Errorf("%w: count %q", errBadSnapshot, line)
	}
	hs := make([]hash, count)
	sum := sha256.New()
	for i := range hs {
		if _, err := io.ReadFull(br, hs[i][:]); err != nil {
			return nil, fmt.Errorf("%w: %d of %d hashes: %v", errBadSnapshot, i, count, err)
		}
		if i > 0 && compareHash(hs[i-1], hs[i]) >= 0 {
			return nil, fmt.Errorf("%w: hashes out of order at %d", errBadSnapshot, i)
		}
		sum.Write(hs[i][:])
	}
	var tail [sha256.Size]byte
	if _, err := io.ReadFull(br, tail[:]); err != nil {
		return nil, fmt.Errorf("%w: no checksum: %v", errBadSnapshot, err)
	}
	if !bytes.Equal(tail[:], sum.Sum(nil)) {
		return nil, fmt.Errorf("%w: checksum mismatch", errBadSnapshot)
	}
	if n, _ := br.Read(make([]byte, 1)); n > 0 {
		return nil, fmt.Errorf("%w: bytes after the checksum", errBadSnapshot)
	}
	return hs, nil
}
