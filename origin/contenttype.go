package origin

import (
	"path"
	"strings"
)

// contentTypes maps the extensions of Mastodon's media (and what old volumes still hold) to
// their media types. It is the one table: the volume serves by it and the backfill uploads by it.
var contentTypes = map[string]string{
	// images
	".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".jfif": "image/jpeg", ".png": "image/png",
	".gif": "image/gif", ".webp": "image/webp", ".avif": "image/avif", ".heic": "image/heic",
	".heif": "image/heif", ".bmp": "image/bmp", ".ico": "image/x-icon", ".svg": "image/svg+xml",
	".tif": "image/tiff", ".tiff": "image/tiff",
	// video
	".mp4": "video/mp4", ".m4v": "video/mp4", ".mov": "video/quicktime", ".webm": "video/webm",
	".ogv": "video/ogg", ".mpeg": "video/mpeg", ".mpg": "video/mpeg",
	// audio
	".mp3": "audio/mpeg", ".ogg": "audio/ogg", ".oga": "audio/ogg", ".opus": "audio/ogg",
	".wav": "audio/wave", ".m4a": "audio/mp4", ".flac": "audio/flac", ".aac": "audio/aac",
	".3gp": "video/3gpp", ".wma": "audio/x-ms-wma",
	// streaming: PeerTube's HLS playlists and live segments, captions and torrents (PeerTube
	// 7.1 stored its objects without a type)
	".m3u8": "application/vnd.apple.mpegurl", ".ts": "video/mp2t", ".vtt": "text/vtt; charset=utf-8",
	".torrent": "application/x-bittorrent",
	// other uploads
	".txt": "text/plain; charset=utf-8", ".csv": "text/csv; charset=utf-8",
	".json": "application/json", ".pdf": "application/pdf", ".zip": "application/zip",
	".gz": "application/gzip",
}

// DefaultContentType is the type of an object whose extension the table does not know.
const DefaultContentType = "application/octet-stream"

// ContentType returns the media type for key by its extension (case-insensitive),
// DefaultContentType when the extension is unknown.
func ContentType(key string) string {
	if t, ok := contentTypes[strings.ToLower(path.Ext(key))]; ok {
		return t
	}
	return DefaultContentType
}
