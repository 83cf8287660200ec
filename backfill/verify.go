package backfill

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"

	"github.com/fedicache/fedicache/origin"
	"golang.org/x/sync/errgroup"
)

// VerifyMode is how Verify compares a file with its object.
type VerifyMode string

// The modes of Verify.
const (
	VerifySize VerifyMode = "size" // the sizes are equal
	VerifyHash VerifyMode = "hash" // the contents are equal (MD5 against a single-part ETag, else the bytes)
)

// VerifyReport counts what Verify found.
type VerifyReport struct {
	Checked    int64    `json:"checked"`
	Verified   int64    `json:"verified"`   // in the bucket and equal: safe to delete from the volume
	Missing    int64    `json:"missing"`    // not in the bucket
	Mismatched int64    `json:"mismatched"` // in the bucket, but another size or content
	Errors     int64    `json:"errors"`     // could not be compared
	Bad        []string `json:"bad,omitempty"`
}

// Verify compares every selected file of the volume with the bucket and writes the key of each
// file the bucket holds equal, one per line, to safe: the files that may be deleted from the
// volume. It reads the volume and the bucket only. In VerifyHash mode the bucket must also be
// an origin.Origin, to read objects whose ETag is not an MD5.
func Verify(ctx context.Context, vol Volume, bucket origin.Lister, mode VerifyMode, cfg Config, safe io.Writer) (VerifyReport, error) {
	cfg = cfg.withDefaults()
	var rep VerifyReport
	reader, _ := bucket.(origin.Origin)
	if mode == VerifyHash && reader == nil {
		return rep, errors.New("backfill: verify by hash needs a bucket that can be read")
	}
	next, stop := iter.Pull2(listing(ctx, bucket))
	defer stop()
	cur, listErr, more := next()
	type job struct {
		key  string
		size int64
		etag string
	}
	var (
		pool    errgroup.Group
		results = make(chan verdict, cfg.Concurrency)
		done    = make(chan struct{})
	)
	pool.SetLimit(cfg.Concurrency)
	// One goroutine writes results, so the list and the counts need no lock.
	go func() {
		defer close(done)
		for r := range results {
			switch {
			case r.err == nil:
				rep.Verified++
				fmt.Fprintln(safe, r.key)
			case errors.Is(r.err, errMismatch):
				rep.Mismatched++
				if len(rep.Bad) < maxListed {
					rep.Bad = append(rep.Bad, r.key)
				}
			default:
				rep.Errors++
				if len(rep.Bad) < maxListed {
					rep.Bad = append(rep.Bad, r.key)
				}
				cfg.Logger.Warn("verify: could not compare", "key", r.key, "err", r.err)
			}
		}
	}()
	var missing, checked int64
	walkErr := vol.Walk(ctx, func(key string, info fs.FileInfo) error {
		if !cfg.selected(key) {
			return nil
		}
		checked++
		for more && listErr == nil && cur.Key < key {
			cur, listErr, more = next()
		}
		if listErr != nil {
			return fmt.Errorf("backfill: listing the bucket: %w", listErr)
		}
		if !more || cur.Key != key {
			missing++
			return nil
		}
		j := job{key: key, size: cur.Size, etag: cur.ETag}
		if j.size != info.Size() {
			results <- verdict{key, errMismatch}
			return nil
		}
		if mode != VerifyHash {
			results <- verdict{key, nil}
			return nil
		}
		pool.Go(func() error {
			err := compareHash(ctx, vol, reader, j.key, j.etag)
			results <- verdict{j.key, err}
			return nil
		})
		return nil
	})
	_ = pool.Wait()
	close(results)
	<-done
	rep.Checked, rep.Missing = checked, missing
	if walkErr != nil {
		return rep, walkErr
	}
	return rep, ctx.Err()
}

// verdict is the outcome of one comparison.
type verdict struct {
	key string
	err error
}

var errMismatch = errors.New("the bucket's object differs from the file")

// compareHash compares key's file with its object: the file's MD5 with a single-part ETag, or
// the bytes of both.
func compareHash(ctx context.Context, vol Volume, bucket origin.Origin, key, etag string) error {
	f, _, err := vol.OpenFile(key)
	if err != nil {
		return err
	}
	defer f.Close()
	h := md5.New()
	if _, err := io.Copy(h, f); err != nil {
		return err
	}
	fileSum := hex.EncodeToString(h.Sum(nil))
	if want, ok := origin.ETagMD5(etag); ok {
		if want != fileSum {
			return errMismatch
		}
		return nil
	}
	body, _, err := bucket.Get(ctx, key, nil)
	if err != nil {
		return err
	}
	defer body.Close()
	h.Reset()
	if _, err := io.Copy(h, body); err != nil {
		return err
	}
	if hex.EncodeToString(h.Sum(nil)) != fileSum {
		return errMismatch
	}
	return nil
}
