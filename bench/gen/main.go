// Command gen builds the benchmark's media: a seeded, Mastodon-shaped tree of objects, part of
// it uploaded to a bucket and the rest written as the old volume directory, and the lists of
// keys the benchmark requests.
//
// Keys look like Mastodon's ([cache/]<class>/<attachment>/<id partition>/<style>/<16 hex>.<ext>,
// partitions of 3 or 6 groups) and sizes like its media: thumbnails, avatars and emoji of
// 5-40 KB, originals of 100 KB-2 MB, a few videos of 24-99 MB. Bytes are pseudo-random (media
// does not compress), the same for the same seed (bench/internal/seeded, which bench/load uses
// to check what it reads). The bucket gets a policy that lets anyone
// read objects, as a bucket behind Mastodon's documented nginx front needs.
//
// Credentials come from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY. In -keys it writes
// hot.txt and cold.txt (URL paths, one a line) and keys.env (named keys and sizes, for a shell).
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"golang.org/x/sync/errgroup"

	"github.com/fedicache/fedicache/bench/internal/seeded"
)

const (
	kib = 1 << 10
	mib = 1 << 20
)

// object is one generated file: its key, size, and where it lives.
type object struct {
	key      string
	size     int64
	inVolume bool
	seed     uint64
}

// options are gen's flags.
type options struct {
	endpoint, bucket string
	volumeDir        string
	keysDir          string
	seed             uint64
	hot, small, orig int
	volumeShare      float64
	bigBytes         int64
	workers          int
}

func main() {
	var o options
	flag.StringVar(&o.endpoint, "endpoint", "", "S3 endpoint URL, e.g. http://127.0.0.1:7070")
	flag.StringVar(&o.bucket, "bucket", "mastodon-media", "bucket to create and fill")
	flag.StringVar(&o.volumeDir, "volume", "", "directory for the old volume's share of the tree")
	flag.StringVar(&o.keysDir, "keys", "", "directory for hot.txt, cold.txt and keys.env")
	flag.Uint64Var(&o.seed, "seed", 1, "seed: the same seed gives the same keys and bytes")
	flag.IntVar(&o.hot, "hot", 200, "hot thumbnails (all in the bucket)")
	flag.IntVar(&o.small, "small", 8000, "other small objects: thumbnails, avatars, emoji")
	flag.IntVar(&o.orig, "originals", 150, "originals of 100 KB-2 MB")
	flag.Float64Var(&o.volumeShare, "volume-share", 0.2, "share of the small objects and originals left on the old volume")
	flag.Int64Var(&o.bigBytes, "big-bytes", 2<<30, "size of the one huge object (multipart upload); 0 skips it")
	flag.IntVar(&o.workers, "workers", 8, "uploads at once")
	flag.Parse()
	if o.endpoint == "" || o.volumeDir == "" || o.keysDir == "" {
		log.Fatal("gen: -endpoint, -volume and -keys are required")
	}
	if err := run(context.Background(), o); err != nil {
		log.Fatalf("gen: %v", err)
	}
}

func run(ctx context.Context, o options) error {
	client := newClient(o.endpoint, os.Getenv("AWS_SECRET_ACCESS_KEY"))
	if err := createPublicBucket(ctx, client, o.bucket); err != nil {
		return err
	}

	t := newTree(o)
	began := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(o.workers)
	for _, obj := range t.files {
		g.Go(func() error { return store(gctx, client, o, obj, fill(obj.seed, obj.size)) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	// Videos one at a time, each in one PutObject as Mastodon uploads them (a plain MD5 ETag).
	for _, v := range t.videos {
		if err := store(ctx, client, o, v, fill(v.seed, v.size)); err != nil {
			return err
		}
	}
	if t.big.size > 0 {
		if err := putMultipart(ctx, client, o.bucket, t.big); err != nil {
			return err
		}
	}
	checks, err := checkAccess(ctx, o, t.hot[0].key)
	if err != nil {
		return err
	}
	if err := t.writeKeys(o.keysDir, checks); err != nil {
		return err
	}
	log.Printf("gen: %s in %s", t.summary(), time.Since(began).Round(time.Second))
	return nil
}

// newClient is a path-style client of endpoint signing with AWS_ACCESS_KEY_ID and secret.
func newClient(endpoint, secret string) *s3.Client {
	return s3.NewFromConfig(aws.Config{
		Region:                     "us-east-1",
		Credentials:                credentials.NewStaticCredentialsProvider(os.Getenv("AWS_ACCESS_KEY_ID"), secret, ""),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
		RetryMaxAttempts:           1,
	}, func(so *s3.Options) {
		so.BaseEndpoint = aws.String(endpoint)
		so.UsePathStyle = true
	})
}

// tree is the generated media, by role.
type tree struct {
	hot, files, videos []object
	cold               []object // every small object and original but the hot ones, shuffled
	big                object
	stormImage         object
}

// newTree draws every key and size from o.seed, without touching any store.
func newTree(o options) *tree {
	r := rand.New(rand.NewPCG(o.seed, 0x6d6173746f646f6e))
	var n uint64
	next := func(key string, size int64, inVolume bool) object {
		n++
		return object{key: key, size: size, inVolume: inVolume, seed: o.seed<<32 ^ n}
	}
	t := &tree{}
	for range o.hot {
		t.hot = append(t.hot, next(mediaKey(r, "", "small", pick(r, "jpg", "jpg", "png", "webp")), logUniform(r, 5*kib, 40*kib), false))
	}
	for range o.small {
		t.cold = append(t.cold, next(smallKey(r), logUniform(r, 5*kib, 40*kib), r.Float64() < o.volumeShare))
	}
	for range o.orig {
		t.cold = append(t.cold, next(originalKey(r), logUniform(r, 100*kib, 2*mib), r.Float64() < o.volumeShare))
	}
	r.Shuffle(len(t.cold), func(i, j int) { t.cold[i], t.cold[j] = t.cold[j], t.cold[i] })
	// The storm's image: a fresh 2 MB original in the bucket, requested by no other list.
	t.stormImage = next(mediaKey(r, "", "original", "jpg"), 2*mib-12345, false)
	t.files = append(append(append(t.files, t.hot...), t.cold...), t.stormImage)
	// Videos: the storm's, the disk-hit case's 50 MB, the range case's 99 MB (Mastodon's limit)
	// and the seek-and-play case's 60 MB (10^6 bytes: not a multiple of any chunk size).
	for _, size := range []int64{24*mib + 4321, 50 * mib, 99*mib - 1234, 60_000_000} {
		t.videos = append(t.videos, next(mediaKey(r, "", "original", "mp4"), size, false))
	}
	if o.bigBytes > 0 {
		t.big = next(mediaKey(r, "", "original", "mp4"), o.bigBytes, false)
	}
	return t
}

// smallKey is a thumbnail, an avatar or a custom emoji, local or cached from another server.
func smallKey(r *rand.Rand) string {
	switch x := r.IntN(100); {
	case x < 45:
		return mediaKey(r, "", "small", pick(r, "jpg", "jpg", "png", "webp"))
	case x < 70:
		return mediaKey(r, "cache/", "small", "jpg")
	case x < 78:
		return classKey(r, "", "accounts/avatars", "original", pick(r, "png", "jpg"))
	case x < 88:
		return classKey(r, "cache/", "accounts/avatars", "original", pick(r, "png", "jpg", "gif"))
	case x < 92:
		return classKey(r, "", "custom_emojis/images", "static", "png")
	default:
		return classKey(r, "cache/", "custom_emojis/images", "original", "png")
	}
}

// originalKey is a full-size image or a profile header.
func originalKey(r *rand.Rand) string {
	switch x := r.IntN(100); {
	case x < 50:
		return mediaKey(r, "", "original", pick(r, "jpg", "jpg", "png", "webp"))
	case x < 80:
		return mediaKey(r, "cache/", "original", "jpg")
	case x < 90:
		return classKey(r, "", "accounts/headers", "original", "jpg")
	default:
		return classKey(r, "cache/", "accounts/headers", "original", "jpg")
	}
}

func mediaKey(r *rand.Rand, prefix, style, ext string) string {
	return classKey(r, prefix, "media_attachments/files", style, ext)
}

// classKey is prefix + class/<id partition>/style/<16 hex>.ext.
func classKey(r *rand.Rand, prefix, class, style, ext string) string {
	return fmt.Sprintf("%s%s/%s/%s/%016x.%s", prefix, class, partition(r), style, r.Uint64(), ext)
}

// partition is Paperclip's id partition: 3 groups for old ids, 6 for snowflake ids.
func partition(r *rand.Rand) string {
	if r.IntN(2) == 0 {
		id := fmt.Sprintf("%09d", 1+r.IntN(5_000_000))
		return id[0:3] + "/" + id[3:6] + "/" + id[6:9]
	}
	id := fmt.Sprintf("%018d", 109_000_000_000_000_000+r.Int64N(5_000_000_000_000_000))
	groups := make([]string, 6)
	for i := range groups {
		groups[i] = id[3*i : 3*i+3]
	}
	return strings.Join(groups, "/")
}

func pick(r *rand.Rand, choices ...string) string { return choices[r.IntN(len(choices))] }

// logUniform draws a size between lo and hi, small sizes as likely as large ones per octave.
func logUniform(r *rand.Rand, lo, hi int64) int64 {
	return int64(math.Exp(math.Log(float64(lo)) + r.Float64()*math.Log(float64(hi)/float64(lo))))
}

// fill returns size pseudo-random bytes determined by seed.
func fill(seed uint64, size int64) []byte { return seeded.Bytes(seed, size) }

// contentType is the type Mastodon stores with an object of this extension.
func contentType(key string) string {
	switch path.Ext(key) {
	case ".jpg":
		return "image/jpeg"
	case ".png":
		return "image/png"
	case ".webp":
		return "image/webp"
	case ".gif":
		return "image/gif"
	case ".mp4":
		return "video/mp4"
	}
	return "application/octet-stream"
}

// store puts obj's bytes in the bucket or on the old volume.
func store(ctx context.Context, client *s3.Client, o options, obj object, body []byte) error {
	if obj.inVolume {
		name := filepath.Join(o.volumeDir, filepath.FromSlash(obj.key))
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(name, body, 0o644); err != nil {
			return err
		}
		return os.Chmod(name, 0o644) // readable by others, whatever the umask: fedicache needs o+r
	}
	_, err := client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        aws.String(o.bucket),
		Key:           aws.String(obj.key),
		Body:          bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body))),
		ContentType:   aws.String(contentType(obj.key)),
		CacheControl:  aws.String("public, max-age=315576000, immutable"),
	})
	if err != nil {
		return fmt.Errorf("put %s: %w", obj.key, err)
	}
	return nil
}

// putMultipart uploads obj in 64 MiB parts, two at a time, never holding the whole of it.
func putMultipart(ctx context.Context, client *s3.Client, bucket string, obj object) error {
	const partSize = 64 * mib
	up, err := client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket: aws.String(bucket), Key: aws.String(obj.key), ContentType: aws.String(contentType(obj.key)),
	})
	if err != nil {
		return fmt.Errorf("multipart %s: %w", obj.key, err)
	}
	parts := make([]types.CompletedPart, (obj.size+partSize-1)/partSize)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(2)
	for i := range parts {
		g.Go(func() error {
			size := min(partSize, obj.size-int64(i)*partSize)
			out, err := client.UploadPart(gctx, &s3.UploadPartInput{
				Bucket: aws.String(bucket), Key: aws.String(obj.key), UploadId: up.UploadId,
				PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(fill(obj.seed^uint64(i+1)<<48, size)),
				ContentLength: aws.Int64(size),
			})
			if err != nil {
				return fmt.Errorf("multipart %s part %d: %w", obj.key, i+1, err)
			}
			parts[i] = types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(int32(i + 1))}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	_, err = client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: aws.String(bucket), Key: aws.String(obj.key), UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	})
	if err != nil {
		return fmt.Errorf("multipart %s: complete: %w", obj.key, err)
	}
	return nil
}

// createPublicBucket creates bucket (if needed) with a policy that lets anyone GET objects.
func createPublicBucket(ctx context.Context, client *s3.Client, bucket string) error {
	_, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)})
	var owned *types.BucketAlreadyOwnedByYou
	if err != nil && !errors.As(err, &owned) {
		return fmt.Errorf("create bucket %s: %w", bucket, err)
	}
	policy := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Sid":"PublicRead","Effect":"Allow",`+
		`"Principal":"*","Action":["s3:GetObject"],"Resource":["arn:aws:s3:::%s/*"]}]}`, bucket)
	if _, err := client.PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: aws.String(bucket), Policy: aws.String(policy)}); err != nil {
		return fmt.Errorf("put bucket policy: %w", err)
	}
	return nil
}

// accessChecks are the statuses of three probes of the bucket.
type accessChecks struct {
	anonymousGet     int // unsigned GET of an object: must be 200 for nginx
	anonymousMissing int // unsigned GET of a missing key
	badSignature     int // GET signed with a wrong secret: must be refused
}

// checkAccess proves that the bucket serves unsigned reads and enforces signatures.
func checkAccess(ctx context.Context, o options, key string) (accessChecks, error) {
	var c accessChecks
	status := func(u string) (int, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return 0, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	base := strings.TrimSuffix(o.endpoint, "/") + "/" + o.bucket + "/"
	var err error
	if c.anonymousGet, err = status(base + key); err != nil {
		return c, err
	}
	if c.anonymousMissing, err = status(base + "media_attachments/files/000/000/000/original/missing.jpg"); err != nil {
		return c, err
	}
	forged := newClient(o.endpoint, "not-the-secret")
	_, err = forged.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(o.bucket), Key: aws.String(key)})
	var re interface{ HTTPStatusCode() int }
	switch {
	case err == nil:
		c.badSignature = http.StatusOK
	case errors.As(err, &re):
		c.badSignature = re.HTTPStatusCode()
	default:
		return c, fmt.Errorf("signed GET with a wrong secret: %w", err)
	}
	if c.anonymousGet != http.StatusOK {
		return c, fmt.Errorf("an unsigned GET of %s got %d, not 200: the bucket policy is not honoured", key, c.anonymousGet)
	}
	if c.badSignature == http.StatusOK {
		return c, errors.New("a GET signed with a wrong secret got 200: the bucket does not check signatures")
	}
	return c, nil
}

// writeKeys writes hot.txt, cold.txt and keys.env into dir.
func (t *tree) writeKeys(dir string, c accessChecks) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	list := func(name string, objs []object) error {
		var b strings.Builder
		for _, obj := range objs {
			b.WriteString("/" + obj.key + "\n")
		}
		return os.WriteFile(filepath.Join(dir, name), []byte(b.String()), 0o644)
	}
	if err := list("hot.txt", t.hot); err != nil {
		return err
	}
	if err := list("cold.txt", t.cold); err != nil {
		return err
	}
	var b strings.Builder
	named := func(name string, obj object) {
		fmt.Fprintf(&b, "%s=/%s\n%s_BYTES=%d\n", name, obj.key, name, obj.size)
	}
	named("STORM_IMAGE", t.stormImage)
	named("STORM_VIDEO", t.videos[0])
	named("VIDEO_DISK", t.videos[1])
	named("VIDEO_RANGE", t.videos[2])
	named("VIDEO_SEEK", t.videos[3])
	// Its bytes are seeded.Bytes(VIDEO_SEEK_SEED, VIDEO_SEEK_BYTES), for bench/load to check.
	fmt.Fprintf(&b, "VIDEO_SEEK_SEED=%d\n", t.videos[3].seed)
	if t.big.size > 0 {
		named("BIG", t.big)
	}
	fmt.Fprintf(&b, "TREE_SUMMARY='%s'\n", t.summary())
	fmt.Fprintf(&b, "CHECK_ANON_GET=%d\nCHECK_ANON_MISSING=%d\nCHECK_BAD_SIGNATURE=%d\n",
		c.anonymousGet, c.anonymousMissing, c.badSignature)
	return os.WriteFile(filepath.Join(dir, "keys.env"), []byte(b.String()), 0o644)
}

// summary counts the objects and bytes in the bucket and on the volume.
func (t *tree) summary() string {
	var nb, nv, bb, bv int64
	for _, obj := range append(append(t.files, t.videos...), t.big) {
		switch {
		case obj.size == 0:
		case obj.inVolume:
			nv, bv = nv+1, bv+obj.size
		default:
			nb, bb = nb+1, bb+obj.size
		}
	}
	return fmt.Sprintf("bucket %d objects, %.0f MiB (%.0f MiB without the huge one); volume %d files, %.0f MiB",
		nb, float64(bb)/mib, float64(bb-t.big.size)/mib, nv, float64(bv)/mib)
}
