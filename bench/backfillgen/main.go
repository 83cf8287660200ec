// Command backfillgen is the helper of bench/backfill.sh: it writes a seeded, Mastodon-shaped
// old volume, creates empty buckets, and checks a bucket against the volume once a tool has
// copied it.
//
//	backfillgen gen -dir DIR -files N [-seed S] [-tiny] [-meta]
//	backfillgen place -dir DIR -to BUCKETDIR
//	backfillgen mkbucket -endpoint URL -bucket NAME
//	backfillgen check -endpoint URL -bucket NAME -dir DIR [-sample K] [-seed S] [-etags]
//	backfillgen aclprobe -endpoint URL -bucket NAME -key KEY
//
// gen writes N files under DIR as Mastodon stores media attachments:
// media_attachments/files/<id partition>/original|small/<16 hex>.<ext>, an original (60-200
// KB) and its small thumbnail (20-60 KB) per attachment, so files of 20-200 KB. Bytes are
// pseudo-random (media does not compress), the same for the same seed; files are 0644, as
// Mastodon leaves visible media. It prints "RESULT files=N bytes=B". With -tiny the files are
// of 16-256 bytes (the layout of a large volume, without its bytes); with -meta each file also
// gets the metadata versitygw's posix backend keeps for an uploaded object (see place), so
// that DIR, made a bucket directory, is a finished bucket.
//
// place fills an old bucket without uploading it: it hardlinks every file of DIR into
// BUCKETDIR, a bucket directory of versitygw's posix backend, and gives each the extended
// attributes versitygw writes for a PutObject (user.etag, the quoted MD5; user.content-type,
// by extension; user.cache-control, as Mastodon writes it), so that versitygw lists and
// serves it as an uploaded object. It prints "RESULT files=N bytes=B".
//
// mkbucket creates a bucket and fails when it exists already: every run starts empty.
//
// check lists the bucket and walks DIR, compares the keys and sizes, and GETs K objects drawn
// from the seed to compare their bytes with the files. It prints "RESULT objects=N bytes=B
// missing=M extra=E size_mismatch=S sampled=K differ=D etag_mismatch=T" and exits 0 whatever
// it found: the benchmark judges. Keys under fedicache's state prefix (_fedicache/, where the
// backfill records its progress) are not media and are left out. With -etags every listed ETag is compared with the MD5 of its
// file (etag_mismatch; 0 without -etags).
//
// aclprobe makes KEY private with PutObjectAcl and reads its ACL back: "RESULT acls=1" when
// the server keeps object ACLs, "RESULT acls=0" when it answers NotImplemented.
//
// Credentials come from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; requests are path style,
// region us-east-1.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/fedicache/fedicache/bench/internal/seeded"
	"golang.org/x/sync/errgroup"
)

const kb = 1000

// statePrefix is fedicache's state_prefix by default: its own records, not media.
const statePrefix = "_fedicache/"

func main() {
	log.SetFlags(0)
	if len(os.Args) < 2 {
		log.Fatal("backfillgen: use gen, mkbucket or check (see the package comment)")
	}
	fl := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	dir := fl.String("dir", "", "the old volume's directory")
	files := fl.Int("files", 10000, "gen: files to write")
	seed := fl.Uint64("seed", 1, "the same seed gives the same keys, sizes, bytes and samples")
	endpoint := fl.String("endpoint", "", "S3 endpoint URL, e.g. http://127.0.0.1:7070")
	bucket := fl.String("bucket", "", "bucket name")
	sample := fl.Int("sample", 20, "check: objects whose bytes are compared")
	tiny := fl.Bool("tiny", false, "gen: files of 16-256 bytes")
	meta := fl.Bool("meta", false, "gen: give each file versitygw's object metadata (see place)")
	to := fl.String("to", "", "place: the bucket directory to hardlink the files into")
	etags := fl.Bool("etags", false, "check: compare every listed ETag with its file's MD5")
	key := fl.String("key", "", "aclprobe: the object to make private")
	_ = fl.Parse(os.Args[2:])

	ctx := context.Background()
	var err error
	switch os.Args[1] {
	case "gen":
		if *dir == "" || *files < 1 {
			log.Fatal("backfillgen gen: -dir and -files (at least 1) are required")
		}
		err = generate(*dir, *files, *seed, *tiny, *meta)
	case "place":
		if *dir == "" || *to == "" {
			log.Fatal("backfillgen place: -dir and -to are required")
		}
		err = place(*dir, *to)
	case "mkbucket":
		if *endpoint == "" || *bucket == "" {
			log.Fatal("backfillgen mkbucket: -endpoint and -bucket are required")
		}
		_, err = newClient(*endpoint).CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(*bucket)})
	case "check":
		if *endpoint == "" || *bucket == "" || *dir == "" {
			log.Fatal("backfillgen check: -endpoint, -bucket and -dir are required")
		}
		err = check(ctx, newClient(*endpoint), *bucket, *dir, *sample, *seed, *etags)
	case "aclprobe":
		if *endpoint == "" || *bucket == "" || *key == "" {
			log.Fatal("backfillgen aclprobe: -endpoint, -bucket and -key are required")
		}
		err = aclProbe(ctx, newClient(*endpoint), *bucket, *key)
	default:
		log.Fatalf("backfillgen: unknown command %q: use gen, place, mkbucket, check or aclprobe", os.Args[1])
	}
	if err != nil {
		log.Fatalf("backfillgen %s: %v", os.Args[1], err)
	}
}

// newClient is a path-style client of endpoint with the credentials of the environment.
func newClient(endpoint string) *s3.Client {
	return s3.NewFromConfig(aws.Config{
		Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider(
			os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY"), ""),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	}, func(o *s3.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.UsePathStyle = true
	})
}

// file is one generated file of the volume.
type file struct {
	key  string
	size int64
	seed uint64
}

// tree draws n keys and sizes from seed: attachments of an original and a small thumbnail
// sharing a Paperclip id partition (6 groups of 3 digits of a snowflake id) and a name.
func tree(n int, seed uint64, tiny bool) []file {
	r := rand.New(rand.NewPCG(seed, 0x6261636b66696c6c))
	exts := []string{"jpg", "jpg", "jpg", "png", "webp", "gif"}
	var files []file
	for len(files) < n {
		id := fmt.Sprintf("%018d", 109_000_000_000_000_000+r.Int64N(5_000_000_000_000_000))
		groups := make([]string, 6)
		for i := range groups {
			groups[i] = id[3*i : 3*i+3]
		}
		name := fmt.Sprintf("%016x.%s", r.Uint64(), exts[r.IntN(len(exts))])
		base := "media_attachments/files/" + strings.Join(groups, "/")
		original, small := logUniform(r, 60*kb, 200*kb), logUniform(r, 20*kb, 60*kb)
		if tiny {
			original, small = 16+original%241, 16+small%241
		}
		files = append(files, file{base + "/original/" + name, original, seed<<32 ^ uint64(len(files)+1)})
		if len(files) < n {
			files = append(files, file{base + "/small/" + name, small, seed<<32 ^ uint64(len(files)+1)})
		}
	}
	return files
}

// logUniform draws a size between lo and hi, as likely in each octave.
func logUniform(r *rand.Rand, lo, hi int64) int64 {
	return int64(math.Exp(math.Log(float64(lo)) + r.Float64()*math.Log(float64(hi)/float64(lo))))
}

// generate writes n files under dir, tiny ones with tiny, with versitygw's metadata with meta.
func generate(dir string, n int, seed uint64, tiny, meta bool) error {
	files := tree(n, seed, tiny)
	var g errgroup.Group
	g.SetLimit(runtime.GOMAXPROCS(0) * 2)
	var total int64
	for _, f := range files {
		total += f.size
		g.Go(func() error {
			name := filepath.Join(dir, filepath.FromSlash(f.key))
			if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
				return err
			}
			b := seeded.Bytes(f.seed, f.size)
			if err := os.WriteFile(name, b, 0o644); err != nil {
				return err
			}
			if meta {
				if err := setObjectMeta(name, f.key, b); err != nil {
					return err
				}
			}
			return os.Chmod(name, 0o644) // o+r whatever the umask: visible media
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	fmt.Printf("RESULT files=%d bytes=%d\n", len(files), total)
	return nil
}

// check compares bucket with dir: every key and size, and the bytes of sample objects.
func check(ctx context.Context, c *s3.Client, bucket, dir string, sample int, seed uint64, etags bool) error {
	local := map[string]int64{}
	err := filepath.WalkDir(dir, func(name string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, name)
		local[filepath.ToSlash(rel)] = info.Size()
		return err
	})
	if err != nil {
		return err
	}
	var objects, total, extra, mismatch, etagMismatch int64
	seen := map[string]bool{}
	pages := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("list %s: %w", bucket, err)
		}
		for _, o := range page.Contents {
			key, size := aws.ToString(o.Key), aws.ToInt64(o.Size)
			if strings.HasPrefix(key, statePrefix) {
				continue
			}
			objects++
			total += size
			want, ok := local[key]
			switch {
			case !ok:
				extra++
			case want != size:
				mismatch++
			case etags:
				sum, err := fileMD5(filepath.Join(dir, filepath.FromSlash(key)))
				if err != nil {
					return err
				}
				if strings.Trim(aws.ToString(o.ETag), `"`) != sum {
					etagMismatch++
				}
			}
			seen[key] = true
		}
	}
	keys := make([]string, 0, len(local))
	for k := range local {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	missing := len(keys) - len(seen) + int(extra)
	r := rand.New(rand.NewPCG(seed, 0x636865636b))
	var differ, sampled int
	for range min(sample, len(keys)) {
		key := keys[r.IntN(len(keys))]
		sampled++
		same, err := sameBytes(ctx, c, bucket, key, filepath.Join(dir, filepath.FromSlash(key)))
		if err != nil {
			log.Printf("backfillgen check: %s: %v", key, err)
		}
		if !same {
			differ++
		}
	}
	fmt.Printf("RESULT objects=%d bytes=%d missing=%d extra=%d size_mismatch=%d sampled=%d differ=%d etag_mismatch=%d\n",
		objects, total, missing, extra, mismatch, sampled, differ, etagMismatch)
	return nil
}

// sameBytes reports whether the object key holds exactly the bytes of the file name.
func sameBytes(ctx context.Context, c *s3.Client, bucket, key, name string) (bool, error) {
	want, err := os.ReadFile(name)
	if err != nil {
		return false, err
	}
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		var nf interface{ ErrorCode() string }
		if errors.As(err, &nf) && nf.ErrorCode() == "NoSuchKey" {
			return false, nil
		}
		return false, err
	}
	defer out.Body.Close()
	got, err := io.ReadAll(out.Body)
	if err != nil {
		return false, err
	}
	return bytes.Equal(got, want), nil
}
