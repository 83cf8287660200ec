package main

import (
	"bytes"
	"fmt"
	"net/http"
	"testing"

	"github.com/fedicache/fedicache/cache/tiertest"
	"github.com/fedicache/fedicache/origin/origintest"
)

// The buckets of other Fediverse servers, laid out as their code writes them, served by serve:
// the bytes, the Content-Type, ranges of video, 404 for what is absent, and what else matters
// to each (PeerTube's live playlists rewritten in place, Misskey's types).

// object is a bucket object of a test: its key, the Content-Type its server stores, its bytes.
type object struct {
	key, contentType string
	data             []byte
}

// served checks that r serves o's bytes with the Content-Type want and Access-Control-Allow-Origin.
func served(t *testing.T, r *replica, o object, want string) http.Header {
	t.Helper()
	st, h, body := r.get(t, o.key)
	if st != 200 || !bytes.Equal(body, o.data) {
		t.Errorf("GET %s: %d, %d bytes; want 200 and its %d bytes", o.key, st, len(body), len(o.data))
	}
	if got := h.Get("Content-Type"); got != want {
		t.Errorf("GET %s: Content-Type %q, want %q", o.key, got, want)
	}
	if h.Get("Access-Control-Allow-Origin") != "*" || h.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("GET %s: CORS %q, nosniff %q", o.key, h.Get("Access-Control-Allow-Origin"), h.Get("X-Content-Type-Options"))
	}
	return h
}

// ranged checks that r answers a range of o as a player asks it: 206 with the bytes and
// Content-Range.
func ranged(t *testing.T, r *replica, o object, first, last int) {
	t.Helper()
	st, h, body := r.get(t, o.key, "Range", fmt.Sprintf("bytes=%d-%d", first, last))
	want := fmt.Sprintf("bytes %d-%d/%d", first, last, len(o.data))
	if st != 206 || h.Get("Content-Range") != want || !bytes.Equal(body, o.data[first:last+1]) {
		t.Errorf("GET %s bytes=%d-%d: %d, Content-Range %q, %d bytes; want 206, %q", o.key, first, last, st, h.Get("Content-Range"), len(body), want)
	}
}

func absent(t *testing.T, r *replica, key string) {
	t.Helper()
	if st, _, _ := r.get(t, key); st != 404 {
		t.Errorf("GET %s (absent): %d, want 404", key, st)
	}
}

func putAll(t *testing.T, bucket *origintest.FakeBucket, objects ...object) {
	for _, o := range objects {
		bucket.PutWithHeaders(t, o.key, o.data, o.contentType, "")
	}
}

// TestPeerTubeBucket: a PeerTube bucket with object_storage.web_videos.prefix "web-videos/"
// and object_storage.streaming_playlists.prefix "streaming-playlists/", base_url pointing at
// fedicache. Web videos are <uuid>-<resolution>.mp4; HLS lives under hls/<video uuid>/: a
// video on demand's <uuid>-master.m3u8, <uuid>-<resolution>.m3u8, <uuid>-<resolution>-
// fragmented.mp4 (fetched by byte ranges) and <uuid>-segments-sha256.json, names that change
// whenever PeerTube writes them again; a live's master.m3u8, <n>.m3u8, segments-sha256.json and
// <n>-<seq>.ts, which it rewrites in place. Recent PeerTube stores each with its type (its
// object-storage content-type.ts), PeerTube 7.1 with none: both are served with a right one.
func TestPeerTubeBucket(t *testing.T) {
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	bucket := origintest.NewFakeBucket(t)
	const (
		video = "0b7e3b1c-9b8a-4f61-a7f1-3c1e5d4a2b10"
		file  = "1f7c1b9e-0d7a-4d8e-9b61-2a4f0e6c3d21"
		live  = "7d3f2a10-5c4b-4e8d-9a1f-0e2b3c4d5e6f"
		hls   = "streaming-playlists/hls/" + video + "/"
	)
	webVideo := object{"web-videos/" + file + "-720.mp4", "video/mp4", tiertest.Blob(1, 300_000)}
	fragmented := object{hls + file + "-720-fragmented.mp4", "video/mp4", tiertest.Blob(2, 200_000)}
	master := object{hls + "5d2c8e7a-3b1f-4c9d-8e6a-7f0b1a2c3d4e-master.m3u8", "application/x-mpegURL; charset=utf-8",
		[]byte("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-STREAM-INF:BANDWIDTH=1500000,RESOLUTION=1280x720\n" + file + "-720.m3u8\n")}
	// As PeerTube 7.1 stored it, without a type: the bucket answers its default.
	resolution := object{hls + file + "-720.m3u8", "application/octet-stream",
		[]byte("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-MAP:URI=\"" + file + "-720-fragmented.mp4\",BYTERANGE=\"1000@0\"\n" +
			"#EXTINF:4.0,\n#EXT-X-BYTERANGE:99000@1000\n" + file + "-720-fragmented.mp4\n#EXT-X-ENDLIST\n")}
	shas := object{hls + "9c8b7a6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d-segments-sha256.json", "application/json; charset=utf-8", []byte(`{"` + file + `-720-fragmented.mp4":{"1000-99999":"ab"}}`)}
	private := object{"web-videos/2a3b4c5d-6e7f-4a8b-9c0d-1e2f3a4b5c6d-480.mp4", "video/mp4", tiertest.Blob(3, 50_000)}
	liveMaster := object{"streaming-playlists/hls/" + live + "/master.m3u8", "application/x-mpegurl; charset=utf-8",
		[]byte("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=854x480\n0.m3u8\n")}
	livePlaylist := object{"streaming-playlists/hls/" + live + "/0.m3u8", "application/x-mpegurl; charset=utf-8",
		[]byte("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:2.0,\n0-000000.ts\n")}
	segment := object{"streaming-playlists/hls/" + live + "/0-000000.ts", "application/octet-stream", tiertest.Blob(4, 60_000)}
	putAll(t, bucket, webVideo, fragmented, master, resolution, shas, private, liveMaster, livePlaylist, segment)
	bucket.SetACL(private.key, "private") // a private video: PeerTube's object_storage.upload_acl.private
	r := startReplica(t, bucketYAML(bucket)+"listen: \"127.0.0.1:0\"\nadmin_listen: \"127.0.0.1:0\"\n")

	// Web videos and a video on demand's HLS: cached, a year downstream, ranges.
	h := served(t, r, webVideo, "video/mp4")
	if h.Get("Cache-Control") != "public, max-age=31536000, immutable" || h.Get("Accept-Ranges") != "bytes" {
		t.Errorf("web video: Cache-Control %q, Accept-Ranges %q", h.Get("Cache-Control"), h.Get("Accept-Ranges"))
	}
	ranged(t, r, webVideo, 100_000, 165_535)
	if _, h, _ := r.get(t, webVideo.key); h.Get("X-Cache") != "HIT" {
		t.Errorf("web video again: X-Cache %q, want HIT", h.Get("X-Cache"))
	}
	ranged(t, r, fragmented, 0, 999)       // the init segment (EXT-X-MAP)
	ranged(t, r, fragmented, 1000, 99_999) // a fragment (EXT-X-BYTERANGE)
	served(t, r, master, "application/x-mpegURL; charset=utf-8")
	served(t, r, resolution, "application/vnd.apple.mpegurl") // by its extension
	served(t, r, shas, "application/json; charset=utf-8")
	absent(t, r, "web-videos/"+file+"-1080.mp4")
	absent(t, r, hls+file+"-1080-fragmented.mp4")
	absent(t, r, private.key) // hidden by its ACL, as for Mastodon's suspended media

	// A live: its playlist is rewritten in place after every segment, and fedicache serves the
	// new one at once, with a Cache-Control that makes a CDN ask again.
	served(t, r, liveMaster, "application/x-mpegurl; charset=utf-8")
	h = served(t, r, livePlaylist, "application/x-mpegurl; charset=utf-8")
	if h.Get("Cache-Control") != "no-cache" {
		t.Errorf("live playlist: Cache-Control %q, want no-cache", h.Get("Cache-Control"))
	}
	etag := h.Get("ETag")
	if st, _, _ := r.get(t, livePlaylist.key, "If-None-Match", etag); st != 304 {
		t.Errorf("live playlist, unchanged, If-None-Match: %d, want 304", st)
	}
	next := livePlaylist
	next.data = append(bytes.Clone(livePlaylist.data), "#EXTINF:2.0,\n0-000001.ts\n"...)
	putAll(t, bucket, next)
	if h := served(t, r, next, "application/x-mpegurl; charset=utf-8"); h.Get("ETag") == etag {
		t.Error("live playlist rewritten: the ETag did not change")
	}
	if st, _, body := r.get(t, livePlaylist.key, "If-None-Match", etag); st != 200 || !bytes.Equal(body, next.data) {
		t.Errorf("live playlist rewritten, old ETag: %d, want 200 and the new playlist", st)
	}
	// A permanent live's next session numbers its segments from 0 again, under the same keys.
	served(t, r, segment, "video/mp2t")
	again := segment
	again.data = tiertest.Blob(5, 61_000)
	putAll(t, bucket, again)
	served(t, r, again, "video/mp2t")
	ranged(t, r, again, 10, 20)
	absent(t, r, "streaming-playlists/hls/"+live+"/0-000009.ts")
}

// TestPixelfedBucket: a Pixelfed bucket (FILESYSTEM_CLOUD=s3, PF_ENABLE_CLOUD=true, AWS_URL
// pointing at fedicache): media under public/m/_v2/<profile id>/<month hash>/<random>/<name>
// (its MediaPathService), a photo's _thumb.jpeg beside it, videos as mp4, remote avatars under
// cache/avatars/<profile id>/, each stored public with its type by Laravel's S3 driver.
func TestPixelfedBucket(t *testing.T) {
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	bucket := origintest.NewFakeBucket(t)
	const dir = "public/m/_v2/588554065884192073/3781ba7d4-1bb9dc/8GbMvEfDtTR5/"
	photo := object{dir + "nXvjO8y0yPXBrI3XCEyQqs6cGn2chUypPiUX26T5.jpg", "image/jpeg", tiertest.Blob(1, 120_000)}
	thumb := object{dir + "nXvjO8y0yPXBrI3XCEyQqs6cGn2chUypPiUX26T5_thumb.jpeg", "image/jpeg", tiertest.Blob(2, 9_000)}
	png := object{dir + "FFc9817nys8vCSVHlaHErswAHIXbM0Tn1QuB2s12.png", "image/png", tiertest.Blob(3, 30_000)}
	video := object{"public/m/_v2/588554065884192073/3781ba7d4-1bb9dc/Qq1w2E3r4T5y/Zx9Cv8Bn7Mm6Ll5Kk4Jj3Hh2Gg1Ff0DdSsAaPpOoIi.mp4", "video/mp4", tiertest.Blob(4, 250_000)}
	avatar := object{"cache/avatars/424813098022428933/avatar_k3x9q.jpg", "image/jpeg", tiertest.Blob(5, 4_000)}
	putAll(t, bucket, photo, thumb, png, video, avatar)
	// mastodon.web_domain is Mastodon's: Pixelfed's cache/ keys are no media attachments.
	r := startReplica(t, bucketYAML(bucket)+"listen: \"127.0.0.1:0\"\nadmin_listen: \"127.0.0.1:0\"\n")

	served(t, r, photo, "image/jpeg")
	served(t, r, thumb, "image/jpeg")
	served(t, r, png, "image/png")
	served(t, r, avatar, "image/jpeg")
	served(t, r, video, "video/mp4")
	ranged(t, r, video, 0, 1)
	ranged(t, r, video, 200_000, 249_999)
	if _, h, _ := r.get(t, photo.key); h.Get("X-Cache") != "HIT" || h.Get("Cache-Control") != "public, max-age=31536000, immutable" {
		t.Errorf("photo again: X-Cache %q, Cache-Control %q", h.Get("X-Cache"), h.Get("Cache-Control"))
	}
	absent(t, r, dir+"deleted0000000000000000000000000000000000.jpg")
	absent(t, r, "cache/avatars/424813098022428933/avatar_gone.jpg")
}

// TestMisskeyBucket: a Misskey (or Sharkey) bucket, its object storage "Base URL" pointing at
// fedicache and "Prefix" misskey: every drive file is <prefix>/<uuid><ext>, with webpublic-
// and thumbnail- variants (webp), each stored with its type; a type a browser must not render
// (FILE_TYPE_BROWSERSAFE) gets no extension and application/octet-stream. Without "Set
// public-read on upload", Misskey stores no ACL: s3.permission "" serves the private objects.
func TestMisskeyBucket(t *testing.T) {
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	bucket := origintest.NewFakeBucket(t)
	const p = "misskey/"
	original := object{p + "3f2c9d0e-8b7a-4c6d-9e5f-1a2b3c4d5e6f.png", "image/png", tiertest.Blob(1, 80_000)}
	webpublic := object{p + "webpublic-6e5d4c3b-2a19-4f8e-9d7c-6b5a4f3e2d1c.webp", "image/webp", tiertest.Blob(2, 40_000)}
	thumbnail := object{p + "thumbnail-0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d.webp", "image/webp", tiertest.Blob(3, 6_000)}
	video := object{p + "8c7b6a59-4d3e-4f2a-9b1c-0d9e8f7a6b5c.mp4", "video/mp4", tiertest.Blob(4, 200_000)}
	unsafe := object{p + "5b4a3928-1706-4e5d-8c4b-3a2918070605", "application/octet-stream", []byte("<html><script>alert(1)</script>")}
	putAll(t, bucket, original, webpublic, thumbnail, video, unsafe)
	for _, o := range []object{original, webpublic, thumbnail, video, unsafe} {
		bucket.SetACL(o.key, "private") // objectStorageSetPublicRead off: no public-read ACL
	}
	r := startReplica(t, bucketYAML(bucket)+"  permission: \"\"\nlisten: \"127.0.0.1:0\"\nadmin_listen: \"127.0.0.1:0\"\n")

	served(t, r, original, "image/png")
	served(t, r, webpublic, "image/webp")
	served(t, r, thumbnail, "image/webp")
	served(t, r, unsafe, "application/octet-stream") // with nosniff: downloaded, never rendered
	served(t, r, video, "video/mp4")
	ranged(t, r, video, 1_000, 2_047)
	absent(t, r, p+"00000000-0000-4000-8000-000000000000.png")
	absent(t, r, p+"thumbnail-00000000-0000-4000-8000-000000000000.webp")
}
