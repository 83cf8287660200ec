package backfill

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/fedicache/fedicache/origin"
)

// QueueBucket is what the queue needs of the bucket: to store, and to ask whether a key is
// there already.
type QueueBucket interface {
	origin.Putter
	Stat(ctx context.Context, key string) (origin.Meta, error)
}

// Queue copies single keys ahead of the walk: serve queues every object it answers from an old
// store, so what viewers ask for reaches the bucket first. It is bounded and deduplicated:
// a key already waiting is not queued twice, and when the queue is full a key is dropped (the
// walk copies it in its turn).
type Queue struct {
	src     Source
	bucket  QueueBucket
	c       *copier
	ch      chan string
	dropped atomic.Int64

	mu      sync.Mutex
	pending map[string]struct{}
}

// NewQueue returns a queue of at most size keys that copies from the volume with cfg and
// counts in p: NewSourceQueue with the volume as the source.
func NewQueue(vol Volume, bucket QueueBucket, cfg Config, p *Progress, size int) *Queue {
	return NewSourceQueue(NewVolumeSource("", vol), bucket, cfg, p, size)
}

// NewSourceQueue returns a queue of at most size keys that copies from src with cfg and counts
// in p. Its workers (Run) share one buffer each (BufferBytes), as the walk's do.
func NewSourceQueue(src Source, bucket QueueBucket, cfg Config, p *Progress, size int) *Queue {
	cfg = cfg.withDefaults()
	if p == nil {
		p = NewProgress()
	}
	return &Queue{src: src, bucket: bucket, c: newCopier(&cfg, bucket, p, cfg.Concurrency),
		ch: make(chan string, size), pending: map[string]struct{}{}}
}

// Enqueue asks for key to be copied and reports whether it was queued (false when it waits
// already or the queue is full). It never blocks.
func (q *Queue) Enqueue(key string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, ok := q.pending[key]; ok {
		return false
	}
	select {
	case q.ch <- key:
		q.pending[key] = struct{}{}
		return true
	default:
		q.dropped.Add(1)
		return false
	}
}

// Dropped returns how many keys found the queue full.
func (q *Queue) Dropped() int64 { return q.dropped.Load() }

// Run copies queued keys, workers at a time, until ctx ends.
func (q *Queue) Run(ctx context.Context, workers int) {
	var wg sync.WaitGroup
	for range max(workers, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case key := <-q.ch:
					q.copy(ctx, key)
					q.mu.Lock()
					delete(q.pending, key)
					q.mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
}

// copy stores key unless the bucket has it. A key the source no longer holds is left alone.
func (q *Queue) copy(ctx context.Context, key string) {
	if !q.c.cfg.selected(key) {
		return
	}
	if _, err := q.bucket.Stat(ctx, key); err == nil {
		return
	} else if !errors.Is(err, origin.ErrNotFound) {
		q.c.cfg.Logger.Warn("backfill queue: cannot tell whether the bucket has the key", "key", key, "err", err)
		return
	}
	q.c.copy(ctx, q.src, Item{Key: key, Size: -1}, false)
}
