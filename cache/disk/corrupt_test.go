package disk

import (
	"encoding/binary"
	"os"
	"testing"
	"time"

	"github.com/fedicache/fedicache/cache/tiertest"
)

// corruptions damage the file at p, an entry of key with a 5000-byte body.
var corruptions = []struct {
	name   string
	damage func(t *testing.T, dir, p string)
}{
	{"truncated body", func(t *testing.T, _, p string) { truncate(t, p, -1) }},
	{"truncated header", func(t *testing.T, _, p string) { truncate(t, p, prefixLen+10) }},
	{"shorter than the prefix", func(t *testing.T, _, p string) { truncate(t, p, 7) }},
	{"empty", func(t *testing.T, _, p string) { truncate(t, p, 0) }},
	{"garbage prefix", func(t *testing.T, _, p string) { patch(t, p, 0, []byte("GIF89a")) }},
	{"the format before checksums", func(t *testing.T, _, p string) { patch(t, p, 0, []byte("FCD1")) }},
	{"huge header length", func(t *testing.T, _, p string) {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], 1<<31)
		patch(t, p, offHeaderLen, b[:])
	}},
	{"header not JSON", func(t *testing.T, _, p string) { patch(t, p, prefixLen, []byte("<xml")) }},
	{"another key", func(t *testing.T, _, p string) {
		other := tiertest.Blob(1, 5000)
		file, err := entryFile(tiertest.NewEntry("another/key.png", other), other)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, file, 0o600); err != nil {
			t.Fatal(err)
		}
	}},
	{"too long", func(t *testing.T, _, p string) {
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.Write([]byte("more")); err != nil {
			t.Fatal(err)
		}
	}},
}

// truncate cuts the file at p to n bytes, or by one byte when n < 0.
func truncate(t *testing.T, p string, n int64) {
	t.Helper()
	if n < 0 {
		info, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		n = info.Size() - 1
	}
	if err := os.Truncate(p, n); err != nil {
		t.Fatal(err)
	}
}

// patch overwrites bytes of the file at p at off with b.
func patch(t *testing.T, p string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func TestCorruptDroppedOnOpen(t *testing.T) {
	const key = "media_attachments/files/000/000/001/original/c.jpg"
	for _, tc := range corruptions {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			logs := &logs{}
			d := testDisk(t, Config{Dir: dir, Logger: slogger(logs)}, nil)
			waitReady(t, d)
			store(t, d, key, tiertest.Blob(7, 5000))
			p := pathOf(dir, key)
			tc.damage(t, dir, p)

			absent(t, d, key)
			if exists(t, p) {
				t.Error("the corrupt file is still there")
			}
			st := d.Stats()
			if st.Dropped != 1 || st.Entries != 0 || st.Bytes != 0 {
				t.Errorf("Stats after the drop: %+v", st)
			}
			if n := logs.count("WARN disk cache: dropped a corrupt entry"); n != 1 {
				t.Errorf("%d warnings, want 1", n)
			}
			absent(t, d, key)
			if st := d.Stats(); st.Dropped != 1 {
				t.Errorf("a second Open counted another drop: %+v", st)
			}
		})
	}
}

func TestCorruptDroppedByRebuild(t *testing.T) {
	dir := t.TempDir()
	const good = "good/1.png"
	writeFile(t, dir, good, []byte("fine"), time.Time{})
	var damaged []string
	for i, tc := range corruptions {
		key := "bad/" + tc.name
		writeFile(t, dir, key, tiertest.Blob(uint64(i), 5000), time.Time{})
		tc.damage(t, dir, pathOf(dir, key))
		damaged = append(damaged, pathOf(dir, key))
	}
	// A whole entry filed under a name that is not its key's hash.
	writeFile(t, dir, "misfiled", []byte("x"), time.Time{})
	misfiled := pathOf(dir, "misfiled")
	wrong := pathOf(dir, "somewhere else")
	if err := os.MkdirAll(dirOf(wrong), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(misfiled, wrong); err != nil {
		t.Fatal(err)
	}
	damaged = append(damaged, wrong)
	// A file whose name is not an entry's is left alone.
	other := dirOf(pathOf(dir, good)) + "/README"
	if err := os.WriteFile(other, nil, 0o600); err != nil {
		t.Fatal(err)
	}

	d := testDisk(t, Config{Dir: dir}, nil)
	waitReady(t, d)
	for _, p := range damaged {
		if exists(t, p) {
			t.Errorf("the rebuild left %s", p)
		}
	}
	if !exists(t, other) {
		t.Error("the rebuild removed a file that is not an entry's")
	}
	st := d.Stats()
	if st.Entries != 1 || st.Dropped != uint64(len(damaged)) {
		t.Errorf("Stats after the rebuild: %+v; want 1 entry and %d dropped", st, len(damaged))
	}
	if body, _ := read(t, d, good); string(body) != "fine" {
		t.Errorf("good entry: %q", body)
	}
}
