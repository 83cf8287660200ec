package admin

import (
	"html/template"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/fedicache/fedicache/cache"
)

// pageView is what the template renders: every figure formatted already.
type pageView struct {
	Title, Host, Version, Uptime, Role string
	Health                             badge
	RefreshSeconds                     int
	Updated, UpdatedISO                string

	Bucket    bucketView
	OldStores []oldStoreView
	Cache     *cacheView
	NoCache   string // why there is no cache section
	// Migrations are the copies of the old stores, one card each.
	Migrations []*migrationView
	Cluster    *clusterView
	Info       []infoItem

	CSS template.CSS
	JS  template.JS
}

// badge is a state as a word and its colour class (ok, warn, bad, idle).
type badge struct{ Class, Label string }

// bucketView is the bucket's health as of its last check.
type bucketView struct {
	State                         badge
	Checked, CheckedAt, CheckedTS string
	Error, Note                   string
	Name, Endpoint                string
}

// cacheView is the cache's answers by tier, the bytes it saved and the tiers' use.
type cacheView struct {
	Answers  string
	HitRatio string // "" before the first answer
	Split    []splitPart
	Saved    string
	Tiers    []tierView
	Extra    []stat
}

// splitPart is one share of the cache's answers, and its place in the bar (0-100).
type splitPart struct {
	Class, Label, Count, Percent string
	X, Width                     string
}

// tierView is one tier's use of its capacity; Value and Max feed its bar.
type tierView struct {
	Name, Used, Capacity, Percent string
	Value, Max                    int64
	Entries, Evictions            string
	Warning                       string
}

// stat is one figure with its label.
type stat struct{ Label, Value string }

// clusterView is the cluster card: the replicas, this one's share of the keys, the peer fill.
type clusterView struct {
	Replicas, Self, Share              string
	Asks, Answered, FromPeers          string
	FromBucket                         string
	Errors, Fallbacks                  string
	Served, ServedBytes, Refused       string
	ErrorsClass, LastError, SelfAbsent string
}

// newClusterView formats c for the page.
func newClusterView(c *ClusterStatus) *clusterView {
	v := &clusterView{
		Replicas:    humanize.Comma(int64(len(c.Members))),
		Self:        c.Self,
		Share:       strconv.FormatFloat(100*c.Share, 'f', 1, 64) + "%",
		Asks:        humanize.Comma(int64(c.Asked.Asks)),
		Answered:    humanize.Comma(int64(c.Asked.Answered)),
		FromPeers:   humanBytes(int64(min(c.Asked.Bytes, math.MaxInt64))),
		FromBucket:  humanBytes(int64(min(c.BucketBytes, math.MaxInt64))),
		Errors:      humanize.Comma(int64(c.Asked.Errors)),
		Fallbacks:   humanize.Comma(int64(c.Asked.Fallbacks)),
		Served:      humanize.Comma(int64(c.Served.Served)),
		ServedBytes: humanBytes(int64(min(c.Served.Bytes, math.MaxInt64))),
		Refused:     humanize.Comma(int64(c.Served.Refused)),
		LastError:   c.LastError,
	}
	if c.Asked.Errors > 0 {
		v.ErrorsClass = "warn"
	}
	if c.Self == "" && len(c.Members) > 0 {
		v.SelfAbsent = "This replica is not among the addresses cluster.peers lists: it asks the owners of every key and owns none."
	}
	return v
}

// infoItem is one entry of the configuration summary.
type infoItem struct{ Key, Value string }

// newPageView formats st for the page, as of now.
func newPageView(st Status, backfillOnly bool, refresh time.Duration, now time.Time) pageView {
	v := pageView{
		Version:        st.Version,
		Uptime:         humanDuration(time.Duration(st.UptimeSeconds * float64(time.Second))),
		Role:           "serving media",
		RefreshSeconds: int(refresh / time.Second),
		Updated:        now.UTC().Format("15:04:05 UTC"),
		UpdatedISO:     now.UTC().Format(time.RFC3339),
		Bucket:         newBucketView(st, now),
		OldStores:      newOldStoreViews(st.OldStores),
		CSS:            template.CSS(pageCSS),
		JS:             template.JS(pageJS),
	}
	if v.Version == "" {
		v.Version = "unknown"
	}
	v.Host, _ = st.Info["host"].(string)
	if v.Host == "" {
		v.Host, _ = os.Hostname()
	}
	if backfillOnly {
		v.Role = "backfill only"
	}
	switch {
	case st.Draining:
		v.Health = badge{"warn", "draining"}
	case !st.Ready:
		v.Health = badge{"bad", "not ready"}
	case !st.Bucket.OK:
		v.Health = badge{"warn", "ready, bucket failing"}
	default:
		v.Health = badge{"ok", "ready"}
	}
	switch {
	case st.Cache != nil:
		v.Cache = newCacheView(st.Cache, st.EgressSavedBytes)
	case backfillOnly:
		v.NoCache = "This process copies old stores into the bucket and serves no media: it has no cache."
	default:
		v.NoCache = "No cache in front of the bucket."
	}
	v.Title = "fedicache · " + v.Host
	if st.Cluster != nil {
		v.Cluster = newClusterView(st.Cluster)
	}
	v.Migrations = newMigrationViews(st.Migrations, st.OldStores, now)
	if p := copiedPercent(st.Migrations); p != "" {
		v.Title = p + " copied · " + v.Title
	}
	for k, val := range st.Info {
		if k == "host" {
			continue
		}
		v.Info = append(v.Info, infoItem{k, infoValue(val)})
	}
	sort.Slice(v.Info, func(i, j int) bool { return v.Info[i].Key < v.Info[j].Key })
	return v
}

// newBucketView is st's bucket check, its age measured at now.
func newBucketView(st Status, now time.Time) bucketView {
	b := bucketView{Error: st.Bucket.Error}
	b.Name, _ = st.Info["bucket"].(string)
	b.Endpoint, _ = st.Info["endpoint"].(string)
	switch {
	case st.Bucket.CheckedAt.IsZero():
		b.State = badge{"idle", "not checked"}
		b.Checked = "never"
		b.Note = "This process has no health check of the bucket."
		return b
	case st.Bucket.OK:
		b.State = badge{"ok", "ok"}
	case !st.Ready && !st.Draining:
		b.State = badge{"bad", "not answering"}
	default:
		b.State = badge{"bad", "failing"}
	}
	b.Checked = humanDuration(now.Sub(st.Bucket.CheckedAt)) + " ago"
	b.CheckedAt = st.Bucket.CheckedAt.UTC().Format("2006-01-02 15:04:05 UTC")
	b.CheckedTS = st.Bucket.CheckedAt.UTC().Format(time.RFC3339)
	return b
}

// newCacheView formats the cache's figures, with saved the bytes the bucket did not send.
func newCacheView(cs *cache.Stats, saved uint64) *cacheView {
	hits := cs.MemoryHits + cs.DiskHits
	answers := hits + cs.Misses
	c := &cacheView{
		Answers: humanize.Comma(int64(answers)),
		Saved:   humanBytes(int64(min(saved, math.MaxInt64))),
	}
	if answers > 0 {
		c.HitRatio = percent(int64(hits), int64(answers))
	}
	x := 0.0
	for _, p := range []struct {
		class, label string
		n            uint64
	}{
		{"mem", "memory hits", cs.MemoryHits},
		{"disk", "disk hits", cs.DiskHits},
		{"miss", "misses", cs.Misses},
	} {
		part := splitPart{Class: p.class, Label: p.label, Count: humanize.Comma(int64(p.n)), Percent: "–"}
		if answers > 0 {
			w := 100 * float64(p.n) / float64(answers)
			part.Percent = percent(int64(p.n), int64(answers))
			part.X, part.Width = strconv.FormatFloat(x, 'f', 3, 64), strconv.FormatFloat(w, 'f', 3, 64)
			x += w
		}
		c.Split = append(c.Split, part)
	}
	for _, t := range []struct {
		name string
		st   *cache.TierStats
	}{{"Memory", cs.Memory}, {"Disk", cs.Disk}} {
		if t.st != nil {
			c.Tiers = append(c.Tiers, newTierView(t.name, t.st))
		}
	}
	c.Extra = []stat{
		{"requests to the origin", humanize.Comma(int64(cs.OriginGets))},
		{"shared fetches", humanize.Comma(int64(cs.SharedWaiters))},
		{"not-found answers remembered", humanize.Comma(int64(cs.NegativeHits))},
		{"stale answers while the bucket failed", humanize.Comma(int64(cs.StaleServed))},
		{"failed fetches", humanize.Comma(int64(cs.FillErrors))},
	}
	return c
}

// newTierView formats a tier's figures, with a warning when it is in trouble.
func newTierView(name string, st *cache.TierStats) tierView {
	t := tierView{
		Name:      name,
		Used:      humanBytes(st.Bytes),
		Capacity:  humanBytes(st.MaxBytes),
		Value:     max(st.Bytes, 0),
		Max:       max(st.MaxBytes, 1),
		Entries:   entries(st.Entries),
		Evictions: humanize.Comma(int64(st.Evictions)),
	}
	t.Value = min(t.Value, t.Max)
	t.Percent = percent(st.Bytes, st.MaxBytes)
	var warn []string
	if st.Disabled {
		warn = append(warn, "writes are off (the disk is full or read-only)")
	}
	if st.WriteErrors > 0 {
		warn = append(warn, humanize.Comma(int64(st.WriteErrors))+" failed writes")
	}
	if st.Dropped > 0 {
		warn = append(warn, humanize.Comma(int64(st.Dropped))+" corrupt entries dropped")
	}
	t.Warning = strings.Join(warn, "; ")
	return t
}
