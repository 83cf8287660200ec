package admin

// The status page's history: the process's figures over the last day, one point per interval,
// kept in a ring of fixed size and sampled from the counters the process keeps anyway. A
// restart starts a new history: nothing is written anywhere.

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/fedicache/fedicache/origin"
)

// HistoryCounters are the process's counters since it started, as the sampler reads them. A
// point of the history holds their increase over its interval.
type HistoryCounters struct {
	// Answers by what gave them: the memory and disk tiers (hits), the bucket (misses), an
	// old store (X-Cache: FALLBACK, an old volume or an old bucket) and another replica (the
	// peer fill).
	Memory, Disk, Bucket, OldStore, Peer uint64
	// BytesServed is the body bytes sent to clients; BucketBytes the body bytes the bucket
	// sent this process, and PeerBytes those the other replicas sent it.
	BytesServed, BucketBytes, PeerBytes uint64
}

// since is c's increase over prev, counter by counter. A counter lower than before was reset
// (a store reopened, say): its increase is what it counted since, never a negative one.
func (c HistoryCounters) since(prev HistoryCounters) HistoryCounters {
	d := func(cur, old uint64) uint64 {
		if cur < old {
			return cur
		}
		return cur - old
	}
	return HistoryCounters{
		Memory: d(c.Memory, prev.Memory), Disk: d(c.Disk, prev.Disk), Bucket: d(c.Bucket, prev.Bucket),
		OldStore: d(c.OldStore, prev.OldStore), Peer: d(c.Peer, prev.Peer),
		BytesServed: d(c.BytesServed, prev.BytesServed), BucketBytes: d(c.BucketBytes, prev.BucketBytes),
		PeerBytes: d(c.PeerBytes, prev.PeerBytes),
	}
}

// HistorySample is what the sampler reads at one moment.
type HistorySample struct {
	Counters HistoryCounters
	// Migrations are the copies of the old stores, as the status page shows them: a point
	// keeps, for each store, the files and bytes the bucket holds of it and the store's totals.
	Migrations []Migration
}

// HistoryConfig configures a History. The zero value keeps a day of 5-minute points.
type HistoryConfig struct {
	// Step is the interval of one point. Zero means 5 minutes.
	Step time.Duration
	// Points is how many points are kept, the oldest dropped first. Zero means 288: a day of
	// 5-minute points.
	Points int
}

const (
	historyDefaultStep   = 5 * time.Minute
	historyDefaultPoints = 288
)

// History is the last Points intervals of the process's figures (a ring of fixed size), for
// the status page's charts and /status. Run samples it; Add is its one writer.
type History struct {
	step time.Duration

	mu     sync.Mutex
	ring   []historyPoint // ring[(head+i)%len(ring)] is the i-th oldest of n points
	head   int
	n      int
	primed bool // a first sample was taken: base and baseAt hold the latest
	base   HistoryCounters
	baseAt time.Time
	next   time.Time // when Run takes its next sample; zero when it does not run
}

// historyPoint is one interval: how much each counter grew from Start to End, and the copies'
// state at End.
type historyPoint struct {
	Start, End time.Time
	Counts     HistoryCounters
	Stores     []storeLevel
}

// storeLevel is what the bucket holds of one old store, and the store's totals (-1 while they
// are still counted).
type storeLevel struct {
	Source                string
	FilesDone, FilesTotal int64
	BytesDone, BytesTotal int64
}

// NewHistory returns an empty history as cfg says.
func NewHistory(cfg HistoryConfig) (*History, error) {
	switch {
	case cfg.Step < 0:
		return nil, fmt.Errorf("admin: HistoryConfig.Step %s: give a positive interval, or zero for %s", cfg.Step, historyDefaultStep)
	case cfg.Points < 0:
		return nil, fmt.Errorf("admin: HistoryConfig.Points %d: give a positive count, or zero for %d", cfg.Points, historyDefaultPoints)
	}
	if cfg.Step == 0 {
		cfg.Step = historyDefaultStep
	}
	if cfg.Points == 0 {
		cfg.Points = historyDefaultPoints
	}
	return &History{step: cfg.Step, ring: make([]historyPoint, cfg.Points)}, nil
}

// Step is the interval of one point.
func (h *History) Step() time.Duration { return h.step }

// Span is how far back the history reaches once full: Step times Points.
func (h *History) Span() time.Duration { return h.step * time.Duration(len(h.ring)) }

// Add takes the sample s, read at at. The first sample is the base the next one is measured
// from; each one after it adds a point, the interval since the sample before, and drops the
// oldest point once the ring is full.
func (h *History) Add(at time.Time, s HistorySample) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.primed {
		h.primed, h.base, h.baseAt = true, s.Counters, at
		return
	}
	p := historyPoint{Start: h.baseAt, End: at, Counts: s.Counters.since(h.base)}
	for _, m := range s.Migrations {
		l := storeLevel{Source: m.Source, FilesDone: m.FilesDone, FilesTotal: m.FilesTotal,
			BytesDone: m.BytesDone, BytesTotal: m.BytesTotal}
		if l.Source == "" {
			l.Source = origin.VolumeStoreName // a Migration that names no store is the old volume's
		}
		p.Stores = append(p.Stores, l)
	}
	h.base, h.baseAt = s.Counters, at
	if h.n < len(h.ring) {
		h.ring[(h.head+h.n)%len(h.ring)] = p
		h.n++
		return
	}
	h.ring[h.head] = p
	h.head = (h.head + 1) % len(h.ring)
}

// points returns the points, oldest first, and when the next sample is due (zero when the
// sampler does not run).
func (h *History) points() ([]historyPoint, time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]historyPoint, h.n)
	for i := range out {
		out[i] = h.ring[(h.head+i)%len(h.ring)]
	}
	return out, h.next
}

// Run samples every Step until ctx ends, on the clock's multiples of Step (12:05, 12:10 UTC
// for 5 minutes): a first sample at once, the base; then one at each multiple, each adding a
// point. The first point is thus shorter than Step, and a late sample makes a longer one.
func (h *History) Run(ctx context.Context, sample func() HistorySample) {
	h.Add(time.Now(), sample())
	for {
		now := time.Now()
		next := now.Truncate(h.step).Add(h.step)
		h.mu.Lock()
		h.next = next
		h.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-time.After(next.Sub(now)):
		}
		h.Add(time.Now(), sample())
	}
}
