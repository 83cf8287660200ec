package admin

import (
	"math"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/dustin/go-humanize"
)

// savingsView is the card "Saved": the money the cache saved and the counts behind it, for the
// day, the month and the month projected.
type savingsView struct {
	Headline, HeadlineNote string
	Periods                []savedPeriodView
	// Unpriced is set when no price is: the card shows the counts and says how to see money.
	Unpriced  bool
	Breakdown []stat
	// Storage is what storing the bytes fedicache knows of costs a month ("" for nothing).
	Storage string
	Notes   []savingsNote
	Basis   string
}

// savedPeriodView is one period's figures: the total (money, or bytes when unpriced) and the
// two counts with their money.
type savedPeriodView struct {
	ID, Label, Range string
	Total            string
	Egress, Requests string
}

// savingsNote is a line about the figures, with its colour class ("" for muted).
type savingsNote struct{ Class, Text string }

// savingsOf returns the Savings that st's section SavingsSection holds, if it holds one.
func savingsOf(st Status) (Savings, bool) {
	switch s := st.Sections[SavingsSection].(type) {
	case Savings:
		return s, true
	case *Savings:
		if s != nil {
			return *s, true
		}
	}
	return Savings{}, false
}

// newSavingsView formats s for the page, as of now.
func newSavingsView(s Savings, now time.Time) *savingsView {
	cur := s.Currency
	month := s.Month.Start.Format("January")
	v := &savingsView{Unpriced: !s.Priced}
	if s.Priced && s.Month.Money != nil {
		v.Headline = money(s.Month.Money.Total, cur)
		v.HeadlineNote = "saved in " + month + " so far"
		if p := s.MonthProjected; p != nil && p.Money != nil {
			v.HeadlineNote += ", " + money(p.Money.Total, cur) + " projected for the month"
		}
	} else {
		v.Headline = humanBytes(int64(min(s.Month.EgressBytes, math.MaxInt64)))
		v.HeadlineNote = "the bucket did not send in " + month + " so far"
	}
	v.Periods = []savedPeriodView{
		newSavedPeriodView("day", "today (UTC)", s.Day, s, cur),
		newSavedPeriodView("month", month+" so far", s.Month, s, cur),
	}
	if p := s.MonthProjected; p != nil {
		pv := newSavedPeriodView("projected", "projected for "+month, *p, s, cur)
		pv.Range += ", the month so far × " + strconv.FormatFloat(p.Scale, 'f', 2, 64)
		v.Periods = append(v.Periods, pv)
	} else {
		v.Periods = append(v.Periods, savedPeriodView{ID: "projected", Label: "projected for " + month, Total: "–",
			Egress: "after an hour of the month is counted"})
	}
	m := s.Month.SavedCounts
	v.Breakdown = []stat{
		{"answers from memory and disk, " + month, humanize.Comma(int64(min(m.TierRequests, math.MaxInt64))) + " · " + humanBytes(int64(min(m.TierBytes, math.MaxInt64)))},
	}
	if m.PeerRequests > 0 {
		v.Breakdown = append(v.Breakdown, stat{"answers from other replicas' tiers, " + month,
			humanize.Comma(int64(min(m.PeerRequests, math.MaxInt64))) + " · " + humanBytes(int64(min(m.PeerBytes, math.MaxInt64)))})
	}
	if st := s.Storage; st != nil {
		v.Storage = humanBytes(st.Bytes) + " in the bucket: " + money(st.PerMonth, cur) + " a month"
	}
	if v.Unpriced {
		v.Notes = append(v.Notes, savingsNote{"", "Set cost.* to see money (cost.egress_per_gib, cost.get_per_1000): the counts are shown alone. Leave them at 0 for a provider that bills neither egress nor requests."})
	}
	if s.NotShared != "" {
		v.Notes = append(v.Notes, savingsNote{"warn", s.NotShared})
	}
	if s.ReadError != "" {
		v.Notes = append(v.Notes, savingsNote{"warn", "The replicas' published counts could not be read (" + s.ReadError + "): the figures hold those read before."})
	}
	if s.Partial {
		v.Notes = append(v.Notes, savingsNote{"warn", "The month holds more published counts than a replica reads: the figures leave the rest out."})
	}
	if s.PublishError != "" {
		v.Notes = append(v.Notes, savingsNote{"warn", "This replica's counts could not be published (" + s.PublishError + "): it tries again every minute."})
	}
	if s.NotShared == "" {
		counts := strconv.Itoa(s.Counts) + " published counts"
		if s.Counts == 1 {
			counts = "1 published count"
		}
		v.Basis = "Summed over " + counts + " (a replica's day each, this one's live)"
		if !s.ReadAt.IsZero() {
			v.Basis += ", read " + humanDuration(now.Sub(s.ReadAt)) + " ago"
		}
		v.Basis += "."
	}
	return v
}

// newSavedPeriodView formats one period of s.
func newSavedPeriodView(id, label string, p SavedPeriod, s Savings, cur string) savedPeriodView {
	pv := savedPeriodView{
		ID: id, Label: label,
		Range:    p.Start.Format("2 Jan 15:04") + " to " + p.End.Format("2 Jan 15:04") + " UTC",
		Egress:   humanBytes(int64(min(p.EgressBytes, math.MaxInt64))) + " not sent",
		Requests: requests(p.Requests) + " not asked",
	}
	if m := p.Money; m != nil {
		pv.Total = money(m.Total, cur)
		if s.Prices.EgressPerGiB > 0 {
			pv.Egress += " · " + money(m.Egress, cur)
		}
		if s.Prices.GetPer1000 > 0 {
			pv.Requests += " · " + money(m.Requests, cur)
		}
	} else {
		pv.Total = humanBytes(int64(min(p.EgressBytes, math.MaxInt64)))
		pv.Egress = "not sent by the bucket"
	}
	return pv
}

// requests is n requests, in words.
func requests(n uint64) string {
	if n == 1 {
		return "1 request"
	}
	return humanize.Comma(int64(min(n, math.MaxInt64))) + " requests"
}

// nbsp keeps a sum of money on one line.
const nbsp = "\u00a0"

// money is v in cur: two decimals with thousands separated ("1,234.50 USD"), "< 0.01" for a
// sum above nothing that rounds to none, and a symbol of one character before the number
// ("$12.34"); the spaces in it do not break.
func money(v float64, cur string) string {
	less := v > 0 && v < 0.005
	n := "0.01"
	if !less {
		cents := int64(math.Round(max(v, 0) * 100))
		n = humanize.Comma(cents/100) + "." + strconv.FormatInt(100+cents%100, 10)[1:]
	}
	if r, size := utf8.DecodeRuneInString(cur); size == len(cur) && size > 0 && !unicode.IsLetter(r) {
		n = cur + n
	} else {
		n += nbsp + cur
	}
	if less {
		return "<" + nbsp + n
	}
	return n
}

// newSavingsCard returns the card "Saved" of st, as of now; nil when st holds no savings.
func newSavingsCard(st Status, now time.Time) *savingsView {
	s, ok := savingsOf(st)
	if !ok {
		return nil
	}
	return newSavingsView(s, now)
}
