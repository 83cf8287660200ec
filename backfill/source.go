package backfill

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/fedicache/fedicache/origin"
)

// Source is an old store the backfill copies from: the old volume (NewVolumeSource) or an old
// bucket (NewBucketSource).
//
// It has a method more than the house's usual three because the cheap facts (key, size) come
// from one listing, while the costly one (an object's ACL, a request per object in a bucket)
// must be asked only of the objects that are to be copied, which Open does.
type Source interface {
	// Name names the source in progress, logs and metrics ("volume", "old-bucket").
	Name() string
	// Walk calls fn for every object in the byte order of keys (the order of a bucket's
	// listing), hidden ones included, and stops at fn's first error, which it returns.
	Walk(ctx context.Context, fn func(Item) error) error
	// Open opens it for copying, with its ACL and its stored headers; an Item of Size -1 (a
	// key of the queue, not walked) opens whatever the key holds now. It fails with an error
	// wrapping ErrChanged when the object is gone or differs from the walked Item.
	Open(ctx context.Context, it Item) (*Object, error)
}

// Item is one object of a source's walk.
type Item struct {
	Key  string
	Size int64
	// ETag is the entity tag a bucket lists the object with ("" for a volume's files).
	ETag string

	info     fs.FileInfo // a volume's file as walked
	aclKnown bool        // the walk tells the ACL (a volume's mode), and private says it
	private  bool
}

// Object is an object of a source opened for copying.
type Object struct {
	// Size and ETag are the object's now ("" ETag for a volume's file).
	Size int64
	ETag string
	// ACL is origin.ACLPublicRead or origin.ACLPrivate (a volume's hidden file); "" when the
	// store has no ACLs (origin.ErrNoACLs).
	ACL string
	// Headers are the Content-Type and Cache-Control it was stored with, empty where unknown
	// (a volume, a bucket that is no origin.HeadersReader).
	Headers origin.ObjectHeaders
	// Body reads its bytes [0, Size) from any offset; nothing is read before its first Read or
	// ReadAt.
	Body origin.Body

	file   *os.File      // a volume's file: reads are cheap, and it may be read twice
	info   fs.FileInfo   // a volume's file as opened
	bucket origin.Origin // an old bucket's client: a destination may copy from it itself
	// headers, when set, reads Headers (and checks the object is still the walked one) before
	// the object's bytes are copied: an old bucket's HEAD, which a server-side copy does without
	// (the service keeps the source's headers).
	headers func(context.Context) error
	close   func() error
	closed  bool
	err     error // close's
}

// Close releases the object. For a volume's file it reports ErrChanged when the file changed
// since it was opened (a file rewritten while it was read). Closing again returns the same.
func (o *Object) Close() error {
	if o.close != nil && !o.closed {
		o.closed, o.err = true, o.close()
	}
	return o.err
}

// ErrChanged means an object changed or vanished between the walk and its copy.
var ErrChanged = errors.New("the object changed or vanished while it was copied")

// errChanged is ErrChanged, under the name the copier has always used.
var errChanged = ErrChanged

// volumeSource is the old volume as a Source.
type volumeSource struct {
	name string
	vol  Volume
}

// NewVolumeSource returns vol as a Source named name ("volume" when empty): its walk, each
// hidden file (origin.Hidden: mode 0600) with the private ACL and every other without one (the
// copy gives it Config.ACL), and no stored headers (the copy derives them).
func NewVolumeSource(name string, vol Volume) Source {
	if name == "" {
		name = string(origin.SourceVolume)
	}
	return &volumeSource{name: name, vol: vol}
}

func (s *volumeSource) Name() string { return s.name }

func (s *volumeSource) Walk(ctx context.Context, fn func(Item) error) error {
	return s.vol.Walk(ctx, func(key string, info fs.FileInfo) error {
		return fn(Item{Key: key, Size: info.Size(), info: info, aclKnown: true, private: origin.Hidden(info.Mode())})
	})
}

func (s *volumeSource) Open(ctx context.Context, it Item) (*Object, error) {
	f, info, err := s.vol.OpenFile(it.Key)
	if err != nil {
		if errors.Is(err, origin.ErrNotFound) {
			return nil, errChanged
		}
		return nil, fmt.Errorf("open: %w", err)
	}
	if it.info != nil && !same(info, it.info) || it.Size >= 0 && info.Size() != it.Size {
		f.Close()
		return nil, errChanged
	}
	o := &Object{Size: info.Size(), Body: io.NewSectionReader(f, 0, info.Size()), file: f, info: info}
	if origin.Hidden(info.Mode()) {
		o.ACL = origin.ACLPrivate
	}
	o.close = func() error {
		after, err := f.Stat()
		f.Close()
		if err != nil || !same(after, info) {
			return errChanged
		}
		return nil
	}
	return o, nil
}

// same reports whether two stats describe the same unchanged file.
func same(a, b fs.FileInfo) bool {
	return a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

// SourceBucket is what the backfill reads of an old bucket: its listing and its objects; it
// also uses origin.ACLReader and origin.HeadersReader when the bucket has them.
type SourceBucket interface {
	origin.Lister
	origin.Origin
}

// bucketSource is an old bucket as a Source.
type bucketSource struct {
	name   string
	bucket SourceBucket
}

// NewBucketSource returns the old bucket b as a Source named name ("bucket" when empty): its
// listing; each object's ACL read (origin.ACLReader) only when the object is to be copied, none
// when b cannot say or has no ACLs (origin.ErrNoACLs); its stored Content-Type and
// Cache-Control when b is an origin.HeadersReader (a HEAD per copied object); and its bytes by
// ranged GETs as the copy reads them, never held whole.
func NewBucketSource(name string, b SourceBucket) Source {
	if name == "" {
		name = string(origin.SourceBucket)
	}
	return &bucketSource{name: name, bucket: b}
}

func (s *bucketSource) Name() string { return s.name }

func (s *bucketSource) Walk(ctx context.Context, fn func(Item) error) error {
	return s.bucket.List(ctx, "", func(o origin.Object) error {
		return fn(Item{Key: o.Key, Size: o.Size, ETag: o.ETag})
	})
}

func (s *bucketSource) Open(ctx context.Context, it Item) (*Object, error) {
	o := &Object{Size: it.Size, ETag: it.ETag, bucket: s.bucket}
	if r, ok := s.bucket.(origin.ACLReader); ok {
		acl, err := r.ObjectACL(ctx, it.Key)
		switch {
		case errors.Is(err, origin.ErrNoACLs):
		case errors.Is(err, origin.ErrNotFound):
			return nil, errChanged
		case err != nil:
			return nil, fmt.Errorf("acl: %w", err)
		default:
			o.ACL = acl
		}
	}
	var m origin.Meta
	var err error
	h, isHeadersReader := s.bucket.(origin.HeadersReader)
	if isHeadersReader && it.Size >= 0 {
		// A walked object: its size and ETag are the listing's; its headers are read when it
		// is copied through fedicache, not when the service copies it.
		o.headers = func(ctx context.Context) error {
			m, hd, err := h.ObjectHeaders(ctx, it.Key)
			switch {
			case errors.Is(err, origin.ErrNotFound):
				return errChanged
			case err != nil:
				return fmt.Errorf("head: %w", err)
			case m.Size != it.Size, it.ETag != "" && m.ETag != "" && m.ETag != it.ETag:
				return errChanged
			}
			o.Headers = hd
			return nil
		}
		m = origin.Meta{Size: it.Size, ETag: it.ETag}
	} else if isHeadersReader {
		m, o.Headers, err = h.ObjectHeaders(ctx, it.Key)
	} else if it.Size < 0 {
		m, err = s.bucket.Stat(ctx, it.Key)
	} else {
		m = origin.Meta{Size: it.Size, ETag: it.ETag}
	}
	switch {
	case errors.Is(err, origin.ErrNotFound):
		return nil, errChanged
	case err != nil:
		return nil, fmt.Errorf("head: %w", err)
	case it.Size >= 0 && m.Size != it.Size, it.ETag != "" && m.ETag != "" && m.ETag != it.ETag:
		return nil, errChanged
	}
	o.Size, o.ETag = m.Size, m.ETag
	rr := newRangeReader(ctx, s.bucket, it.Key, o.Size, o.ETag)
	o.Body, o.close = rr, rr.Close
	return o, nil
}
