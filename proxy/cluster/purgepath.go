package cluster

import "net/url"

// The kinds of purge the admin API and the peers speak (?kind=): those of the cluster's state.
const (
	KindPurged       = "purged"        // dropped from the caches
	KindPrefixPurged = "prefix_purged" // every key under a prefix dropped
	KindHidden       = "hidden"        // Mastodon hid it: dropped, fetches under way cut
	KindDeleted      = "deleted"       // Mastodon deleted it: tombstoned for good, dropped, fetches cut
)

// PurgePath is the admin path that purges key (a prefix for KindPrefixPurged) as kind says;
// entry, when not empty, names the record of the purge in the bucket's log. Forward passes it
// on to the peers, whose admin listener reads it back.
func PurgePath(kind, key, entry string) string {
	q := url.Values{}
	if entry != "" {
		q.Set("entry", entry)
	}
	switch kind {
	case KindPrefixPurged:
		q.Set("prefix", key)
	case KindDeleted:
		q.Set("key", key)
		q.Set("kind", kind)
		q.Set("tombstone", "1") // understood by replicas before the state log too
	case KindHidden:
		q.Set("key", key)
		q.Set("kind", kind)
	default:
		q.Set("key", key)
	}
	return "/purge?" + q.Encode()
}
