package origintest

// The FakeBucket's object ACLs and its refusal of unsigned requests.

import (
	"cmp"
	"encoding/xml"
	"io"
	"net/http"
	"strings"
)

// SetACL sets the canned ACL of the bucket key key ("public-read", "private").
func (b *FakeBucket) SetACL(key, acl string) {
	b.mu.Lock()
	b.acls[key] = acl
	b.mu.Unlock()
}

// RequireSignatures makes the bucket, while on, answer unsigned requests (without an
// "Authorization: AWS4-HMAC-SHA256 ..." header or an X-Amz-Signature query parameter) as AWS
// answers the public for a private bucket whose objects carry ACLs: a GET or HEAD of an object
// whose canned ACL is public-read is served as usual; a GET or HEAD of any other object, or of a
// key that does not exist, and every other request (lists, HeadBucket, writes, deletes, ACL
// requests) get 403 AccessDenied (with an XML error body, none for a HEAD). Signed requests are
// answered as before, and every request is counted as before.
func (b *FakeBucket) RequireSignatures(on bool) {
	b.mu.Lock()
	b.sigOnly = on
	b.mu.Unlock()
}

// signedRequest reports whether r carries an AWS Signature Version 4, in its headers or its query.
func signedRequest(r *http.Request) bool {
	return strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ") || r.URL.Query().Has("X-Amz-Signature")
}

// publicReadLocked reports whether r reads an object that exists and whose canned ACL is
// public-read. The caller holds b.mu.
func (b *FakeBucket) publicReadLocked(r *http.Request, key string) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead || b.acls[key] != "public-read" {
		return false
	}
	_, err := b.backend.HeadObject(BucketName, key)
	return err == nil
}

// accessDenied answers r 403 AccessDenied, as S3 refuses a request.
// signatureMismatch answers r, whose signature err says is wrong, as S3 does: 403
// SignatureDoesNotMatch, with the reason in the message.
func signatureMismatch(w http.ResponseWriter, r *http.Request, err error) {
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusForbidden)
		return
	}
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(http.StatusForbidden)
	var msg strings.Builder
	_ = xml.EscapeText(&msg, []byte(err.Error()))
	_, _ = io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?>`+
		`<Error><Code>SignatureDoesNotMatch</Code><Message>`+msg.String()+`</Message></Error>`)
}

func accessDenied(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusForbidden)
		return
	}
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(http.StatusForbidden)
	_, _ = io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?>`+
		`<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>`)
}

// NoACLs makes ACL requests answer 501 NotImplemented, as services without ACLs do.
func (b *FakeBucket) NoACLs(on bool) {
	b.mu.Lock()
	b.noACLs = on
	b.mu.Unlock()
}

// serveACL answers GetObjectAcl, PutObjectAcl and GetBucketAcl as S3 documents them.
func (b *FakeBucket) serveACL(w http.ResponseWriter, r *http.Request, key string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.noACLs {
		http.Error(w, "<Error><Code>NotImplemented</Code></Error>", http.StatusNotImplemented)
		return
	}
	if r.Method == http.MethodPut {
		b.acls[key] = cmp.Or(r.Header.Get("X-Amz-Acl"), "private")
		return
	}
	acl, ok := b.acls[key]
	if !ok && key != "" && key != "/"+BucketName {
		if _, err := b.backend.HeadObject(BucketName, key); err != nil {
			http.Error(w, "<Error><Code>NoSuchKey</Code></Error>", http.StatusNotFound)
			return
		}
	}
	grants := `<Grant><Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="CanonicalUser"><ID>owner</ID></Grantee><Permission>FULL_CONTROL</Permission></Grant>`
	if acl == "public-read" {
		grants += `<Grant><Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="Group"><URI>http://acs.amazonaws.com/groups/global/AllUsers</URI></Grantee><Permission>READ</Permission></Grant>`
	}
	w.Header().Set("Content-Type", "application/xml")
	_, _ = io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><AccessControlPolicy xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Owner><ID>owner</ID></Owner><AccessControlList>`+grants+`</AccessControlList></AccessControlPolicy>`)
}
