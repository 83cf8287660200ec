package admin

import "time"

// HistoryStatus is the history as /status gives it, for machines: one entry per interval in
// every list, oldest first. Each figure is what the interval added (not a running total); the
// copies' figures are their state at the interval's end.
type HistoryStatus struct {
	// StepSeconds is the interval of one point; SpanSeconds how far back the history reaches
	// once full (one day unless configured otherwise).
	StepSeconds float64 `json:"step_seconds"`
	SpanSeconds float64 `json:"span_seconds"`
	// StartUnixMS is when the first interval began, EndUnixMS when each ended (Unix time in
	// milliseconds): an interval begins where the one before it ended.
	StartUnixMS int64   `json:"start_unix_ms"`
	EndUnixMS   []int64 `json:"end_unix_ms"`
	// NextUnixMS is when the next point is taken; absent when no sampler runs.
	NextUnixMS int64          `json:"next_unix_ms,omitempty"`
	Answers    HistoryAnswers `json:"answers"`
	Bytes      HistoryBytes   `json:"bytes"`
	// Backfill is each old store's copy, in the order the stores first appeared.
	Backfill []HistoryStore `json:"backfill,omitempty"`
}

// HistoryAnswers are the answers of each interval by what gave them.
type HistoryAnswers struct {
	Memory   []uint64 `json:"memory"`
	Disk     []uint64 `json:"disk"`
	Bucket   []uint64 `json:"bucket"`
	OldStore []uint64 `json:"old_store"` // X-Cache: FALLBACK
	Peer     []uint64 `json:"peer"`
}

// HistoryBytes are the body bytes of each interval: sent to clients, and received from the
// bucket and from the other replicas.
type HistoryBytes struct {
	Served []uint64 `json:"served"`
	Bucket []uint64 `json:"bucket"`
	Peers  []uint64 `json:"peers"`
}

// HistoryStore is one old store's copy at the end of each interval: what the bucket holds of
// it, and its totals. Every figure is -1 where the copy was not reported, and the totals are
// -1 while the store was still being counted.
type HistoryStore struct {
	Source     string  `json:"source"`
	FilesDone  []int64 `json:"files_done"`
	FilesTotal []int64 `json:"files_total"`
	BytesDone  []int64 `json:"bytes_done"`
	BytesTotal []int64 `json:"bytes_total"`
}

// Status returns the history's points as /status gives them.
func (h *History) Status() HistoryStatus {
	pts, next := h.points()
	n := len(pts)
	st := HistoryStatus{
		StepSeconds: h.step.Seconds(),
		SpanSeconds: h.Span().Seconds(),
		EndUnixMS:   make([]int64, n),
		Answers: HistoryAnswers{Memory: make([]uint64, n), Disk: make([]uint64, n), Bucket: make([]uint64, n),
			OldStore: make([]uint64, n), Peer: make([]uint64, n)},
		Bytes: HistoryBytes{Served: make([]uint64, n), Bucket: make([]uint64, n), Peers: make([]uint64, n)},
	}
	if !next.IsZero() {
		st.NextUnixMS = next.UnixMilli()
	}
	if n > 0 {
		st.StartUnixMS = pts[0].Start.UnixMilli()
	}
	stores := map[string]int{}
	for i, p := range pts {
		st.EndUnixMS[i] = p.End.UnixMilli()
		c := p.Counts
		st.Answers.Memory[i], st.Answers.Disk[i], st.Answers.Bucket[i] = c.Memory, c.Disk, c.Bucket
		st.Answers.OldStore[i], st.Answers.Peer[i] = c.OldStore, c.Peer
		st.Bytes.Served[i], st.Bytes.Bucket[i], st.Bytes.Peers[i] = c.BytesServed, c.BucketBytes, c.PeerBytes
		for _, l := range p.Stores {
			j, ok := stores[l.Source]
			if !ok {
				j = len(st.Backfill)
				stores[l.Source] = j
				st.Backfill = append(st.Backfill, newHistoryStore(l.Source, n))
			}
			s := &st.Backfill[j]
			s.FilesDone[i], s.FilesTotal[i], s.BytesDone[i], s.BytesTotal[i] = l.FilesDone, l.FilesTotal, l.BytesDone, l.BytesTotal
		}
	}
	return st
}

// newHistoryStore is source's copy over n intervals, not reported in any yet.
func newHistoryStore(source string, n int) HistoryStore {
	s := HistoryStore{Source: source, FilesDone: make([]int64, n), FilesTotal: make([]int64, n),
		BytesDone: make([]int64, n), BytesTotal: make([]int64, n)}
	for i := range n {
		s.FilesDone[i], s.FilesTotal[i], s.BytesDone[i], s.BytesTotal[i] = -1, -1, -1, -1
	}
	return s
}

// Points is how many intervals the history holds.
func (s *HistoryStatus) Points() int { return len(s.EndUnixMS) }

// Interval returns when the i-th interval began and ended.
func (s *HistoryStatus) Interval(i int) (start, end time.Time) {
	end = time.UnixMilli(s.EndUnixMS[i]).UTC()
	if i == 0 {
		return time.UnixMilli(s.StartUnixMS).UTC(), end
	}
	return time.UnixMilli(s.EndUnixMS[i-1]).UTC(), end
}
