package s3

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/fedicache/fedicache/origin"
)

// A backfill lists the whole bucket, and the SDK's ListObjectsV2 spent more CPU reading the
// pages (its XML deserializer, token by token, a pointer and a string per field) than the rest
// of the merge: some 17µs a key. The lean ListObjectsV2 sends the request as leanGet sends a
// GetObject (the same URL, signature, HTTP client and error types; see lean.go), with the
// retryer of lists and writes and under the request's progressWatch as the SDK's is, and reads
// each page with a byte scanner (listParser) into buffers that serve every page of one List.
// It asks for encoding-type=url, so that keys XML cannot carry (control characters) arrive
// whole. Where newLeanGet stands aside, the SDK's ListObjectsV2 stays in use (listSDK).

// listBodyLimit bounds the body of one page. A page of 1000 keys is some 300 KB; 1000 keys of
// 1024 bytes, S3's longest, each byte URL-escaped, would make some 3 MB.
const listBodyLimit = 16 << 20

// listClient returns the lean client of b's lists, which sends as writer does: b.lean when it
// is that one, else one made for the signed client of an anonymous bucket. It returns nil
// where the SDK's ListObjectsV2 must be used.
func (b *Bucket) listClient(ctx context.Context) *leanGet {
	if b.signed == nil || b.signed == b.client {
		return b.lean
	}
	return newLeanGet(ctx, b.signed, b.bucket, false)
}

// listLean is List through the lean ListObjectsV2 of l.
func (b *Bucket) listLean(ctx context.Context, l *leanGet, c *listCursor, fn func(origin.Object) error) error {
	s := &leanListing{l: l, retryer: b.writes.retryer, query: url.Values{
		"list-type":     {"2"},
		"max-keys":      {strconv.Itoa(listPageSize)},
		"encoding-type": {"url"},
	}}
	if b.prefix != "" {
		s.query.Set("prefix", b.prefix)
	}
	if c.startAfter != "" {
		s.query.Set("start-after", c.startAfter)
	}
	for {
		page, err := send(ctx, b, "ListObjectsV2", false, s.fetch)
		if err != nil {
			return fmt.Errorf("s3: list: %w", err)
		}
		for _, o := range page.objects {
			if err := c.pass(o.key, o.size, o.etag, fn); err != nil {
				return err
			}
		}
		if err := c.more(page.truncated, page.next); err != nil {
			return err
		}
		if !page.truncated {
			return nil
		}
		s.query.Set("continuation-token", page.next)
	}
}

// leanListing is one List through the lean ListObjectsV2: the query of its next page and the
// buffers every page is read into.
type leanListing struct {
	l       *leanGet
	retryer aws.Retryer // the retryer of lists and writes, not l's (that of media reads)
	query   url.Values
	body    []byte
	parser  listParser
}

// fetch sends the request of the next page under p, retried as s.retryer says, and returns
// the page, valid until the next fetch.
func (s *leanListing) fetch(ctx context.Context, p *progressWatch) (*listPage, error) {
	var page *listPage
	err := retryAttempts(ctx, s.retryer, func(attempt, attempts int) error {
		var err error
		page, err = s.attempt(ctx, p, attempt, attempts)
		return err
	})
	return page, err
}

// attempt sends the request of the next page once, as attempt of attempts, and reads the page.
func (s *leanListing) attempt(ctx context.Context, p *progressWatch, attempt, attempts int) (*listPage, error) {
	p.attemptStarted()
	defer p.attemptEnded()
	req, err := s.l.listRequest(ctx, s.query)
	if err != nil {
		return nil, err
	}
	req.Header["Amz-Sdk-Request"] = []string{"attempt=" + strconv.Itoa(attempt) + "; max=" + strconv.Itoa(attempts)}
	resp, err := s.l.client.Do(req)
	if err != nil {
		return nil, &smithyhttp.RequestSendError{Err: err}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, responseError(resp)
	}
	body, err := s.read(resp, p)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	page, err := s.parser.parse(body)
	if err != nil {
		// The SDK's type for an answer it could not read, which its retryer does not retry.
		return nil, &smithy.DeserializationError{Err: err}
	}
	return page, nil
}

// read reads resp's body into s.body, refusing one longer than listBodyLimit; each part that
// arrives tells p the bucket is not silent.
func (s *leanListing) read(resp *http.Response, p *progressWatch) ([]byte, error) {
	if resp.ContentLength > listBodyLimit {
		return nil, errPageTooLong
	}
	buf := s.body[:0]
	if n := int(resp.ContentLength); n >= cap(buf) {
		buf = make([]byte, 0, n+1) // room to read the end without growing
	}
	defer func() { s.body = buf[:0] }()
	for {
		if len(buf) == cap(buf) {
			if len(buf) > listBodyLimit {
				return nil, errPageTooLong
			}
			buf = slices.Grow(buf, min(max(len(buf), 64<<10), listBodyLimit+1-len(buf)))
		}
		n, err := resp.Body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if n > 0 {
			p.progressed()
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, &bodyReadError{err: err}
		}
	}
	if len(buf) > listBodyLimit {
		return nil, errPageTooLong
	}
	return buf, nil
}

// errPageTooLong is the error for a page longer than listBodyLimit.
var errPageTooLong = fmt.Errorf("the listing page is longer than %d MiB: refused", listBodyLimit>>20)

// bodyReadError is a page whose body broke off while it was read: a broken connection, which
// the retryer retries as one that broke before the answer (its ConnectionError).
type bodyReadError struct{ err error }

func (e *bodyReadError) Error() string         { return "read the listing page: " + e.err.Error() }
func (e *bodyReadError) Unwrap() error         { return e.err }
func (e *bodyReadError) ConnectionError() bool { return true }

// progressed tells the watch that the bucket sent part of its answer: within an attempt, the
// silence it bounds starts over.
func (p *progressWatch) progressed() {
	p.mu.Lock()
	if p.attempt && !p.inBodyRead {
		p.w.arm()
	}
	p.mu.Unlock()
}

// listRequest builds and signs the GET of the bucket with query: a ListObjectsV2 request, sent
// to the path the SDK sends it to (the bucket's URL, "/" when it has no path).
func (l *leanGet) listRequest(ctx context.Context, query url.Values) (*http.Request, error) {
	u := l.base
	u.RawPath = l.base.EscapedPath()
	if u.Path == "" {
		u.Path, u.RawPath = "/", "/"
	}
	u.RawQuery = query.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("build the listing request: %w", err)
	}
	req.URL.Path, req.URL.RawPath = u.Path, u.RawPath
	h := req.Header
	h["Accept-Encoding"] = []string{"identity"}
	h["User-Agent"] = []string{"fedicache"}
	if err := l.sign(ctx, req); err != nil {
		return nil, fmt.Errorf("sign the listing request: %w", err)
	}
	return req, nil
}

// sign signs req, a request without a body, as request signs a GetObject (the signer rewrites
// the query in SigV4's canonical encoding). It leaves req unsigned when l is unsigned or the
// credentials are anonymous, as the SDK does.
func (l *leanGet) sign(ctx context.Context, req *http.Request) error {
	if l.signer == nil {
		return nil
	}
	creds, err := l.creds.Retrieve(ctx)
	if err != nil {
		return fmt.Errorf("retrieve credentials: %w", err)
	}
	if !creds.HasKeys() {
		return nil
	}
	req.Header["X-Amz-Content-Sha256"] = []string{emptySHA256}
	return l.signer.SignHTTP(ctx, creds, req, emptySHA256, l.name, l.region, time.Now().UTC())
}

// retryAttempts calls try until it succeeds, fails for good or has made retryer.MaxAttempts
// attempts, waiting between attempts as retryer says, as the SDK's retry middleware does: the
// loop of the lean GetObject and ListObjectsV2.
func retryAttempts(ctx context.Context, retryer aws.Retryer, try func(attempt, attempts int) error) error {
	attempts := retryer.MaxAttempts()
	var releaseRetry func(error) error
	for attempt := 1; ; attempt++ {
		err := try(attempt, attempts)
		if err == nil {
			if releaseRetry != nil {
				releaseRetry(nil) // a retry that worked gives its cost back to the quota
			}
			return nil
		}
		if attempt >= attempts || ctx.Err() != nil || !retryer.IsErrorRetryable(err) {
			return err
		}
		release, quotaErr := retryer.GetRetryToken(ctx, err)
		if quotaErr != nil {
			return err
		}
		releaseRetry = release
		delay, delayErr := retryer.RetryDelay(attempt, err)
		if delayErr != nil {
			return err
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (after %d attempts; last: %v)", ctx.Err(), attempt, err)
		case <-t.C:
		}
	}
}
