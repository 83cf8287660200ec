// Package cache owns the tiers in front of the origin chain: Layered asks a memory tier, then a
// disk tier, then the origin, fetches each object once however many clients want it (they are
// served from that one fetch as it streams), keeps entries fresh by revalidation, serves stale
// entries while the origin fails, remembers what is not found for a short while, purges, and
// asks its Guard (the tombstones of cache/state) before every answer and every store.
//
// Layered decides (layered.go, fetch.go, purge.go, revalidate.go); a stream (stream.go,
// ring.go) carries one fetched body to its readers and knows nothing of the cache. The tiers
// are cache/memory and cache/disk.
package cache
