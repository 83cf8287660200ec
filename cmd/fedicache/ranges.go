package main

// The backfill's record of a run, range by range (backfill.RangeStore), kept under the state
// prefix of the bucket it copies into, so that a rerun, by the Job or by a replica, leaves the
// bucket's listing alone where the old store is unchanged since a run found it all there.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/fedicache/fedicache/backfill"
	"github.com/fedicache/fedicache/cmd/fedicache/config"
	"github.com/fedicache/fedicache/origin"
)

// rangesDir is the folder, under the state prefix, of the records of ranges: one object per
// old store and bucket, <store>-<bucket's fingerprint>.ranges.json.
const rangesDir = "backfill/"

// rangesMaxBytes bounds a record read back: about 100 bytes per thousand files, so a record of
// 100,000,000 files is 10 MB.
const rangesMaxBytes = 64 << 20

// rangesStore is what the record needs of the bucket: its state view.
type rangesStore interface {
	origin.Origin
	origin.Putter
}

// bucketRanges keeps the records in the bucket's state prefix.
type bucketRanges struct {
	store       rangesStore
	statePrefix string
	// bucket names the bucket copied into (endpoint, bucket, prefix). It is part of each
	// record's name, so that a record copied along with the state prefix into another bucket
	// (a move between providers copies it) never vouches for that bucket.
	bucket string
}

// newBucketRanges returns the records of copies into the bucket of cfg, kept in store.
func newBucketRanges(store rangesStore, cfg config.Config) backfill.RangeStore {
	return &bucketRanges{store: store, statePrefix: cfg.StatePrefix,
		bucket: fmt.Sprintf("%s\x00%s\x00%s", cfg.S3.Endpoint, cfg.S3.Bucket, cfg.S3.Prefix)}
}

func (b *bucketRanges) key(source string) string {
	sum := sha256.Sum256([]byte(b.bucket))
	return b.statePrefix + rangesDir + source + "-" + hex.EncodeToString(sum[:6]) + ".ranges.json"
}

func (b *bucketRanges) LoadRanges(ctx context.Context, source string) ([]byte, error) {
	body, _, err := b.store.Get(ctx, b.key(source), nil)
	if errors.Is(err, origin.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer body.Close()
	data, err := io.ReadAll(io.LimitReader(body, rangesMaxBytes+1))
	switch {
	case err != nil:
		return nil, err
	case len(data) > rangesMaxBytes:
		return nil, fmt.Errorf("the record %s is larger than %d bytes", b.key(source), rangesMaxBytes)
	}
	return data, nil
}

func (b *bucketRanges) SaveRanges(ctx context.Context, source string, record []byte) error {
	return b.store.Put(ctx, b.key(source), bytes.NewReader(record), int64(len(record)),
		origin.PutOptions{ContentType: "application/json", CacheControl: "no-store"})
}
