package backfill

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/fedicache/fedicache/origin"
	"golang.org/x/sync/errgroup"
)

// VerifyMode is how Verify compares an object of the source with the bucket's.
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

// Verify compares every selected file of the volume with the bucket: VerifySource with the
// volume as the source.
func Verify(ctx context.Context, vol Volume, bucket origin.Lister, mode VerifyMode, cfg Config, safe io.Writer) (VerifyReport, error) {
	return VerifySource(ctx, NewVolumeSource("", vol), bucket, mode, cfg, safe)
}

// VerifySource compares every selected object of src with the bucket and writes the key of
// each object the bucket holds equal, one per line, to safe: the objects that may be deleted
// from src. It reads src and the bucket only, and walks and lists each once, in key order. In
// VerifyHash mode an object is compared by the MD5s of both ETags when both are plain MD5s, else
// by hashing the bytes of each side that has none (src's by Source.Open, the bucket's by a
// GET): the bucket must then also be an origin.Origin.
func VerifySource(ctx context.Context, src Source, bucket origin.Lister, mode VerifyMode, cfg Config, safe io.Writer) (VerifyReport, error) {
	cfg = cfg.withDefaults()
	var rep VerifyReport
	reader, _ := bucket.(origin.Origin)
	if mode == VerifyHash && reader == nil {
		return rep, errors.New("backfill: verify by hash needs a bucket that can be read")
	}
	list := listAheadOf(ctx, bucket, "")
	defer list.stop()
	next := list.next
	cur, listErr, more := next()
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
				cfg.Logger.Warn("verify: could not compare", "source", src.Name(), "key", r.key, "err", r.err)
			}
		}
	}()
	var missing, checked int64
	walkErr := src.Walk(ctx, func(it Item) error {
		if !cfg.selected(it.Key) {
			return nil
		}
		checked++
		for more && listErr == nil && cur.Key < it.Key {
			cur, listErr, more = next()
		}
		if listErr != nil {
			return fmt.Errorf("backfill: listing the bucket: %w", listErr)
		}
		if !more || cur.Key != it.Key {
			missing++
			return nil
		}
		if conflict(it, cur) {
			results <- verdict{it.Key, errMismatch}
			return nil
		}
		if mode != VerifyHash {
			results <- verdict{it.Key, nil}
			return nil
		}
		etag := cur.ETag
		pool.Go(func() error {
			err := compareHash(ctx, src, reader, it, etag)
			results <- verdict{it.Key, err}
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

// compareHash compares the source's object it with the bucket's, whose ETag is etag: by the
// two MD5s when both ETags carry one, else by hashing the bytes of each side that has none.
func compareHash(ctx context.Context, src Source, bucket origin.Origin, it Item, etag string) error {
	srcSum, ok := origin.ETagMD5(it.ETag)
	if !ok {
		obj, err := src.Open(ctx, it)
		if err != nil {
			return err
		}
		srcSum, err = hashBody(io.NewSectionReader(obj.Body, 0, obj.Size))
		if cerr := obj.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	dstSum, ok := origin.ETagMD5(etag)
	if !ok {
		body, _, err := bucket.Get(ctx, it.Key, nil)
		if err != nil {
			return err
		}
		dstSum, err = hashBody(body)
		body.Close()
		if err != nil {
			return err
		}
	}
	if srcSum != dstSum {
		return errMismatch
	}
	return nil
}

// hashBody returns the hex MD5 of what r reads.
func hashBody(r io.Reader) (string, error) {
	h := md5.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
