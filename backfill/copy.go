package backfill

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/fedicache/fedicache/origin"
	"golang.org/x/time/rate"
)

// md5MaxBytes bounds the objects whose MD5 is sent as Content-MD5: larger ones go up in parts,
// which Content-MD5 does not cover.
const md5MaxBytes = 64 << 20

// BufferBytes is the size of the buffer each copying worker holds at most: an object up to
// this size is read once into it, its MD5 computed as it is read, and put from it (a retry
// sends it again without reading the source again). A larger object is put from its source
// as the bucket reads it (a volume's file, or an old bucket's ranged GETs), never held whole.
// So a worker holds at most BufferBytes of objects, plus the buffers of the HTTP client's
// requests (at most maxStreams open GETs of an old bucket).
const BufferBytes = 2 << 20

// readChunk is how much of an object is read into the buffer at a time, within the bandwidth
// cap.
const readChunk = 256 << 10

// errSourceDigest means the bytes read from a source do not match the MD5 its ETag carries.
var errSourceDigest = errors.New("the bytes read from the source do not match its ETag")

// copier copies one object at a time for Run's workers and the queue's.
type copier struct {
	cfg       *Config
	dst       origin.Putter
	p         *Progress
	bandwidth *rate.Limiter // nil: no cap
	bufs      chan []byte   // free buffers of BufferBytes, at most one per worker
}

func newCopier(cfg *Config, dst origin.Putter, p *Progress, workers int) *copier {
	c := &copier{cfg: cfg, dst: dst, p: p, bufs: make(chan []byte, workers)}
	if cfg.Bandwidth > 0 {
		c.bandwidth = rate.NewLimiter(rate.Limit(cfg.Bandwidth), int(max(cfg.Bandwidth/10, 64<<10)))
	}
	return c
}

// copy stores it from src under the same key and counts the outcome. walked says whether the
// walk counted it among the objects to copy; the queue's keys are not, and of them only what
// the walk would not count (copies, failures) is counted. It reports whether it stored the
// object.
func (c *copier) copy(ctx context.Context, src Source, it Item, walked bool) (stored bool) {
	size := it.Size
	obj, err := src.Open(ctx, it)
	if err == nil {
		size = obj.Size
		var skipped bool
		skipped, err = c.store(ctx, it.Key, obj)
		if cerr := obj.Close(); err == nil {
			err = cerr
		}
		if skipped && walked {
			// Not to copy after all: a private object and a destination without ACLs.
			c.p.ToCopy.Add(-1)
			c.p.BytesToCopy.Add(-size)
			c.p.PrivateSkipped.Add(1)
			c.p.list(&c.p.privateSkipped, it.Key)
		}
		if skipped {
			return false
		}
	}
	switch {
	case !walked && errors.Is(err, errChanged):
		// A queued key the source no longer holds, or holds private: the walk counts it.
	case err == nil:
		c.p.Copied.Add(1)
		c.p.BytesCopied.Add(size)
		if c.cfg.OnCopied != nil {
			c.cfg.OnCopied(it.Key)
		}
		return true
	case errors.Is(err, origin.ErrExists):
		c.p.Exists.Add(1) // another copier stored it first: not overwritten
		c.p.BytesExists.Add(size)
	case errors.Is(err, errChanged):
		c.p.Changed.Add(1)
		c.p.list(&c.p.changed, it.Key)
		c.cfg.Logger.Warn("backfill: skipped an object that changed or vanished while read", "source", src.Name(), "key", it.Key)
	case ctx.Err() != nil:
		// Stopped: the next run copies it.
	default:
		c.p.fail(it.Key, err)
		c.cfg.Logger.Error("backfill: copy failed", "source", src.Name(), "key", it.Key, "err", err)
	}
	return false
}

// store puts obj under key, or reports skipped for a private object and a destination without
// ACLs.
func (c *copier) store(ctx context.Context, key string, obj *Object) (skipped bool, err error) {
	acl := c.cfg.ACL
	if obj.ACL == origin.ACLPrivate {
		if c.cfg.ACL == "" {
			return true, nil
		}
		acl = origin.ACLPrivate
		c.p.Private.Add(1)
	}
	opts := origin.PutOptions{ACL: acl, IfNoneMatch: c.cfg.ConditionalWrite}
	if sc, ok := c.dst.(origin.ServerCopier); ok && obj.bucket != nil && sc.CanCopyFrom(obj.bucket) {
		// The service copies the object with the headers it was stored with.
		return false, c.serverCopy(ctx, sc, key, obj, opts)
	}
	if obj.headers != nil {
		if err := obj.headers(ctx); err != nil {
			return false, err
		}
	}
	opts.ContentType, opts.CacheControl = obj.Headers.ContentType, obj.Headers.CacheControl
	if opts.ContentType == "" {
		opts.ContentType = origin.ContentType(key)
	}
	if opts.CacheControl == "" {
		opts.CacheControl = c.cfg.CacheControl
	}
	if obj.Size <= BufferBytes {
		return false, c.putBuffered(ctx, key, obj, opts)
	}
	return false, c.putStreamed(ctx, key, obj, opts)
}

// serverCopy has the destination copy obj from its bucket itself, then checks that it holds
// obj's bytes: by the copy's ETag when it and the source's are both MD5s of the bytes (equal
// MD5s, the same bytes), else by the size (and MD5, when both carry one) a HEAD of the copy
// gives.
func (c *copier) serverCopy(ctx context.Context, sc origin.ServerCopier, key string, obj *Object, opts origin.PutOptions) error {
	etag, err := sc.CopyFrom(ctx, obj.bucket, key, obj.Size, opts)
	if err != nil {
		return err
	}
	c.p.BytesRead.Add(obj.Size)
	if a, ok := origin.ETagMD5(etag); ok {
		if b, ok := origin.ETagMD5(obj.ETag); ok {
			if a != b {
				return fmt.Errorf("the copy's MD5 %s differs from the source's %s", a, b)
			}
			return nil
		}
	}
	m, err := c.statCopy(ctx, key)
	if err != nil {
		return fmt.Errorf("stat after the copy: %w", err)
	}
	if m == nil {
		return nil
	}
	if m.Size != obj.Size {
		return fmt.Errorf("the copy holds %d bytes, the source %d", m.Size, obj.Size)
	}
	if a, ok := origin.ETagMD5(m.ETag); ok {
		if b, ok := origin.ETagMD5(obj.ETag); ok && a != b {
			return fmt.Errorf("the copy's MD5 %s differs from the source's %s", a, b)
		}
	}
	return nil
}

// statCopy returns the destination's object key as stored, whatever its ACL: a private copy
// (hidden media) is the copier's to check even when the destination hides it from its readers
// (origin.HeadersReader, a signed HEAD that checks no ACL); nil when the destination cannot say.
func (c *copier) statCopy(ctx context.Context, key string) (*origin.Meta, error) {
	if h, ok := c.dst.(origin.HeadersReader); ok {
		m, _, err := h.ObjectHeaders(ctx, key)
		return &m, err
	}
	if st, ok := c.dst.(interface {
		Stat(ctx context.Context, key string) (origin.Meta, error)
	}); ok {
		m, err := st.Stat(ctx, key)
		return &m, err
	}
	return nil, nil
}

// putBuffered reads obj once into a worker's buffer, computing its MD5 as it goes, and puts it
// from there.
func (c *copier) putBuffered(ctx context.Context, key string, obj *Object, opts origin.PutOptions) error {
	buf := c.buffer()
	defer c.release(buf)
	data := buf[:obj.Size]
	h := md5.New()
	for off := 0; off < len(data); {
		end := min(off+readChunk, len(data))
		if err := waitBandwidth(ctx, c.bandwidth, end-off); err != nil {
			return err
		}
		n, err := obj.Body.ReadAt(data[off:end], int64(off))
		c.p.BytesRead.Add(int64(n))
		h.Write(data[off : off+n])
		off += n
		if err != nil && !(errors.Is(err, io.EOF) && off == len(data)) {
			if errors.Is(err, io.EOF) {
				return errChanged // shorter than listed
			}
			return fmt.Errorf("read: %w", err)
		}
	}
	sum := h.Sum(nil)
	if want, ok := origin.ETagMD5(obj.ETag); ok && want != hex.EncodeToString(sum) {
		return errSourceDigest
	}
	if obj.file != nil {
		// The file is read: a change while it was read is seen now, before it goes up.
		if err := obj.Close(); err != nil {
			return err
		}
	}
	if !c.cfg.NoContentMD5 {
		opts.ContentMD5 = sum
	}
	return c.dst.Put(ctx, key, bytes.NewReader(data), obj.Size, opts)
}

// putStreamed puts obj from its source as the destination reads it.
func (c *copier) putStreamed(ctx context.Context, key string, obj *Object, opts origin.PutOptions) error {
	if !c.cfg.NoContentMD5 && obj.Size <= md5MaxBytes {
		if want, ok := origin.ETagMD5(obj.ETag); ok {
			// The source's own MD5: the destination checks the bytes against it.
			opts.ContentMD5, _ = hex.DecodeString(want)
		} else if obj.file != nil {
			h := md5.New()
			if _, err := io.Copy(h, io.NewSectionReader(obj.file, 0, obj.Size)); err != nil {
				return fmt.Errorf("read: %w", err)
			}
			opts.ContentMD5 = h.Sum(nil)
		}
	}
	body := &limitedBody{r: obj.Body, size: obj.Size, ctx: ctx, lim: c.bandwidth, read: &c.p.BytesRead}
	return c.dst.Put(ctx, key, body, obj.Size, opts)
}

// buffer returns a free buffer of BufferBytes.
func (c *copier) buffer() []byte {
	select {
	case b := <-c.bufs:
		return b
	default:
		return make([]byte, BufferBytes)
	}
}

// release keeps buf for the next object, unless enough are kept.
func (c *copier) release(buf []byte) {
	select {
	case c.bufs <- buf:
	default:
	}
}

// waitBandwidth waits until n bytes may be read under lim (nil: no cap).
func waitBandwidth(ctx context.Context, lim *rate.Limiter, n int) error {
	if lim == nil {
		return nil
	}
	for n > 0 {
		step := min(n, lim.Burst())
		if err := lim.WaitN(ctx, step); err != nil {
			return err
		}
		n -= step
	}
	return nil
}

// limitedBody reads an object for an upload, from any offset as retries and parts need, within
// the bandwidth cap, and counts the bytes read. It keeps the copy's context, because
// origin.Body's ReadAt has none.
type limitedBody struct {
	r    io.ReaderAt
	size int64
	off  int64
	ctx  context.Context
	lim  *rate.Limiter
	read interface{ Add(int64) int64 }
}

func (b *limitedBody) Read(p []byte) (int, error) {
	n, err := b.ReadAt(p, b.off)
	b.off += int64(n)
	return n, err
}

func (b *limitedBody) ReadAt(p []byte, off int64) (int, error) {
	if off >= b.size {
		return 0, io.EOF
	}
	if rest := b.size - off; int64(len(p)) > rest {
		p = p[:rest]
	}
	if err := waitBandwidth(b.ctx, b.lim, len(p)); err != nil {
		return 0, err
	}
	n, err := b.r.ReadAt(p, off)
	b.read.Add(int64(n))
	if err == nil && off+int64(n) == b.size {
		err = io.EOF
	}
	return n, err
}

func (b *limitedBody) Seek(offset int64, whence int) (int64, error) {
	off, err := seekTo(b.off, b.size, offset, whence)
	if err == nil {
		b.off = off
	}
	return off, err
}

var _ origin.Body = (*limitedBody)(nil)

// seekTo is io.Seeker's arithmetic for a body of size bytes read up to off: the new offset.
func seekTo(off, size, offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += off
	case io.SeekEnd:
		offset += size
	default:
		return 0, fmt.Errorf("seek: whence %d", whence)
	}
	if offset < 0 {
		return 0, fmt.Errorf("seek: negative offset %d", offset)
	}
	return offset, nil
}
