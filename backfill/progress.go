package backfill

import (
	"sync"
	"sync/atomic"
	"time"
)

// maxListed bounds each list of keys a Progress keeps for the summary (failures, conflicts,
// hidden files skipped); the counts stay exact beyond it.
const maxListed = 1000

// Progress counts a run as it goes; it is safe to read while the run writes it.
type Progress struct {
	Scanned, Excluded, Present, Conflicts atomic.Int64 // files seen; filtered out; already in the bucket; same key, other size
	ToCopy, Copied, Exists, Failed        atomic.Int64 // files to copy; copied; stored by another copier meanwhile; failed for good
	Private, PrivateSkipped, Changed      atomic.Int64 // hidden files copied as private; hidden files skipped (no ACLs); changed or vanished while read
	BytesToCopy, BytesRead, BytesCopied   atomic.Int64
	// TotalFiles and TotalBytes are the source's, known once the walk has ended (there is one
	// walk, no counting pass ahead of it): -1 until then, and the estimate of the time left
	// (Snapshot.ETA) is unknown until then too. Scanned and BytesScanned are the totals so far.
	TotalFiles, TotalBytes atomic.Int64
	// BytesScanned is the size of the files scanned so far; BytesPresent of those the bucket
	// held already, BytesExists of those another copier stored meanwhile.
	BytesScanned, BytesPresent, BytesExists atomic.Int64
	// Unlisted counts the files present on the word of the last run's record (Config.Ranges):
	// in ranges unchanged since that run found them all in the bucket, not listed again.
	Unlisted atomic.Int64

	started  time.Time
	finished atomic.Int64 // Unix nanoseconds; 0 while running

	mu             sync.Mutex
	source         string
	failures       []Failure
	conflicts      []string
	privateSkipped []string
	changed        []string
}

// Failure is a file that could not be copied.
type Failure struct {
	Key string `json:"key"`
	Err string `json:"error"`
}

// NewProgress returns an empty Progress whose clock starts now.
func NewProgress() *Progress {
	p := &Progress{started: time.Now()}
	p.TotalFiles.Store(-1)
	p.TotalBytes.Store(-1)
	return p
}

func (p *Progress) list(dst *[]string, key string) {
	p.mu.Lock()
	if len(*dst) < maxListed {
		*dst = append(*dst, key)
	}
	p.mu.Unlock()
}

func (p *Progress) fail(key string, err error) {
	p.Failed.Add(1)
	p.mu.Lock()
	if len(p.failures) < maxListed {
		p.failures = append(p.failures, Failure{Key: key, Err: err.Error()})
	}
	p.mu.Unlock()
}

func (p *Progress) finish() { p.finished.Store(time.Now().UnixNano()) }

// setSource names the source p counts, unless it has a name already.
func (p *Progress) setSource(name string) {
	p.mu.Lock()
	if p.source == "" {
		p.source = name
	}
	p.mu.Unlock()
}

// Snapshot is a Progress at one moment, for the summary, /status and metrics.
type Snapshot struct {
	// Source names the store being copied (Source.Name), so that several runs can be shown
	// side by side.
	Source         string        `json:"source"`
	Scanned        int64         `json:"scanned"`
	Excluded       int64         `json:"excluded"`
	Present        int64         `json:"present"`
	Conflicts      int64         `json:"conflicts"`
	ToCopy         int64         `json:"to_copy"`
	Copied         int64         `json:"copied"`
	Exists         int64         `json:"exists"`
	Failed         int64         `json:"failed"`
	Private        int64         `json:"private"`
	PrivateSkipped int64         `json:"private_skipped"`
	Changed        int64         `json:"changed"`
	BytesToCopy    int64         `json:"bytes_to_copy"`
	BytesRead      int64         `json:"bytes_read"`
	BytesCopied    int64         `json:"bytes_copied"`
	BytesScanned   int64         `json:"bytes_scanned"` // size of the files scanned so far
	BytesPresent   int64         `json:"bytes_present"` // size of those already in the bucket
	BytesExists    int64         `json:"bytes_exists"`  // size of those another copier stored meanwhile
	Unlisted       int64         `json:"unlisted"`      // present on the last run's record, not listed again
	TotalFiles     int64         `json:"total_files"`
	TotalBytes     int64         `json:"total_bytes"`
	Remaining      int64         `json:"remaining_files"`
	Started        time.Time     `json:"started"`
	Elapsed        time.Duration `json:"elapsed_ns"`
	BytesPerSecond float64       `json:"bytes_per_second"`
	ETA            time.Duration `json:"eta_ns"` // -1 while unknown
	Done           bool          `json:"done"`

	Failures     []Failure `json:"failures,omitempty"`
	ConflictKeys []string  `json:"conflict_keys,omitempty"`
	PrivateSkips []string  `json:"private_skipped_keys,omitempty"`
	ChangedKeys  []string  `json:"changed_keys,omitempty"`
}

// Snapshot returns the counts now, with the rate and an estimate of the time left.
func (p *Progress) Snapshot() Snapshot {
	s := Snapshot{
		Scanned: p.Scanned.Load(), Excluded: p.Excluded.Load(), Present: p.Present.Load(),
		Conflicts: p.Conflicts.Load(), ToCopy: p.ToCopy.Load(), Copied: p.Copied.Load(),
		Exists: p.Exists.Load(), Failed: p.Failed.Load(), Private: p.Private.Load(),
		PrivateSkipped: p.PrivateSkipped.Load(), Changed: p.Changed.Load(),
		BytesToCopy: p.BytesToCopy.Load(), BytesRead: p.BytesRead.Load(), BytesCopied: p.BytesCopied.Load(),
		BytesScanned: p.BytesScanned.Load(), BytesPresent: p.BytesPresent.Load(), BytesExists: p.BytesExists.Load(), Unlisted: p.Unlisted.Load(), TotalFiles: p.TotalFiles.Load(), TotalBytes: p.TotalBytes.Load(),
		Started: p.started, ETA: -1,
	}
	end := time.Now()
	if f := p.finished.Load(); f != 0 {
		end, s.Done = time.Unix(0, f), true
	}
	s.Elapsed = end.Sub(p.started)
	if secs := s.Elapsed.Seconds(); secs > 0 {
		s.BytesPerSecond = float64(s.BytesRead) / secs
	}
	// What is left: the files scanned and waiting for a worker, and, once the walk has ended,
	// nothing more; bytes likewise. While the walk goes on the total is unknown, and so is
	// the ETA.
	settled := s.Copied + s.Exists + s.Failed + s.Changed
	s.Remaining = s.ToCopy - settled
	leftBytes := s.BytesToCopy - s.BytesRead
	switch {
	case s.Done:
		s.ETA, s.Remaining = 0, 0
	case s.TotalFiles >= 0 && s.BytesPerSecond > 0:
		s.ETA = time.Duration(float64(max(leftBytes, 0)) / s.BytesPerSecond * float64(time.Second))
	}
	p.mu.Lock()
	s.Source = p.source
	s.Failures = append([]Failure(nil), p.failures...)
	s.ConflictKeys = append([]string(nil), p.conflicts...)
	s.PrivateSkips = append([]string(nil), p.privateSkipped...)
	s.ChangedKeys = append([]string(nil), p.changed...)
	p.mu.Unlock()
	return s
}
