package config

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/fedicache/fedicache/backfill"
	"github.com/fedicache/fedicache/origin/fielderr"
	"github.com/fedicache/fedicache/origin/s3"
)

func TestKeyedFieldErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want []string // the problems, in order
	}{
		{"a key", s3.Config{}.Validate(),
			[]string{"s3.bucket is empty: set the bucket's name, e.g. s3.bucket: mastodon-media"}},
		{"another field in the text", s3.Config{Bucket: "b", SecretAccessKey: "s"}.Validate(),
			[]string{"s3.access_key_id is empty while s3.secret_access_key is set: set both, or neither to use the AWS credential chain"}},
		{"a flag", backfill.Config{Exclude: []string{"[x"}}.Validate(),
			[]string{`--exclude "[x" is not a glob: ` + path.ErrBadPattern.Error() + ": write it as path.Match reads it, e.g. --exclude '*.mp4'"}},
		{"no setting", s3.Config{Bucket: "b", MaxAttempts: -1}.Validate(),
			[]string{"s3.Config.MaxAttempts -1 is negative: set a count, or 0 for the default of 3, e.g. 10 " +
				"(no setting sets s3.Config.MaxAttempts: fedicache filled it in, which is a fault to report)"}},
		{"wrapped", fmt.Errorf("bucket: %w", s3.Config{Bucket: "b", Timeout: -1}.Validate()),
			[]string{"bucket: s3.timeout -1ns is negative: set a positive duration, e.g. s3.timeout: 30s"}},
		{"joined", errors.Join(s3.Config{}.Validate(), errors.New("two\nlines")),
			[]string{"s3.bucket is empty: set the bucket's name, e.g. s3.bucket: mastodon-media", "two", "lines"}},
		{"not a field error", errors.New("the bucket is down"), []string{"the bucket is down"}},
		{"none", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := problemsOf(tc.err); !slices.Equal(got, tc.want) {
				t.Errorf("problemsOf(%v) =\n%q\nwant\n%q", tc.err, got, tc.want)
			}
		})
	}
	// What keyed returns is still the library's error underneath.
	err := Keyed(fmt.Errorf("bucket: %w", s3.Config{}.Validate()))
	var fe *fielderr.Error
	if !errors.As(err, &fe) || fe.Field != "Config.Bucket" || !strings.HasPrefix(err.Error(), "bucket: s3.bucket ") {
		t.Errorf("keyed: %v, want the s3.bucket message over the *fielderr.Error", err)
	}
	if ce := ErrorOf(s3.Config{}.Validate()); !strings.Contains(ce.Error(), "s3.bucket is empty") {
		t.Errorf("ErrorOf: %v", ce)
	}
}
