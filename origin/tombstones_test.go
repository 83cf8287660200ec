package origin_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/fedicache/fedicache/origin"
	"github.com/fedicache/fedicache/origin/origintest"
	"github.com/fedicache/fedicache/origin/s3"
)

func TestTombstones(t *testing.T) {
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	fb := origintest.NewFakeBucket(t)
	fb.Put(t, "media_attachments/files/000/000/001/original/a.png", []byte("media"))
	bucket, err := s3.New(context.Background(), s3.Config{Endpoint: fb.URL, Bucket: origintest.BucketName,
		ForcePathStyle: true, AccessKeyID: "AKID", SecretAccessKey: "secret"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const deleted = "cache/media_attachments/files/000/000/002/original/b.png"
	one := origin.NewTombstones(bucket, "_fedicache/")
	if err := one.Load(ctx); err != nil || one.Len() != 0 {
		t.Fatalf("Load of an empty state: %v, %d", err, one.Len())
	}
	if err := one.Add(ctx, deleted, time.Now()); err != nil {
		t.Fatal(err)
	}
	if !one.Has(deleted) || one.Has("media_attachments/files/000/000/001/original/a.png") {
		t.Error("Has after Add")
	}
	// Another process learns it by listing.
	two := origin.NewTombstones(bucket, "_fedicache/")
	if err := two.Load(ctx); err != nil || !two.Has(deleted) || two.Len() != 1 {
		t.Errorf("a second process: %v, Has %v, Len %d", err, two.Has(deleted), two.Len())
	}
	// The tombstone is named by the key's hash under the state prefix and holds the key.
	var names []string
	_ = bucket.List(ctx, "", func(o origin.Object) error { names = append(names, o.Key); return nil })
	if len(names) != 2 || !strings.HasPrefix(names[0], "_fedicache/tombstones/") || strings.Contains(names[0], "b.png") {
		t.Fatalf("bucket keys %v", names)
	}
	body, _, err := bucket.Get(ctx, names[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	content, _ := io.ReadAll(body)
	body.Close()
	if !strings.Contains(string(content), deleted) {
		t.Errorf("the tombstone holds %q", content)
	}
	// The volume without the deleted keys.
	vol := mapOrigin{deleted: "old bytes"}
	guarded := origin.Without(vol, two.Has)
	if _, err := guarded.Stat(ctx, deleted); !errors.Is(err, origin.ErrHidden) {
		t.Errorf("Stat of a tombstoned key: %v", err)
	}
	if _, _, err := guarded.Get(ctx, deleted, nil); !errors.Is(err, origin.ErrHidden) {
		t.Errorf("Get of a tombstoned key: %v", err)
	}
}

// mapOrigin serves strings by key.
type mapOrigin map[string]string

func (m mapOrigin) Stat(_ context.Context, key string) (origin.Meta, error) {
	v, ok := m[key]
	if !ok {
		return origin.Meta{}, origin.ErrNotFound
	}
	return origin.Meta{Size: int64(len(v)), Source: origin.SourceVolume}, nil
}

func (m mapOrigin) Get(ctx context.Context, key string, _ *origin.Range) (io.ReadCloser, origin.Meta, error) {
	meta, err := m.Stat(ctx, key)
	if err != nil {
		return nil, meta, err
	}
	return io.NopCloser(strings.NewReader(m[key])), meta, nil
}
