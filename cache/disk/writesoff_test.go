package disk

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fedicache/fedicache/cache/tiertest"
)

func TestWritesOffWhenFull(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.ENOSPC, syscall.EDQUOT, syscall.EROFS, syscall.EACCES, syscall.EPERM} {
		t.Run(errno.Error(), func(t *testing.T) {
			dir := t.TempDir()
			clk := newClock()
			logs := &logs{}
			var (
				full  atomic.Bool
				tries atomic.Int32
			)
			d := testDisk(t, Config{Dir: dir, RetryAfter: time.Millisecond, Logger: slogger(logs)}, func(d *Disk) {
				d.now = clk.Now
				d.createTemp = func(dir, pattern string) (*os.File, error) {
					tries.Add(1)
					if full.Load() {
						return nil, &fs.PathError{Op: "open", Path: filepath.Join(dir, pattern), Err: errno}
					}
					return os.CreateTemp(dir, pattern)
				}
			})
			waitReady(t, d)
			store(t, d, "kept.png", []byte("kept"))

			full.Store(true)
			if _, err := d.Create(tiertest.NewEntry("a.png", nil)); !errors.Is(err, errno) {
				t.Fatalf("Create on a full disk: %v, want %v", err, errno)
			}
			st := d.Stats()
			if !st.Disabled || st.WriteErrors != 1 {
				t.Errorf("after the failure: %+v", st)
			}
			if _, err := d.Create(tiertest.NewEntry("b.png", nil)); !errors.Is(err, ErrDisabled) {
				t.Errorf("Create while writes are off: %v, want ErrDisabled", err)
			}
			if n := tries.Load(); n != 2 {
				t.Errorf("Create touched the disk while writes were off: %d tries", n)
			}
			if body, _ := read(t, d, "kept.png"); string(body) != "kept" {
				t.Errorf("read while writes are off: %q", body)
			}

			// After RetryAfter a write is tried; it fails again, quietly.
			clk.Advance(time.Millisecond)
			if d.Stats().Disabled {
				t.Error("still disabled after RetryAfter")
			}
			if _, err := d.Create(tiertest.NewEntry("c.png", nil)); !errors.Is(err, errno) {
				t.Errorf("Create after RetryAfter: %v, want a new try failing with %v", err, errno)
			}
			if !d.Stats().Disabled {
				t.Error("a failed retry did not turn writes off again")
			}

			// The disk has room again: the next try succeeds.
			full.Store(false)
			clk.Advance(time.Millisecond)
			store(t, d, "d.png", []byte("d"))
			if st := d.Stats(); st.Disabled || st.WriteErrors != 2 || st.Entries != 2 {
				t.Errorf("after writes came back: %+v", st)
			}
			if off, on := logs.count("WARN disk cache: writes off"), logs.count("INFO disk cache: writes on again"); off != 1 || on != 1 {
				t.Errorf("%d warnings that writes are off and %d notes that they are on, want 1 each", off, on)
			}
		})
	}
}

func TestOtherWriteErrorsCounted(t *testing.T) {
	d := testDisk(t, Config{Dir: t.TempDir()}, func(d *Disk) {
		d.createTemp = func(string, string) (*os.File, error) { return nil, syscall.EIO }
	})
	for range 2 {
		if _, err := d.Create(tiertest.NewEntry("a.png", nil)); !errors.Is(err, syscall.EIO) {
			t.Errorf("Create: %v, want EIO", err)
		}
	}
	if st := d.Stats(); st.Disabled || st.WriteErrors != 2 {
		t.Errorf("after two EIO: %+v", st)
	}
}

func TestReadOnlyTempDir(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("permissions do not bind root; TestWritesOffWhenFull covers EACCES")
	}
	dir := t.TempDir()
	d := testDisk(t, Config{Dir: dir, RetryAfter: time.Hour}, nil)
	waitReady(t, d)
	store(t, d, "kept.png", []byte("kept"))
	tmp := filepath.Join(dir, "tmp")
	if err := os.Chmod(tmp, 0o500); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(tmp, 0o750) })
	if _, err := d.Create(tiertest.NewEntry("a.png", nil)); !errors.Is(err, fs.ErrPermission) {
		t.Fatalf("Create in a read-only directory: %v", err)
	}
	if _, err := d.Create(tiertest.NewEntry("a.png", nil)); !errors.Is(err, ErrDisabled) {
		t.Errorf("second Create: %v, want ErrDisabled", err)
	}
	if !d.Stats().Disabled {
		t.Error("not disabled")
	}
	read(t, d, "kept.png")
}
