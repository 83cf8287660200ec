package s3

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/fedicache/fedicache/origin"
)

// allUsers is the grantee S3 names for everyone, anonymous requests included.
const allUsers = "http://acs.amazonaws.com/groups/global/AllUsers"

// aclCheck decides whether objects are hidden by their ACL, when Config.RequirePublicRead asks.
type aclCheck struct {
	on          bool
	unsupported atomic.Bool // the service has no ACLs: the check is off
}

// checkPublic returns origin.ErrHidden when key's ACL grants the public no read. It asks the bucket
// once per call (a fill or a revalidation, never a cache hit).
func (b *Bucket) checkPublic(ctx context.Context, key string) error {
	if !b.acl.on || b.acl.unsupported.Load() {
		return nil
	}
	start := time.Now()
	w := newWatchdog(ctx, b.timeout)
	defer w.release()
	out, err := b.client.GetObjectAcl(w.ctx, &s3.GetObjectAclInput{Bucket: aws.String(b.bucket), Key: aws.String(b.Key(key))})
	if err != nil {
		err = translate(ctx, w, err)
		if aclsUnsupported(err) {
			b.acl.unsupported.Store(true)
			return nil
		}
		err = fmt.Errorf("s3: acl of %q: %w", key, err)
	}
	b.observed("GetObjectAcl", start, err)
	if err != nil {
		return err
	}
	if !publicRead(out.Grants) {
		return fmt.Errorf("s3: %q has no public read in its ACL: %w", key, origin.ErrHidden)
	}
	return nil
}

// publicRead reports whether grants let everyone read.
func publicRead(grants []types.Grant) bool {
	for _, g := range grants {
		if g.Grantee == nil || g.Grantee.Type != types.TypeGroup || aws.ToString(g.Grantee.URI) != allUsers {
			continue
		}
		if g.Permission == types.PermissionRead || g.Permission == types.PermissionFullControl {
			return true
		}
	}
	return false
}

// aclsUnsupported reports whether err says the service has no ACLs (Cloudflare R2 and others
// answer NotImplemented; AWS buckets with ACLs disabled answer AccessControlListNotSupported).
func aclsUnsupported(err error) bool {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode() {
		case "NotImplemented", "AccessControlListNotSupported", "MethodNotAllowed", "UnsupportedOperation":
			return true
		}
	}
	var withStatus interface{ HTTPStatusCode() int }
	return errors.As(err, &withStatus) && withStatus.HTTPStatusCode() == http.StatusNotImplemented
}

// CheckACLs asks the bucket for its ACL once, to learn whether the service has ACLs at all. It
// returns false (and turns the per-object check off) when it has none; the caller says so once.
func (b *Bucket) CheckACLs(ctx context.Context) (bool, error) {
	if !b.acl.on {
		return false, nil
	}
	w := newWatchdog(ctx, b.timeout)
	defer w.release()
	_, err := b.client.GetBucketAcl(w.ctx, &s3.GetBucketAclInput{Bucket: aws.String(b.bucket)})
	if err != nil {
		err = translate(ctx, w, err)
		if aclsUnsupported(err) {
			b.acl.unsupported.Store(true)
			return false, nil
		}
		return true, fmt.Errorf("s3: acl of the bucket: %w", err)
	}
	return true, nil
}
