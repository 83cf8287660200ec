package cache

import "sync/atomic"

// counters are Layered's event counts.
type counters struct {
	memoryHits, diskHits, misses, negativeHits atomic.Uint64
	sharedWaiters, sharedBytes, originGets     atomic.Uint64
	revalFresh, revalChanged, revalGone        atomic.Uint64
	revalErrors, staleServed, backgroundFills  atomic.Uint64
	fillErrors, aheadFills, aheadTaken         atomic.Uint64
}

// Stats is a snapshot of Layered's counters and its tiers' figures.
type Stats struct {
	MemoryHits         uint64     `json:"memory_hits"`         // answers from the memory tier
	DiskHits           uint64     `json:"disk_hits"`           // answers from the disk tier
	Misses             uint64     `json:"misses"`              // answers that needed the origin
	NegativeHits       uint64     `json:"negative_hits"`       // not-found answers from the not-found memory
	NegativeEntries    int        `json:"negative_entries"`    // keys in the not-found memory
	SharedWaiters      uint64     `json:"shared_waiters"`      // requests served from a fetch another request started
	SharedBytes        uint64     `json:"shared_bytes"`        // bytes those requests received, which the origin sent once
	OriginGets         uint64     `json:"origin_gets"`         // GET requests sent to the origin
	BackgroundFills    uint64     `json:"background_fills"`    // whole-object fetches started after a range request
	AheadFills         uint64     `json:"ahead_fills"`         // second fetches of an object under way, for a range far ahead of its first
	AheadTaken         uint64     `json:"ahead_taken"`         // fetches that went on from their ahead's bytes instead of reading their own answer on
	FillErrors         uint64     `json:"fill_errors"`         // fetches that failed or were cut short
	RevalidatedFresh   uint64     `json:"revalidated_fresh"`   // revalidations the origin confirmed
	RevalidatedChanged uint64     `json:"revalidated_changed"` // revalidations that found a new version
	RevalidatedGone    uint64     `json:"revalidated_gone"`    // revalidations that found the object deleted
	RevalidationErrors uint64     `json:"revalidation_errors"` // revalidations the origin failed to answer
	StaleServed        uint64     `json:"stale_served"`        // answers from an entry past its TTL while the origin failed
	Memory             *TierStats `json:"memory,omitempty"`
	Disk               *TierStats `json:"disk,omitempty"`
}

// Stats returns the current counters.
func (l *Layered) Stats() Stats {
	s := Stats{
		MemoryHits:         l.stats.memoryHits.Load(),
		DiskHits:           l.stats.diskHits.Load(),
		Misses:             l.stats.misses.Load(),
		NegativeHits:       l.stats.negativeHits.Load(),
		NegativeEntries:    l.neg.len(),
		SharedWaiters:      l.stats.sharedWaiters.Load(),
		SharedBytes:        l.stats.sharedBytes.Load(),
		OriginGets:         l.stats.originGets.Load(),
		BackgroundFills:    l.stats.backgroundFills.Load(),
		AheadFills:         l.stats.aheadFills.Load(),
		AheadTaken:         l.stats.aheadTaken.Load(),
		FillErrors:         l.stats.fillErrors.Load(),
		RevalidatedFresh:   l.stats.revalFresh.Load(),
		RevalidatedChanged: l.stats.revalChanged.Load(),
		RevalidatedGone:    l.stats.revalGone.Load(),
		RevalidationErrors: l.stats.revalErrors.Load(),
		StaleServed:        l.stats.staleServed.Load(),
	}
	if l.mem != nil {
		st := l.mem.Stats()
		s.Memory = &st
	}
	if l.disk != nil {
		st := l.disk.Stats()
		s.Disk = &st
	}
	return s
}
