package fielderr_test

import (
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"testing"

	"github.com/fedicache/fedicache/origin/fielderr"
)

func TestError(t *testing.T) {
	for _, tc := range []struct {
		name    string
		err     *fielderr.Error
		msg     string // Error()
		keyed   string // Message with the keys of keys
		related []string
	}{
		{"plain", &fielderr.Error{Pkg: "s3", Field: "Config.Bucket", Problem: "is empty",
			Fix: "set the bucket's name", Example: "mastodon-media"},
			"s3: Config.Bucket is empty: set the bucket's name, e.g. mastodon-media",
			"s3.bucket is empty: set the bucket's name",
			[]string{"Config.Bucket"}},
		{"value and another field", &fielderr.Error{Pkg: "s3", Field: "Config.Bucket", Value: `"a/b"`,
			Problem: "is not a bucket name", Fix: "set only the name, and a path in {Config.Prefix}"},
			`s3: Config.Bucket "a/b" is not a bucket name: set only the name, and a path in Config.Prefix`,
			`s3.bucket "a/b" is not a bucket name: set only the name, and a path in s3.prefix`,
			[]string{"Config.Bucket", "Config.Prefix"}},
		{"cause", &fielderr.Error{Pkg: "disk", Field: "Config.Dir", Value: `"/x"`, Problem: "cannot be created",
			Fix: "set a directory the process may write", Err: fs.ErrPermission},
			`disk: Config.Dir "/x" cannot be created: permission denied: set a directory the process may write`,
			`s3.dir "/x" cannot be created: permission denied: set a directory the process may write`,
			[]string{"Config.Dir"}},
		{"a value in braces is not a field", &fielderr.Error{Pkg: "s3", Field: "Config.Region", Value: `"{Config.Bucket}"`,
			Problem: "is not a region name"},
			`s3: Config.Region "{Config.Bucket}" is not a region name`,
			`s3.region "{Config.Bucket}" is not a region name`,
			[]string{"Config.Region"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.err.Error(); got != tc.msg {
				t.Errorf("Error() = %q, want %q", got, tc.msg)
			}
			key := func(f string) string { return "s3." + strings.ToLower(strings.TrimPrefix(f, "Config.")) }
			if got := tc.err.Message(key); got != tc.keyed {
				t.Errorf("Message(key) = %q, want %q", got, tc.keyed)
			}
			if got := tc.err.Fields(); !slices.Equal(got, tc.related) {
				t.Errorf("Fields() = %q, want %q", got, tc.related)
			}
		})
	}
}

func TestErrorsAs(t *testing.T) {
	err := fmt.Errorf("bucket: %w", &fielderr.Error{Pkg: "disk", Field: "Config.Dir", Err: fs.ErrPermission})
	var fe *fielderr.Error
	if !errors.As(err, &fe) || fe.Field != "Config.Dir" {
		t.Fatalf("errors.As(%v) found %v", err, fe)
	}
	if !errors.Is(err, fs.ErrPermission) {
		t.Errorf("errors.Is(%v, fs.ErrPermission) = false: the cause is lost", err)
	}
}
