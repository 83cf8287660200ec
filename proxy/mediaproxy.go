package proxy

// Removed remote media: a redirect to Mastodon's media proxy.
//
// `tootctl media remove` (and the content-retention vacuum) delete the files of remote media
// attachments, the keys under "cache/", and Mastodon's API then gives such an attachment's URL
// as https://WEB_DOMAIN/media_proxy/<id>/<style>: MediaProxyController downloads the file
// again and redirects to its new URL (a new random file name, so a new key). Posts rendered
// before, and clients, still hold the old key's URL; answered with a redirect to the media
// proxy instead of a 404, the picture comes back.

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"

	"github.com/fedicache/fedicache/origin"
	"github.com/valyala/fasthttp"
)

// MediaProxyCacheControl is the Cache-Control of a redirect to Mastodon's media proxy. The
// answer is durable (Mastodon never writes a removed file back under its old name: a new
// download gets a new random file name), so a CDN may keep it and spare the stores the
// confirmation each redirect costs; but it is an hour, not a year, so that a key found absent
// by mistake (an old store not configured yet) is served again within the hour, and a
// redirect loop (Mastodon's database still naming the removed file) does not outlive its fix.
const MediaProxyCacheControl = "public, max-age=3600"

// MediaProxyConfig turns requests for removed remote media into redirects to Mastodon's media
// proxy. The zero value turns them off.
type MediaProxyConfig struct {
	// WebDomain is Mastodon's WEB_DOMAIN (its LOCAL_DOMAIN when WEB_DOMAIN is unset): a host
	// name, with a port if it has one, e.g. "example.social". Zero turns the redirect
	// off. The caller checks it is a host name.
	WebDomain string
	// Stores are asked, past the cache and the other replicas, whether a key the cache found
	// nowhere is absent from every store (origin.ErrNotFound) rather than hidden
	// (origin.ErrHidden) or failing: the cache's memory of not-found keys and a peer's 404 do
	// not tell these apart. Nil turns the redirect off.
	Stores origin.Origin
}

func (c MediaProxyConfig) on() bool { return c.WebDomain != "" && c.Stores != nil }

// Mastodon's id partition (Paperclip's :id_partition, kt-paperclip's Interpolations): an id
// below a billion is written with 9 digits, zero-padded, in 3 groups ("000/000/042"); a larger
// one with at least 12 ("%012d"), cut into groups of 3 ("109/852/623/730/091/815" for the
// 18-digit snowflake ids of every attachment since 2017).
const (
	partitionLimit = 1_000_000_000
	maxGroups      = 6 // 18 digits: a bigint has at most 19, and snowflakes stay at 18 for centuries
)

// mediaProxyTarget returns the id and style of the media attachment whose file key is, when
// Mastodon's MediaProxyController serves it: a remote attachment's file,
// cache/media_attachments/files/<id partition>/<original|small>/<file name>. The controller
// serves only media attachments (MediaAttachment.remote), and only their file's original and
// small styles; never avatars, headers, emoji, preview cards or an attachment's custom
// thumbnail (media_attachments/thumbnails), and never local media (no "cache/").
func mediaProxyTarget(key string) (id, style string, ok bool) {
	rest, ok := strings.CutPrefix(key, "cache/media_attachments/files/")
	if !ok {
		return "", "", false
	}
	segs := strings.Split(rest, "/")
	// The id partition's groups, the style, the file name.
	n := len(segs) - 2
	if n < 3 || n > maxGroups || segs[len(segs)-1] == "" {
		return "", "", false
	}
	style = segs[n]
	if style != "original" && style != "small" {
		return "", "", false
	}
	var digits []byte
	for _, g := range segs[:n] {
		if len(g) != 3 || !isDigits(g) {
			return "", "", false
		}
		digits = append(digits, g...)
	}
	switch {
	case n == 3: // "%09d": the padding zeros are the id's own leading zeros
	case n == 4: // "%012d" of an id of 10 to 12 digits: padded to 12
		if id := trimZeros(digits); len(id) < 10 {
			return "", "", false // an id below a billion would have 3 groups
		}
	default: // "%012d" of an id longer than 12 digits: no padding
		if digits[0] == '0' {
			return "", "", false
		}
	}
	id = string(trimZeros(digits))
	if id == "" { // id 0: no row has it
		return "", "", false
	}
	return id, style, true
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func trimZeros(b []byte) []byte { return bytes.TrimLeft(b, "0") }

// sameHost reports whether the Host a request arrived on names the web domain (ports aside,
// case ignored): a redirect there would send the client back to this front.
func sameHost(host []byte, webDomain string) bool {
	return strings.EqualFold(hostOnly(string(host)), hostOnly(webDomain))
}

// hostOnly is hostport without its port and a trailing dot.
func hostOnly(hostport string) string {
	h := hostport
	if host, _, err := net.SplitHostPort(hostport); err == nil {
		h = host
	}
	return strings.TrimSuffix(h, ".")
}

// redirectRemoved answers a request for key, which the cache answered err, with a redirect to
// Mastodon's media proxy and reports true, when key is removed remote media: an attachment's
// file the media proxy serves, that no store holds. Only a real not-found counts: never a
// hidden or tombstoned key (origin.ErrHidden), never a store's failure (a 502 stays a 502),
// and only once the stores, asked past the cache, confirm the key is absent. A request that
// arrives on the web domain itself is not redirected (the redirect would come back here).
func (s *Server) redirectRemoved(c context.Context, ctx *fasthttp.RequestCtx, key string, err error) bool {
	mp := &s.cfg.MediaProxy
	if !mp.on() || !errors.Is(err, origin.ErrNotFound) || errors.Is(err, origin.ErrHidden) {
		return false
	}
	id, style, ok := mediaProxyTarget(key)
	if !ok {
		return false
	}
	if sameHost(ctx.Host(), mp.WebDomain) {
		s.log.Warn("removed remote media not redirected: the request arrived on mastodon.web_domain itself", "key", key)
		return false
	}
	if _, err := mp.Stores.Stat(c, key); !errors.Is(err, origin.ErrNotFound) || errors.Is(err, origin.ErrHidden) {
		if err != nil && !errors.Is(err, origin.ErrNotFound) {
			s.log.Warn("removed remote media not redirected: the stores could not confirm it is gone", "key", key, "err", err)
		}
		return false
	}
	location := "https://" + mp.WebDomain + "/media_proxy/" + id + "/" + style
	h := &ctx.Response.Header
	setCommonHeaders(h)
	h.Set("Location", location)
	h.Set("Cache-Control", MediaProxyCacheControl)
	h.SetContentType("text/plain; charset=utf-8")
	ctx.SetStatusCode(fasthttp.StatusFound)
	ctx.SetBodyString("302 found: " + location + "\n")
	s.metrics.observeRequest(fasthttp.StatusFound, "")
	s.metrics.observeRedirect()
	s.log.Debug("removed remote media redirected to Mastodon's media proxy", "key", key, "location", location)
	return true
}
