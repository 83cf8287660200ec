package disk

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
)

// hashDirs records which hash directories are known to exist, so that a commit into a new one
// makes it (one mkdir, two when its first level is new too) before its rename, and a commit
// into a known one renames at once: neither a rename that fails for want of the directory nor
// a stat. The rebuild marks the directories it lists, Commit those it makes or finds made.
// Bits are never cleared: the tier never removes a hash directory, and a rename that finds one
// gone all the same makes it again (see Commit). All 65,536 are not made at Open: that costs a
// start 65,536 mkdirs, and a block of the disk each, for directories a small cache never uses.
type hashDirs struct {
	tops   [256 / 64]atomic.Uint64   // bit i: the directory of the first level of name hex(i)
	leaves [65536 / 64]atomic.Uint64 // bit i: the directory of the second level of i = 0xabcd: ab/cd
}

// known reports whether bit i of bits is set.
func known(bits []atomic.Uint64, i int) bool { return bits[i/64].Load()&(1<<(i%64)) != 0 }

// mark sets bit i of bits.
func mark(bits []atomic.Uint64, i int) { bits[i/64].Or(1 << (i % 64)) }

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

// markTop records that the first-level hash directory of that name exists.
func (h *hashDirs) markTop(name string) {
	if i, ok := hexIndex(name); ok && len(name) == 2 {
		mark(h.tops[:], i)
	}
}

// markLeaf records that the hash directory top/sub exists.
func (h *hashDirs) markLeaf(top, sub string) {
	if i, ok := hexIndex(top + sub); ok && len(top) == 2 && len(sub) == 2 {
		mark(h.leaves[:], i)
	}
}

// makeHashDir makes the hash directory of the file name (see hashName) under dir unless it is
// known to exist.
func (h *hashDirs) makeHashDir(dir, name string) error {
	i, _ := hexIndex(name[:4])
	if known(h.leaves[:], i) {
		return nil
	}
	top := filepath.Join(dir, name[0:2])
	if !known(h.tops[:], i>>8) {
		if err := mkdirExisting(top); err != nil {
			return err
		}
		mark(h.tops[:], i>>8)
	}
	if err := mkdirExisting(filepath.Join(top, name[2:4])); err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		// The first level was removed behind the tier's back.
		if err := os.MkdirAll(filepath.Join(top, name[2:4]), 0o750); err != nil {
			return err
		}
	}
	mark(h.leaves[:], i)
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
