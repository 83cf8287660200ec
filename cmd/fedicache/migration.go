package main

import (
	"github.com/fedicache/fedicache/backfill"
	"github.com/fedicache/fedicache/proxy"
)

// migrationListed is how many failures and conflicting keys the status page gets.
const migrationListed = 5

// migrationOf is the backfill's progress as the status page shows it.
//
// What the bucket holds of the volume is what the walk found there (present), what another
// copier stored first (exists) and what this run copied. The walk counts the bytes of every
// file it scans, and of those it copies, but not those of the present ones alone: they are the
// bytes it did not have to copy, shared among the present files, conflicts, excluded and
// hidden files by their number (exact when, as usual, there are none of the others). Keys
// that serve copied from its queue may be counted again when the walk reaches them, so the
// figures are capped at the volume's totals.
func migrationOf(s backfill.Snapshot) proxy.Migration {
	m := proxy.Migration{
		Running: !s.Done, Done: s.Done, Started: s.Started, Elapsed: s.Elapsed,
		FilesTotal: s.TotalFiles, BytesTotal: s.TotalBytes, FilesScanned: s.Scanned,
		FilesDone:   s.Present + s.Exists + s.Copied,
		FilesCopied: s.Copied, BytesCopied: s.BytesCopied,
		BytesPerSecond: s.BytesPerSecond, ETA: s.ETA,
		Conflicts: s.Conflicts, Errors: s.Failed,
		Excluded: s.Excluded, Skipped: s.PrivateSkipped + s.Changed,
	}
	// Bytes scanned and not queued for copying: the present files', the conflicts', the
	// excluded and the hidden ones'.
	if notQueued, n := s.BytesScanned-s.BytesToCopy, s.Present+s.Conflicts+s.Excluded+s.PrivateSkipped; notQueued > 0 && n > 0 {
		m.BytesDone = int64(float64(notQueued) * float64(s.Present) / float64(n))
	}
	m.BytesDone += s.BytesCopied
	if s.ToCopy > 0 && s.Exists > 0 {
		m.BytesDone += int64(float64(s.BytesToCopy) * float64(s.Exists) / float64(s.ToCopy))
	}
	if m.FilesTotal >= 0 {
		m.FilesDone = min(m.FilesDone, m.FilesTotal)
	}
	if m.BytesTotal >= 0 {
		m.BytesDone = min(m.BytesDone, m.BytesTotal)
	}
	failures := s.Failures[max(len(s.Failures)-migrationListed, 0):]
	for _, f := range failures {
		m.RecentErrors = append(m.RecentErrors, f.Key+": "+f.Err)
	}
	m.ConflictKeys = s.ConflictKeys[max(len(s.ConflictKeys)-migrationListed, 0):]
	return m
}
