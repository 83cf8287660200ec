package state

import (
	"context"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"

	"github.com/fedicache/fedicache/origin"
	"github.com/fedicache/fedicache/origin/origintest"
	"github.com/fedicache/fedicache/origin/s3"
	"github.com/fedicache/fedicache/origin/s3/s3test"
)

func TestMain(m *testing.M) {
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	os.Exit(m.Run())
}

// recordingCache is a Cache that records what was applied to it.
type recordingCache struct {
	mu    sync.Mutex
	calls []string // "drop K", "purge K", "prefix P"
}

func (c *recordingCache) add(s string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, s)
	return 1
}

func (c *recordingCache) Purge(key string) int          { return c.add("purge " + key) }
func (c *recordingCache) Drop(key string) int           { return c.add("drop " + key) }
func (c *recordingCache) PurgePrefix(prefix string) int { return c.add("prefix " + prefix) }

func (c *recordingCache) got() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.calls...)
}

// countingStore counts what reaches the bucket through it.
type countingStore struct {
	Store
	mu                  sync.Mutex
	lists, listed, gets int
}

func (s *countingStore) List(ctx context.Context, after string, fn func(origin.Object) error) error {
	s.mu.Lock()
	s.lists++
	s.mu.Unlock()
	return s.Store.List(ctx, after, func(o origin.Object) error {
		s.mu.Lock()
		s.listed++
		s.mu.Unlock()
		return fn(o)
	})
}

func (s *countingStore) Get(ctx context.Context, key string, r *origin.Range) (io.ReadCloser, origin.Meta, error) {
	s.mu.Lock()
	s.gets++
	s.mu.Unlock()
	return s.Store.Get(ctx, key, r)
}

func (s *countingStore) reset() {
	s.mu.Lock()
	s.lists, s.listed, s.gets = 0, 0, 0
	s.mu.Unlock()
}

func (s *countingStore) counts() (lists, listed int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lists, s.listed
}

// newStore returns the state view of a fresh FakeBucket that holds one media object.
func newStore(t testing.TB) (*origintest.FakeBucket, Store) {
	t.Helper()
	fb := origintest.NewFakeBucket(t)
	fb.Put(t, "media_attachments/files/000/000/001/original/0000000000000001.png", []byte("media"))
	b := s3test.New(t, fb, func(c *s3.Config) { c.RequirePublicRead = true })
	view, err := b.StateView()
	if err != nil {
		t.Fatal(err)
	}
	return fb, view
}
