package main

import (
	"github.com/fedicache/fedicache/backfill"
	"github.com/prometheus/client_golang/prometheus"
)

// registerBackfillMetrics exports the background copy's progress in reg.
func registerBackfillMetrics(reg prometheus.Registerer, p *backfill.Progress) {
	gauge := func(name, help string, f func(backfill.Snapshot) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return f(p.Snapshot()) })
	}
	reg.MustRegister(
		gauge("fedicache_backfill_scanned_files", "Files of the old volume the backfill has looked at.", func(s backfill.Snapshot) float64 { return float64(s.Scanned) }),
		gauge("fedicache_backfill_copied_files", "Files the backfill copied into the bucket.", func(s backfill.Snapshot) float64 { return float64(s.Copied) }),
		gauge("fedicache_backfill_copied_bytes", "Bytes the backfill copied into the bucket.", func(s backfill.Snapshot) float64 { return float64(s.BytesCopied) }),
		gauge("fedicache_backfill_remaining_files", "Files left to copy (an estimate while the volume is being counted).", func(s backfill.Snapshot) float64 { return float64(s.Remaining) }),
		gauge("fedicache_backfill_conflicts", "Keys the bucket holds with another size (never overwritten).", func(s backfill.Snapshot) float64 { return float64(s.Conflicts) }),
		gauge("fedicache_backfill_failed_files", "Files that could not be copied.", func(s backfill.Snapshot) float64 { return float64(s.Failed) }),
		gauge("fedicache_backfill_done", "1 once the walk of the volume has ended.", func(s backfill.Snapshot) float64 {
			if s.Done {
				return 1
			}
			return 0
		}),
	)
}
