package s3

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/fedicache/fedicache/origin"
	"github.com/fedicache/fedicache/origin/origintest"
)

// TestLeanGetSignsWhatItSends reads keys whose paths need escaping through the lean GetObject,
// whole and ranged, with and without a prefix, from a fake that checks every signature
// (origintest.VerifySigV4, written from the specification): the bytes arrive, each request is
// signed as sent, and none went through the SDK's operation stack (which adds its invocation id).
func TestLeanGetSignsWhatItSends(t *testing.T) {
	keys := []string{
		"media_attachments/files/000/000/001/original/plain.png",
		"emojis/images/000/000/002/static/with space+plus.png",
		"accounts/avatars/000/000/003/original/tilde~equals=and&percent%25.gif",
		"custom/é ü 日本/quote'paren(star*)colon:at@comma,semi;bang!.webp",
		"double//slash/dot./end.mp4",
	}
	for _, prefix := range []string{"", "pre/fix"} {
		t.Run("prefix="+prefix, func(t *testing.T) {
			objects := map[string][]byte{}
			for i, k := range keys {
				objects[k] = bytes.Repeat([]byte{byte('a' + i)}, 100+i)
			}
			p := ""
			if prefix != "" {
				p = prefix + "/"
			}
			f := newFake(t, p, objects)
			cfg := testConfig(f.srv.URL)
			cfg.Prefix = prefix
			b := newTestBucket(t, cfg)
			if b.lean == nil {
				t.Fatal("the bucket does not use the lean GetObject")
			}
			ctx := context.Background()
			for _, k := range keys {
				body, m, err := b.Get(ctx, k, nil)
				if err != nil {
					t.Fatalf("Get %q: %v", k, err)
				}
				if got := origintest.ReadAll(t, body); !bytes.Equal(got, objects[k]) || m.Size != int64(len(objects[k])) {
					t.Errorf("Get %q: %d bytes (size %d), want %d", k, len(got), m.Size, len(objects[k]))
				}
				body, _, err = b.Get(ctx, k, &origin.Range{Start: 10, End: 19})
				if err != nil {
					t.Fatalf("ranged Get %q: %v", k, err)
				}
				if got := origintest.ReadAll(t, body); !bytes.Equal(got, objects[k][10:20]) {
					t.Errorf("ranged Get %q: %q", k, got)
				}
			}
			if _, _, err := b.Get(ctx, "missing/é.png", nil); !errors.Is(err, origin.ErrNotFound) {
				t.Errorf("Get of a missing key: %v, want ErrNotFound", err)
			}
			gets := 0
			for _, r := range f.requests() {
				if r.Method != http.MethodGet {
					continue
				}
				gets++
				if r.Status == http.StatusForbidden {
					t.Errorf("GET %s refused", r.Path)
				}
				if r.Header.Get("Authorization") == "" || r.Header.Get("Amz-Sdk-Invocation-Id") != "" {
					t.Errorf("GET %s: Authorization %q, amz-sdk-invocation-id %q: not the lean GetObject",
						r.Path, r.Header.Get("Authorization"), r.Header.Get("Amz-Sdk-Invocation-Id"))
				}
				if r.Header.Get("Accept-Encoding") != "identity" {
					t.Errorf("GET %s asks for Accept-Encoding %q", r.Path, r.Header.Get("Accept-Encoding"))
				}
			}
			if gets != 2*len(keys)+1 {
				t.Errorf("%d GETs reached the bucket, want %d", gets, 2*len(keys)+1)
			}
		})
	}
}

// TestLeanGetURL checks the bucket URL the lean GetObject derives from the SDK's endpoint rules,
// and that it stands aside where those rules ask for more than SigV4.
func TestLeanGetURL(t *testing.T) {
	hermetic(t)
	for _, tc := range []struct {
		name     string
		cfg      Config
		want     string // the bucket's URL, "" for no lean GetObject
		signName string
	}{
		{"path style", Config{Endpoint: "http://127.0.0.1:9000", Bucket: "media", ForcePathStyle: true, Region: "us-east-1"},
			"http://127.0.0.1:9000/media", "s3"},
		{"virtual host with a base path", Config{Endpoint: "https://s3.example.com/base/", Bucket: "media", Region: "eu-central-1"},
			"https://media.s3.example.com/base", "s3"},
		{"AWS", Config{Bucket: "media", Region: "eu-west-1"}, "https://media.s3.eu-west-1.amazonaws.com", "s3"},
		{"AWS, a bucket with dots", Config{Bucket: "media.example.com", Region: "eu-west-1"},
			"https://s3.eu-west-1.amazonaws.com/media.example.com", "s3"},
		{"an S3 Express directory bucket", Config{Bucket: "media--use1-az4--x-s3", Region: "us-east-1"}, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.AccessKeyID, tc.cfg.SecretAccessKey = testAccessKeyID, testSecretAccessKey
			b, err := New(context.Background(), tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tc.want == "" && b.lean != nil:
				t.Errorf("lean GetObject to %s, want the SDK's", b.lean.base.String())
			case tc.want == "":
			case b.lean == nil:
				t.Errorf("no lean GetObject, want one to %s", tc.want)
			case b.lean.base.String() != tc.want || b.lean.name != tc.signName || b.lean.region != tc.cfg.Region:
				t.Errorf("lean GetObject to %s, signed for %s in %s; want %s, %s in %s",
					b.lean.base.String(), b.lean.name, b.lean.region, tc.want, tc.signName, tc.cfg.Region)
			}
		})
	}
}

// TestLeanGetAnswersAsTheSDK sends the same GetObjects through the lean path and the SDK's and
// compares what the caller reads: the metadata of a found object and the errors' codes and
// statuses, which translate and the retryer go by.
func TestLeanGetAnswersAsTheSDK(t *testing.T) {
	f := newFake(t, "", map[string][]byte{"a.png": []byte("0123456789")})
	b := newTestBucket(t, testConfig(f.srv.URL))
	ctx := context.Background()
	for _, in := range []*s3.GetObjectInput{
		{Key: aws.String("a.png")},
		{Key: aws.String("a.png"), Range: aws.String("bytes=2-5")},
		{Key: aws.String("missing.png")},
		{Key: aws.String("a.png"), Range: aws.String("bytes=50-60")},
	} {
		in.Bucket = aws.String(testBucket)
		lean, leanErr := b.lean.getObject(ctx, in)
		sdk, sdkErr := b.client.GetObject(ctx, in)
		name := aws.ToString(in.Key) + " " + aws.ToString(in.Range)
		if (leanErr == nil) != (sdkErr == nil) {
			t.Fatalf("%s: lean error %v, SDK error %v", name, leanErr, sdkErr)
		}
		if leanErr != nil {
			w := newWatchdog(ctx, time.Minute)
			leanT, sdkT := translate(ctx, w, leanErr), translate(ctx, w, sdkErr)
			w.release()
			if errorCode(leanErr) != errorCode(sdkErr) || !errors.Is(leanT, sdkT) {
				t.Errorf("%s: lean error %v (code %q), SDK error %v (code %q)", name, leanErr, errorCode(leanErr), sdkErr, errorCode(sdkErr))
			}
			continue
		}
		origintest.ReadAll(t, lean.Body)
		origintest.ReadAll(t, sdk.Body)
		for _, field := range []struct {
			name      string
			lean, sdk *string
		}{
			{"Content-Type", lean.ContentType, sdk.ContentType},
			{"Content-Range", lean.ContentRange, sdk.ContentRange},
			{"ETag", lean.ETag, sdk.ETag},
		} {
			if aws.ToString(field.lean) != aws.ToString(field.sdk) {
				t.Errorf("%s: %s %q, the SDK's %q", name, field.name, aws.ToString(field.lean), aws.ToString(field.sdk))
			}
		}
		if aws.ToInt64(lean.ContentLength) != aws.ToInt64(sdk.ContentLength) || !aws.ToTime(lean.LastModified).Equal(aws.ToTime(sdk.LastModified)) {
			t.Errorf("%s: length %d modified %v, the SDK's %d %v", name, aws.ToInt64(lean.ContentLength),
				aws.ToTime(lean.LastModified), aws.ToInt64(sdk.ContentLength), aws.ToTime(sdk.LastModified))
		}
	}
}
