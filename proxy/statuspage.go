package proxy

import (
	"net/http"
	"time"
)

// Migration is the copy of the old volume into the bucket, as /status and the status page
// show it.
type Migration struct {
	Running bool      `json:"running"` // the copy is under way (false once done or stopped)
	Done    bool      `json:"done"`    // the walk of the old volume has ended
	Started time.Time `json:"started"`

	// FilesTotal and BytesTotal are the old volume's files and bytes; -1 while they are
	// still being counted.
	FilesTotal int64 `json:"files_total"`
	BytesTotal int64 `json:"bytes_total"`
	// FilesDone and BytesDone are what the bucket holds of them: copied now, or there already.
	FilesDone int64 `json:"files_done"`
	BytesDone int64 `json:"bytes_done"`
	// FilesCopied and BytesCopied are what this run copied.
	FilesCopied int64 `json:"files_copied"`
	BytesCopied int64 `json:"bytes_copied"`

	BytesPerSecond float64       `json:"bytes_per_second"`
	ETA            time.Duration `json:"eta_ns"` // -1 while unknown
	Conflicts      int64         `json:"conflicts"`
	Errors         int64         `json:"errors"`
	// RecentErrors are a few of the failures, each "key: cause".
	RecentErrors []string `json:"recent_errors,omitempty"`
	// ConflictKeys are a few of the keys the bucket holds with other bytes.
	ConflictKeys []string `json:"conflict_keys,omitempty"`
}

// page serves the status page.
func (a *Admin) page(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, "/status", http.StatusFound)
}
