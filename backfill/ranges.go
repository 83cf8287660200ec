package backfill

// The record of a run, range by range, that lets a rerun leave the bucket's listing alone where
// nothing changed.
//
// A run cuts the source's keys into ranges of about rangeFiles keys, each the keys after the
// previous range's last key up to its own (the last range goes to the end), and fingerprints
// each range's objects as the walk found them: key, size, modification time and mode of a
// volume's file; key, size and ETag of an old bucket's object. A range is done when every one
// of its objects was found in the bucket or copied there (or is deleted for good: a tombstone).
// When a run's walk ends, the record of its ranges is saved (Config.Ranges).
//
// The next run cuts the source at the same keys. A range it walks with the fingerprint of a
// done range in the record was in the bucket whole then, and nothing of the source changed
// since: it is counted as present without listing the bucket there. Every other range is merged
// with the bucket's listing of that range as before, and recut if it grew. So a rerun over a
// finished volume of a million files walks the volume, and lists nothing.
//
// What this trusts: that nothing deletes from the bucket what a run found there, other than
// Mastodon (whose deletions are tombstones, never copied back anyway). VerifySource checks
// every object whatever the record says, and Config.Full ignores it.

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
)

// RangeStore keeps the record of a source's ranges between runs: in fedicache, an object under
// the bucket's state prefix whose name says which source and which bucket it is of, so that a
// record never vouches for another bucket (a copy of the state prefix into a new bucket).
type RangeStore interface {
	// LoadRanges returns the record last saved for the source, or nil and no error when there
	// is none.
	LoadRanges(ctx context.Context, source string) ([]byte, error)
	// SaveRanges replaces the source's record.
	SaveRanges(ctx context.Context, source string, record []byte) error
}

// rangeFiles is how many keys a range holds when it is cut: a page of a bucket's listing.
const rangeFiles = 1000

// rangeVersion is the record's format; a record of another is ignored.
const rangeVersion = 1

// rangeRecord is the saved record of a run's ranges.
type rangeRecord struct {
	Version int          `json:"version"`
	Source  string       `json:"source"`
	Saved   time.Time    `json:"saved"`
	Ranges  []rangeEntry `json:"ranges"`
}

// rangeEntry is one range of the record.
type rangeEntry struct {
	// Last is the range's greatest key (its upper bound: the key itself may be gone); "" for
	// the last range, which goes to the end. The range starts after the previous entry's Last.
	Last  string `json:"last"`
	Files int    `json:"files"`
	Bytes int64  `json:"bytes"`
	Hash  string `json:"hash"` // the fingerprint of its objects, xxhash64 in hex
	// Done says every object of the range was in the bucket (found, copied) when the run
	// ended, or deleted for good.
	Done bool `json:"done"`
}

// parseRanges reads a saved record of source; a record that is not one (another version or
// source, keys out of order) is an error, and the run then lists every range.
func parseRanges(data []byte, source string) ([]rangeEntry, error) {
	var rec rangeRecord
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rec); err != nil {
		return nil, err
	}
	switch {
	case rec.Version != rangeVersion:
		return nil, fmt.Errorf("version %d, not %d", rec.Version, rangeVersion)
	case rec.Source != source:
		return nil, fmt.Errorf("a record of %q, not %q", rec.Source, source)
	}
	for i, e := range rec.Ranges {
		last := i == len(rec.Ranges)-1
		switch {
		case e.Last == "" && !last:
			return nil, fmt.Errorf("range %d of %d has no last key", i+1, len(rec.Ranges))
		case i > 0 && e.Last != "" && e.Last <= rec.Ranges[i-1].Last:
			return nil, fmt.Errorf("range %d ends at %q, not after %q", i+1, e.Last, rec.Ranges[i-1].Last)
		case e.Files < 0:
			return nil, fmt.Errorf("range %d holds %d files", i+1, e.Files)
		}
	}
	return rec.Ranges, nil
}

// openRange is a range being walked: its objects wait here until the walk passes its upper
// bound, when its fingerprint is known and it is matched against the record.
type openRange struct {
	after string // the keys are greater than this ("" from the start)
	items []Item
	bytes int64
	h     xxhash.Digest
	// recorded is the record's range starting where this one does, which it may match; nil
	// when the range starts elsewhere (a range recut because it grew).
	recorded *rangeEntry
}

// closedRange is a range the walk has passed, and what becomes of it.
type closedRange struct {
	entry   rangeEntry
	after   string
	items   []Item
	matched bool // it matches a done range of the record: the bucket holds it whole
	// bad is set when one of its objects is not in the bucket after the run (a failure, a
	// conflict, a file skipped): the range is not done. It is written by the copy's workers.
	bad *atomic.Bool
}

// ranger cuts the walk into ranges, at the record's keys where there is one.
type ranger struct {
	rec  []rangeEntry // the record, in key order; nil for none
	k    int          // the record's range the walk is in
	open openRange
	out  []*closedRange // every range closed so far: the next record
}

func newRanger(rec []rangeEntry) *ranger {
	r := &ranger{rec: rec}
	r.open.h.Reset()
	if len(rec) > 0 {
		r.open.recorded = &rec[0]
	}
	return r
}

// add puts it, the walk's next object, in its range, and passes each range it closes to flush.
func (r *ranger) add(it Item, flush func(*closedRange) error) error {
	// Close the ranges of the record that end before it.
	for r.k < len(r.rec) && r.rec[r.k].Last != "" && it.Key > r.rec[r.k].Last {
		if err := r.close(r.rec[r.k].Last, flush); err != nil {
			return err
		}
		r.k++
		if r.k < len(r.rec) {
			r.open.recorded = &r.rec[r.k]
		}
	}
	// Recut a range that is full and cannot match the record: no range of the record starts
	// here, or it is to hold more than the record's (it holds as many, and it comes too).
	if n := len(r.open.items); n >= rangeFiles && (r.open.recorded == nil || n >= r.open.recorded.Files) {
		if err := r.close(r.open.items[n-1].Key, flush); err != nil {
			return err
		}
	}
	o := &r.open
	o.items = append(o.items, it)
	o.bytes += it.Size
	fingerprint(&o.h, it)
	return nil
}

// end closes the ranges left once the walk is over: the open one, and the record's ranges
// beyond the last key walked, now empty.
func (r *ranger) end(flush func(*closedRange) error) error {
	for ; r.k < len(r.rec) && r.rec[r.k].Last != ""; r.k++ {
		if err := r.close(r.rec[r.k].Last, flush); err != nil {
			return err
		}
		if r.k+1 < len(r.rec) {
			r.open.recorded = &r.rec[r.k+1]
		}
	}
	return r.close("", flush)
}

// close ends the open range at upper ("" for the end), hands it to flush and opens the next,
// which starts after upper and matches nothing of the record until add says so.
func (r *ranger) close(upper string, flush func(*closedRange) error) error {
	o := &r.open
	c := &closedRange{
		entry: rangeEntry{Last: upper, Files: len(o.items), Bytes: o.bytes, Hash: strconv.FormatUint(o.h.Sum64(), 16), Done: true},
		after: o.after, items: o.items, bad: new(atomic.Bool),
	}
	if e := o.recorded; e != nil && e.Done && e.Last == upper && e.Files == c.entry.Files && e.Bytes == c.entry.Bytes && e.Hash == c.entry.Hash {
		c.matched = true
	}
	r.out = append(r.out, c)
	err := flush(c)
	c.items = nil // the workers hold their own copies of what they copy
	*o = openRange{after: upper, items: o.items[:0]}
	o.h.Reset()
	return err
}

// entries returns the ranges closed, to record once the walk has ended and the copies are over.
func (r *ranger) entries() []rangeEntry {
	out := make([]rangeEntry, len(r.out))
	for i, c := range r.out {
		out[i] = c.entry
		out[i].Done = !c.bad.Load()
	}
	return out
}

// unchanged reports whether entries are the record the run began with.
func (r *ranger) unchanged(entries []rangeEntry) bool {
	return r.rec != nil && slices.Equal(entries, r.rec)
}

// marshalRanges returns the record of source's ranges.
func marshalRanges(source string, entries []rangeEntry) ([]byte, error) {
	return json.Marshal(rangeRecord{Version: rangeVersion, Source: source, Saved: time.Now().UTC(), Ranges: entries})
}

// fingerprint adds it to a range's fingerprint: its key, size, ETag, and a volume's file's
// modification time and mode.
func fingerprint(h *xxhash.Digest, it Item) {
	var b [1 + 8 + 8 + 4 + 1]byte // a separator after the key, then the fixed fields
	binary.LittleEndian.PutUint64(b[1:], uint64(it.Size))
	if it.info != nil {
		binary.LittleEndian.PutUint64(b[9:], uint64(it.info.ModTime().UnixNano()))
		binary.LittleEndian.PutUint32(b[17:], uint32(it.info.Mode()))
	}
	if it.private {
		b[21] = 1
	}
	h.WriteString(it.Key)
	h.Write(b[:])
	h.WriteString(it.ETag)
	h.Write(b[:1])
}
