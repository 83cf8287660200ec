package origin

import (
	"context"
	"errors"
	"io"
	"io/fs"
)

// Object is one entry of a listing.
type Object struct {
	Key  string
	Size int64
	ETag string
}

// Lister is an optional ability: listing the store's objects.
type Lister interface {
	// List calls fn for every object whose key is greater than after ("" for all), in the
	// byte order of keys, and stops at fn's first error, which it returns. It holds one page of
	// the listing at a time, never the whole of it.
	List(ctx context.Context, after string, fn func(Object) error) error
}

// PutOptions are the attributes of an object being stored.
type PutOptions struct {
	// ContentType and CacheControl are stored with the object and sent back with it.
	ContentType, CacheControl string
	// ACL is a canned ACL ("public-read", "private"); empty sends none.
	ACL string
	// ContentMD5 is the body's MD5 (16 bytes), checked by the store; nil sends none.
	ContentMD5 []byte
	// IfNoneMatch makes the write conditional (If-None-Match: *): it fails with ErrExists when
	// the key already holds an object, so two copiers never overwrite each other.
	IfNoneMatch bool
}

// Body is what Put reads: a file or anything else that can be read again from any offset,
// so that a failed request can be retried and a large object sent in parts without buffering.
type Body interface {
	io.Reader
	io.ReaderAt
	io.Seeker
}

// Putter is an optional ability: storing objects.
type Putter interface {
	// Put stores size bytes of body under key. It returns ErrExists when opts.IfNoneMatch is
	// set and the key exists. A failed Put leaves no partial object behind.
	Put(ctx context.Context, key string, body Body, size int64, opts PutOptions) error
}

// Deleter is an optional ability: removing objects.
type Deleter interface {
	// Delete removes key from the store. Deleting a key that does not exist is not an error.
	Delete(ctx context.Context, key string) error
}

// ErrExists means a conditional write found the key already holding an object.
var ErrExists = errors.New("origin: object already exists")

// ErrNoACLs means the store has no object ACLs (Cloudflare R2, some MinIO setups): every object
// is as public as the bucket, and hiding is done otherwise or not at all.
var ErrNoACLs = errors.New("origin: the store has no object ACLs")

// Canned ACLs an ACLReader reports.
const (
	ACLPublicRead = "public-read" // the public may read the object (Mastodon's default)
	ACLPrivate    = "private"     // only the owner may (Mastodon's hidden media)
)

// ACLReader is an optional ability: reading an object's ACL, as a copier carries it over.
type ACLReader interface {
	// ObjectACL returns ACLPublicRead when key's ACL grants the public read, else ACLPrivate;
	// ErrNoACLs when the store has none, ErrNotFound when there is no such key.
	ObjectACL(ctx context.Context, key string) (string, error)
}

// ObjectHeaders is what a copier carries over of an object besides its bytes.
type ObjectHeaders struct {
	ContentType, CacheControl string
}

// HeadersReader is an optional ability: reading the headers an object was stored with.
type HeadersReader interface {
	// ObjectHeaders returns key's stored Content-Type and Cache-Control (empty when it has
	// none), with its Meta; ErrNotFound when there is no such key.
	ObjectHeaders(ctx context.Context, key string) (Meta, ObjectHeaders, error)
}

// ServerCopier is an optional ability of a bucket: copying an object from another bucket of
// the same service itself (S3 CopyObject, or UploadPartCopy for large objects), so that the
// bytes never travel through the copier.
type ServerCopier interface {
	// CanCopyFrom reports whether src is a store this one can copy from server-side: a bucket
	// of the same service (endpoint) reached with the same credentials.
	CanCopyFrom(src Origin) bool
	// CopyFrom stores src's object key (size bytes) under the same key with opts (the ACL,
	// ContentType, CacheControl and IfNoneMatch; ContentMD5 is not used). With neither
	// ContentType nor CacheControl set, the copy keeps the source's, as stored. It returns
	// ErrExists as Put does, and leaves no partial object behind. It returns the copy's entity
	// tag as the service reported it, with its quotes ("" when it reported none).
	CopyFrom(ctx context.Context, src Origin, key string, size int64, opts PutOptions) (etag string, err error)
}

// Hidden reports whether a file of the old volume with this mode is hidden: not readable by
// others. Mastodon hides the media of suspended accounts and reported posts on a local volume by
// making them mode 0600 (a bucket gets the private ACL instead), so that a web server running as
// another user answers 404.
func Hidden(mode fs.FileMode) bool { return mode.Perm()&0o004 == 0 }

// CheckedBody is an optional ability of a body a Get returns: its store checks it, as it is
// read, against a checksum of the whole object, and the Read that reaches the end fails
// (never returning io.EOF) when the bytes differ. A reader that would check the body itself (by
// the MD5 of its ETag) need not when BodyChecked reports true.
type CheckedBody interface {
	BodyChecked() bool
}

// SplicedCheck is an optional ability of a checked body (CheckedBody): its check can go on over
// bytes read from elsewhere, which stand in for the rest of the body (the same object's bytes
// from a ranged request of its own), once the caller stops reading it. Splice returns a writer
// that takes those bytes, in order, and a verify func that reports nil only when the bytes read
// and the bytes written make up the whole body and match its checksum; or nil, nil when the body
// is not checked. After Splice the body is only closed, never read again.
type SplicedCheck interface {
	Splice() (rest io.Writer, verify func() error)
}
