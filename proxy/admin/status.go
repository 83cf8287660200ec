package admin

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/fedicache/fedicache/cache"
	"github.com/fedicache/fedicache/origin"
	"github.com/fedicache/fedicache/proxy/cluster"
)

// Status is the document /status returns.
type Status struct {
	Version       string       `json:"version"`
	StartedAt     time.Time    `json:"started_at"`
	UptimeSeconds float64      `json:"uptime_seconds"`
	Ready         bool         `json:"ready"`
	Draining      bool         `json:"draining"`
	Bucket        BucketStatus `json:"bucket"`
	// OldStores are the old stores behind the bucket (fallback.dir, fallback.stores), each
	// with why it did not answer its last check, if it did not.
	OldStores []origin.StoreHealth `json:"old_stores,omitempty"`
	Cache     *cache.Stats         `json:"cache,omitempty"`
	// EgressSavedBytes counts bytes served from the cache that the bucket did not send.
	EgressSavedBytes uint64 `json:"egress_saved_bytes"`
	// Migrations are the copies of the old stores into the bucket, one per store, in the
	// order the stores are asked: Config.Migrations, or Config.Migration alone.
	Migrations []Migration `json:"migrations,omitempty"`
	// Migration is the first of Migrations, kept for the readers of /status that knew one
	// old volume only; new readers take Migrations.
	Migration *Migration `json:"migration,omitempty"`
	// Cluster is the replicas and the peer fill, when cluster.fill is on.
	Cluster *ClusterStatus `json:"cluster,omitempty"`
	// History is the process's figures over the last day, interval by interval.
	History *HistoryStatus `json:"history,omitempty"`
	// State is the cluster's record of deleted and hidden media as this replica holds it.
	State    any            `json:"state,omitempty"`
	Sections map[string]any `json:"sections,omitempty"`
	Info     map[string]any `json:"info,omitempty"`
}

// ClusterStatus is what one replica knows of the cluster: the replicas cluster.peers lists,
// which is this one and its share of the keys, and the peer fill both ways.
type ClusterStatus struct {
	Members   []string               `json:"members"`
	Self      string                 `json:"self"`
	Share     float64                `json:"owner_share"`
	LastError string                 `json:"last_error,omitempty"`
	Asked     cluster.PeerFillStats  `json:"asked"`  // this replica asking the owners
	Served    cluster.PeerServeStats `json:"served"` // this replica answering its peers
	// BucketBytes is the body bytes this replica received from the bucket, beside the
	// Asked.Bytes it received from its peers.
	BucketBytes uint64 `json:"bucket_bytes"`
}

// BucketStatus is the outcome of the last readiness check of the bucket.
type BucketStatus struct {
	OK        bool      `json:"ok"`
	Error     string    `json:"error,omitempty"`
	CheckedAt time.Time `json:"checked_at"`
}

// snapshot gathers what /status and the status page show.
func (h *Handler) snapshot(ctx context.Context) Status {
	answered, err := h.check(ctx)
	h.mu.Lock()
	checked := h.checkedAt
	h.mu.Unlock()
	st := Status{
		Version:       h.cfg.Version,
		StartedAt:     h.started.UTC(),
		UptimeSeconds: time.Since(h.started).Seconds(),
		Draining:      h.draining(),
		Bucket:        BucketStatus{OK: err == nil, CheckedAt: checked.UTC()},
		Info:          h.cfg.Info,
	}
	if err != nil {
		st.Bucket.Error = err.Error()
	}
	if h.cfg.OldStores != nil {
		st.OldStores = h.cfg.OldStores(ctx)
	}
	if h.cfg.HitBytes != nil {
		st.EgressSavedBytes = uint64(h.cfg.HitBytes())
	}
	if h.cfg.Cache != nil {
		cs := h.cfg.Cache.Stats()
		st.Cache = &cs
		st.EgressSavedBytes += cs.SharedBytes
	}
	st.Ready = answered && !st.Draining
	if h.cfg.State != nil {
		st.State = h.cfg.State.Status()
		st.Ready = st.Ready && h.cfg.State.Loaded()
	}
	switch {
	case h.cfg.Migrations != nil:
		st.Migrations = h.cfg.Migrations()
	case h.cfg.Migration != nil:
		st.Migrations = []Migration{h.cfg.Migration()}
	}
	if len(st.Migrations) > 0 {
		first := st.Migrations[0]
		st.Migration = &first
	}
	if h.cfg.Cluster != nil {
		c := h.cfg.Cluster()
		st.Cluster = &c
	}
	if h.cfg.History != nil {
		hs := h.cfg.History.Status()
		st.History = &hs
	}
	if len(h.cfg.Sections) > 0 {
		st.Sections = map[string]any{}
		for name, f := range h.cfg.Sections {
			st.Sections[name] = f()
		}
	}
	return st
}

func (h *Handler) status(w http.ResponseWriter, r *http.Request) {
	st := h.snapshot(r.Context())
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(st)
}

// Migration is the copy of one old store into the bucket, as /status and the status page
// show it: the copy this process runs, or the one a copier elsewhere (the backfill Job,
// another replica) last published under the state prefix.
type Migration struct {
	// Source names the old store copied: "volume" (fallback.dir) or a name of fallback.stores.
	Source string `json:"source"`
	// Reporter is the host of the process that runs the copy.
	Reporter string `json:"reporter,omitempty"`
	// UpdatedAt is when these figures were taken.
	UpdatedAt time.Time `json:"updated_at"`
	// Stale is set when a copy that was running has not published figures for a while: its
	// copier stopped (a Job killed, a replica gone) and the figures are its last.
	Stale   bool `json:"stale,omitempty"`
	Running bool `json:"running"` // the copy is under way (false once done or stopped)
	// Waiting is set while the copy has not begun: the copier copies the stores before it.
	Waiting bool      `json:"waiting,omitempty"`
	Done    bool      `json:"done"` // the walk of the old store has ended
	Started time.Time `json:"started"`
	// Elapsed is the time the copy has taken so far, or took once done.
	Elapsed time.Duration `json:"elapsed_ns"`

	// FilesTotal and BytesTotal are the old store's files and bytes; -1 while they are
	// still being counted.
	FilesTotal int64 `json:"files_total"`
	BytesTotal int64 `json:"bytes_total"`
	// FilesScanned is how many of the store's files the copy has looked at.
	FilesScanned int64 `json:"files_scanned"`
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
	// Excluded are files the include and exclude filters leave out; Skipped are files left
	// where they are for another reason (hidden files with no ACLs to hide them, files that
	// changed while they were read). Neither counts as done.
	Excluded int64 `json:"excluded"`
	Skipped  int64 `json:"skipped"`
	// RecentErrors are a few of the failures, each "key: cause".
	RecentErrors []string `json:"recent_errors,omitempty"`
	// ConflictKeys are a few of the keys the bucket holds with other bytes.
	ConflictKeys []string `json:"conflict_keys,omitempty"`
}
