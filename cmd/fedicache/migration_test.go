package main

import (
	"fmt"
	"slices"
	"testing"

	"github.com/fedicache/fedicache/backfill"
)

func TestMigrationOf(t *testing.T) {
	var failures []backfill.Failure
	for i := range 7 {
		failures = append(failures, backfill.Failure{Key: fmt.Sprintf("k/%d.png", i), Err: "s3: put: AccessDenied"})
	}
	tests := []struct {
		name                    string
		s                       backfill.Snapshot
		filesDone, bytesDone    int64
		running                 bool
		recentErrors, conflicts []string
	}{
		{
			name: "counting",
			s: backfill.Snapshot{TotalFiles: -1, TotalBytes: -1, Scanned: 10, BytesScanned: 1000,
				Present: 4, BytesPresent: 400, ToCopy: 6, BytesToCopy: 600, Copied: 5, BytesCopied: 500},
			filesDone: 9, bytesDone: 900, running: true,
		},
		{
			name: "conflicts, exclusions and another copier",
			s: backfill.Snapshot{TotalFiles: 20, TotalBytes: 2000, Scanned: 20, BytesScanned: 2000,
				Present: 6, BytesPresent: 600, Conflicts: 1, Excluded: 2, PrivateSkipped: 1, ToCopy: 10, BytesToCopy: 1000,
				Copied: 8, BytesCopied: 800, Exists: 1, BytesExists: 100, Failed: 1, Done: true,
				Failures: failures, ConflictKeys: []string{"c/1.png"}},
			filesDone: 15, bytesDone: 600 + 800 + 100,
			recentErrors: []string{"k/2.png: s3: put: AccessDenied", "k/3.png: s3: put: AccessDenied",
				"k/4.png: s3: put: AccessDenied", "k/5.png: s3: put: AccessDenied", "k/6.png: s3: put: AccessDenied"},
			conflicts: []string{"c/1.png"},
		},
		{
			name: "copies from serve's queue counted again by the walk",
			s: backfill.Snapshot{TotalFiles: 3, TotalBytes: 300, Scanned: 3, BytesScanned: 300,
				Present: 3, BytesPresent: 300, Copied: 2, BytesCopied: 200},
			filesDone: 3, bytesDone: 300, running: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := migrationOf(tt.s)
			if m.FilesDone != tt.filesDone || m.BytesDone != tt.bytesDone || m.Running != tt.running || m.Done == tt.running {
				t.Errorf("files %d, bytes %d, running %v, done %v; want %d, %d, %v",
					m.FilesDone, m.BytesDone, m.Running, m.Done, tt.filesDone, tt.bytesDone, tt.running)
			}
			if !slices.Equal(m.RecentErrors, tt.recentErrors) || !slices.Equal(m.ConflictKeys, tt.conflicts) {
				t.Errorf("errors %q, conflicts %q", m.RecentErrors, m.ConflictKeys)
			}
			if m.FilesTotal != tt.s.TotalFiles || m.BytesTotal != tt.s.TotalBytes || m.Errors != tt.s.Failed ||
				m.Conflicts != tt.s.Conflicts || m.Excluded != tt.s.Excluded || m.Skipped != tt.s.PrivateSkipped+tt.s.Changed {
				t.Errorf("counts: %+v from %+v", m, tt.s)
			}
		})
	}
}

// TestStoresNotBegunAreWaiting: a store whose copy waits for the stores before it says so,
// and is stopped, not waiting, once the copies end without reaching it.
func TestStoresNotBegunAreWaiting(t *testing.T) {
	cs := copies{
		{name: "volume", p: backfill.NewProgress()},
		{name: "wasabi", p: backfill.NewProgress()},
	}
	cs[0].started.Store(true)
	if m := cs[0].migration(); m.Waiting || !m.Running {
		t.Errorf("the store being copied: %+v", m)
	}
	if m := cs[1].migration(); !m.Waiting || m.Running {
		t.Errorf("the store after it: %+v, want waiting", m)
	}
	cs.abandon()
	if m := cs[1].migration(); m.Waiting || m.Running || m.Done {
		t.Errorf("the store never reached: %+v, want stopped", m)
	}
}
