package tiertest

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fedicache/fedicache/cache"
	"github.com/fedicache/fedicache/origin"
)

// CheckKept checks what a cache kept once its fetches have ended: every entry a tier holds for a
// key of objects reads back as exactly its bytes, the disk folder (diskDir, "" without a disk
// tier) holds no file beyond those entries, and no temporary file is left in its tmp folder or
// in spoolDir. Nil tiers are skipped.
func CheckKept(t *testing.T, objects map[string][]byte, mem, disk cache.Tier, diskDir, spoolDir string) {
	t.Helper()
	onDisk := 0
	for key, want := range objects {
		for _, tier := range []cache.Tier{mem, disk} {
			if tier == nil {
				continue
			}
			body, e, err := tier.Open(key, nil)
			if errors.Is(err, origin.ErrNotFound) {
				continue
			}
			if err != nil {
				t.Errorf("%s tier, %s: %v", tier.Name(), key, err)
				continue
			}
			got, err := io.ReadAll(body)
			body.Close()
			if err != nil || !bytes.Equal(got, want) || e.Meta.Size != int64(len(want)) {
				t.Errorf("%s tier holds %s half-written or wrong: %d bytes (size %d), %v; want the %d stored",
					tier.Name(), key, len(got), e.Meta.Size, err, len(want))
			}
			if tier == disk {
				onDisk++
			}
		}
	}
	dirs := []string{spoolDir}
	if diskDir != "" {
		tmp := filepath.Join(diskDir, "tmp")
		dirs = append(dirs, tmp)
		files := 0
		_ = filepath.WalkDir(diskDir, func(p string, d fs.DirEntry, err error) error {
			rel, _ := filepath.Rel(diskDir, p)
			if parts := strings.Split(rel, string(filepath.Separator)); err == nil && d.Type().IsRegular() &&
				len(parts) == 2 && len(parts[0]) == 2 {
				files++ // where entries are filed: ab/abcd...
			}
			return nil
		})
		if files != onDisk {
			t.Errorf("the disk folder holds %d files, of which %d are whole entries of known keys", files, onDisk)
		}
	}
	for _, dir := range dirs {
		if dir == "" {
			continue
		}
		if ents, err := os.ReadDir(dir); err == nil && len(ents) != 0 {
			t.Errorf("%d temporary files left in %s after the fills ended", len(ents), filepath.Base(dir))
		}
	}
}
