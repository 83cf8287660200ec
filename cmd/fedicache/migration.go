package main

import (
	"github.com/fedicache/fedicache/backfill"
	"github.com/fedicache/fedicache/proxy/admin"
)

// migrationListed is how many failures and conflicting keys the status page gets.
const migrationListed = 5

// migrationOf is the backfill's progress as the status page shows it.
//
// What the bucket holds of the volume is what the walk found there (present), what another
// copier stored first (exists) and what this run copied. Keys that serve copied from its queue
// may be counted again when the walk reaches them, so the figures are capped at the volume's
// totals.
func migrationOf(s backfill.Snapshot) admin.Migration {
	m := admin.Migration{
		Running: !s.Done, Done: s.Done, Started: s.Started, Elapsed: s.Elapsed,
		FilesTotal: s.TotalFiles, BytesTotal: s.TotalBytes, FilesScanned: s.Scanned,
		FilesDone:   s.Present + s.Exists + s.Copied,
		BytesDone:   s.BytesPresent + s.BytesExists + s.BytesCopied,
		FilesCopied: s.Copied, BytesCopied: s.BytesCopied,
		BytesPerSecond: s.BytesPerSecond, ETA: s.ETA,
		Conflicts: s.Conflicts, Errors: s.Failed,
		Excluded: s.Excluded, Skipped: s.PrivateSkipped + s.Changed,
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
