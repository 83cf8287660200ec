package backfill

import (
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/fedicache/fedicache/origin"
	"golang.org/x/time/rate"
)

// md5MaxBytes bounds the files whose MD5 is computed for Content-MD5: larger ones go up in
// parts, which Content-MD5 does not cover.
const md5MaxBytes = 64 << 20

// errChanged means the file changed or vanished between the walk and the copy.
var errChanged = errors.New("the file changed or vanished while it was copied")

// copier copies one file at a time for Run's workers.
type copier struct {
	cfg       *Config
	vol       Volume
	bucket    origin.Putter
	p         *Progress
	bandwidth *rate.Limiter // nil: no cap
}

// copy stores key's file, as listed (info), under the same key with acl, and counts the outcome.
func (c *copier) copy(ctx context.Context, key string, listed fs.FileInfo, acl string) {
	err := c.put(ctx, key, listed, acl)
	switch {
	case err == nil:
		c.p.Copied.Add(1)
		c.p.BytesCopied.Add(listed.Size())
		if c.cfg.OnCopied != nil {
			c.cfg.OnCopied(key)
		}
	case errors.Is(err, origin.ErrExists):
		c.p.Exists.Add(1) // another copier stored it first: not overwritten
		c.p.BytesExists.Add(listed.Size())
	case errors.Is(err, errChanged):
		c.p.Changed.Add(1)
		c.p.list(&c.p.changed, key)
		c.cfg.Logger.Warn("backfill: skipped a file that changed or vanished while read", "key", key)
	case ctx.Err() != nil:
		// Stopped: the next run copies it.
	default:
		c.p.fail(key, err)
		c.cfg.Logger.Error("backfill: copy failed", "key", key, "err", err)
	}
}

func (c *copier) put(ctx context.Context, key string, listed fs.FileInfo, acl string) error {
	f, info, err := c.vol.OpenFile(key)
	if err != nil {
		if errors.Is(err, origin.ErrNotFound) {
			return errChanged
		}
		return fmt.Errorf("open: %w", err)
	}
	defer f.Close()
	if !same(info, listed) {
		return errChanged
	}
	size := info.Size()
	opts := origin.PutOptions{
		ContentType:  origin.ContentType(key),
		CacheControl: c.cfg.CacheControl,
		ACL:          acl,
		IfNoneMatch:  c.cfg.ConditionalWrite,
	}
	if !c.cfg.NoContentMD5 && size <= md5MaxBytes {
		h := md5.New()
		if _, err := io.Copy(h, io.NewSectionReader(f, 0, size)); err != nil {
			return fmt.Errorf("read: %w", err)
		}
		opts.ContentMD5 = h.Sum(nil)
	}
	body := &limitedBody{f: f, size: size, ctx: ctx, lim: c.bandwidth, read: &c.p.BytesRead}
	if err := c.bucket.Put(ctx, key, body, size, opts); err != nil {
		return err
	}
	// A file that changed while it was read may have gone up half old, half new (a single
	// part is protected by its Content-MD5; parts are not): report it. Keys never change
	// content in Mastodon, so this is a file being replaced by hand.
	if after, err := f.Stat(); err != nil || !same(after, info) {
		return errChanged
	}
	return nil
}

// same reports whether two stats describe the same unchanged file.
func same(a, b fs.FileInfo) bool {
	return a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

// limitedBody reads a file for an upload, from any offset as retries and parts need, within
// the bandwidth cap, and counts the bytes read.
type limitedBody struct {
	f    *os.File
	size int64
	off  int64
	ctx  context.Context
	lim  *rate.Limiter
	read interface{ Add(int64) int64 }
}

func (b *limitedBody) wait(n int) error {
	if b.lim == nil {
		return nil
	}
	for n > 0 {
		step := min(n, b.lim.Burst())
		if err := b.lim.WaitN(b.ctx, step); err != nil {
			return err
		}
		n -= step
	}
	return nil
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
	if err := b.wait(len(p)); err != nil {
		return 0, err
	}
	n, err := b.f.ReadAt(p, off)
	b.read.Add(int64(n))
	if err == nil && off+int64(n) == b.size {
		err = io.EOF
	}
	return n, err
}

func (b *limitedBody) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += b.off
	case io.SeekEnd:
		offset += b.size
	default:
		return 0, fmt.Errorf("seek: whence %d", whence)
	}
	if offset < 0 {
		return 0, fmt.Errorf("seek: negative offset %d", offset)
	}
	b.off = offset
	return offset, nil
}

var _ origin.Body = (*limitedBody)(nil)
