package config

import (
	"fmt"
	"math"
	"unicode"
)

// CostConfig is what the bucket's provider charges (cost.*), for the money figures of what the
// cache saved. A price of zero shows the counts without money.
type CostConfig struct {
	// EgressPerGiB is the price of a GiB the bucket sends out (cost.egress_per_gib).
	EgressPerGiB float64
	// GetPer1000 is the price of 1,000 GET requests, class B at most providers (cost.get_per_1000).
	GetPer1000 float64
	// StoragePerGiBMonth is the price of a GiB stored for a month (cost.storage_per_gib_month).
	StoragePerGiBMonth float64
	// Currency labels the prices (cost.currency), e.g. USD.
	Currency string
}

// Priced reports whether the egress or the GET price is set: the money of what the cache saved
// needs one of them (the storage price alone prices the storage only).
func (c CostConfig) Priced() bool {
	return c.EgressPerGiB > 0 || c.GetPer1000 > 0
}

// maxCurrencyLen bounds cost.currency: a label, not a sentence.
const maxCurrencyLen = 8

// cost reads the cost.* keys.
func (r *reader) cost() CostConfig {
	return CostConfig{
		EgressPerGiB:       r.price("cost.egress_per_gib", "0.09"),
		GetPer1000:         r.price("cost.get_per_1000", "0.0004"),
		StoragePerGiBMonth: r.price("cost.storage_per_gib_month", "0.023"),
		Currency:           r.currency("cost.currency"),
	}
}

// price reads a price: a finite number of at least 0, from YAML (0.09, 1) or the environment
// ("0.09"). Its problem names the key and an example.
func (r *reader) price(key, example string) float64 {
	f, raw, err := r.float(key)
	switch {
	case err != nil || math.IsNaN(f) || math.IsInf(f, 0):
		r.fail("%s: %q is not a number: give the provider's price in cost.currency, e.g. %s: %s (0 shows the counts without money)", key, fmt.Sprint(raw), key, example)
	case f < 0:
		r.fail("%s: %q is negative: give the provider's price in cost.currency, at least 0, e.g. %s: %s (0 shows the counts without money)", key, fmt.Sprint(raw), key, example)
	default:
		return f
	}
	return 0
}

// currency reads the currency label: a few letters or a symbol, no spaces.
func (r *reader) currency(key string) string {
	s := r.str(key)
	ok := s != "" && len(s) <= maxCurrencyLen
	for _, c := range s {
		if unicode.IsSpace(c) || unicode.IsControl(c) {
			ok = false
		}
	}
	if !ok {
		r.fail("%s: %q is not a currency label: give a short one without spaces, e.g. %s: EUR", key, s, key)
		return ""
	}
	return s
}
