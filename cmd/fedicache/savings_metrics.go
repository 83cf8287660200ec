package main

import (
	"github.com/fedicache/fedicache/proxy/admin"
	"github.com/prometheus/client_golang/prometheus"
)

// registerSavingsMetrics exports the savings, read from snapshot at each scrape. They are the
// cluster's totals (every replica sums the others' published counts): aggregate them across
// replicas with max(), never sum().
func registerSavingsMetrics(reg prometheus.Registerer, snapshot func() admin.Savings) {
	reg.MustRegister(&savingsCollector{
		snapshot: snapshot,
		bytes: prometheus.NewDesc("fedicache_saved_egress_bytes",
			"Body bytes the bucket did not send because an answer came from a cache tier or an owner's tier, summed over the replicas, by period (day, month: the current UTC ones so far; month_projected).",
			[]string{"period"}, nil),
		requests: prometheus.NewDesc("fedicache_saved_requests",
			"Requests the bucket did not get because an answer came from a cache tier or an owner's tier, summed over the replicas, by period (day, month, month_projected).",
			[]string{"period"}, nil),
		money: prometheus.NewDesc("fedicache_saved_money",
			"Money those bytes (kind egress) and requests (kind requests) would have cost at the cost.* prices, by period; only for the kinds priced.",
			[]string{"period", "kind", "currency"}, nil),
		storage: prometheus.NewDesc("fedicache_storage_money_per_month",
			"What storing the bytes the copies of old stores put in the bucket costs a month at cost.storage_per_gib_month: what fedicache knows of the bucket's size.",
			[]string{"currency"}, nil),
	})
}

// savingsCollector exports the savings.
type savingsCollector struct {
	snapshot                        func() admin.Savings
	bytes, requests, money, storage *prometheus.Desc
}

func (c *savingsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.bytes
	ch <- c.requests
	ch <- c.money
	ch <- c.storage
}

func (c *savingsCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.snapshot()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	periods := []struct {
		name string
		p    *admin.SavedPeriod
	}{{"day", &s.Day}, {"month", &s.Month}, {"month_projected", s.MonthProjected}}
	for _, p := range periods {
		if p.p == nil {
			continue
		}
		gauge(c.bytes, float64(p.p.EgressBytes), p.name)
		gauge(c.requests, float64(p.p.Requests), p.name)
		if m := p.p.Money; m != nil {
			if s.Prices.EgressPerGiB > 0 {
				gauge(c.money, m.Egress, p.name, "egress", s.Currency)
			}
			if s.Prices.GetPer1000 > 0 {
				gauge(c.money, m.Requests, p.name, "requests", s.Currency)
			}
		}
	}
	if s.Storage != nil {
		gauge(c.storage, s.Storage.PerMonth, s.Currency)
	}
}

var _ prometheus.Collector = (*savingsCollector)(nil)
