//go:build linux

package volume

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// entriesVolume opens a volume holding a file, a hidden file, a directory with a file, a FIFO
// and symbolic links to a file inside, to a file outside, to a directory inside and to nothing.
func entriesVolume(t *testing.T) *Volume {
	t.Helper()
	parent := t.TempDir()
	if err := os.WriteFile(filepath.Join(parent, "canary"), []byte("canary"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(parent, "vol")
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, perm := range map[string]os.FileMode{"a.jpg": 0o644, "hidden.jpg": 0o600, "sub/x.jpg": 0o644} {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.WriteFile(p, []byte(name), perm); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, perm); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{"link-in": "a.jpg", "link-out": "../canary", "link-dir": "sub", "dangling": "nothing"} {
		if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	v, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	return v
}

// dtypeOf is the d_type getdents gives the file at path.
func dtypeOf(t *testing.T, path string) byte {
	t.Helper()
	info, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	switch m := info.Mode(); {
	case m.IsDir():
		return unix.DT_DIR
	case m.IsRegular():
		return unix.DT_REG
	case m&fs.ModeSymlink != 0:
		return unix.DT_LNK
	case m&fs.ModeNamedPipe != 0:
		return unix.DT_FIFO
	}
	t.Fatalf("%s: unexpected mode %v", path, info.Mode())
	return 0
}

// TestWalkEntryOfEachType: the walk adds each entry as what it is, whether getdents gives its
// type or not (DT_UNKNOWN, as some filesystems report every entry): a directory to walk, a
// regular file described (hidden ones too), a link to a file inside described as that file, and
// nothing else.
func TestWalkEntryOfEachType(t *testing.T) {
	v := entriesVolume(t)
	root, err := v.openWalkDir("")
	if err != nil {
		t.Fatal(err)
	}
	defer closeDir(root)
	sub, err := v.openWalkDir("sub")
	if err != nil {
		t.Fatal(err)
	}
	defer closeDir(sub)
	r := newDirReader(v)
	defer r.release()
	for _, tc := range []struct {
		d         dirHandle
		dir, name string
		want      string // "" for no entry
	}{
		{root, "", "a.jpg", "file a.jpg (5 bytes, -rw-r--r--)"},
		{root, "", "hidden.jpg", "file hidden.jpg (10 bytes, -rw-------)"},
		{root, "", "sub", "directory sub"},
		{sub, "sub", "x.jpg", "file sub/x.jpg (9 bytes, -rw-r--r--)"},
		{root, "", "link-in", "file link-in (5 bytes, -rw-r--r--)"},
		{root, "", "link-out", ""},
		{root, "", "link-dir", ""},
		{root, "", "dangling", ""},
		{root, "", "fifo", ""},
	} {
		path := filepath.Join(v.root.Name(), filepath.FromSlash(tc.dir), tc.name)
		for _, typ := range []byte{dtypeOf(t, path), unix.DT_UNKNOWN} {
			out, err := r.add(nil, tc.d, tc.dir, []byte(tc.name), typ)
			if err != nil {
				t.Errorf("%s (type %d): %v", path, typ, err)
				continue
			}
			got := ""
			switch {
			case len(out) > 1:
				got = fmt.Sprintf("%d entries", len(out))
			case len(out) == 1 && out[0].dir:
				got = "directory " + out[0].key
			case len(out) == 1:
				got = fmt.Sprintf("file %s (%d bytes, %v)", out[0].key, out[0].info.Size(), out[0].info.Mode())
			}
			if got != tc.want {
				t.Errorf("%s (type %d): %q, want %q", path, typ, got, tc.want)
			}
			if len(out) == 1 && out[0].name() != tc.name {
				t.Errorf("%s: entry named %q", path, out[0].name())
			}
		}
	}
}

// TestOpenDirInRefusesLinks: the walk opens a subdirectory beneath its parent by name, and
// refuses a symbolic link there, as one that replaced a directory since the parent was read,
// whether it opens beneath the parent or, deeper than walkHeld, from the volume's directory.
func TestOpenDirInRefusesLinks(t *testing.T) {
	v := entriesVolume(t)
	root, err := v.openWalkDir("")
	if err != nil {
		t.Fatal(err)
	}
	defer closeDir(root)
	for _, parent := range []dirHandle{root, noDir} {
		for name, ok := range map[string]bool{"sub": true, "link-dir": false, "a.jpg": false, "fifo": false, "missing": false} {
			d, err := v.openDirIn(parent, name, 0)
			if err == nil {
				closeDir(d)
			}
			if ok && err != nil || !ok && (err == nil || !absent(err)) {
				t.Errorf("openDirIn(%v, %q): %v, want a directory: %t (else an error the walk skips)", parent, name, err, ok)
			}
		}
	}
}
