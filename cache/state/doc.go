// Package state owns what every replica must agree on about Mastodon's deletions and hidings,
// kept in the bucket under the state prefix so that no replica depends on having heard a peer:
//
//   - tombstones/<sha256 of the key>: one small object per key Mastodon deleted (permanent);
//   - log/<time>-<writer>-<kind>-<key>: one small object per bust or cluster purge, named by
//     the time it was recorded so that a replica lists only what is new since its last look;
//   - snapshot/<time>.bin: every tombstone as a sorted list of hashes, so that a replica loads a
//     million of them with one GET.
//
// State loads them at start (the replica serves nothing until it has), applies what is new in
// the log every refresh (dropping busted keys from the cache tiers and cutting their fetches
// under way), answers the cache's Guard (a tombstoned key is never served from anywhere) and
// compacts the log into snapshots. A message from a peer is a shortcut; the log is the record.
package state
