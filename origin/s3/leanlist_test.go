package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/smithy-go"

	"github.com/fedicache/fedicache/origin"
	"github.com/fedicache/fedicache/origin/origintest"
)

// listHead opens a page as AWS S3 does.
const listHead = `<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
	`<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">`

// entry returns a <Contents> as AWS S3 writes it.
func entry(key, etag string, size int) string {
	return `<Contents><Key>` + key + `</Key><LastModified>2024-05-01T12:34:56.000Z</LastModified>` +
		`<ETag>` + etag + `</ETag><ChecksumAlgorithm>CRC64NVME</ChecksumAlgorithm>` +
		`<ChecksumType>FULL_OBJECT</ChecksumType><Size>` + strconv.Itoa(size) + `</Size>` +
		`<StorageClass>STANDARD</StorageClass></Contents>`
}

func parsePage(body string) (*listPage, error) {
	var p listParser
	return p.parse([]byte(body))
}

func TestListParser(t *testing.T) {
	for _, tc := range []struct {
		name      string
		body      string
		want      []listedObject
		truncated bool
		next      string
		err       string // a part of the error, "" for none
	}{
		{
			name: "as AWS S3 answers",
			body: listHead + `<Name>media</Name><Prefix>pre%2F</Prefix><KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys>` +
				`<EncodingType>url</EncodingType><IsTruncated>true</IsTruncated>` +
				entry("pre/a.png", "&quot;0cc175b9c0f1b6a831c399e269772661&quot;", 1) +
				entry("pre/b+c%2Bd%25.png", "&quot;92eb5ffee6ae2fec3ad71c777531578f-2&quot;", 10485760) +
				`<NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>` +
				`<StartAfter>pre%2F</StartAfter></ListBucketResult>`,
			want: []listedObject{
				{"pre/a.png", `"0cc175b9c0f1b6a831c399e269772661"`, 1},
				{"pre/b c+d%.png", `"92eb5ffee6ae2fec3ad71c777531578f-2"`, 10485760},
			},
			truncated: true,
			next:      "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=",
		},
		{
			name: "entities",
			body: listHead + `<IsTruncated>false</IsTruncated>` +
				entry("a&amp;b&lt;c&gt;d&quot;e&apos;f", "&#34;x&#x22;", 1) +
				entry("caf&#233; &#x1F600;&#x9;tab", `"y"`, 2) +
				`</ListBucketResult>`,
			want: []listedObject{{`a&b<c>d"e'f`, `"x"`, 1}, {"café 😀\ttab", `"y"`, 2}},
		},
		{
			name: "URL-encoded keys, EncodingType after them",
			body: listHead + `<IsTruncated>false</IsTruncated>` +
				entry("%C3%A9t%C3%A9+2024/%0D%0A%01.png", `&quot;e&quot;`, 3) +
				entry("plain.png", `"p"`, 4) +
				`<EncodingType>url</EncodingType></ListBucketResult>`,
			want: []listedObject{{"été 2024/\r\n\x01.png", `"e"`, 3}, {"plain.png", `"p"`, 4}},
		},
		{
			name: "without EncodingType, keys are plain text",
			body: listHead + `<IsTruncated>false</IsTruncated>` + entry("a+b%20c.png", `"e"`, 3) + `</ListBucketResult>`,
			want: []listedObject{{"a+b%20c.png", `"e"`, 3}},
		},
		{
			name: "space, any order, unknown and nested elements, comments, CDATA, line ends",
			body: "\xef\xbb\xbf" + `<?xml version="1.0"?>` + "\r\n<!-- a comment -->\n" +
				`<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/" a='x>y/'>` + "\n  " +
				`<Unknown><Deep><Deeper a="1"/>text &amp; <![CDATA[<not/>]]></Deep></Unknown>` + "\n  " +
				`<Contents>` + "\n    " +
				`<Size> 42 </Size>` + "\n    " +
				`<Owner><ID>abc</ID><DisplayName>me</DisplayName></Owner>` + "\n    " +
				`<ETag>"q"</ETag>` + "\n    " +
				`<RestoreStatus><IsRestoreInProgress>false</IsRestoreInProgress></RestoreStatus>` + "\n    " +
				`<!-- between -->` + "\n    " +
				`<Key>a<![CDATA[<b>&amp;]]>c` + "\r\n" + `d</Key >` + "\n  " +
				`</Contents>` + "\n  " +
				`<Contents><Key>e</Key><Size>0</Size><ETag/><Owner/></Contents>` + "\n  " +
				`<IsTruncated>` + "\n false \n" + `</IsTruncated>` + "\n" +
				`</ListBucketResult>` + "\n<!-- after -->\n",
			want: []listedObject{{"a<b>&amp;c\nd", `"q"`, 42}, {"e", "", 0}},
		},
		{
			name: "namespace prefixes",
			body: `<s3:ListBucketResult xmlns:s3="http://s3.amazonaws.com/doc/2006-03-01/"><s3:IsTruncated>false</s3:IsTruncated>` +
				`<s3:Contents><s3:Key>k</s3:Key><s3:Size>1</s3:Size></s3:Contents></s3:ListBucketResult>`,
			want: []listedObject{{"k", "", 1}},
		},
		{
			name: "KeyCount counts CommonPrefixes",
			body: listHead + `<KeyCount>2</KeyCount><IsTruncated>false</IsTruncated>` + entry("a", `"e"`, 1) +
				`<CommonPrefixes><Prefix>b/</Prefix></CommonPrefixes></ListBucketResult>`,
			want: []listedObject{{"a", `"e"`, 1}},
		},
		{
			name:      "IsTruncated without NextContinuationToken is List's to refuse",
			body:      listHead + `<IsTruncated>true</IsTruncated>` + entry("a", `"e"`, 1) + `</ListBucketResult>`,
			want:      []listedObject{{"a", `"e"`, 1}},
			truncated: true,
		},
		{
			name: "out-of-order keys are List's to refuse",
			body: listHead + `<IsTruncated>false</IsTruncated>` + entry("b", `"e"`, 1) + entry("a", `"e"`, 1) + `</ListBucketResult>`,
			want: []listedObject{{"b", `"e"`, 1}, {"a", `"e"`, 1}},
		},
		{
			name: "an empty page",
			body: listHead + `<KeyCount>0</KeyCount><IsTruncated>false</IsTruncated></ListBucketResult>`,
		},

		{name: "KeyCount more than the keys",
			body: listHead + `<KeyCount>3</KeyCount><IsTruncated>false</IsTruncated>` + entry("a", `"e"`, 1) + entry("b", `"e"`, 1) + `</ListBucketResult>`,
			err:  "says <KeyCount>3</KeyCount> and holds 2 keys"},
		{name: "KeyCount fewer than the keys",
			body: listHead + `<IsTruncated>false</IsTruncated>` + entry("a", `"e"`, 1) + entry("b", `"e"`, 1) + `<KeyCount>1</KeyCount></ListBucketResult>`,
			err:  "says <KeyCount>1</KeyCount> and holds 2 keys"},
		{name: "KeyCount not a count",
			body: listHead + `<KeyCount>-1</KeyCount><IsTruncated>false</IsTruncated></ListBucketResult>`,
			err:  "<KeyCount>-1</KeyCount>, not a count"},
		{name: "no IsTruncated",
			body: listHead + entry("a", `"e"`, 1) + `</ListBucketResult>`,
			err:  "no <IsTruncated>"},
		{name: "IsTruncated neither true nor false",
			body: listHead + `<IsTruncated>maybe</IsTruncated></ListBucketResult>`,
			err:  "<IsTruncated>maybe</IsTruncated>"},
		{name: "a Contents without a Key",
			body: listHead + `<IsTruncated>false</IsTruncated><Contents><Size>1</Size></Contents></ListBucketResult>`,
			err:  "without a <Key> or a <Size>"},
		{name: "a Contents without a Size",
			body: listHead + `<IsTruncated>false</IsTruncated><Contents><Key>a</Key></Contents></ListBucketResult>`,
			err:  "without a <Key> or a <Size>"},
		{name: "two Keys",
			body: listHead + `<IsTruncated>false</IsTruncated><Contents><Key>a</Key><Key>b</Key><Size>1</Size></Contents></ListBucketResult>`,
			err:  "two <Key>s"},
		{name: "a bad Size",
			body: listHead + `<IsTruncated>false</IsTruncated><Contents><Key>a</Key><Size>1e3</Size></Contents></ListBucketResult>`,
			err:  "<Size>1e3</Size>, not a count"},
		{name: "an unknown entity",
			body: listHead + `<IsTruncated>false</IsTruncated>` + entry("a&nbsp;b", `"e"`, 1) + `</ListBucketResult>`,
			err:  `unknown entity "&nbsp;"`},
		{name: "a bare ampersand",
			body: listHead + `<IsTruncated>false</IsTruncated>` + entry("a & b", `"e"`, 1) + `</ListBucketResult>`,
			err:  "entity"},
		{name: "a character reference to NUL",
			body: listHead + `<IsTruncated>false</IsTruncated>` + entry("a&#0;", `"e"`, 1) + `</ListBucketResult>`,
			err:  "unknown entity"},
		{name: "a bad URL escape",
			body: listHead + `<EncodingType>url</EncodingType><IsTruncated>false</IsTruncated>` + entry("a%G1", `"e"`, 1) + `</ListBucketResult>`,
			err:  "bad URL escape"},
		{name: "an element in a Key",
			body: listHead + `<IsTruncated>false</IsTruncated>` + entry("a<b/>", `"e"`, 1) + `</ListBucketResult>`,
			err:  "<Key> holds markup"},
		{name: "a mismatched end tag",
			body: listHead + `<IsTruncated>false</IsTruncated><Contents><Key>a</Kez><Size>1</Size></Contents></ListBucketResult>`,
			err:  "closes <Key> with"},
		{name: "text between elements",
			body: listHead + `<IsTruncated>false</IsTruncated><Contents>x<Key>a</Key><Size>1</Size></Contents></ListBucketResult>`,
			err:  "text in <Contents>"},
		{name: "something after the page",
			body: listHead + `<IsTruncated>false</IsTruncated></ListBucketResult><ListBucketResult>`,
			err:  "goes on after"},
		{name: "an S3 error with a 200",
			body: `<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code></Error>`,
			err:  "is a <Error>, not a <ListBucketResult>"},
		{name: "not XML",
			body: `{"Contents": []}`,
			err:  "not XML"},
		{name: "an empty body",
			body: ``,
			err:  "ends early"},
		{name: "elements nested too deep",
			body: listHead + `<IsTruncated>false</IsTruncated>` + strings.Repeat("<a>", 40) + strings.Repeat("</a>", 40) + `</ListBucketResult>`,
			err:  "more than 32 deep"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			page, err := parsePage(tc.body)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want one saying %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if !slices.Equal(page.objects, tc.want) || page.truncated != tc.truncated || page.next != tc.next {
				t.Errorf("page %+v, truncated %v, next %q;\nwant %+v, %v, %q", page.objects, page.truncated, page.next, tc.want, tc.truncated, tc.next)
			}
		})
	}
}

// TestListParserEndsEarly cuts a page at every byte: no part of it reads as a page.
func TestListParserEndsEarly(t *testing.T) {
	body := `<?xml version="1.0" encoding="UTF-8"?><!-- c --><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">` +
		`<KeyCount>2</KeyCount><EncodingType>url</EncodingType><IsTruncated>false</IsTruncated>` +
		entry("a%20b", "&quot;e&quot;", 10) +
		`<Contents><Key>c<![CDATA[d]]></Key><Owner><ID>x</ID></Owner><Size>7</Size></Contents>` +
		`</ListBucketResult>`
	if _, err := parsePage(body); err != nil {
		t.Fatalf("the whole page: %v", err)
	}
	for n := range len(body) {
		if page, err := parsePage(body[:n]); err == nil {
			t.Fatalf("the first %d bytes read as a page of %d keys", n, len(page.objects))
		}
	}
}

// TestListParserReusesItsBuffers reads pages one after the other with one parser: each page
// comes out whole, and the strings of one page do not change when the next is read into the
// same buffers.
func TestListParserReusesItsBuffers(t *testing.T) {
	var p listParser
	var buf []byte
	var kept []listedObject
	for i := range 3 {
		var b strings.Builder
		b.WriteString(listHead + `<IsTruncated>true</IsTruncated><NextContinuationToken>t` + strconv.Itoa(i) + `</NextContinuationToken>`)
		for j := range 100 - i {
			b.WriteString(entry(fmt.Sprintf("p%d/k&amp;%03d", i, j), `"e"`, j))
		}
		b.WriteString(`</ListBucketResult>`)
		buf = append(buf[:0], b.String()...)
		page, err := p.parse(buf)
		if err != nil {
			t.Fatalf("page %d: %v", i, err)
		}
		if len(page.objects) != 100-i || page.next != "t"+strconv.Itoa(i) {
			t.Fatalf("page %d: %d keys, next %q", i, len(page.objects), page.next)
		}
		kept = append(kept, page.objects...)
		clear(buf)
	}
	for i, o := range kept {
		page, j := 0, i
		for j >= 100-page {
			j -= 100 - page
			page++
		}
		if want := fmt.Sprintf("p%d/k&%03d", page, j); o.key != want || o.size != int64(j) || o.etag != `"e"` {
			t.Fatalf("key %d: %+v, want %q", i, o, want)
		}
	}
}

// pageServer is a bucket that answers every request with answer (n counts them from 1), after
// checking its signature when it has one, and keeps the requests.
type pageServer struct {
	srv *httptest.Server

	mu   sync.Mutex
	reqs []*http.Request
}

func newPageServer(t *testing.T, answer func(w http.ResponseWriter, r *http.Request, n int)) *pageServer {
	t.Helper()
	s := &pageServer{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			if err := origintest.VerifySigV4(r, map[string]string{testAccessKeyID: testSecretAccessKey}); err != nil {
				t.Errorf("%s %s: %v", r.Method, r.URL, err)
			}
		}
		s.mu.Lock()
		s.reqs = append(s.reqs, r.Clone(context.Background()))
		n := len(s.reqs)
		s.mu.Unlock()
		answer(w, r, n)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *pageServer) requests() []*http.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.reqs)
}

// writePage answers with page.
func writePage(w http.ResponseWriter, page string) {
	w.Header().Set("Content-Type", "application/xml")
	io.WriteString(w, page)
}

// listAll lists b after after and returns the objects fn saw.
func listAll(b *Bucket, after string) ([]origin.Object, error) {
	var got []origin.Object
	err := b.List(context.Background(), after, func(o origin.Object) error {
		got = append(got, o)
		return nil
	})
	return got, err
}

// TestLeanListPages lists two crafted pages under a prefix, after a key: the query of each
// request, its signature, and the keys decoded.
func TestLeanListPages(t *testing.T) {
	const token = "tok 1/+=&%"
	s := newPageServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		switch r.URL.Query().Get("continuation-token") {
		case "":
			writePage(w, listHead+`<Prefix>pre%2Ffix%2F</Prefix><StartAfter>pre%2Ffix%2Fa</StartAfter><KeyCount>3</KeyCount>`+
				`<EncodingType>url</EncodingType><IsTruncated>true</IsTruncated>`+
				entry("pre/fix/a+b%2Bc.png", "&quot;1&quot;", 1)+
				entry("pre/fix/dir/", "&quot;2&quot;", 0)+
				entry("pre/fix/%C3%A9.png", "&quot;3&quot;", 3)+
				`<NextContinuationToken>`+strings.ReplaceAll(token, "&", "&amp;")+`</NextContinuationToken></ListBucketResult>`)
		case token:
			writePage(w, listHead+`<KeyCount>1</KeyCount><EncodingType>url</EncodingType><IsTruncated>false</IsTruncated>`+
				entry("pre/fix/%F0%9F%98%80.png", "4", 4)+`</ListBucketResult>`)
		default:
			t.Errorf("request for continuation token %q", r.URL.Query().Get("continuation-token"))
			w.WriteHeader(http.StatusBadRequest)
		}
	})
	var ops []string
	cfg := testConfig(s.srv.URL)
	cfg.Prefix = "pre/fix"
	cfg.Observe = func(op string, _ time.Duration, err error) { ops = append(ops, fmt.Sprint(op, " ", err)) }
	b := newTestBucket(t, cfg)
	got, err := listAll(b, "a")
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	want := []origin.Object{{Key: "a b+c.png", Size: 1, ETag: `"1"`}, {Key: "é.png", Size: 3, ETag: `"3"`}, {Key: "😀.png", Size: 4, ETag: `"4"`}}
	if !slices.Equal(got, want) {
		t.Errorf("List gave %+v, want %+v", got, want)
	}
	if want := []string{"ListObjectsV2 <nil>", "ListObjectsV2 <nil>"}; !slices.Equal(ops, want) {
		t.Errorf("observed %q, want %q", ops, want)
	}
	reqs := s.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2", len(reqs))
	}
	for i, r := range reqs {
		q := r.URL.Query()
		wantToken := []string{"", token}[i]
		if r.Method != http.MethodGet || r.URL.Path != "/"+testBucket || q.Get("list-type") != "2" || q.Get("max-keys") != "1000" ||
			q.Get("encoding-type") != "url" || q.Get("prefix") != "pre/fix/" || q.Get("start-after") != "pre/fix/a" ||
			q.Get("continuation-token") != wantToken {
			t.Errorf("request %d: %s %s, want GET /%s with list-type 2, max-keys 1000, encoding-type url, prefix pre/fix/, start-after pre/fix/a, continuation-token %q",
				i+1, r.Method, r.URL, testBucket, wantToken)
		}
		h := r.Header
		if !strings.HasPrefix(h.Get("Authorization"), "AWS4-HMAC-SHA256 Credential="+testAccessKeyID+"/") ||
			h.Get("X-Amz-Content-Sha256") != emptySHA256 || h.Get("X-Amz-Date") == "" {
			t.Errorf("request %d: Authorization %q, X-Amz-Content-Sha256 %q: not signed with SigV4",
				i+1, h.Get("Authorization"), h.Get("X-Amz-Content-Sha256"))
		}
		if h.Get("Amz-Sdk-Invocation-Id") != "" || h.Get("Amz-Sdk-Request") != "attempt=1; max=3" {
			t.Errorf("request %d: amz-sdk-invocation-id %q, amz-sdk-request %q: want the lean ListObjectsV2's first attempt",
				i+1, h.Get("Amz-Sdk-Invocation-Id"), h.Get("Amz-Sdk-Request"))
		}
	}
}

// TestLeanListAnonymous: an anonymous bucket without credentials lists unsigned; with them,
// signed, as its other own requests go.
func TestLeanListAnonymous(t *testing.T) {
	for _, signed := range []bool{false, true} {
		t.Run(fmt.Sprint("signed=", signed), func(t *testing.T) {
			s := newPageServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
				writePage(w, listHead+`<IsTruncated>false</IsTruncated>`+entry("a.png", `"e"`, 1)+`</ListBucketResult>`)
			})
			cfg := testConfig(s.srv.URL)
			cfg.Anonymous = true
			if !signed {
				cfg.AccessKeyID, cfg.SecretAccessKey = "", ""
			}
			b := newTestBucket(t, cfg)
			if (b.signed != nil) != signed || b.listClient(context.Background()) == nil {
				t.Fatalf("signed client %v, lean lists %v: the test shows nothing", b.signed != nil, b.listClient(context.Background()) != nil)
			}
			got, err := listAll(b, "")
			if err != nil || len(got) != 1 || got[0].Key != "a.png" {
				t.Fatalf("List: %+v, %v", got, err)
			}
			r := s.requests()[0]
			auth, sha := r.Header.Get("Authorization"), r.Header.Get("X-Amz-Content-Sha256")
			if signed && (!strings.HasPrefix(auth, "AWS4-HMAC-SHA256 ") || sha != emptySHA256) {
				t.Errorf("Authorization %q, X-Amz-Content-Sha256 %q; want the request signed", auth, sha)
			}
			if !signed && (auth != "" || sha != "") {
				t.Errorf("Authorization %q, X-Amz-Content-Sha256 %q; want an unsigned request", auth, sha)
			}
			if r.Header.Get("Amz-Sdk-Invocation-Id") != "" || r.URL.Query().Get("encoding-type") != "url" {
				t.Errorf("request %s with amz-sdk-invocation-id %q: not the lean ListObjectsV2", r.URL, r.Header.Get("Amz-Sdk-Invocation-Id"))
			}
		})
	}
}

// TestLeanListFailures: the service's errors, with their retries; pages that must not pass.
func TestLeanListFailures(t *testing.T) {
	good := listHead + `<KeyCount>1</KeyCount><IsTruncated>false</IsTruncated>` + entry("a.png", `"e"`, 1) + `</ListBucketResult>`
	s3Error := func(w http.ResponseWriter, status int, code string) {
		w.Header().Set("Content-Type", "application/xml")
		w.Header().Set("X-Amz-Request-Id", "REQ1")
		w.WriteHeader(status)
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+`<Error><Code>%s</Code><Message>from the test</Message><RequestId>REQ1</RequestId></Error>`, code)
	}
	for _, tc := range []struct {
		name     string
		answer   func(w http.ResponseWriter, r *http.Request, n int)
		attempts int
		keys     int    // the keys fn sees
		code     string // the error's code, "" for none
		status   int    // the error's status, 0 for none
		err      string // a part of the error, "" for no error
	}{
		{"403 AccessDenied", func(w http.ResponseWriter, r *http.Request, n int) { s3Error(w, http.StatusForbidden, "AccessDenied") },
			1, 0, "AccessDenied", http.StatusForbidden, "s3: list: "},
		{"500 every time", func(w http.ResponseWriter, r *http.Request, n int) {
			s3Error(w, http.StatusInternalServerError, "InternalError")
		},
			4, 0, "InternalError", http.StatusInternalServerError, "s3: list: "},
		{"500 then the page", func(w http.ResponseWriter, r *http.Request, n int) {
			if n == 1 {
				s3Error(w, http.StatusInternalServerError, "InternalError")
				return
			}
			writePage(w, good)
		}, 2, 1, "", 0, ""},
		{"503 SlowDown without a body, then the page", func(w http.ResponseWriter, r *http.Request, n int) {
			if n == 1 {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			writePage(w, good)
		}, 2, 1, "", 0, ""},
		{"a body cut short, then the page", func(w http.ResponseWriter, r *http.Request, n int) {
			if n == 1 {
				w.Header().Set("Content-Length", strconv.Itoa(len(good)))
				io.WriteString(w, good[:len(good)/2])
				w.(http.Flusher).Flush()
				panic(http.ErrAbortHandler) // the connection breaks
			}
			writePage(w, good)
		}, 2, 1, "", 0, ""},
		{"a body cut short every time", func(w http.ResponseWriter, r *http.Request, n int) {
			w.Header().Set("Content-Length", strconv.Itoa(len(good)))
			io.WriteString(w, good[:len(good)/2])
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		}, 4, 0, "", 0, "read the listing page"},
		{"KeyCount says more than the page holds", func(w http.ResponseWriter, r *http.Request, n int) {
			writePage(w, strings.Replace(good, "<KeyCount>1<", "<KeyCount>2<", 1))
		}, 1, 0, "", 0, "<KeyCount>2</KeyCount> and holds 1 keys"},
		{"a page that ends early", func(w http.ResponseWriter, r *http.Request, n int) {
			writePage(w, strings.TrimSuffix(good, "</ListBucketResult>"))
		}, 1, 0, "", 0, "ends early"},
		{"IsTruncated without a continuation token", func(w http.ResponseWriter, r *http.Request, n int) {
			writePage(w, strings.Replace(good, "<IsTruncated>false<", "<IsTruncated>true<", 1))
		}, 1, 1, "", 0, "without a continuation token"},
		{"out of byte order", func(w http.ResponseWriter, r *http.Request, n int) {
			writePage(w, listHead+`<IsTruncated>false</IsTruncated>`+entry("b.png", `"e"`, 1)+entry("a.png", `"e"`, 1)+`</ListBucketResult>`)
		}, 1, 1, "", 0, "out of byte order"},
		{"a page longer than the limit, said", func(w http.ResponseWriter, r *http.Request, n int) {
			w.Header().Set("Content-Length", strconv.Itoa(listBodyLimit+1))
			w.WriteHeader(http.StatusOK)
			io.WriteString(w, listHead)
		}, 1, 0, "", 0, "longer than 16 MiB"},
		{"a page longer than the limit, found", func(w http.ResponseWriter, r *http.Request, n int) {
			w.Header().Set("Content-Type", "application/xml")
			io.WriteString(w, listHead+`<IsTruncated>false</IsTruncated>`)
			chunk := strings.Repeat(" ", 1<<20)
			for range 17 {
				if _, err := io.WriteString(w, chunk); err != nil {
					return
				}
			}
			io.WriteString(w, `</ListBucketResult>`)
		}, 1, 0, "", 0, "longer than 16 MiB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newPageServer(t, tc.answer)
			cfg := testConfig(s.srv.URL)
			cfg.MaxAttempts = 4
			cfg.MaxBackoff = time.Millisecond
			b := newTestBucket(t, cfg)
			got, err := listAll(b, "")
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("List: %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("List: err %v, want one saying %q", err, tc.err)
			}
			if len(got) != tc.keys {
				t.Errorf("fn saw %d keys, want %d", len(got), tc.keys)
			}
			if n := len(s.requests()); n != tc.attempts {
				t.Errorf("%d attempts, want %d", n, tc.attempts)
			}
			if errorCode(err) != tc.code {
				t.Errorf("error code %q, want %q", errorCode(err), tc.code)
			}
			var withStatus interface{ HTTPStatusCode() int }
			if tc.status != 0 && (!errors.As(err, &withStatus) || withStatus.HTTPStatusCode() != tc.status) {
				t.Errorf("err %v, want one with status %d", err, tc.status)
			}
			var apiErr smithy.APIError
			if tc.code != "" && (!errors.As(err, &apiErr) || apiErr.ErrorMessage() != "from the test") {
				t.Errorf("err %v, want the service's message", err)
			}
			for i, r := range s.requests() {
				if want := fmt.Sprintf("attempt=%d; max=4", i+1); r.Header.Get("Amz-Sdk-Request") != want {
					t.Errorf("attempt %d says %q, want %q", i+1, r.Header.Get("Amz-Sdk-Request"), want)
				}
			}
		})
	}
}

// TestLeanListStall: a listing request the bucket stops answering is cut off after Timeout,
// before its headers or within its body, and not tried again; a page that keeps coming, if
// slowly, is not a stall.
func TestLeanListStall(t *testing.T) {
	page := listHead + `<IsTruncated>false</IsTruncated>` + entry("a.png", `"e"`, 1) + `</ListBucketResult>`
	for _, tc := range []struct {
		name   string
		answer func(w http.ResponseWriter, r *http.Request)
	}{
		{"before the headers", func(http.ResponseWriter, *http.Request) {}},
		{"in the body", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", strconv.Itoa(len(page)))
			io.WriteString(w, page[:len(page)/2])
			w.(http.Flusher).Flush()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var attempts atomic.Int32
			b, ended := stallServer(t, func(w http.ResponseWriter, r *http.Request) {
				attempts.Add(1)
				tc.answer(w, r)
			})
			if b.listClient(context.Background()) == nil {
				t.Fatal("no lean ListObjectsV2")
			}
			start := time.Now()
			_, err := listAll(b, "")
			within(t, "List of a bucket that stalls", time.Since(start))
			var stall *stallError
			if !errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &stall) {
				t.Errorf("List of a bucket that stalls: err %v, want the stall error", err)
			}
			if n := attempts.Load(); n != 1 {
				t.Errorf("%d attempts, want 1: a stall is not retried", n)
			}
			select {
			case <-ended:
			case <-time.After(bound):
				t.Errorf("the bucket's request did not end after the stall")
			}
		})
	}

	t.Run("a slow page is not a stall", func(t *testing.T) {
		const parts = 5
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", strconv.Itoa(len(page)))
			step := len(page)/parts + 1
			for i := 0; i < len(page); i += step {
				io.WriteString(w, page[i:min(i+step, len(page))])
				w.(http.Flusher).Flush()
				time.Sleep(stallTimeout / 2) // the bucket's pace, not a synchronisation
			}
		}))
		t.Cleanup(srv.Close)
		cfg := testConfig(srv.URL)
		cfg.Timeout = stallTimeout
		b := newTestBucket(t, cfg)
		start := time.Now()
		got, err := listAll(b, "")
		if err != nil || len(got) != 1 {
			t.Fatalf("List of a page sent over %s: %+v, %v", time.Since(start), got, err)
		}
		if d := time.Since(start); d < stallTimeout {
			t.Errorf("the page came in %s, within Timeout: the test shows nothing", d)
		}
	})
}

// TestListLeanAndSDKAgree lists the same keys, hard ones among them, through the lean
// ListObjectsV2 and through the SDK's (where leanGet is nil): the same objects, in the same
// order; the requests say which path sent them.
func TestListLeanAndSDKAgree(t *testing.T) {
	f := newWriteFake(t)
	want := listFixture(t, f)
	for _, key := range []string{"amp&lt<gt>.png", `quote"apos'.png`, "tab\tnl\ncr\r.png", "%41+%2B.png", "😀.png"} {
		f.put(t, "pre/fix/"+key, []byte(key), "")
		want = append(want, key)
	}
	slices.Sort(want)
	cfg := testConfig(f.srv.URL)
	cfg.Prefix = "pre/fix"
	b := newTestBucket(t, cfg)
	lean, err := listAll(b, "")
	if err != nil {
		t.Fatalf("lean List: %v", err)
	}
	leanReqs := f.requests(isListObjects)
	f.forget()
	b.lean = nil
	sdk, err := listAll(b, "")
	if err != nil {
		t.Fatalf("SDK List: %v", err)
	}
	sdkReqs := f.requests(isListObjects)
	if !slices.Equal(lean, sdk) {
		t.Errorf("the lean List and the SDK's differ: %d and %d objects", len(lean), len(sdk))
	}
	var keys []string
	for _, o := range lean {
		keys = append(keys, o.Key)
	}
	if !slices.Equal(keys, want) {
		t.Errorf("List gave %d keys, want %d: %s", len(keys), len(want), firstDiff(keys, want))
	}
	if len(leanReqs) != 3 || len(sdkReqs) != 3 {
		t.Fatalf("%d lean and %d SDK requests, want 3 pages each", len(leanReqs), len(sdkReqs))
	}
	for i := range leanReqs {
		l, s := leanReqs[i], sdkReqs[i]
		if l.Header.Get("Amz-Sdk-Invocation-Id") != "" || l.Query.Get("encoding-type") != "url" || l.Status != http.StatusOK {
			t.Errorf("lean request %d: %v, invocation id %q, status %d", i+1, l.Query, l.Header.Get("Amz-Sdk-Invocation-Id"), l.Status)
		}
		if s.Header.Get("Amz-Sdk-Invocation-Id") == "" || s.Status != http.StatusOK {
			t.Errorf("SDK request %d: invocation id %q, status %d: not the SDK's", i+1, s.Header.Get("Amz-Sdk-Invocation-Id"), s.Status)
		}
		if l.Path != s.Path || l.Query.Get("prefix") != s.Query.Get("prefix") || l.Query.Get("continuation-token") != s.Query.Get("continuation-token") {
			t.Errorf("request %d: lean %s?%v, SDK %s?%v", i+1, l.Path, l.Query, s.Path, s.Query)
		}
	}
}

// benchPage returns a page of n keys shaped as Mastodon's media on AWS S3.
func benchPage(n int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, listHead+`<Name>media</Name><Prefix></Prefix><KeyCount>%d</KeyCount><MaxKeys>1000</MaxKeys>`+
		`<EncodingType>url</EncodingType><IsTruncated>false</IsTruncated>`, n)
	for i := range n {
		key := fmt.Sprintf("cache/media_attachments/files/%03d/%03d/%03d/original/%016x.png", 110+i/1000000, i/1000%1000, i%1000, uint64(i)*0x9e3779b97f4a7c15)
		b.WriteString(entry(key, fmt.Sprintf("&quot;%016x%016x&quot;", uint64(i)*31, uint64(i)*17), 10000+i))
	}
	b.WriteString(`</ListBucketResult>`)
	return b.Bytes()
}

// BenchmarkListPage lists a page of 1000 keys from a local server through the lean
// ListObjectsV2 and through the SDK's: the whole List, request and signature included.
func BenchmarkListPage(b *testing.B) {
	page := benchPage(listPageSize)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/xml")
		w.Header().Set("Content-Length", strconv.Itoa(len(page)))
		w.Write(page)
	}))
	b.Cleanup(srv.Close)
	for _, path := range []string{"lean", "sdk"} {
		b.Run(path, func(b *testing.B) {
			bucket := benchBucket(b, testConfig(srv.URL))
			if path == "sdk" {
				bucket.lean = nil
			}
			keys := 0
			fn := func(origin.Object) error { keys++; return nil }
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			b.ReportAllocs()
			for b.Loop() {
				if err := bucket.List(context.Background(), "", fn); err != nil {
					b.Fatal(err)
				}
			}
			runtime.ReadMemStats(&after)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(keys), "ns/key")
			b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(keys), "allocs/key")
		})
	}
}

// BenchmarkListParse reads a page of 1000 keys with the lean parser alone, as List does
// between two requests.
func BenchmarkListParse(b *testing.B) {
	page := benchPage(listPageSize)
	var p listParser
	b.ReportAllocs()
	b.SetBytes(int64(len(page)))
	for b.Loop() {
		pg, err := p.parse(page)
		if err != nil || len(pg.objects) != listPageSize {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*listPageSize), "ns/key")
}

// benchBucket is newTestBucket for a benchmark.
func benchBucket(b *testing.B, cfg Config) *Bucket {
	b.Helper()
	dir := b.TempDir()
	b.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	b.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	b.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	b.Setenv("AWS_PROFILE", "")
	bucket, err := New(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	return bucket
}
