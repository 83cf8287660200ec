package state

import (
	"time"
)

// Stats is what /status shows of the state.
type Stats struct {
	// Loaded is true once the state was loaded; the replica serves nothing before.
	Loaded bool `json:"loaded"`
	// LoadedAt is when the first load completed.
	LoadedAt time.Time `json:"loaded_at,omitzero"`
	// RefreshedAt is when the last complete listing of the log began: every bust recorded
	// before it (less the overlap) has been applied here.
	RefreshedAt time.Time `json:"refreshed_at,omitzero"`
	// LagSeconds is how far behind the bucket's record this replica may be: the time since
	// RefreshedAt (since the start, before the first load).
	LagSeconds float64 `json:"lag_seconds"`
	// LastError is the error of the last load or refresh, if it failed.
	LastError string `json:"last_error,omitempty"`
	// Failures counts loads and refreshes that failed.
	Failures uint64 `json:"failures"`
	// Tombstones is how many keys are tombstoned.
	Tombstones int `json:"tombstones"`
	// BustsApplied counts the log entries of other replicas applied here.
	BustsApplied uint64 `json:"busts_applied"`
	// BustsRecorded counts the entries this replica wrote to the log.
	BustsRecorded uint64 `json:"busts_recorded"`
	// Snapshot is the snapshot the first load read ("" when there was none).
	Snapshot string `json:"snapshot,omitempty"`
	// CompactedAt is when this replica last wrote a snapshot or pruned the log.
	CompactedAt time.Time `json:"compacted_at,omitzero"`
}

// Stats returns the figures of the state.
func (s *State) Stats() Stats {
	now := s.cfg.Clock()
	s.mu.Lock()
	st := Stats{
		LoadedAt:    s.loadedAt,
		RefreshedAt: s.listedAt,
		Snapshot:    s.snapshot,
		CompactedAt: s.compactedAt,
	}
	if s.lastErr != nil {
		st.LastError = s.lastErr.Error()
	}
	s.mu.Unlock()
	st.Loaded = s.loaded.Load()
	st.Failures = s.failures.Load()
	st.Tombstones = s.set.Len()
	st.BustsApplied = s.applied.Load()
	st.BustsRecorded = s.recorded.Load()
	if !st.RefreshedAt.IsZero() {
		st.LagSeconds = now.Sub(st.RefreshedAt).Seconds()
	}
	return st
}
