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
	if err != nil && ctx.Err() != nil {
		return ctx.Err() // abandoned: not a failure of the bucket's
	}
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

// pendingACL is an ACL check under way beside the request it decides.
type pendingACL struct {
	done   chan error // nil: no check was needed
	cancel context.CancelFunc
}

// checkPublicAsync starts checkPublic of key alongside the caller's own request.
func (b *Bucket) checkPublicAsync(ctx context.Context, key string) pendingACL {
	if !b.acl.on || b.acl.unsupported.Load() {
		return pendingACL{}
	}
	actx, cancel := context.WithCancel(ctx)
	p := pendingACL{done: make(chan error, 1), cancel: cancel}
	go func() { p.done <- b.checkPublic(actx, key) }()
	return p
}

// wait returns the check's verdict: nil when the object may be served.
func (p pendingACL) wait() error {
	if p.done == nil {
		return nil
	}
	defer p.cancel()
	return <-p.done
}

// abandon stops a check whose answer is no longer needed (the request it decides failed) and
// waits until it has ended.
func (p pendingACL) abandon() {
	if p.done == nil {
		return
	}
	p.cancel()
	<-p.done
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

// ACLStatus is what a Bucket knows of the ACL check Config.RequirePublicRead asks for, for the
// start log.
type ACLStatus int

// The ACL statuses of a Bucket.
const (
	// ACLCheckOff: no object is hidden by its ACL (RequirePublicRead is false, or Anonymous is
	// set and the bucket decides).
	ACLCheckOff ACLStatus = iota
	// ACLCheckOn: the service has ACLs, and every Get, Stat and Validate reads the object's.
	ACLCheckOn
	// ACLNone: the check is asked for but the service said it has no ACLs, so it is off.
	ACLNone
)

// String returns a short phrase for the start log.
func (s ACLStatus) String() string {
	switch s {
	case ACLCheckOff:
		return "ACL check off"
	case ACLCheckOn:
		return "ACL check on"
	case ACLNone:
		return "no ACLs"
	}
	return fmt.Sprintf("ACLStatus(%d)", int(s))
}

// ACLStatus says whether objects are hidden by their ACL. When the check is on it asks the
// bucket for its ACL once, to learn whether the service has ACLs at all, and turns the
// per-object check off when it has none (ACLNone). When that request fails it returns
// ACLCheckOn, as the check stays on, with the error.
func (b *Bucket) ACLStatus(ctx context.Context) (ACLStatus, error) {
	if !b.acl.on {
		return ACLCheckOff, nil
	}
	w := newWatchdog(ctx, b.timeout)
	defer w.release()
	_, err := b.client.GetBucketAcl(w.ctx, &s3.GetBucketAclInput{Bucket: aws.String(b.bucket)})
	if err != nil {
		err = translate(ctx, w, err)
		if aclsUnsupported(err) {
			b.acl.unsupported.Store(true)
			return ACLNone, nil
		}
		return ACLCheckOn, fmt.Errorf("s3: acl of the bucket: %w", err)
	}
	return ACLCheckOn, nil
}

// CheckACLs is ACLStatus reduced to whether the check is on: it returns false when the check is
// off, either because it was not asked for (or Anonymous is set) or because the service has no
// ACLs. ACLStatus tells the two apart.
func (b *Bucket) CheckACLs(ctx context.Context) (bool, error) {
	s, err := b.ACLStatus(ctx)
	return s == ACLCheckOn, err
}
