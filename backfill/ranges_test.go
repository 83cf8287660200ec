package backfill_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fedicache/fedicache/backfill"
	"github.com/fedicache/fedicache/cache/tiertest"
	"github.com/fedicache/fedicache/origin/origintest"
	"github.com/fedicache/fedicache/origin/s3"
	"github.com/fedicache/fedicache/origin/s3/s3test"
	"github.com/fedicache/fedicache/origin/volume"
)

// memRanges keeps records of ranges in memory, as the bucket's state prefix does in fedicache.
type memRanges struct {
	mu    sync.Mutex
	recs  map[string][]byte
	saves int
}

func (m *memRanges) LoadRanges(_ context.Context, source string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.recs[source], nil
}

func (m *memRanges) SaveRanges(_ context.Context, source string, rec []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.recs == nil {
		m.recs = map[string][]byte{}
	}
	m.recs[source] = rec
	m.saves++
	return nil
}

// ranges returns the saved record of source as its JSON says it.
func (m *memRanges) ranges(t *testing.T, source string) []struct {
	Last  string `json:"last"`
	Files int    `json:"files"`
	Done  bool   `json:"done"`
} {
	t.Helper()
	var rec struct {
		Ranges []struct {
			Last  string `json:"last"`
			Files int    `json:"files"`
			Done  bool   `json:"done"`
		} `json:"ranges"`
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := json.Unmarshal(m.recs[source], &rec); err != nil {
		t.Fatalf("record of %s: %v", source, err)
	}
	return rec.Ranges
}

// rangedWorld is a volume and a bucket whose ListObjectsV2 requests are counted, with a record.
type rangedWorld struct {
	dir    string
	vol    *volume.Volume
	fake   *origintest.FakeBucket
	bucket *s3.Bucket
	lists  atomic.Int64
	rec    *memRanges
}

func newRangedWorld(t *testing.T, files map[string][]byte) *rangedWorld {
	w := &rangedWorld{dir: t.TempDir(), fake: origintest.NewFakeBucket(t), rec: &memRanges{}}
	writeFiles(t, w.dir, files)
	var err error
	if w.vol, err = volume.Open(w.dir); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.vol.Close() })
	w.bucket = s3test.New(t, w.fake, fastRetries, func(c *s3.Config) {
		c.Observe = func(op string, _ time.Duration, _ error) {
			if op == "ListObjectsV2" {
				w.lists.Add(1)
			}
		}
	})
	return w
}

// run runs the backfill with the record and returns its figures and its list requests.
func (w *rangedWorld) run(t *testing.T, edit func(*backfill.Config)) (backfill.Snapshot, int64) {
	t.Helper()
	cfg := backfill.Config{ACL: backfill.MastodonACL, Ranges: w.rec}
	if edit != nil {
		edit(&cfg)
	}
	before := w.lists.Load()
	p := backfill.NewProgress()
	if err := backfill.Run(context.Background(), w.vol, w.bucket, cfg, p); err != nil {
		t.Fatal(err)
	}
	return p.Snapshot(), w.lists.Load() - before
}

// smallFiles returns n files of a few bytes under keys "<dir>/NNNNN.jpg" for the even i in
// [0, 2n), so that other keys fit between them.
func smallFiles(dir string, n int) map[string][]byte {
	files := map[string][]byte{}
	for i := range n {
		files[fmt.Sprintf("%s/%05d.jpg", dir, 2*i)] = tiertest.Blob(uint64(i), 10+i%50)
	}
	return files
}

func TestRerunTrustsTheRecordOfUnchangedRanges(t *testing.T) {
	const n = 2600 // ranges of 1000, 1000 and 600
	files := smallFiles("media_attachments/files", n)
	w := newRangedWorld(t, files)

	s, _ := w.run(t, nil)
	if s.Copied != n || s.Unlisted != 0 {
		t.Fatalf("first run: %+v", s)
	}
	rs := w.rec.ranges(t, "volume")
	if len(rs) != 3 || rs[0].Files != 1000 || rs[1].Files != 1000 || rs[2].Files != 600 || rs[2].Last != "" {
		t.Fatalf("record: %+v", rs)
	}
	for i, r := range rs {
		if !r.Done {
			t.Errorf("range %d not done after a clean copy", i)
		}
	}

	s, lists := w.run(t, nil)
	if s.Present != n || s.Unlisted != n || s.Copied != 0 || lists != 0 {
		t.Fatalf("rerun: %d list requests, %+v", lists, s)
	}
	if w.rec.saves != 1 {
		t.Errorf("the rerun saved the record it began with again (%d saves)", w.rec.saves)
	}

	// A file added in the second range, a file of the first rewritten (a new mtime, the same
	// size: present in the bucket), and an object of the third deleted from the bucket behind
	// fedicache's back, which the record still vouches for.
	added := "media_attachments/files/03001.jpg"
	writeFiles(t, w.dir, map[string][]byte{added: []byte("new")})
	touched := filepath.Join(w.dir, "media_attachments/files/00010.jpg")
	if err := os.Chtimes(touched, time.Now(), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	lost := "media_attachments/files/04500.jpg"
	w.fake.Delete(t, lost)

	s, lists = w.run(t, nil)
	if s.Copied != 1 || s.Present != n || s.Unlisted != 600 || s.Conflicts != 0 {
		t.Fatalf("run after changes: %+v", s)
	}
	if lists == 0 || lists > 3 {
		t.Errorf("run after changes sent %d list requests, want the two changed ranges' (1 to 3)", lists)
	}
	if got, err := w.fake.Object(added); err != nil || string(got) != "new" {
		t.Fatalf("added file in the bucket: %q, %v", got, err)
	}
	if _, err := w.fake.Object(lost); err == nil {
		t.Fatal("the lost object is back without a full check; the test's premise is wrong")
	}

	// A full check lists everything and finds what the record could not know.
	s, lists = w.run(t, func(c *backfill.Config) { c.Full = true })
	if s.Copied != 1 || s.Unlisted != 0 || lists < 3 {
		t.Fatalf("full run: %d list requests, %+v", lists, s)
	}
	if got, err := w.fake.Object(lost); err != nil || string(got) != string(files[lost]) {
		t.Fatalf("lost object after a full run: %v", err)
	}

	s, lists = w.run(t, nil)
	if s.Present != n+1 || s.Unlisted != n+1 || lists != 0 {
		t.Fatalf("last rerun: %d list requests, %+v", lists, s)
	}
}

func TestRangesWithUnfinishedBusinessAreListedAgain(t *testing.T) {
	const n = 3000
	files := smallFiles("accounts/avatars", n)
	hidden := "accounts/avatars/03000.jpg" // in the second range
	w := newRangedWorld(t, files)
	if err := os.Chmod(filepath.Join(w.dir, hidden), 0o600); err != nil {
		t.Fatal(err)
	}
	clash := "accounts/avatars/00100.jpg" // in the first range
	w.fake.Put(t, clash, []byte("another object under the same key"))
	deleted := "accounts/avatars/05000.jpg" // in the third range: a tombstone
	skip := func(c *backfill.Config) {
		c.ACL = "" // a bucket without ACLs: the hidden file is skipped
		c.Skip = func(key string) bool { return key == deleted }
	}

	s, _ := w.run(t, skip)
	if s.Conflicts != 1 || s.PrivateSkipped != 1 || s.Excluded != 1 || s.Copied != n-3 {
		t.Fatalf("first run: %+v", s)
	}
	rs := w.rec.ranges(t, "volume")
	if len(rs) != 3 || rs[0].Done || rs[1].Done || !rs[2].Done {
		t.Fatalf("record: the ranges with a conflict and a skipped file must stay open, the deleted key's not: %+v", rs)
	}

	// The conflict and the skipped file are reported again, not hidden by the record.
	s, lists := w.run(t, skip)
	if s.Conflicts != 1 || s.PrivateSkipped != 1 || s.Excluded != 1 || s.Copied != 0 || s.Unlisted != 999 || lists == 0 {
		t.Fatalf("rerun: %d list requests, %+v", lists, s)
	}

	// Once the bucket has ACLs, the hidden file is copied private, and its range is done.
	s, _ = w.run(t, func(c *backfill.Config) { skip(c); c.ACL = backfill.MastodonACL })
	if s.Copied != 1 || s.Private != 1 {
		t.Fatalf("run with ACLs: %+v", s)
	}
	if rs := w.rec.ranges(t, "volume"); rs[0].Done || !rs[1].Done || !rs[2].Done {
		t.Fatalf("record after the hidden file's copy: %+v", rs)
	}
}

func TestRangesAreRecutWhenTheyGrowAndKeptWhenTheyShrink(t *testing.T) {
	files := smallFiles("media_attachments/files", 1500) // ranges of 1000 and 500
	w := newRangedWorld(t, files)
	w.run(t, nil)

	// 2,000 files more inside the first range, and the last 100 files of the volume gone.
	more := map[string][]byte{}
	for i := range 1000 {
		more[fmt.Sprintf("media_attachments/files/%05d.jpg", 2*i+1)] = []byte("odd")
		more[fmt.Sprintf("media_attachments/files/%05d.jpg-small", 2*i)] = []byte("small")
	}
	writeFiles(t, w.dir, more)
	for i := 1400; i < 1500; i++ {
		if err := os.Remove(filepath.Join(w.dir, fmt.Sprintf("media_attachments/files/%05d.jpg", 2*i))); err != nil {
			t.Fatal(err)
		}
	}
	s, _ := w.run(t, nil)
	if s.Copied != 2000 || s.Present != 1400 || s.Unlisted != 0 {
		t.Fatalf("run after growth: %+v", s)
	}
	rs := w.rec.ranges(t, "volume")
	total := 0
	for i, r := range rs {
		total += r.Files
		if r.Files > 1000 || !r.Done {
			t.Errorf("range %d: %+v", i, r)
		}
	}
	if total != 3400 || len(rs) < 4 {
		t.Fatalf("record after growth: %d files in %d ranges: %+v", total, len(rs), rs)
	}

	s, lists := w.run(t, nil)
	if s.Unlisted != 3400 || lists != 0 || s.Copied != 0 {
		t.Fatalf("rerun after the recut: %d list requests, %+v", lists, s)
	}
}

func TestAnUnreadableRecordIsIgnored(t *testing.T) {
	files := smallFiles("custom_emojis/images", 1200)
	w := newRangedWorld(t, files)
	w.run(t, nil)
	for _, bad := range []string{
		`{"version":1,"source":"volume","ranges":[{"last":"b","files":1},{"last":"a","files":1},{"last":"","files":1}]}`,
		`{"version":2,"source":"volume","ranges":[]}`,
		`{"version":1,"source":"another","ranges":[{"last":"","files":1200,"done":true}]}`,
		`{"version":1,"source":"volume","ranges":[{"last":"","files":1200}],"extra":1}`,
		`not json`,
	} {
		w.rec.SaveRanges(context.Background(), "volume", []byte(bad))
		s, lists := w.run(t, nil)
		if s.Present != 1200 || s.Unlisted != 0 || lists == 0 {
			t.Fatalf("with the record %s: %d list requests, %+v", bad, lists, s)
		}
		if s, lists := w.run(t, nil); s.Unlisted != 1200 || lists != 0 {
			t.Fatalf("after replacing the record %s: %d list requests, %+v", bad, lists, s)
		}
	}
}

func TestNoRecordIsSavedByADryRunOrAStoppedRun(t *testing.T) {
	w := newRangedWorld(t, smallFiles("media_attachments/files", 500))
	w.run(t, func(c *backfill.Config) { c.DryRun = true })
	if w.rec.saves != 0 {
		t.Fatal("a dry run saved a record")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = backfill.Run(ctx, w.vol, w.bucket, backfill.Config{ACL: backfill.MastodonACL, Ranges: w.rec}, nil)
	if w.rec.saves != 0 {
		t.Fatal("a stopped run saved a record")
	}
}

func TestBucketSourceRerunListsOnlyTheSource(t *testing.T) {
	objects := map[string][]byte{}
	for i := range 1500 {
		objects[fmt.Sprintf("media_attachments/files/%05d.png", i)] = tiertest.Blob(uint64(i), 20+i%30)
	}
	b := twoServices(t, objects)
	b.fill(t)
	rec := &memRanges{}
	var lists atomic.Int64
	dst := s3test.New(t, b.newFake, fastRetries, func(c *s3.Config) {
		c.Observe = func(op string, _ time.Duration, _ error) {
			if op == "ListObjectsV2" {
				lists.Add(1)
			}
		}
	})
	run := func() backfill.Snapshot {
		p := backfill.NewProgress()
		if err := backfill.RunSource(context.Background(), backfill.NewBucketSource("old", b.old), dst,
			backfill.Config{ACL: backfill.MastodonACL, Ranges: rec}, p); err != nil {
			t.Fatal(err)
		}
		return p.Snapshot()
	}
	if s := run(); s.Copied != 1500 {
		t.Fatalf("copy: %+v", s)
	}
	lists.Store(0)
	if s := run(); s.Unlisted != 1500 || lists.Load() != 0 {
		t.Fatalf("rerun: %d list requests of the new bucket, %+v", lists.Load(), s)
	}
	// An object replaced in the old bucket (another ETag, the same size) is a conflict again.
	key := "media_attachments/files/00700.png"
	replaced := append([]byte(nil), objects[key]...)
	replaced[0] ^= 0xff
	b.oldFake.Put(t, key, replaced)
	if s := run(); s.Conflicts != 1 || s.Unlisted != 500 {
		t.Fatalf("rerun after a change in the old bucket: %+v", s)
	}
}
