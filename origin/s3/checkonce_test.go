package s3

import (
	"context"
	"testing"

	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/middleware"
)

// TestBodyCheckedOnce: a whole-object GetObject of the Bucket's client runs without the SDK's
// own check of response checksums (checkedBody makes it), so that a body is hashed once.
func TestBodyCheckedOnce(t *testing.T) {
	f := newFake(t, "", map[string][]byte{"a.png": []byte("abc")})
	b := newTestBucket(t, testConfig(f.srv.URL))
	var inStack, looked bool
	_, err := b.client.GetObject(context.Background(), &awss3.GetObjectInput{
		Bucket: &b.bucket, Key: new("a.png"), ChecksumMode: types.ChecksumModeEnabled,
	}, func(o *awss3.Options) {
		o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error {
			_, inStack = s.Deserialize.Get(sdkChecksumCheck)
			looked = true
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if !looked || inStack {
		t.Errorf("the SDK's checksum check is in GetObject's stack (looked: %v): bodies are hashed twice", looked)
	}
}
