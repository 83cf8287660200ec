// Package memory is the cache tier for small hot objects: whole bodies held in memory in a
// ristretto cache, bounded in bytes, with an admission policy (TinyLFU) that keeps what is
// asked for often. Peek serves a hit without allocating; the other methods implement
// cache.Tier.
package memory
