package state

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fedicache/fedicache/origin"
	"github.com/fedicache/fedicache/origin/origintest"
)

const (
	deletedKey = "cache/media_attachments/files/109/852/623/730/091/815/original/dddddddddddddddd.jpg"
	hiddenKey  = "media_attachments/files/000/000/002/original/hhhhhhhhhhhhhhhh.png"
	purgedKey  = "accounts/avatars/000/000/003/original/pppppppppppppppp.png"
	prefix     = "custom_emojis/images/000/000/004/"
)

// TestRecordReachesAnotherReplica: what one replica records, another that was down applies when
// it starts (every kind, in order), and one that was running applies at its next refresh.
func TestRecordReachesAnotherReplica(t *testing.T) {
	_, store := newStore(t)
	ctx := context.Background()
	a := New(Config{Store: store, Cache: &recordingCache{}})
	running := &recordingCache{}
	b := New(Config{Store: store, Cache: running})
	for _, s := range []*State{a, b} {
		if err := s.Check(purgedKey); !errors.Is(err, origin.ErrNotReady) {
			t.Fatalf("Check before the first load: %v, want ErrNotReady", err)
		}
		if err := s.Load(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range []struct {
		k   Kind
		key string
	}{{Deleted, deletedKey}, {Hidden, hiddenKey}, {Purged, purgedKey}, {PrefixPurged, prefix}} {
		if _, _, err := a.Record(ctx, r.k, r.key); err != nil {
			t.Fatalf("Record %s: %v", r.k, err)
		}
	}
	if !a.Has(deletedKey) || a.Has(hiddenKey) || !errors.Is(a.Check(deletedKey), origin.ErrHidden) || a.Check(hiddenKey) != nil {
		t.Errorf("the recording replica: Has %v/%v, Check %v/%v", a.Has(deletedKey), a.Has(hiddenKey), a.Check(deletedKey), a.Check(hiddenKey))
	}
	want := []string{"drop " + deletedKey, "drop " + hiddenKey, "purge " + purgedKey, "prefix " + prefix}

	// A replica that was down (its disk tier kept its entries) replays the whole log at start.
	down := &recordingCache{}
	c := New(Config{Store: store, Cache: down, ReplayAll: true})
	if err := c.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if got := down.got(); !slices.Equal(got, want) || !c.Has(deletedKey) {
		t.Errorf("a replica that was down applied %q (tombstone %v), want %q", got, c.Has(deletedKey), want)
	}
	// The running one applies them at its next refresh, once.
	if err := b.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if got := running.got(); !slices.Equal(got, want) || !b.Has(deletedKey) {
		t.Errorf("a running replica applied %q, want %q once each", got, want)
	}
	if st := b.Stats(); st.BustsApplied != 4 || st.Tombstones != 1 || !st.Loaded || st.LastError != "" {
		t.Errorf("stats %+v", st)
	}
	if st := a.Stats(); st.BustsRecorded != 4 || st.BustsApplied != 0 {
		t.Errorf("the recording replica applied its own entries again: %+v", st)
	}
}

// TestTombstoneObjectsAreNotMedia: a tombstone is named by the key's hash and holds the key, so
// no tool that lists media takes it for a file; log entries carry no "/" after the log folder.
func TestTombstoneObjectsAreNotMedia(t *testing.T) {
	_, store := newStore(t)
	ctx := context.Background()
	s := New(Config{Store: store})
	if err := s.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Record(ctx, Deleted, deletedKey); err != nil {
		t.Fatal(err)
	}
	var keys []string
	_ = store.List(ctx, "", func(o origin.Object) error { keys = append(keys, o.Key); return nil })
	var tomb, log string
	for _, k := range keys {
		switch {
		case strings.HasPrefix(k, "_fedicache/tombstones/"):
			tomb = k
		case strings.HasPrefix(k, "_fedicache/log/"):
			log = k
		}
	}
	if tomb == "" || strings.Contains(tomb, "dddd") || log == "" || strings.Contains(strings.TrimPrefix(log, "_fedicache/log/"), "/") {
		t.Fatalf("bucket keys %q", keys)
	}
	body, _, err := store.Get(ctx, tomb, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer body.Close()
	b := make([]byte, 512)
	n, _ := body.Read(b)
	if !strings.Contains(string(b[:n]), deletedKey) {
		t.Errorf("tombstone body %q does not name the key", b[:n])
	}
}

// TestRefreshListsOnlyWhatIsNew: with a long log behind it, a refresh lists the entries of the
// last Overlap, not the history.
func TestRefreshListsOnlyWhatIsNew(t *testing.T) {
	_, view := newStore(t)
	store := &countingStore{Store: view}
	ctx := context.Background()
	clk := origintest.NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	writer := New(Config{Store: store, Clock: clk.Now})
	if err := writer.Load(ctx); err != nil {
		t.Fatal(err)
	}
	const old = 300
	for i := range old {
		if _, _, err := writer.Record(ctx, Purged, fmt.Sprintf("media_attachments/files/000/000/%03d/original/x.png", i)); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Minute)
	}
	reader := New(Config{Store: store, Cache: &recordingCache{}, Clock: clk.Now})
	if err := reader.Load(ctx); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Hour)
	for i := range 3 {
		if _, _, err := writer.Record(ctx, Hidden, fmt.Sprintf("media_attachments/files/000/001/%03d/original/y.png", i)); err != nil {
			t.Fatal(err)
		}
	}
	store.reset()
	if err := reader.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	// The listing starts Overlap (5 minutes, 5 old entries here) before the last one began, and
	// ends at the first object past the log.
	lists, listed := store.counts()
	if lists != 1 || listed > 3+5+1 {
		t.Errorf("a refresh after %d old entries and 3 new ones: %d list requests, %d objects listed; want 1 and at most 9", old, lists, listed)
	}
	if st := reader.Stats(); st.BustsApplied != old+3 {
		t.Errorf("applied %d, want %d", st.BustsApplied, old+3)
	}
}

// TestSnapshotAndPrune: compaction writes a snapshot of the tombstones that a new replica loads
// with one GET and no listing of tombstones, and prunes log entries past the retention that the
// snapshot covers; hidings inside the retention stay for replicas that come back.
func TestSnapshotAndPrune(t *testing.T) {
	_, view := newStore(t)
	store := &countingStore{Store: view}
	ctx := context.Background()
	clk := origintest.NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	cfg := Config{Store: store, Clock: clk.Now, Retention: 48 * time.Hour, CompactEvery: time.Hour}
	a := New(cfg)
	if err := a.Load(ctx); err != nil {
		t.Fatal(err)
	}
	var deleted []string
	for i := range 50 {
		k := fmt.Sprintf("media_attachments/files/000/002/%03d/original/z.png", i)
		deleted = append(deleted, k)
		if _, _, err := a.Record(ctx, Deleted, k); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(72 * time.Hour)
	if _, _, err := a.Record(ctx, Hidden, hiddenKey); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Hour)
	if err := a.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	var logs, snaps int
	_ = view.List(ctx, "_fedicache/", func(o origin.Object) error {
		switch {
		case strings.HasPrefix(o.Key, "_fedicache/log/"):
			logs++
		case strings.HasPrefix(o.Key, "_fedicache/snapshot/"):
			snaps++
		}
		return nil
	})
	if snaps != 1 || logs != 1 {
		t.Errorf("after compaction: %d snapshots and %d log entries, want 1 and 1 (the hiding, inside the retention)", snaps, logs)
	}
	store.reset()
	dropped := &recordingCache{}
	b := New(Config{Store: store, Clock: clk.Now, Cache: dropped, ReplayAll: true})
	if err := b.Load(ctx); err != nil {
		t.Fatal(err)
	}
	// Each listing ends at the first object past its folder.
	if lists, listed := store.counts(); lists != 2 || listed > 4 {
		t.Errorf("loading: %d lists, %d objects listed; want 2 (snapshots, log) and at most 4", lists, listed)
	}
	for _, k := range deleted {
		if !b.Has(k) {
			t.Fatalf("the snapshot lost %q", k)
		}
	}
	if b.Has(hiddenKey) || !slices.Equal(dropped.got(), []string{"drop " + hiddenKey}) || b.Stats().Snapshot == "" {
		t.Errorf("after loading the snapshot: applied %q, stats %+v", dropped.got(), b.Stats())
	}
	// A second compaction within CompactEvery writes nothing new.
	before := b.Stats().Snapshot
	if err := b.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	n := 0
	_ = view.List(ctx, "_fedicache/snapshot/", func(o origin.Object) error {
		if strings.HasPrefix(o.Key, "_fedicache/snapshot/") {
			n++
		}
		return nil
	})
	if n != 1 || before == "" {
		t.Errorf("%d snapshots after a second compaction, want 1", n)
	}
}

// TestDamagedSnapshotIsRefused: a snapshot cut short or altered is refused rather than loaded
// with fewer tombstones than the record holds.
func TestDamagedSnapshotIsRefused(t *testing.T) {
	hs := []hash{hashOf("a"), hashOf("b"), hashOf("c")}
	slices.SortFunc(hs, compareHash)
	body := encodeSnapshot(hs)
	full := make([]byte, body.Size())
	if _, err := body.ReadAt(full, 0); err != nil {
		t.Fatal(err)
	}
	got, err := decodeSnapshot(strings.NewReader(string(full)))
	if err != nil || !slices.Equal(got, hs) {
		t.Fatalf("round trip: %v %v", got, err)
	}
	flipped := slices.Clone(full)
	flipped[len(snapshotMagic)+3] ^= 1
	for name, b := range map[string][]byte{
		"cut":     full[:len(full)-5],
		"flipped": flipped,
		"longer":  append(slices.Clone(full), 0),
		"empty":   nil,
	} {
		if _, err := decodeSnapshot(strings.NewReader(string(b))); !errors.Is(err, errBadSnapshot) {
			t.Errorf("%s snapshot: %v, want errBadSnapshot", name, err)
		}
	}

	// In the bucket, a damaged newest snapshot makes the load read the tombstone objects, the
	// record the snapshot was made from, rather than fail or load less.
	_, store := newStore(t)
	ctx := context.Background()
	clk := origintest.NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	a := New(Config{Store: store, Clock: clk.Now, CompactEvery: time.Hour})
	if err := a.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Record(ctx, Deleted, deletedKey); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Hour)
	if err := a.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	snaps, err := a.snapshots(ctx)
	if err != nil || len(snaps) != 1 {
		t.Fatalf("snapshots %v %v", snaps, err)
	}
	cut := full[:len(full)-5]
	if err := store.Put(ctx, "_fedicache/snapshot/"+snaps[0].name, strings.NewReader(string(cut)), int64(len(cut)), origin.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	b := New(Config{Store: store, Clock: clk.Now})
	if err := b.Load(ctx); err != nil || !b.Has(deletedKey) || b.Stats().Snapshot != "" {
		t.Errorf("a damaged snapshot: Load %v, Has %v, snapshot %q", err, b.Has(deletedKey), b.Stats().Snapshot)
	}
}

// TestEntryNames: every kind and key survives its name, long keys through the entry's body.
func TestEntryNames(t *testing.T) {
	at := time.Date(2026, 12, 2, 19, 2, 24, 123456789, time.UTC)
	long := strings.Repeat("a/", 400) + "x.png"
	for _, k := range []Kind{Deleted, Hidden, Purged, PrefixPurged} {
		for _, key := range []string{deletedKey, "ü-ß/±.png", long} {
			name, inline := entryName(at, k, key)
			e, err := parseEntry(name)
			if err != nil {
				t.Fatalf("%s %q: %v", k, key, err)
			}
			if !e.at.Equal(at) || e.kind != k || e.inBody == inline || inline && e.key != key {
				t.Errorf("%s %q: parsed %+v", k, key, e)
			}
			if len(name) > 900 || strings.Contains(name, "/") {
				t.Errorf("%s %q: name %d bytes: %q", k, key, len(name), name)
			}
		}
	}
	for _, bad := range []string{"", "x", timeName(at), timeName(at) + "-w-q-YQ", timeName(at) + "-w-d-!!"} {
		if _, err := parseEntry(bad); err == nil {
			t.Errorf("parseEntry(%q) accepted", bad)
		}
	}
}

// TestLongKeyRoundTrip: a key too long for an entry's name reaches the other replica through
// the entry's body.
func TestLongKeyRoundTrip(t *testing.T) {
	_, store := newStore(t)
	ctx := context.Background()
	long := "media_attachments/files/" + strings.Repeat("0123456789/", 60) + "original/x.png"
	a, b := New(Config{Store: store}), New(Config{Store: store, Cache: &recordingCache{}})
	for _, s := range []*State{a, b} {
		if err := s.Load(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := a.Record(ctx, Deleted, long); err != nil {
		t.Fatal(err)
	}
	if err := b.Refresh(ctx); err != nil || !b.Has(long) {
		t.Errorf("refresh: %v, Has %v", err, b.Has(long))
	}
}

// TestCheckDoesNotAllocate: the Guard runs on every memory hit.
func TestCheckDoesNotAllocate(t *testing.T) {
	s := New(Config{})
	s.loaded.Store(true)
	for i := range 10_000 {
		s.set.add(hashOf(fmt.Sprint("key", i)))
	}
	s.set.add(hashOf(deletedKey)) // in the map of recent additions
	key := "media_attachments/files/000/000/001/original/0000000000000001.png"
	if n := testing.AllocsPerRun(1000, func() {
		if s.Check(key) != nil || s.Check(deletedKey) == nil {
			t.Fatal("Check")
		}
	}); n != 0 {
		t.Errorf("Check allocates %.1f times", n)
	}
}

// TestSetMerges: additions beyond mergeAt move into the sorted slice; nothing is lost.
func TestSetMerges(t *testing.T) {
	var s Set
	keys := make([]string, 3*mergeAt+7)
	for i := range keys {
		keys[i] = fmt.Sprint("k", i)
		if !s.add(hashOf(keys[i])) {
			t.Fatalf("add %d: not new", i)
		}
	}
	if s.add(hashOf(keys[5])) || s.Len() != len(keys) {
		t.Errorf("a second add: Len %d, want %d", s.Len(), len(keys))
	}
	extra := []hash{hashOf("m1"), hashOf("m2"), hashOf(keys[9])}
	slices.SortFunc(extra, compareHash)
	s.merge(extra)
	for _, k := range append(keys, "m1", "m2") {
		if !s.Has(k) {
			t.Fatalf("lost %q", k)
		}
	}
	if s.Has("absent") || s.Len() != len(keys)+2 {
		t.Errorf("Len %d, want %d", s.Len(), len(keys)+2)
	}
}

// TestGenerationMoves: the generation moves when the state loads and after every tombstone, so
// a verdict the cache kept for a memory entry is asked again.
func TestGenerationMoves(t *testing.T) {
	_, store := newStore(t)
	s := New(Config{Store: store})
	g0 := s.Generation()
	if err := s.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	g1 := s.Generation()
	s.Apply(Hidden, hiddenKey)
	if g := s.Generation(); g != g1 {
		t.Errorf("a hiding moved the generation (%d to %d): hidings purge, they do not refuse", g1, g)
	}
	s.Apply(Deleted, deletedKey)
	g2 := s.Generation()
	if g0 == g1 || g1 == g2 || s.Check(deletedKey) == nil {
		t.Errorf("generations %d, %d, %d; Check %v", g0, g1, g2, s.Check(deletedKey))
	}
}

// TestApplyEntryOnce: a peer told at once with the entry's name applies the bust once, whether
// the word or its refresh comes first.
func TestApplyEntryOnce(t *testing.T) {
	_, store := newStore(t)
	ctx := context.Background()
	a := New(Config{Store: store})
	wordFirst, refreshFirst := &recordingCache{}, &recordingCache{}
	b := New(Config{Store: store, Cache: wordFirst})
	c := New(Config{Store: store, Cache: refreshFirst})
	for _, s := range []*State{a, b, c} {
		if err := s.Load(ctx); err != nil {
			t.Fatal(err)
		}
	}
	_, entry, err := a.Record(ctx, Purged, purgedKey)
	if err != nil || entry == "" {
		t.Fatalf("Record: %q %v", entry, err)
	}
	b.ApplyEntry(Purged, purgedKey, entry)
	if err := b.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	c.ApplyEntry(Purged, purgedKey, entry)
	for name, got := range map[string][]string{"word first": wordFirst.got(), "refresh first": refreshFirst.got()} {
		if !slices.Equal(got, []string{"purge " + purgedKey}) {
			t.Errorf("%s: applied %q, want once", name, got)
		}
	}
	// A word whose entry does not match its key is applied as it is, and marks nothing.
	b.ApplyEntry(Purged, hiddenKey, entry)
	if got := wordFirst.got(); len(got) != 2 {
		t.Errorf("a mismatched entry: applied %q", got)
	}
}
