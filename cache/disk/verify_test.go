package disk

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fedicache/fedicache/cache/tiertest"
	"github.com/fedicache/fedicache/origin"
	"github.com/fedicache/fedicache/origin/origintest"
)

// verifications counts the checks of checksums, by Open and by the background pass.
type verifications struct{ open, background atomic.Int64 }

// hook returns an onVerify that counts, and then calls then (when not nil).
func (v *verifications) hook(then func(key string, background bool)) func(string, bool) {
	return func(key string, background bool) {
		if background {
			v.background.Add(1)
		} else {
			v.open.Add(1)
		}
		if then != nil {
			then(key, background)
		}
	}
}

// damagedCache fills a cache in a new directory with 10 entries, ends it as shutdown says
// ("crash": no Close; "close": Close, then the mark removed, as a power loss that kept the
// directory but not the mark would leave it), and then alters one byte of the body of one entry
// on disk, keeping its length. It returns the directory, the entries and the damaged key.
func damagedCache(t *testing.T, shutdown string) (dir string, objects map[string][]byte, damaged string) {
	t.Helper()
	dir = t.TempDir()
	d := testDisk(t, Config{Dir: dir}, nil)
	waitReady(t, d)
	objects = map[string][]byte{}
	for i := range 10 {
		k := fmt.Sprintf("media_attachments/files/000/000/%03d/original/%016x.jpg", i, i)
		objects[k] = tiertest.Blob(uint64(i), 5000+i*100)
		store(t, d, k, objects[k])
		if i == 3 {
			damaged = k
		}
	}
	switch shutdown {
	case "crash":
		crash(d)
	case "close":
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		if !marked(t, dir) {
			t.Fatal("no mark after a clean Close")
		}
		if err := os.Remove(filepath.Join(dir, markerName)); err != nil {
			t.Fatal(err)
		}
	}
	p := pathOf(dir, damaged)
	off := fileSize(t, p) - 1000 // in the body
	b := make([]byte, 1)
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	f.Close()
	patch(t, p, off, []byte{b[0] ^ 0x01})
	return dir, objects, damaged
}

// servedWhole checks that every entry of objects but skip is served with its bytes, whole and
// by a range.
func servedWhole(t *testing.T, d *Disk, objects map[string][]byte, skip string) {
	t.Helper()
	for k, v := range objects {
		if k == skip {
			continue
		}
		if body, _ := read(t, d, k); !bytes.Equal(body, v) {
			t.Errorf("Open(%q): %d bytes that differ from the %d stored", k, len(body), len(v))
		}
		r := origin.Range{Start: 10, End: 19}
		rb, _, err := d.Open(k, &r)
		if err != nil {
			t.Errorf("Open(%q, %s): %v", k, r, err)
			continue
		}
		discard(rb)
	}
}

// TestUncleanShutdownDamagedNeverServed: after an unclean shutdown an entry whose body was
// altered on disk (same length) is never served, whether it is first asked for before the
// index is rebuilt, after it, or only checked by the background pass: it is dropped, and the
// intact entries are served.
func TestUncleanShutdownDamagedNeverServed(t *testing.T) {
	for _, shutdown := range []string{"crash", "close"} {
		t.Run(shutdown, func(t *testing.T) {
			t.Run("asked for during the rebuild", func(t *testing.T) {
				dir, objects, damaged := damagedCache(t, shutdown)
				var v verifications
				setup, release := gate(t)
				d := testDisk(t, Config{Dir: dir}, func(d *Disk) { setup(d); d.onVerify = v.hook(nil) })
				r := origin.Range{Start: 0, End: 9}
				if body, _, err := d.Open(damaged, &r); !errors.Is(err, origin.ErrNotFound) {
					if body != nil {
						body.Close()
					}
					t.Errorf("Open(%q, %s) of the damaged entry: %v, want ErrNotFound", damaged, r, err)
				}
				absent(t, d, damaged)
				if exists(t, pathOf(dir, damaged)) {
					t.Error("the damaged file is still there")
				}
				servedWhole(t, d, objects, damaged)
				release()
				waitReady(t, d)
				waitChecked(t, d)
				vs := d.Verification()
				if !vs.Unclean || !vs.Done || vs.Pending != 0 || vs.Verified != 9 || vs.Failed != 1 || d.Stats().Dropped != 1 {
					t.Errorf("Verification %+v, Stats %+v; want 9 verified, 1 failed and dropped", vs, d.Stats())
				}
				if n := v.background.Load(); n != 0 {
					t.Errorf("the background pass read %d entries that hits had verified", n)
				}
				absent(t, d, damaged)
			})

			t.Run("asked for after the rebuild", func(t *testing.T) {
				dir, objects, damaged := damagedCache(t, shutdown)
				var v verifications
				hold := make(chan struct{})
				d := testDisk(t, Config{Dir: dir}, func(d *Disk) {
					d.onVerify = v.hook(func(_ string, background bool) {
						if background {
							select { // the pass waits until the hits are done
							case <-hold:
							case <-d.stop:
							}
						}
					})
				})
				waitReady(t, d)
				if vs := d.Verification(); vs.Pending != 10 || vs.Done {
					t.Errorf("after the rebuild: %+v, want 10 entries pending", vs)
				}
				absent(t, d, damaged)
				// A new version of an unverified entry is served as committed, unread.
				replaced := "media_attachments/files/000/000/005/original/0000000000000005.jpg"
				objects[replaced] = []byte("a new version")
				store(t, d, replaced, objects[replaced])
				opens := v.open.Load()
				if body, _ := read(t, d, replaced); string(body) != "a new version" {
					t.Errorf("the new version: %q", body)
				}
				if v.open.Load() != opens {
					t.Error("an entry committed by this process was verified")
				}
				servedWhole(t, d, objects, damaged)
				if vs := d.Verification(); vs.Pending != 0 || vs.Verified != 8 || vs.Failed != 1 || !vs.Done {
					t.Errorf("after the hits: %+v; want 8 verified, 1 failed, none pending", vs)
				}
				close(hold)
				waitChecked(t, d)
				if vs := d.Verification(); vs.Verified != 8 || vs.Failed != 1 {
					t.Errorf("after the pass: %+v", vs)
				}
			})

			t.Run("checked by the background pass", func(t *testing.T) {
				dir, objects, damaged := damagedCache(t, shutdown)
				var v verifications
				d := testDisk(t, Config{Dir: dir}, func(d *Disk) { d.onVerify = v.hook(nil) })
				waitReady(t, d)
				waitChecked(t, d)
				if exists(t, pathOf(dir, damaged)) {
					t.Error("the pass left the damaged file")
				}
				vs := d.Verification()
				if !vs.Done || vs.Verified != 9 || vs.Failed != 1 || v.background.Load() != 10 {
					t.Errorf("after the pass: %+v, %d files read; want 9 verified, 1 failed, 10 read", vs, v.background.Load())
				}
				absent(t, d, damaged)
				servedWhole(t, d, objects, damaged)
				if n := v.open.Load(); n != 0 {
					t.Errorf("%d entries verified again when served", n)
				}
				if st := d.Stats(); st.Entries != 9 || st.Dropped != 1 {
					t.Errorf("Stats: %+v", st)
				}
				if err := d.Close(); err != nil || !marked(t, dir) {
					t.Errorf("Close once all is verified: %v, marked %v; want the mark", err, marked(t, dir))
				}
			})
		})
	}
}

// TestCleanShutdownRereadsNothing: after a clean Close, Open takes the mark, and no entry is
// read for its checksum, before the rebuild, after it, or in the background.
func TestCleanShutdownRereadsNothing(t *testing.T) {
	dir := t.TempDir()
	d := testDisk(t, Config{Dir: dir}, nil)
	waitReady(t, d)
	if marked(t, dir) {
		t.Error("marked clean while open")
	}
	objects := map[string][]byte{}
	for i := range 10 {
		k := fmt.Sprintf("accounts/avatars/%03d.png", i)
		objects[k] = tiertest.Blob(uint64(i), 3000)
		store(t, d, k, objects[k])
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if !marked(t, dir) {
		t.Fatal("no mark after Close")
	}

	var v verifications
	setup, release := gate(t)
	d = testDisk(t, Config{Dir: dir}, func(d *Disk) { setup(d); d.onVerify = v.hook(nil) })
	if marked(t, dir) {
		t.Error("the mark is still there once the cache is open: a crash now would leave it")
	}
	servedWhole(t, d, objects, "") // by path, before the rebuild
	release()
	waitReady(t, d)
	waitChecked(t, d)
	servedWhole(t, d, objects, "")
	if n, m := v.open.Load(), v.background.Load(); n != 0 || m != 0 {
		t.Errorf("after a clean shutdown %d entries were verified when served and %d in the background", n, m)
	}
	if vs := d.Verification(); vs.Unclean || vs.Verified != 0 || vs.Pending != 0 || !vs.Done {
		t.Errorf("Verification: %+v", vs)
	}
}

// TestVerificationStopsOnClose: Close stops the background pass between two files, waits for
// it, and writes no mark, so that the next start verifies what was left; a Close before the
// rebuild ran writes none either.
func TestVerificationStopsOnClose(t *testing.T) {
	origintest.CheckLeaks(t)
	dir := t.TempDir()
	const n = 20
	for i := range n {
		writeFile(t, dir, fmt.Sprintf("cache/custom_emojis/images/%03d/static/e.png", i), tiertest.Blob(uint64(i), 2000), time.Time{})
	}
	reached := make(chan struct{})
	var seen atomic.Int64
	d := testDisk(t, Config{Dir: dir}, func(d *Disk) {
		d.onVerify = func(_ string, background bool) {
			if background && seen.Add(1) == 3 {
				close(reached)
				<-d.stop
			}
		}
	})
	<-reached
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-d.checked:
	default:
		t.Fatal("Close returned while the pass runs")
	}
	vs := d.Verification()
	if vs.Done || vs.Verified != 2 || vs.Pending != n-2 {
		t.Errorf("after Close: %+v; want 2 verified, %d pending", vs, n-2)
	}
	if marked(t, dir) {
		t.Error("Close marked the cache clean with entries unverified")
	}

	d = testDisk(t, Config{Dir: dir}, nil)
	waitChecked(t, d)
	if vs := d.Verification(); !vs.Unclean || !vs.Done || vs.Verified != n {
		t.Errorf("the next start: %+v; want all %d verified", vs, n)
	}
	d.Close()
	if !marked(t, dir) {
		t.Error("no mark once every entry is verified")
	}

	// Unclean, closed before the rebuild ran: nothing verified, no mark.
	if err := os.Remove(filepath.Join(dir, markerName)); err != nil {
		t.Fatal(err)
	}
	setup, _ := gate(t)
	d = testDisk(t, Config{Dir: dir}, setup)
	d.Close()
	if marked(t, dir) {
		t.Error("Close before the rebuild of an unclean cache wrote the mark")
	}
}

// TestCrashMidWrite: a Writer never committed (half written, or whole but not committed)
// leaves nothing served after a crash, and the entries committed before it are.
func TestCrashMidWrite(t *testing.T) {
	dir := t.TempDir()
	d := testDisk(t, Config{Dir: dir}, nil)
	waitReady(t, d)
	kept := tiertest.Blob(1, 70_000)
	store(t, d, "kept.mp4", kept)
	body := tiertest.Blob(2, 1<<20)
	half, err := d.Create(tiertest.NewEntry("half.mp4", body))
	if err != nil {
		t.Fatal(err)
	}
	defer half.Close()
	if _, err := half.Write(body[:len(body)/2]); err != nil {
		t.Fatal(err)
	}
	whole, err := d.Create(tiertest.NewEntry("whole.mp4", body))
	if err != nil {
		t.Fatal(err)
	}
	defer whole.Close()
	if _, err := whole.Write(body); err != nil {
		t.Fatal(err)
	}
	crash(d)

	d = testDisk(t, Config{Dir: dir}, nil)
	absent(t, d, "half.mp4")
	absent(t, d, "whole.mp4")
	if got, _ := read(t, d, "kept.mp4"); !bytes.Equal(got, kept) {
		t.Error("the committed entry differs")
	}
	waitChecked(t, d)
	absent(t, d, "half.mp4")
	absent(t, d, "whole.mp4")
	if fs := files(t, dir+"/tmp"); len(fs) != 0 {
		t.Errorf("temporary files left: %v", fs)
	}
	if vs := d.Verification(); vs.Verified != 1 || vs.Failed != 0 || d.Stats().Entries != 1 {
		t.Errorf("Verification %+v, Stats %+v; want the one entry verified", vs, d.Stats())
	}
}

// TestCommitAfterClose: a Writer that commits after Close (a fill that ends during shutdown)
// keeps its entry, trusted by the next start as the mark says.
func TestCommitAfterClose(t *testing.T) {
	dir := t.TempDir()
	d := testDisk(t, Config{Dir: dir}, nil)
	waitReady(t, d)
	body := tiertest.Blob(4, 100_000)
	w, err := d.Create(tiertest.NewEntry("late.webm", body))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Write(body); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil || !marked(t, dir) {
		t.Fatalf("Close: %v, marked %v", err, marked(t, dir))
	}
	if err := w.Commit(); err != nil {
		t.Fatalf("Commit after Close: %v", err)
	}
	var v verifications
	d = testDisk(t, Config{Dir: dir}, func(d *Disk) { d.onVerify = v.hook(nil) })
	if got, _ := read(t, d, "late.webm"); !bytes.Equal(got, body) {
		t.Error("the entry committed after Close differs")
	}
	if v.open.Load() != 0 {
		t.Error("the entry was verified after a clean shutdown")
	}
}

// TestCheckSum: the checksum covers the header's length, the header and the body, and a file
// cut short fails it.
func TestCheckSum(t *testing.T) {
	body := tiertest.Blob(9, 600_000) // more than one read of checkSum
	good, err := entryFile(tiertest.NewEntry("a/b.png", body), body)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		at   int // the byte flipped; -1: none
		cut  int // bytes cut off the end
		ok   bool
	}{
		{"whole", -1, 0, true},
		{"ValidatedAt, rewritten in place", offValidated + 7, 0, true},
		{"the checksum", offChecksum + 3, 0, false},
		{"the header's length", offHeaderLen + 3, 0, false},
		{"the header", prefixLen + 5, 0, false},
		{"the body's first byte", len(good) - len(body), 0, false},
		{"the body's last byte", len(good) - 1, 0, false},
		{"cut short", -1, 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := bytes.Clone(good)
			if tc.at >= 0 {
				b[tc.at] ^= 0x80
			}
			p := t.TempDir() + "/f"
			if err := os.WriteFile(p, b[:len(b)-tc.cut], 0o600); err != nil {
				t.Fatal(err)
			}
			err := sumOf(t, p)
			if tc.ok && err != nil || !tc.ok && !errors.Is(err, errCorrupt) {
				t.Errorf("checkSum: %v, want ok %v", err, tc.ok)
			}
		})
	}
	// It stops when asked to.
	p := t.TempDir() + "/f"
	if err := os.WriteFile(p, good, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	stop := make(chan struct{})
	close(stop)
	if err := checkSum(f, int64(len(good)), stop); !errors.Is(err, errStopped) {
		t.Errorf("checkSum with stop closed: %v, want errStopped", err)
	}
}
