package main

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/fedicache/fedicache/origin"
)

// mastodonCacheControl is the Cache-Control Mastodon stores its media with.
const mastodonCacheControl = "public, max-age=315576000, immutable"

// setObjectMeta gives the file name, holding b under key, the extended attributes versitygw's
// posix backend writes for a PutObject of it: the quoted MD5 as its ETag, the Content-Type of
// its extension and Mastodon's Cache-Control.
func setObjectMeta(name, key string, b []byte) error {
	sum := md5.Sum(b)
	for _, a := range [][2]string{
		{"user.etag", `"` + hex.EncodeToString(sum[:]) + `"`},
		{"user.content-type", origin.ContentType(key)},
		{"user.cache-control", mastodonCacheControl},
	} {
		if err := unix.Setxattr(name, a[0], []byte(a[1]), 0); err != nil {
			return fmt.Errorf("set %s of %s: %w", a[0], name, err)
		}
	}
	return nil
}

// place hardlinks every file of dir into to, with setObjectMeta's attributes, so that to, a
// bucket directory of versitygw's posix backend, holds dir's files as uploaded objects.
func place(dir, to string) error {
	var g errgroup.Group
	g.SetLimit(runtime.GOMAXPROCS(0) * 2)
	var files, total int64
	err := filepath.WalkDir(dir, func(name string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, err := filepath.Rel(dir, name)
		if err != nil {
			return err
		}
		files++
		g.Go(func() error {
			dst := filepath.Join(to, rel)
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return err
			}
			if err := os.Link(name, dst); err != nil {
				return err
			}
			b, err := os.ReadFile(dst)
			if err != nil {
				return err
			}
			return setObjectMeta(dst, filepath.ToSlash(rel), b)
		})
		info, err := d.Info()
		if err == nil {
			total += info.Size()
		}
		return err
	})
	if err := errors.Join(err, g.Wait()); err != nil {
		return err
	}
	fmt.Printf("RESULT files=%d bytes=%d\n", files, total)
	return nil
}

// fileMD5 returns the hex MD5 of the file name.
func fileMD5(name string) (string, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := md5.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// aclProbe makes key private with PutObjectAcl and reads its ACL back, and prints whether the
// server keeps object ACLs ("RESULT acls=1") or answers NotImplemented ("RESULT acls=0").
func aclProbe(ctx context.Context, c *s3.Client, bucket, key string) error {
	_, err := c.PutObjectAcl(ctx, &s3.PutObjectAclInput{Bucket: aws.String(bucket), Key: aws.String(key), ACL: types.ObjectCannedACLPrivate})
	if err == nil {
		_, err = c.GetObjectAcl(ctx, &s3.GetObjectAclInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	}
	var coded interface{ ErrorCode() string }
	switch {
	case errors.As(err, &coded) && coded.ErrorCode() == "NotImplemented":
		fmt.Println("RESULT acls=0")
		return nil
	case err != nil:
		return fmt.Errorf("acl of %s: %w", key, err)
	}
	fmt.Println("RESULT acls=1")
	return nil
}
