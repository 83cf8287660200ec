package admin

// What the cache saved the bucket's bill, as /status carries it (the section SavingsSection) and
// the status page's card "Saved" shows it. The command counts and sums the figures (across the
// replicas, through the bucket); this file holds their document and the arithmetic of money.

import (
	"math"
	"time"
)

// SavingsSection is the name of /status's section (Config.Sections) that holds a Savings: the
// status page shows the card "Saved" when its value is one.
const SavingsSection = "savings"

// bytesPerGiB is what the prices per GiB are per.
const bytesPerGiB = 1 << 30

// Savings is what the cache saved, counted (never estimated from a hit ratio) and summed over
// every replica that published its counts, for the current UTC day, the current UTC month and
// the month projected, with the money the prices make of it.
type Savings struct {
	// Currency labels every money figure (cost.currency).
	Currency string        `json:"currency"`
	Prices   SavingsPrices `json:"prices"`
	// Priced is set when an egress or a GET price is: without, the money figures of the
	// periods are left out and the counts are shown alone.
	Priced bool        `json:"priced"`
	Day    SavedPeriod `json:"day"`
	Month  SavedPeriod `json:"month"`
	// MonthProjected is the month so far scaled to the whole month (see SavedPeriod.Scale);
	// nil until an hour of the month has been counted.
	MonthProjected *SavedPeriod `json:"month_projected,omitempty"`
	// Storage is what storing the bytes fedicache knows the bucket holds costs a month; nil
	// when it knows of none or no storage price is set.
	Storage *StorageCost `json:"storage,omitempty"`
	// Counts is how many published counts (one replica's day each) the figures sum, this
	// replica's own included.
	Counts int `json:"counts"`
	// ReadAt is when the month's published counts were last read; ReadError is why the last
	// read failed (the figures then hold the counts read before).
	ReadAt    time.Time `json:"read_at"`
	ReadError string    `json:"read_error,omitempty"`
	// Partial is set when the month holds more published counts than a replica reads: the
	// figures leave the rest out.
	Partial bool `json:"partial,omitempty"`
	// PublishedAt is when this replica last published its counts; PublishError why the last
	// publish failed (they are published again at the next).
	PublishedAt  time.Time `json:"published_at"`
	PublishError string    `json:"publish_error,omitempty"`
	// NotShared says why this replica neither publishes nor reads counts (no credentials to
	// write fedicache's state): its figures are its own, since it started.
	NotShared string `json:"not_shared,omitempty"`
}

// SavingsPrices are the bucket's prices (cost.*), in Savings.Currency.
type SavingsPrices struct {
	EgressPerGiB       float64 `json:"egress_per_gib"`
	GetPer1000         float64 `json:"get_per_1000"`
	StoragePerGiBMonth float64 `json:"storage_per_gib_month"`
}

// Priced reports whether the egress or the GET price is set: what the periods' money needs.
func (p SavingsPrices) Priced() bool {
	return p.EgressPerGiB > 0 || p.GetPer1000 > 0
}

// SavedCounts are what the cache saved over some time: answers the bucket did not give and
// their body bytes, which it did not send.
type SavedCounts struct {
	// TierBytes and TierRequests are the body bytes and the answers the public fronts sent
	// from their memory and disk tiers (HITs, STALE answers included).
	TierBytes    uint64 `json:"tier_bytes"`
	TierRequests uint64 `json:"tier_requests"`
	// PeerBytes and PeerRequests are the body bytes and the answers key owners sent another
	// replica from their own tiers (cluster.fill), which that replica would have asked of the
	// bucket.
	PeerBytes    uint64 `json:"peer_bytes"`
	PeerRequests uint64 `json:"peer_requests"`
}

// Bytes is the egress the bucket did not send.
func (c SavedCounts) Bytes() uint64 { return c.TierBytes + c.PeerBytes }

// Requests is the requests the bucket did not get.
func (c SavedCounts) Requests() uint64 { return c.TierRequests + c.PeerRequests }

// Add returns c plus d.
func (c SavedCounts) Add(d SavedCounts) SavedCounts {
	return SavedCounts{
		TierBytes: c.TierBytes + d.TierBytes, TierRequests: c.TierRequests + d.TierRequests,
		PeerBytes: c.PeerBytes + d.PeerBytes, PeerRequests: c.PeerRequests + d.PeerRequests,
	}
}

// Since returns c's increase over prev, counter by counter; a counter lower than before was
// reset, and its increase is what it counted since.
func (c SavedCounts) Since(prev SavedCounts) SavedCounts {
	d := func(cur, old uint64) uint64 {
		if cur < old {
			return cur
		}
		return cur - old
	}
	return SavedCounts{
		TierBytes: d(c.TierBytes, prev.TierBytes), TierRequests: d(c.TierRequests, prev.TierRequests),
		PeerBytes: d(c.PeerBytes, prev.PeerBytes), PeerRequests: d(c.PeerRequests, prev.PeerRequests),
	}
}

// Scale returns c times f, each count rounded.
func (c SavedCounts) Scale(f float64) SavedCounts {
	s := func(n uint64) uint64 { return uint64(math.Round(float64(n) * f)) }
	return SavedCounts{TierBytes: s(c.TierBytes), TierRequests: s(c.TierRequests), PeerBytes: s(c.PeerBytes), PeerRequests: s(c.PeerRequests)}
}

// SavedPeriod is what the cache saved from Start to End (UTC): a day, a month, or a month
// projected.
type SavedPeriod struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	SavedCounts
	// EgressBytes and Requests are the totals of the counts: the bytes the bucket did not
	// send and the requests it did not get.
	EgressBytes uint64 `json:"egress_bytes"`
	Requests    uint64 `json:"requests"`
	// Scale is, for a projection, what the month so far was multiplied by: the month's length
	// over the time counted of it (from its start, or from the first count when counting
	// began later). Zero for what was counted.
	Scale float64     `json:"scale,omitempty"`
	Money *SavedMoney `json:"money,omitempty"`
}

// SavedMoney is what the prices make of a period's counts.
type SavedMoney struct {
	Egress   float64 `json:"egress"`
	Requests float64 `json:"requests"`
	Total    float64 `json:"total"`
}

// Period returns the period from start to end that c counts, with its money at p (none when
// p has neither an egress nor a GET price).
func (p SavingsPrices) Period(start, end time.Time, c SavedCounts) SavedPeriod {
	sp := SavedPeriod{Start: start.UTC(), End: end.UTC(), SavedCounts: c, EgressBytes: c.Bytes(), Requests: c.Requests()}
	if p.Priced() {
		m := SavedMoney{
			Egress:   float64(c.Bytes()) / bytesPerGiB * p.EgressPerGiB,
			Requests: float64(c.Requests()) / 1000 * p.GetPer1000,
		}
		m.Total = m.Egress + m.Requests
		sp.Money = &m
	}
	return sp
}

// StorageCost is what storing the bytes fedicache knows the bucket holds costs a month.
type StorageCost struct {
	// Bytes is what fedicache knows of the bucket's size: the bytes of the old stores that
	// the bucket holds, as their copies (backfill) counted them. Media Mastodon uploaded to the
	// bucket itself is not in it.
	Bytes int64 `json:"bytes"`
	// PerMonth is Bytes at the storage price, for a month.
	PerMonth float64 `json:"per_month"`
}

// Storage returns what storing bytes costs a month at p; nil when bytes or the price is not
// known.
func (p SavingsPrices) Storage(bytes int64) *StorageCost {
	if bytes <= 0 || p.StoragePerGiBMonth <= 0 {
		return nil
	}
	return &StorageCost{Bytes: bytes, PerMonth: float64(bytes) / bytesPerGiB * p.StoragePerGiBMonth}
}
