// Package cache owns the tiers in front of the origin chain: Layered asks a memory tier, then a
// disk tier, then the origin, fetches each object once however many clients want it (they are
// served from that one fetch as it streams), keeps entries fresh by revalidation, serves stale
// entries while the origin fails, remembers what is not found for a short while, and purges.
package cache
