package main

import (
	"github.com/fedicache/fedicache/backfill"
	"github.com/fedicache/fedicache/proxy"
)

// migrationOf is the backfill's progress as the status page shows it.
func migrationOf(s backfill.Snapshot) proxy.Migration {
	return proxy.Migration{
		Running: !s.Done, Done: s.Done, Started: s.Started,
		FilesTotal: s.TotalFiles, BytesTotal: s.TotalBytes,
		FilesCopied: s.Copied, BytesCopied: s.BytesCopied,
		BytesPerSecond: s.BytesPerSecond, ETA: s.ETA,
		Conflicts: s.Conflicts, Errors: s.Failed,
	}
}
