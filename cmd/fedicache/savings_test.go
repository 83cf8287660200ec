package main

import (
	"context"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/fedicache/fedicache/cache/state"
	"github.com/fedicache/fedicache/cmd/fedicache/config"
	"github.com/fedicache/fedicache/origin"
	"github.com/fedicache/fedicache/origin/origintest"
	"github.com/fedicache/fedicache/origin/s3/s3test"
	"github.com/fedicache/fedicache/proxy/admin"
)

// testCounters are a replica's counters, set by the test as its front would count.
type testCounters struct{ c admin.SavedCounts }

func (tc *testCounters) get() admin.SavedCounts { return tc.c }

// testPrices are the prices of the ledger tests: 0.09 a GiB, 0.0004 per 1,000 GETs.
var testPrices = config.CostConfig{EgressPerGiB: 0.09, GetPer1000: 0.0004, StoragePerGiBMonth: 0.023, Currency: "USD"}

// newTestLedger returns the ledger of replica name, started at the clock's time, publishing into
// fake through a client of its own, counting from tc.
func newTestLedger(t *testing.T, fake *origintest.FakeBucket, clock *origintest.Clock, name string, tc *testCounters) *savingsLedger {
	t.Helper()
	l := newSavingsLedger(s3test.New(t, fake), state.DefaultPrefix, name, clock.Now(), testPrices, clock.Now, discardLog())
	l.tap(tc.get)
	return l
}

// savingsKeys lists the published counts in fake.
func savingsKeys(t *testing.T, fake *origintest.FakeBucket) []string {
	t.Helper()
	var keys []string
	dir := state.DefaultPrefix + savingsDir
	err := s3test.New(t, fake).List(context.Background(), dir, func(o origin.Object) error {
		if strings.HasPrefix(o.Key, dir) {
			keys = append(keys, o.Key)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

func wantCounts(t *testing.T, what string, got, want admin.SavedCounts) {
	t.Helper()
	if got != want {
		t.Errorf("%s: %+v, want %+v", what, got, want)
	}
}

// TestSavingsAddUpAcrossReplicasAndRestarts: three replicas publish their day's counts into
// the bucket; each sums all of them. A restarted replica (a new name) writes beside its earlier
// counts, and the day keeps them. The day's end closes each replica's day; the month keeps it.
// A reread reads only the counts that changed.
func TestSavingsAddUpAcrossReplicasAndRestarts(t *testing.T) {
	ctx := context.Background()
	fake := origintest.NewFakeBucket(t)
	clock := origintest.NewClock(time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC))
	var ca, cb, cc testCounters
	a := newTestLedger(t, fake, clock, replicaName("fedicache-7d9f-a", clock.Now()), &ca)
	b := newTestLedger(t, fake, clock, replicaName("fedicache-7d9f-b", clock.Now()), &cb)
	c := newTestLedger(t, fake, clock, replicaName("fedicache-7d9f-c", clock.Now()), &cc)

	clock.Advance(time.Hour)
	ca.c = admin.SavedCounts{TierBytes: 1 << 30, TierRequests: 1000}
	cb.c = admin.SavedCounts{TierBytes: 2 << 30, TierRequests: 500, PeerBytes: 1 << 29, PeerRequests: 100}
	cc.c = admin.SavedCounts{PeerBytes: 3 << 20, PeerRequests: 3}
	for _, l := range []*savingsLedger{a, b, c} {
		l.publish(ctx)
	}
	if keys := savingsKeys(t, fake); len(keys) != 3 || !strings.HasPrefix(keys[0], "_fedicache/savings/2026-12-03/fedicache-7d9f-a-20261203T090000.000Z.json") {
		t.Fatalf("published %q, want one object per replica under _fedicache/savings/2026-12-03/", keys)
	}
	day := admin.SavedCounts{TierBytes: 3 << 30, TierRequests: 1500, PeerBytes: 1<<29 + 3<<20, PeerRequests: 103}
	for i, l := range []*savingsLedger{a, b, c} {
		if err := l.refresh(ctx); err != nil {
			t.Fatal(err)
		}
		s := l.snapshot()
		wantCounts(t, "replica "+string(rune('a'+i))+"'s day", s.Day.SavedCounts, day)
		wantCounts(t, "its month", s.Month.SavedCounts, day)
		if s.Counts != 3 || s.Day.EgressBytes != day.Bytes() || s.Day.Requests != 1603 {
			t.Errorf("replica %c: %d counts, %d bytes, %d requests", 'a'+i, s.Counts, s.Day.EgressBytes, s.Day.Requests)
		}
	}

	// Nothing changed: a reread lists, and reads no object again.
	key := func(l *savingsLedger, d string) string { return savingsKey(state.DefaultPrefix, d, l.replica) }
	gets := fake.Gets(key(b, "2026-12-03"))
	if err := a.refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if n := fake.Gets(key(b, "2026-12-03")); n != gets {
		t.Errorf("an unchanged count was read again: %d GETs, then %d", gets, n)
	}
	// b's counts grow: its object is read again, and only it.
	cb.c.TierRequests += 50
	b.publish(ctx)
	getsC := fake.Gets(key(c, "2026-12-03"))
	if err := a.refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if fake.Gets(key(b, "2026-12-03")) != gets+1 || fake.Gets(key(c, "2026-12-03")) != getsC {
		t.Errorf("after b's publish: b read %d more times, c %d more; want 1 and 0",
			fake.Gets(key(b, "2026-12-03"))-gets, fake.Gets(key(c, "2026-12-03"))-getsC)
	}
	day.TierRequests += 50
	wantCounts(t, "a's day after b's new counts", a.snapshot().Day.SavedCounts, day)

	// a is restarted: its last counts published at shutdown, a new name, counters from zero.
	ca.c.TierRequests += 7
	a.flush(ctx)
	clock.Advance(time.Minute)
	var ca2 testCounters
	a2 := newTestLedger(t, fake, clock, replicaName("fedicache-7d9f-a", clock.Now()), &ca2)
	if a2.replica == a.replica {
		t.Fatalf("the restarted replica has its first name %q", a.replica)
	}
	if err := a2.refresh(ctx); err != nil {
		t.Fatal(err)
	}
	day.TierRequests += 7
	wantCounts(t, "the restarted replica's day, before it counted anything", a2.snapshot().Day.SavedCounts, day)
	ca2.c = admin.SavedCounts{TierBytes: 10, TierRequests: 1}
	a2.publish(ctx)
	if keys := savingsKeys(t, fake); len(keys) != 4 {
		t.Errorf("after the restart: %q, want 4 objects (the first a's kept)", keys)
	}
	for _, l := range []*savingsLedger{b, a2} {
		if err := l.refresh(ctx); err != nil {
			t.Fatal(err)
		}
	}
	day = day.Add(admin.SavedCounts{TierBytes: 10, TierRequests: 1})
	wantCounts(t, "b's day with the restarted replica's", b.snapshot().Day.SavedCounts, day)

	// Midnight: the day's counts close; the new day starts from nothing, the month keeps both.
	clock.Set(time.Date(2026, 12, 4, 0, 0, 0, int(time.Millisecond), time.UTC))
	ca2.c.TierRequests += 2 // counted before midnight, sampled after: the day before's
	a2.publish(ctx)
	clock.Advance(time.Hour)
	ca2.c.TierRequests += 5
	a2.publish(ctx)
	if err := a2.refresh(ctx); err != nil {
		t.Fatal(err)
	}
	s := a2.snapshot()
	wantCounts(t, "the next day", s.Day.SavedCounts, admin.SavedCounts{TierRequests: 5})
	month := day.Add(admin.SavedCounts{TierRequests: 7})
	wantCounts(t, "the month", s.Month.SavedCounts, month)
	if s.Day.Start != time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC) || s.Month.Start != time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC) {
		t.Errorf("periods from %v and %v", s.Day.Start, s.Month.Start)
	}
	raw, err := fake.Object(key(a2, "2026-12-03"))
	if err != nil {
		t.Fatal(err)
	}
	var rec savingsRecord
	if err := json.Unmarshal(raw, &rec); err != nil || rec.Counts.TierRequests != 3 || rec.Day != "2026-12-03" {
		t.Errorf("the restarted replica's 3 December: %s (%v), want its 3 requests", raw, err)
	}
}

// TestSavingsMonthProjection: the month so far, scaled to the whole month by the time counted
// of it, at known times; with the prices' money.
func TestSavingsMonthProjection(t *testing.T) {
	fake := origintest.NewFakeBucket(t)
	// Counting from the month's start: 10 of December's 31 days counted, scaled by 3.1.
	clock := origintest.NewClock(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	var tc testCounters
	l := newTestLedger(t, fake, clock, "r1", &tc)
	clock.Advance(30 * time.Minute)
	tc.c = admin.SavedCounts{TierBytes: 10 << 30, TierRequests: 1_000_000}
	if s := l.snapshot(); s.MonthProjected != nil {
		t.Errorf("half an hour counted is projected: %+v", *s.MonthProjected)
	}
	clock.Set(time.Date(2026, 12, 11, 0, 0, 0, 0, time.UTC))
	s := l.snapshot()
	p := s.MonthProjected
	if p == nil || math.Abs(p.Scale-3.1) > 1e-9 || p.EgressBytes != 31<<30 || p.Requests != 3_100_000 {
		t.Fatalf("projection of 10 days: %+v", p)
	}
	if !p.Start.Equal(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)) || !p.End.Equal(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("projection from %v to %v", p.Start, p.End)
	}
	// 10 GiB at 0.09 and a million GETs at 0.0004 per 1,000: 0.90 + 0.40; projected 2.79 + 1.24.
	checkMoney(t, "the month", s.Month.Money, 0.9, 0.4)
	checkMoney(t, "the projection", p.Money, 2.79, 1.24)
	checkMoney(t, "the day", s.Day.Money, 0, 0) // nothing counted on the 11th yet
	if s.Storage != nil {
		t.Errorf("storage with nothing known of the bucket: %+v", *s.Storage)
	}

	// Counting began on the 21st: 5 days counted by the 26th, scaled by 31/5.
	clock.Set(time.Date(2026, 12, 21, 0, 0, 0, 0, time.UTC))
	var tc2 testCounters
	l2 := newTestLedger(t, fake, clock, "r2", &tc2)
	l2.stored = func() int64 { return 100 << 30 }
	clock.Set(time.Date(2026, 12, 26, 0, 0, 0, 0, time.UTC))
	tc2.c = admin.SavedCounts{TierRequests: 5000}
	s = l2.snapshot()
	if p := s.MonthProjected; p == nil || math.Abs(p.Scale-6.2) > 1e-9 || p.Requests != 31_000 {
		t.Errorf("projection of 5 days from the 21st: %+v", p)
	}
	if s.Storage == nil || s.Storage.Bytes != 100<<30 || math.Abs(s.Storage.PerMonth-2.3) > 1e-9 {
		t.Errorf("storage of 100 GiB at 0.023: %+v", s.Storage)
	}

	// A new month counts from nothing; an unpriced ledger has counts and no money.
	clock.Set(time.Date(2027, 1, 1, 0, 0, 0, int(time.Millisecond), time.UTC))
	l2.publish(context.Background()) // run's sample right after midnight
	tc2.c.TierRequests += 10
	clock.Set(time.Date(2027, 1, 1, 0, 30, 0, 0, time.UTC))
	s = l2.snapshot()
	if s.Month.Requests != 10 || s.MonthProjected != nil || s.Month.Start != time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC) {
		t.Errorf("January's first half hour: %d requests, projected %v, from %v", s.Month.Requests, s.MonthProjected, s.Month.Start)
	}
	unpriced := newSavingsLedger(nil, state.DefaultPrefix, "r3", clock.Now(), config.CostConfig{Currency: "USD"}, clock.Now, discardLog())
	if s := unpriced.snapshot(); s.Priced || s.Day.Money != nil || s.Month.Money != nil {
		t.Errorf("without prices: %+v", s)
	}
}

func checkMoney(t *testing.T, what string, m *admin.SavedMoney, egress, requests float64) {
	t.Helper()
	if m == nil {
		t.Errorf("%s: no money", what)
		return
	}
	if math.Abs(m.Egress-egress) > 1e-9 || math.Abs(m.Requests-requests) > 1e-9 || math.Abs(m.Total-egress-requests) > 1e-9 {
		t.Errorf("%s: %+v, want egress %v and requests %v", what, *m, egress, requests)
	}
}
