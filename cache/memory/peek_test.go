package memory_test

import (
	"bytes"
	"net/http"
	"testing"
	"time"

	"github.com/fedicache/fedicache/cache/tiertest"
	"github.com/fedicache/fedicache/origin/origintest"
)

func TestPeekMatchesOpen(t *testing.T) {
	m := newMemory(t, 1<<20)
	const key = "media_attachments/files/000/000/001/small/0123456789abcdef.png"
	data := tiertest.Blob(1, 5_000)
	e := tiertest.NewEntry(key, data)
	store(t, m, e, data)

	h, ok := m.Peek(key)
	if !ok {
		t.Fatal("Peek missed a stored entry")
	}
	body, opened, err := m.Open(key, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := origintest.ReadAll(t, body); !bytes.Equal(h.Body, got) || !bytes.Equal(h.Body, data) {
		t.Errorf("Peek gave %d bytes, Open %d, stored %d", len(h.Body), len(got), len(data))
	}
	if h.Entry.Key != key || h.Entry.Meta.Size != e.Meta.Size || h.Entry.Meta.ETag != e.Meta.ETag ||
		h.Entry.Meta.ContentType != e.Meta.ContentType || !h.Entry.Meta.LastModified.Equal(e.Meta.LastModified) ||
		!h.Entry.StoredAt.Equal(e.StoredAt) {
		t.Errorf("Peek's entry %+v, want %+v", *h.Entry, e)
	}
	if !h.ValidatedAt.Equal(e.ValidatedAt) || !opened.ValidatedAt.Equal(e.ValidatedAt) {
		t.Errorf("ValidatedAt: Peek %v, Open %v, want %v", h.ValidatedAt, opened.ValidatedAt, e.ValidatedAt)
	}
	if want := e.Meta.LastModified.UTC().Format(http.TimeFormat); h.LastModified != want {
		t.Errorf("LastModified %q, want %q", h.LastModified, want)
	}
	if _, ok := m.Peek("nothing/here.png"); ok {
		t.Error("Peek found an absent key")
	}
}

func TestPeekEmptyAndUndated(t *testing.T) {
	m := newMemory(t, 1<<20)
	e := tiertest.NewEntry("site_uploads/files/000/000/004/favicon/empty.ico", nil)
	e.Meta.LastModified, e.ValidatedAt = time.Time{}, time.Time{}
	store(t, m, e, nil)
	h, ok := m.Peek(e.Key)
	if !ok {
		t.Fatal("Peek missed an empty entry")
	}
	if len(h.Body) != 0 || h.LastModified != "" || !h.ValidatedAt.IsZero() {
		t.Errorf("Peek of an empty, undated entry: %d bytes, LastModified %q, ValidatedAt %v",
			len(h.Body), h.LastModified, h.ValidatedAt)
	}
}

// TestPeekDoesNotAllocate checks the hot path allocates nothing of its own. Ristretto's Get
// records the access in a striped buffer of 64 keys and, when its policy takes a full buffer,
// allocates a new one (512 bytes): about 1/64 allocation per Peek, which AllocsPerRun (whole
// allocations per call, rounded down) does not count; the benchmarks show it in B/op.
func TestPeekDoesNotAllocate(t *testing.T) {
	m := newMemory(t, 1<<20)
	const key = "accounts/avatars/000/000/002/original/aaaaaaaaaaaaaaaa.png"
	data := tiertest.Blob(2, 20_000)
	store(t, m, tiertest.NewEntry(key, data), data)
	var sink int
	for _, k := range []string{key, "nothing/here.png"} {
		if n := testing.AllocsPerRun(1000, func() {
			h, _ := m.Peek(k)
			sink += len(h.Body) + len(h.LastModified)
		}); n != 0 {
			t.Errorf("Peek(%q): %v allocations per call, want 0", k, n)
		}
	}
	_ = sink
}

func TestMarkValidatedInPlace(t *testing.T) {
	m := newMemory(t, 1<<20)
	const key = "accounts/headers/000/000/001/original/bbbbbbbbbbbbbbbb.jpg"
	e := tiertest.NewEntry(key, []byte("header"))
	e.ValidatedAt = e.ValidatedAt.Add(-48 * time.Hour)
	store(t, m, e, []byte("header"))
	before, _ := m.Peek(key)

	at := time.Now().UTC().Truncate(time.Second)
	if !m.MarkValidated(key, at) {
		t.Fatal("MarkValidated of a present key reported false")
	}
	// No Wait: the change is made in place and visible at once.
	after, ok := m.Peek(key)
	if !ok {
		t.Fatal("Peek missed after MarkValidated")
	}
	if !after.ValidatedAt.Equal(at) {
		t.Errorf("ValidatedAt %v after MarkValidated(%v)", after.ValidatedAt, at)
	}
	if after.Entry != before.Entry || &after.Body[0] != &before.Body[0] {
		t.Error("MarkValidated replaced the stored item instead of changing it in place")
	}
	if !m.MarkValidated(key, at.Add(-time.Hour)) {
		t.Fatal("MarkValidated with an earlier time reported false")
	}
	if h, _ := m.Peek(key); !h.ValidatedAt.Equal(at) {
		t.Errorf("an earlier confirmation moved ValidatedAt back to %v", h.ValidatedAt)
	}
}
