package admin_test

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fedicache/fedicache/proxy/admin"
)

// savingsAt returns the savings of a cluster that saved 3 GiB and 2.5 million requests in
// December so far, a tenth of it today, at AWS-like prices, with the copies' 200 GiB stored.
func savingsAt(now time.Time) admin.Savings {
	p := admin.SavingsPrices{EgressPerGiB: 0.09, GetPer1000: 0.0004, StoragePerGiBMonth: 0.023}
	day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	month := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	m := admin.SavedCounts{TierBytes: 2 << 30, TierRequests: 2_000_000, PeerBytes: 1 << 30, PeerRequests: 500_000}
	proj := p.Period(month, month.AddDate(0, 1, 0), m.Scale(3.1))
	proj.Scale = 3.1
	return admin.Savings{
		Currency: "USD", Prices: p, Priced: true,
		Day:            p.Period(day, now, m.Scale(0.1)),
		Month:          p.Period(month, now, m),
		MonthProjected: &proj,
		Storage:        p.Storage(200 << 30),
		Counts:         7,
		ReadAt:         now.Add(-2 * time.Minute),
	}
}

// TestStatusPageSavingsCard: the card "Saved" shows the month's money, the day's, the month's
// and the projection's money and counts, the storage of the copies, and where the figures
// come from; /status carries the same document.
func TestStatusPageSavingsCard(t *testing.T) {
	now := time.Date(2026, 12, 11, 12, 0, 0, 0, time.UTC)
	s := savingsAt(now)
	s.ReadAt = time.Now().Add(-2 * time.Minute) // the page measures the read's age on its own clock
	srv := httptest.NewServer(admin.New(admin.Config{
		Sections: map[string]func() any{admin.SavingsSection: func() any { return s }},
	}))
	defer srv.Close()
	resp, body := getPage(t, srv, "/")
	checkSelfContained(t, resp, body)
	body = strings.ReplaceAll(body, "\u00a0", " ") // money keeps to one line
	// 3 GiB at 0.09 and 2.5 million GETs at 0.0004 per 1,000: 0.27 + 1.00.
	checkContains(t, body, `id="saved"`, `id="saved-headline">1.27 USD<`, "saved in December so far, 3.94 USD projected for the month",
		`id="saved-day"`, "today (UTC)", "0.13 USD", "307 MiB not sent · 0.03 USD", "250,000 requests not asked · 0.10 USD",
		`id="saved-month"`, "December so far", "3.0 GiB not sent · 0.27 USD", "2,500,000 requests not asked · 1.00 USD",
		`id="saved-projected"`, "projected for December", "9.3 GiB not sent · 0.84 USD", "7,750,000 requests not asked · 3.10 USD",
		"the month so far × 3.10",
		"answers from memory and disk, December", "2,000,000 · 2.0 GiB",
		"answers from other replicas&#39; tiers, December", "500,000 · 1.0 GiB",
		`id="saved-storage">200 GiB in the bucket: 4.60 USD a month<`,
		"Summed over 7 published counts (a replica&#39;s day each, this one&#39;s live), read 2m ",
	)
	if strings.Contains(body, "Set cost.*") {
		t.Error("a priced card asks for prices")
	}
	var doc struct {
		Sections map[string]json.RawMessage `json:"sections"`
	}
	sresp, sbody := getPage(t, srv, "/status")
	if err := json.Unmarshal([]byte(sbody), &doc); sresp.StatusCode != 200 || err != nil {
		t.Fatalf("/status: %d %v", sresp.StatusCode, err)
	}
	var got admin.Savings
	if err := json.Unmarshal(doc.Sections[admin.SavingsSection], &got); err != nil {
		t.Fatalf("/status sections.savings: %v", err)
	}
	if got.Month.TierRequests != 2_000_000 || got.Month.Requests != 2_500_000 || got.Month.EgressBytes != 3<<30 ||
		got.Month.Money == nil || got.MonthProjected == nil || got.MonthProjected.Scale != 3.1 || got.Storage == nil || got.Counts != 7 {
		t.Errorf("/status savings: %+v", got)
	}
}

// TestStatusPageSavingsUnpriced: without prices the card shows the counts and says how to see
// money; what keeps the figures from being whole is said, as text.
func TestStatusPageSavingsUnpriced(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 20, 0, 0, time.UTC)
	var p admin.SavingsPrices
	c := admin.SavedCounts{TierBytes: 5 << 20, TierRequests: 12}
	s := admin.Savings{
		Currency: "EUR", Prices: p,
		Day:       p.Period(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), now, c),
		Month:     p.Period(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), now, c),
		Storage:   p.Storage(1 << 30), // no price: nil
		ReadError: `list _fedicache/savings/: <b>AccessDenied</b>`,
		Partial:   true,
		Counts:    1,
	}
	srv := httptest.NewServer(admin.New(admin.Config{
		Sections: map[string]func() any{admin.SavingsSection: func() any { return s }},
	}))
	defer srv.Close()
	resp, body := getPage(t, srv, "/")
	checkSelfContained(t, resp, body)
	checkContains(t, body, `id="saved-headline">5.0 MiB<`, "the bucket did not send in December so far",
		"Set cost.* to see money", "12 requests not asked", "after an hour of the month is counted",
		"could not be read (list _fedicache/savings/: &lt;b&gt;AccessDenied&lt;/b&gt;)",
		"more published counts than a replica reads", "Summed over 1 published count ")
	for _, bad := range []string{"EUR", "<b>AccessDenied", `id="saved-storage"`} {
		if strings.Contains(body, bad) {
			t.Errorf("the unpriced card holds %q", bad)
		}
	}
}

// TestStatusPageWithoutSavings: a process with no savings section (the backfill) has no card.
func TestStatusPageWithoutSavings(t *testing.T) {
	srv := httptest.NewServer(admin.NewBackfill(admin.Config{}))
	defer srv.Close()
	if _, body := getPage(t, srv, "/"); strings.Contains(body, `id="saved"`) {
		t.Error("a card Saved without savings")
	}
}
