package origintest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
)

// The credentials a FakeBucket checks signatures with (see VerifySigV4): a request signed with
// AccessKeyID must carry a valid signature made with SecretAccessKey. s3test's clients use them.
const (
	AccessKeyID     = "AKIDTEST"
	SecretAccessKey = "secret"
)

// VerifySigV4 checks the AWS Signature Version 4 of r, signed in its Authorization header, as S3
// does: the canonical request is rebuilt from what arrived (the path decoded and encoded again
// once, S3's rule, the query sorted, the signed headers with their values trimmed, the payload
// hash of X-Amz-Content-Sha256), the signing key derived from the secret secrets holds for the
// request's access key, and the signature compared. It is written from the specification, not
// from the SDK's signer, so that a client that signs something other than what it sends (a path
// escaped differently, a header changed after signing) fails here as it would on a real
// service. It returns nil for a valid signature, ErrUnknownAccessKey for an access key secrets
// does not hold, and an error naming the mismatch otherwise.
func VerifySigV4(r *http.Request, secrets map[string]string) error {
	const algorithm = "AWS4-HMAC-SHA256"
	auth, ok := strings.CutPrefix(r.Header.Get("Authorization"), algorithm+" ")
	if !ok {
		return errors.New("no AWS4-HMAC-SHA256 Authorization header")
	}
	fields := map[string]string{}
	for _, part := range strings.Split(auth, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		fields[k] = v
	}
	scope := strings.Split(fields["Credential"], "/")
	if len(scope) != 5 || scope[4] != "aws4_request" {
		return fmt.Errorf("credential %q is not KEY/DATE/REGION/SERVICE/aws4_request", fields["Credential"])
	}
	secret, ok := secrets[scope[0]]
	if !ok {
		return fmt.Errorf("%w %q", ErrUnknownAccessKey, scope[0])
	}
	date := r.Header.Get("X-Amz-Date")
	if !strings.HasPrefix(date, scope[1]) {
		return fmt.Errorf("X-Amz-Date %q is not of the credential's day %q", date, scope[1])
	}
	payload := r.Header.Get("X-Amz-Content-Sha256")
	if payload == "" {
		return errors.New("no X-Amz-Content-Sha256 header")
	}
	signed := strings.Split(fields["SignedHeaders"], ";")
	if !sort.StringsAreSorted(signed) {
		return fmt.Errorf("SignedHeaders %q not sorted", fields["SignedHeaders"])
	}
	var headers strings.Builder
	hasHost := false
	for _, name := range signed {
		var values []string
		if name == "host" {
			hasHost, values = true, []string{r.Host}
		} else {
			values = r.Header.Values(name)
		}
		if len(values) == 0 {
			return fmt.Errorf("signed header %q is not in the request", name)
		}
		for i, v := range values {
			values[i] = strings.Join(strings.Fields(v), " ")
		}
		headers.WriteString(name + ":" + strings.Join(values, ",") + "\n")
	}
	if !hasHost {
		return errors.New("host is not signed")
	}
	for name := range r.Header {
		if lower := strings.ToLower(name); strings.HasPrefix(lower, "x-amz-") && !slices.Contains(signed, lower) {
			return fmt.Errorf("header %s is not signed", name)
		}
	}
	canonical := strings.Join([]string{
		r.Method,
		uriEncode(r.URL.Path, false),
		canonicalQuery(r.URL.Query()),
		headers.String(),
		fields["SignedHeaders"],
		payload,
	}, "\n")
	sum := sha256.Sum256([]byte(canonical))
	toSign := strings.Join([]string{algorithm, date, strings.Join(scope[1:], "/"), hex.EncodeToString(sum[:])}, "\n")
	key := []byte("AWS4" + secret)
	for _, s := range scope[1:] {
		key = hmacSHA256(key, s)
	}
	want := hex.EncodeToString(hmacSHA256(key, toSign))
	if !hmac.Equal([]byte(want), []byte(fields["Signature"])) {
		return fmt.Errorf("signature does not match; the canonical request was:\n%s", canonical)
	}
	return nil
}

// ErrUnknownAccessKey is VerifySigV4's error for a request signed with an access key it was not
// given the secret of.
var ErrUnknownAccessKey = errors.New("unknown access key")

func hmacSHA256(key []byte, data string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(data))
	return h.Sum(nil)
}

// canonicalQuery is the query of a canonical request: each name and value encoded, sorted by
// name then value, a name without a value given an empty one.
func canonicalQuery(q url.Values) string {
	var pairs []string
	for name, values := range q {
		for _, v := range values {
			pairs = append(pairs, uriEncode(name, true)+"="+uriEncode(v, true))
		}
	}
	sort.Strings(pairs)
	return strings.Join(pairs, "&")
}

// uriEncode is SigV4's UriEncode: every byte but the unreserved characters (A-Z a-z 0-9 - . _ ~)
// as %XX in upper case, and "/" too when slash is set.
func uriEncode(s string, slash bool) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9',
			c == '-', c == '.', c == '_', c == '~', c == '/' && !slash:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}
