package admin

import (
	"strings"
	"testing"
	"time"
)

func TestMoneyAsShown(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		cur  string
		want string
	}{
		{0, "USD", "0.00 USD"},
		{0.004, "USD", "< 0.01 USD"},
		{0.005, "USD", "0.01 USD"},
		{1.276, "EUR", "1.28 EUR"},
		{1234567.891, "USD", "1,234,567.89 USD"},
		{12.3, "$", "$12.30"},
		{0.0001, "€", "< €0.01"},
		{-3, "USD", "0.00 USD"},
	} {
		if got := strings.ReplaceAll(money(tc.v, tc.cur), "\u00a0", " "); got != tc.want {
			t.Errorf("money(%v, %q) = %q, want %q", tc.v, tc.cur, got, tc.want)
		}
	}
}

// TestSavedPeriodMoney: a period's money is its bytes in GiB times the egress price plus its
// requests in thousands times the GET price; no price, no money.
func TestSavedPeriodMoney(t *testing.T) {
	start := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	c := SavedCounts{TierBytes: 3 << 30, TierRequests: 1500, PeerBytes: 1 << 30, PeerRequests: 500}
	p := SavingsPrices{EgressPerGiB: 0.5, GetPer1000: 2}
	got := p.Period(start, start.Add(time.Hour), c)
	if got.EgressBytes != 4<<30 || got.Requests != 2000 || got.Money == nil || *got.Money != (SavedMoney{Egress: 2, Requests: 4, Total: 6}) {
		t.Errorf("priced period: %+v %+v", got, got.Money)
	}
	if got := (SavingsPrices{}).Period(start, start, c); got.Money != nil || got.Requests != 2000 {
		t.Errorf("unpriced period: %+v", got)
	}
	if s := (SavingsPrices{StoragePerGiBMonth: 0.02}).Storage(50 << 30); s == nil || s.PerMonth != 1 {
		t.Errorf("storage: %+v", s)
	}
	if s := (SavingsPrices{StoragePerGiBMonth: 0.02}).Storage(0); s != nil {
		t.Errorf("storage of nothing known: %+v", s)
	}
	if got := (SavedCounts{TierBytes: 5}).Since(SavedCounts{TierBytes: 9}); got.TierBytes != 5 {
		t.Errorf("a counter that went back counts from its reset: %+v", got)
	}
}

// TestStoragePriceAlone: a storage price alone prices the storage, not the periods.
func TestStoragePriceAlone(t *testing.T) {
	p := SavingsPrices{StoragePerGiBMonth: 0.007}
	if p.Priced() || p.Period(time.Time{}, time.Time{}, SavedCounts{TierBytes: 1 << 30}).Money != nil {
		t.Error("a storage price alone gives the periods money")
	}
	if s := p.Storage(1000 << 30); s == nil || s.PerMonth != 7 {
		t.Errorf("storage: %+v", s)
	}
}
