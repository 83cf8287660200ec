package origintest

// Objects of any size made up on the fly, from a pattern, without holding their bytes.

import (
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/fedicache/fedicache/origin"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// generated serves PutGenerated objects from PatternByte without storing them.
type generated struct {
	*s3mem.Backend
	mu    sync.Mutex
	sizes map[string]int64
}

func (g *generated) size(key string) (int64, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	s, ok := g.sizes[key]
	return s, ok
}

func (g *generated) HeadObject(bucket, key string) (*gofakes3.Object, error) {
	if size, ok := g.size(key); ok {
		return g.object(key, size, nil)
	}
	return g.Backend.HeadObject(bucket, key)
}

func (g *generated) GetObject(bucket, key string, rr *gofakes3.ObjectRangeRequest) (*gofakes3.Object, error) {
	if size, ok := g.size(key); ok {
		return g.object(key, size, rr)
	}
	return g.Backend.GetObject(bucket, key, rr)
}

func (g *generated) object(key string, size int64, rr *gofakes3.ObjectRangeRequest) (*gofakes3.Object, error) {
	rng, err := rr.Range(size)
	if err != nil {
		return nil, err
	}
	start, n := int64(0), size
	if rng != nil {
		start, n = rng.Start, rng.Length
	}
	return &gofakes3.Object{
		Name: key,
		Metadata: map[string]string{
			"Content-Type":  origin.ContentType(key),
			"Last-Modified": time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC).Format(http.TimeFormat),
		},
		Size:     size,
		Range:    rng,
		Hash:     []byte("generated-object!"), // an ETag that is not the body's MD5, as for multipart uploads
		Contents: io.NopCloser(io.LimitReader(&Pattern{Off: start}, n)),
	}, nil
}

// Pattern is an endless deterministic byte stream starting at offset Off: byte i is
// PatternByte(i).
type Pattern struct{ Off int64 }

// PatternByte is byte i of every generated object.
func PatternByte(i int64) byte { return byte(i*7 + i>>12) }

func (p *Pattern) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = PatternByte(p.Off + int64(i))
	}
	p.Off += int64(len(b))
	return len(b), nil
}
