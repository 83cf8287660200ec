package disk

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
)

// hashDirs records which of the 256 hash directories are known to exist, so that a commit into
// a new one makes it (one mkdir) before its rename, and a commit into a known one renames at
// once: neither a rename that fails for want of the directory nor a stat. The rebuild marks the
// directories it lists, Commit those it makes or finds made. Bits are never cleared: the tier
// never removes a hash directory, and a rename that finds one gone all the same makes it again
// (see Commit). The 256 are not made at Open, so that a cache that was never used holds none;
// a fresh cache makes each at its first commit into it, at most 256 mkdirs in all.
//
// There is one level: an entry's file is dir/ab/abcd... (see filePath). The layout of earlier
// versions, dir/ab/cd/abcd..., made a second-level directory per new leaf, up to 65,536, and
// the mkdirs took a tenth of the CPU of a miss in a new cache; the rebuild moves such entries
// (see moveOld). ext4 (dir_index) and XFS index large directories, so 256 of them hold
// millions of entries well.
type hashDirs struct {
	tops [256 / 64]atomic.Uint64 // bit i: the directory named hex(i)
}

// hexIndex returns the value of s, lowercase hexadecimal digits, and false when s is not that.
func hexIndex(s string) (int, bool) {
	v := 0
	for i := range len(s) {
		c := s[i]
		switch {
		case '0' <= c && c <= '9':
			v = v<<4 | int(c-'0')
		case 'a' <= c && c <= 'f':
			v = v<<4 | int(c-'a'+10)
		default:
			return 0, false
		}
	}
	return v, true
}

// known reports whether the hash directory of index i (0-255) is known to exist.
func (h *hashDirs) known(i int) bool { return h.tops[i/64].Load()&(1<<(i%64)) != 0 }

// mark records that the hash directory of index i (0-255) exists.
func (h *hashDirs) mark(i int) { h.tops[i/64].Or(1 << (i % 64)) }

// markTop records that the hash directory of that name exists.
func (h *hashDirs) markTop(name string) {
	if i, ok := hexIndex(name); ok && len(name) == 2 {
		h.mark(i)
	}
}

// makeHashDir makes the hash directory of the file name (see hashName) under dir unless it is
// known to exist.
func (h *hashDirs) makeHashDir(dir, name string) error {
	i, _ := hexIndex(name[:2])
	if h.known(i) {
		return nil
	}
	if err := mkdirExisting(filepath.Join(dir, name[:2])); err != nil {
		return err
	}
	h.mark(i)
	return nil
}

// mkdirExisting makes the directory p, and succeeds when it exists already.
func mkdirExisting(p string) error {
	err := os.Mkdir(p, 0o750)
	if err != nil && errors.Is(err, fs.ErrExist) {
		if fi, serr := os.Stat(p); serr == nil && fi.IsDir() {
			return nil
		}
	}
	return err
}
