package s3_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fedicache/fedicache/origin"
	"github.com/fedicache/fedicache/origin/fielderr"
	"github.com/fedicache/fedicache/origin/origintest"
	"github.com/fedicache/fedicache/origin/s3"
	"github.com/fedicache/fedicache/origin/s3/s3test"
)

// publicConfig returns the configuration of an anonymous bucket on fb, with static credentials
// for fedicache's own requests and Mastodon's S3_PERMISSION public-read.
func publicConfig(fb *origintest.FakeBucket) s3.Config {
	cfg := s3test.Config(fb)
	cfg.Anonymous, cfg.RequirePublicRead = true, true
	return cfg
}

// newBucket builds the bucket cfg describes, with an empty AWS credential chain.
func newBucket(t *testing.T, cfg s3.Config) *s3.Bucket {
	t.Helper()
	s3test.NoCredentials(t)
	return s3test.NewFromConfig(t, cfg)
}

// publicFake returns a FakeBucket that refuses unsigned requests as AWS does, holding the public
// object "pub.png" and the private (hidden) object "priv.png".
func publicFake(t *testing.T) *origintest.FakeBucket {
	t.Helper()
	fb := origintest.NewFakeBucket(t)
	fb.RequireSignatures(true)
	fb.Put(t, "pub.png", []byte("public bytes"))
	fb.Put(t, "priv.png", []byte("suspended"))
	fb.SetACL("priv.png", "private")
	return fb
}

// read gets key whole from o.
func read(ctx context.Context, o origin.Origin, key string) ([]byte, error) {
	body, _, err := o.Get(ctx, key, nil)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	return io.ReadAll(body)
}

// checkReads checks what Get, Stat and Validate of key give: want nil, origin.ErrHidden, or
// origin.ErrNotFound (and then not ErrHidden).
func checkReads(t *testing.T, b *s3.Bucket, key string, want error) {
	t.Helper()
	ctx := context.Background()
	check := func(op string, err error) {
		t.Helper()
		switch {
		case want == nil && err != nil:
			t.Errorf("%s %q: %v, want it served", op, key, err)
		case want != nil && !errors.Is(err, want):
			t.Errorf("%s %q: %v, want %v", op, key, err, want)
		case want == origin.ErrNotFound && errors.Is(err, origin.ErrHidden):
			t.Errorf("%s %q: %v, want ErrNotFound, not ErrHidden", op, key, err)
		case err != nil && !strings.Contains(err.Error(), `"`+key+`"`):
			t.Errorf("%s %q: error %q does not name the key", op, key, err)
		}
	}
	_, err := read(ctx, b, key)
	check("Get", err)
	_, err = b.Stat(ctx, key)
	check("Stat", err)
	_, _, err = b.Revalidate(ctx, key, `"0123456789abcdef0123456789abcdef"`)
	check("Validate", err)
}

// TestAnonymousReadsAsThePublic: the media reads of an anonymous bucket go unsigned, so the
// bucket decides as for the public; a 403 is a hidden object, told from a missing key by a
// signed look; readiness does not need HeadBucket; the ACL check is off.
func TestAnonymousReadsAsThePublic(t *testing.T) {
	fb := publicFake(t)
	b := newBucket(t, publicConfig(fb))
	ctx := context.Background()

	if data, err := read(ctx, b, "pub.png"); err != nil || string(data) != "public bytes" {
		t.Fatalf("Get of a public object: %q, %v", data, err)
	}
	checkReads(t, b, "pub.png", nil)
	checkReads(t, b, "priv.png", origin.ErrHidden) // a signed read would have been served
	checkReads(t, b, "missing.png", origin.ErrNotFound)
	if fb.Heads("missing.png") == 0 {
		t.Errorf("no HEAD of missing.png reached the bucket: the missing key was not told apart")
	}
	if err := b.Ping(ctx); err != nil {
		t.Errorf("Ping: %v", err)
	}
	if s, err := b.ACLStatus(ctx); s != s3.ACLCheckOff || err != nil {
		t.Errorf("ACLStatus: %v, %v; want %v, nil", s, err, s3.ACLCheckOff)
	}
	if has, err := b.CheckACLs(ctx); has || err != nil {
		t.Errorf("CheckACLs: %v, %v; want false, nil", has, err)
	}
}

// TestAnonymousSignedLookFails: when the signed look that follows a 403 fails, the read fails:
// neither hidden nor missing, so the caller knows the bucket did not decide.
func TestAnonymousSignedLookFails(t *testing.T) {
	fb := publicFake(t)
	cfg := publicConfig(fb)
	cfg.Timeout = time.Second
	b := newBucket(t, cfg)
	fb.FailKey("priv.png", http.StatusInternalServerError) // signed requests only: unsigned get 403 first
	if _, err := b.Stat(context.Background(), "priv.png"); err == nil || errors.Is(err, origin.ErrNotFound) {
		t.Errorf("Stat with a failing signed look: %v, want a failure that is neither hidden nor missing", err)
	}
}

// TestSignedForbiddenIsAFailure: for a signed bucket a 403 stays a failure, as before.
func TestSignedForbiddenIsAFailure(t *testing.T) {
	fb := origintest.NewFakeBucket(t)
	fb.Put(t, "a.png", []byte("png"))
	fb.FailKey("a.png", http.StatusForbidden)
	cfg := publicConfig(fb)
	cfg.Anonymous = false
	b := newBucket(t, cfg)
	if _, err := b.Stat(context.Background(), "a.png"); err == nil || errors.Is(err, origin.ErrNotFound) {
		t.Errorf("signed Stat answered 403: %v, want a failure that is not ErrNotFound", err)
	}
}

// TestAnonymousWithoutCredentials: without credentials every 403 is a hidden object, and the
// state cannot be read; the public objects are served and readiness works.
func TestAnonymousWithoutCredentials(t *testing.T) {
	fb := publicFake(t)
	cfg := publicConfig(fb)
	cfg.AccessKeyID, cfg.SecretAccessKey = "", ""
	b := newBucket(t, cfg)
	ctx := context.Background()

	checkReads(t, b, "pub.png", nil)
	checkReads(t, b, "priv.png", origin.ErrHidden)
	checkReads(t, b, "missing.png", origin.ErrHidden)
	if err := b.Ping(ctx); err != nil {
		t.Errorf("Ping: %v", err)
	}
	_, err := b.StateView()
	if err == nil {
		t.Fatal("StateView without credentials: nil error")
	}
	var fe *fielderr.Error
	if !errors.As(err, &fe) || fe.Field != "Config.Anonymous" {
		t.Errorf("StateView error %v (%T), want a *fielderr.Error of Config.Anonymous", err, err)
	}
	for _, want := range []string{"Config.Anonymous", "Config.AccessKeyID", "Config.SecretAccessKey", "AWS_ACCESS_KEY_ID"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("StateView error %q does not name %s", err, want)
		}
	}
}

// TestAnonymousCredentialsFromTheChain: with no static keys the signed client takes the AWS
// credential chain's.
func TestAnonymousCredentialsFromTheChain(t *testing.T) {
	fb := publicFake(t)
	cfg := publicConfig(fb)
	cfg.AccessKeyID, cfg.SecretAccessKey = "", ""
	s3test.NoCredentials(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDFROMTHECHAIN")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "not-a-secret-either")
	b := s3test.NewFromConfig(t, cfg)
	checkReads(t, b, "priv.png", origin.ErrHidden)
	checkReads(t, b, "missing.png", origin.ErrNotFound)
	view, err := b.StateView()
	if err != nil {
		t.Fatalf("StateView: %v", err)
	}
	if data, err := read(context.Background(), view, "priv.png"); err != nil || string(data) != "suspended" {
		t.Errorf("view's Get of a private object: %q, %v", data, err)
	}
}

// TestAnonymousFallback: a hidden object stops Fallback (the old volume's copy is not served); a
// key missing from the bucket is still served from the old volume, which a bucket without
// credentials cannot tell apart, so it hides that key too.
func TestAnonymousFallback(t *testing.T) {
	fb := publicFake(t)
	old := origintest.NewFakeBucket(t)
	old.Put(t, "priv.png", []byte("old copy of a suspended account's media"))
	old.Put(t, "old.png", []byte("not copied yet"))
	oldCfg := publicConfig(old)
	oldCfg.Anonymous, oldCfg.RequirePublicRead = false, false
	ctx := context.Background()

	secondary := newBucket(t, oldCfg)
	f := origin.Fallback(newBucket(t, publicConfig(fb)), secondary)
	if _, err := read(ctx, f, "priv.png"); !errors.Is(err, origin.ErrHidden) {
		t.Errorf("Get of a hidden key: %v, want ErrHidden", err)
	}
	if _, err := f.Stat(ctx, "priv.png"); !errors.Is(err, origin.ErrHidden) {
		t.Errorf("Stat of a hidden key: %v, want ErrHidden", err)
	}
	if _, _, err := origin.Revalidate(ctx, f, "priv.png", `"x"`); !errors.Is(err, origin.ErrHidden) {
		t.Errorf("Validate of a hidden key: %v, want ErrHidden", err)
	}
	if n := old.Gets("priv.png") + old.Heads("priv.png"); n != 0 {
		t.Errorf("the secondary was asked %d times for a hidden key", n)
	}
	if data, err := read(ctx, f, "old.png"); err != nil || string(data) != "not copied yet" {
		t.Errorf("Get of a key only the secondary holds: %q, %v", data, err)
	}

	cfg := publicConfig(fb)
	cfg.AccessKeyID, cfg.SecretAccessKey = "", ""
	f = origin.Fallback(newBucket(t, cfg), secondary)
	if _, err := read(ctx, f, "old.png"); !errors.Is(err, origin.ErrHidden) {
		t.Errorf("Get of a key only the secondary holds, without credentials: %v, want ErrHidden", err)
	}
	if n := old.Gets("priv.png") + old.Heads("priv.png") + old.Gets("old.png") + old.Heads("old.png"); n != 1 {
		t.Errorf("the secondary was asked %d times in all, want once (old.png with credentials)", n)
	}
}

// TestAnonymousPing: the anonymous Ping tells a missing bucket and a failing one from a bucket
// that answers.
func TestAnonymousPing(t *testing.T) {
	fb := origintest.NewFakeBucket(t) // answers the unsigned probe 404 NoSuchKey
	cfg := publicConfig(fb)
	cfg.Timeout = time.Second
	ctx := context.Background()
	if err := newBucket(t, cfg).Ping(ctx); err != nil {
		t.Errorf("Ping: %v", err)
	}
	cfg.Bucket = "no-such-bucket"
	if err := newBucket(t, cfg).Ping(ctx); err == nil || !strings.Contains(err.Error(), "no such bucket (check the bucket's name") {
		t.Errorf("Ping of a missing bucket: %v, want the no-such-bucket error", err)
	}
	cfg.Bucket = origintest.BucketName
	fb.SetMode(origintest.Fail500)
	if err := newBucket(t, cfg).Ping(ctx); err == nil {
		t.Error("Ping of a failing bucket succeeded")
	}
}

// TestStateView: the view signs every request and checks no ACL, so fedicache's private state
// objects can be listed, written, read and deleted through an anonymous bucket; the bucket's
// own lists and writes are signed too.
func TestStateView(t *testing.T) {
	fb := publicFake(t)
	cfg := publicConfig(fb)
	cfg.Prefix = "pre"
	cfg.MultipartThreshold, cfg.PartSize = 1, 5<<20
	var (
		mu  sync.Mutex
		ops []string
	)
	cfg.Observe = func(op string, _ time.Duration, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err == nil {
			ops = append(ops, op)
		}
	}
	b := newBucket(t, cfg)
	view, err := b.StateView()
	if err != nil {
		t.Fatalf("StateView: %v", err)
	}
	ctx := context.Background()
	const key = "state/tombstones/0001"
	data := []byte("deleted keys")

	if err := view.Put(ctx, key, bytes.NewReader(data), int64(len(data)), origin.PutOptions{}); err != nil {
		t.Fatalf("view's Put: %v", err)
	}
	if got := fb.PutHeader("pre/" + key); got == nil {
		t.Fatalf("no PUT of pre/%s reached the bucket", key)
	}
	if got, err := read(ctx, view, key); err != nil || !bytes.Equal(got, data) {
		t.Errorf("view's Get of a private object: %q, %v", got, err)
	}
	if m, err := view.Stat(ctx, key); err != nil || m.Size != int64(len(data)) {
		t.Errorf("view's Stat of a private object: %+v, %v", m, err)
	}
	checkReads(t, b, key, origin.ErrHidden) // the state is private: not media
	if s, err := view.ACLStatus(ctx); s != s3.ACLCheckOff || err != nil {
		t.Errorf("view's ACLStatus: %v, %v; want %v, nil", s, err, s3.ACLCheckOff)
	}

	// The bucket's own lists and writes go signed, multipart uploads included (two parts).
	big := bytes.Repeat([]byte("x"), 6<<20)
	if err := b.Put(ctx, "state/snapshot", bytes.NewReader(big), int64(len(big)), origin.PutOptions{}); err != nil {
		t.Fatalf("anonymous bucket's multipart Put: %v", err)
	}
	if err := b.Put(ctx, "state/busts", bytes.NewReader(data), int64(len(data)), origin.PutOptions{}); err != nil {
		t.Fatalf("anonymous bucket's Put: %v", err)
	}
	if _, err := b.AbortStaleUploads(ctx, time.Hour); err != nil {
		t.Errorf("anonymous bucket's AbortStaleUploads: %v", err)
	}
	for _, lister := range []*s3.Bucket{view, b} {
		var keys []string
		err := lister.List(ctx, "", func(o origin.Object) error {
			keys = append(keys, o.Key)
			return nil
		})
		if want := []string{"state/busts", "state/snapshot", key}; err != nil || !slices.Equal(keys, want) {
			t.Errorf("List: %q, %v; want %q", keys, err, want)
		}
	}

	if err := view.Delete(ctx, key); err != nil {
		t.Fatalf("view's Delete: %v", err)
	}
	if _, err := view.Stat(ctx, key); !errors.Is(err, origin.ErrNotFound) {
		t.Errorf("view's Stat after Delete: %v, want ErrNotFound", err)
	}
	if err := view.Delete(ctx, key); err != nil {
		t.Errorf("Delete of a key that does not exist: %v, want nil", err)
	}
	for _, k := range []string{"state/busts", "state/snapshot"} {
		if err := b.Delete(ctx, k); err != nil {
			t.Errorf("anonymous bucket's Delete of %s: %v", k, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if n := strings.Count(strings.Join(ops, " "), "DeleteObject"); n != 4 {
		t.Errorf("observed %d DeleteObject, want 4 (in %v)", n, ops)
	}
}

// TestStateViewSkipsTheACLCheck: with RequirePublicRead on a signed bucket, a private object is
// hidden from the bucket but not from its state view.
func TestStateViewSkipsTheACLCheck(t *testing.T) {
	fb := origintest.NewFakeBucket(t)
	fb.Put(t, "state/busts", []byte("busts"))
	fb.SetACL("state/busts", "private")
	cfg := publicConfig(fb)
	cfg.Anonymous = false
	b := newBucket(t, cfg)
	view, err := b.StateView()
	if err != nil {
		t.Fatalf("StateView: %v", err)
	}
	ctx := context.Background()
	if _, err := read(ctx, b, "state/busts"); !errors.Is(err, origin.ErrHidden) {
		t.Errorf("bucket's Get of a private object: %v, want ErrHidden", err)
	}
	if data, err := read(ctx, view, "state/busts"); err != nil || string(data) != "busts" {
		t.Errorf("view's Get of a private object: %q, %v", data, err)
	}
	if _, _, err := view.Revalidate(ctx, "state/busts", `"x"`); err != nil {
		t.Errorf("view's Validate of a private object: %v", err)
	}
}

func TestACLStatus(t *testing.T) {
	fb := origintest.NewFakeBucket(t)
	cfg := publicConfig(fb)
	cfg.Anonymous = false
	ctx := context.Background()
	status := func(cfg s3.Config) s3.ACLStatus {
		t.Helper()
		s, err := newBucket(t, cfg).ACLStatus(ctx)
		if err != nil {
			t.Fatalf("ACLStatus: %v", err)
		}
		return s
	}
	if s := status(cfg); s != s3.ACLCheckOn || s.String() != "ACL check on" {
		t.Errorf("with RequirePublicRead: %v, want %v", s, s3.ACLCheckOn)
	}
	off := cfg
	off.RequirePublicRead = false
	if s := status(off); s != s3.ACLCheckOff || s.String() != "ACL check off" {
		t.Errorf("without RequirePublicRead: %v, want %v", s, s3.ACLCheckOff)
	}
	fb.NoACLs(true)
	if s := status(cfg); s != s3.ACLNone || s.String() != "no ACLs" {
		t.Errorf("on a service without ACLs: %v, want %v", s, s3.ACLNone)
	}
}
