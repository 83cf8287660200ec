package main

// The counts behind the savings, taken where each is known exactly:
//   - the answers the front gave from its memory and disk tiers: its own counter of answers by
//     source (fedicache_requests_total{source="memory"|"disk"}, HEADs and 304s included, each a
//     request the bucket did not get), read from a registry of the front's collectors alone;
//   - their body bytes: proxy.Metrics.HitBytes (fedicache_response_bytes_total of those sources);
//   - with cluster.fill, the asks a key's owner answered from its own tiers, and their body
//     bytes, counted by the asking replica around its peer fill: without the owner's cache
//     each would have been a request to the bucket and its bytes the bucket's egress. The owner
//     does not count them (its front did not answer them), so nothing is counted twice.

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/fedicache/fedicache/cache"
	"github.com/fedicache/fedicache/cmd/fedicache/config"
	"github.com/fedicache/fedicache/origin"
	"github.com/fedicache/fedicache/origin/s3"
	"github.com/fedicache/fedicache/proxy/admin"
	"github.com/fedicache/fedicache/proxy/cluster"
	"github.com/prometheus/client_golang/prometheus"
)

// savings wires the ledger of serve: the taps on the front and the peer fill, the publishing,
// the section of /status and the metrics.
type savings struct {
	ledger   *savingsLedger
	front    *prometheus.Registry // the front's collectors, registered here too
	peers    *peerSaved           // nil without the peer fill
	hitBytes func() int64
	started  atomic.Bool
}

// newSavings returns the savings of a serve started now, publishing under cfg's state prefix
// in bucket (when it has credentials to write there).
func newSavings(cfg config.Config, bucket *s3.Bucket, log *slog.Logger) *savings {
	started := time.Now()
	host, _ := hostName()
	var store progressStore
	notShared := ""
	if view, err := bucket.StateView(); err == nil {
		store = view
	} else {
		notShared = "This replica has no credentials to write fedicache's state in the bucket: its figures are its own, since it started."
	}
	l := newSavingsLedger(store, cfg.StatePrefix, replicaName(host, started), started, cfg.Cost, nil, log)
	l.notShared = notShared
	return &savings{ledger: l, front: prometheus.NewRegistry()}
}

// countFront returns the registerer to hand the front's collectors (proxy.NewMetrics): they are
// registered with reg and with the savings' own registry, where its answers are read.
func (s *savings) countFront(reg prometheus.Registerer) prometheus.Registerer {
	return teeRegisterer{reg, s.front}
}

// countPeers returns fill, counting the asks its owners answer from their tiers.
func (s *savings) countPeers(fill *cluster.PeerFill) origin.Sourced {
	s.peers = &peerSaved{PeerFill: fill}
	return s.peers
}

// start taps the counters (hitBytes: proxy.Metrics.HitBytes), registers the metrics with reg,
// and publishes and reads the counts until ctx ends; board, when not nil, tells the bytes the
// copies put in the bucket. It returns the section of /status.
func (s *savings) start(ctx context.Context, reg prometheus.Registerer, hitBytes func() int64, board *progressBoard) func() any {
	s.hitBytes = hitBytes
	s.ledger.mu.Lock()
	if board != nil {
		s.ledger.stored = func() int64 {
			var n int64
			for _, m := range board.migrations() {
				n += max(m.BytesDone, 0)
			}
			return n
		}
	}
	s.ledger.mu.Unlock()
	s.ledger.tap(s.counts)
	registerSavingsMetrics(reg, s.ledger.snapshot)
	s.started.Store(true)
	go s.ledger.run(ctx)
	return func() any { return s.ledger.snapshot() }
}

// flush publishes the last counts, at shutdown (ctx may have ended); nothing when start was
// not reached.
func (s *savings) flush(ctx context.Context) {
	if s.started.Load() {
		s.ledger.flush(ctx)
	}
}

// counts returns the process's counters since it started.
func (s *savings) counts() admin.SavedCounts {
	c := admin.SavedCounts{TierBytes: uint64(max(s.hitBytes(), 0)), TierRequests: tierAnswers(s.front)}
	if s.peers != nil {
		c.PeerBytes, c.PeerRequests = s.peers.bytes.Load(), s.peers.requests.Load()
	}
	return c
}

// tierAnswers sums the front's answers from its memory and disk tiers in reg.
func tierAnswers(reg prometheus.Gatherer) uint64 {
	mfs, err := reg.Gather()
	if err != nil {
		return 0
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() != "fedicache_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "source" && (lp.GetValue() == string(cache.SourceMemory) || lp.GetValue() == string(cache.SourceDisk)) {
					n += m.GetCounter().GetValue()
				}
			}
		}
	}
	return uint64(n)
}

// teeRegisterer registers every collector with both of its registerers.
type teeRegisterer [2]prometheus.Registerer

func (t teeRegisterer) Register(c prometheus.Collector) error {
	if err := t[0].Register(c); err != nil {
		return err
	}
	if err := t[1].Register(c); err != nil {
		t[0].Unregister(c)
		return err
	}
	return nil
}

func (t teeRegisterer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := t.Register(c); err != nil {
			panic(err)
		}
	}
}

func (t teeRegisterer) Unregister(c prometheus.Collector) bool {
	a := t[0].Unregister(c)
	b := t[1].Unregister(c)
	return a || b
}

// peerSaved is the peer fill, counting the asks that owners answered from their memory or disk
// tier (X-Fedicache-Source), and the body bytes of those answers.
type peerSaved struct {
	*cluster.PeerFill
	requests, bytes atomic.Uint64
}

// fromOwnerTier reports whether an answer came from an owner's tier.
func fromOwnerTier(from origin.From) bool {
	return from.Source == origin.SourcePeer && (from.Peer == cache.SourceMemory || from.Peer == cache.SourceDisk)
}

// GetFrom implements origin.Sourced.
func (p *peerSaved) GetFrom(ctx context.Context, key string, r *origin.Range) (io.ReadCloser, origin.Meta, origin.From, error) {
	body, m, from, err := p.PeerFill.GetFrom(ctx, key, r)
	if err == nil && fromOwnerTier(from) {
		p.requests.Add(1)
		body = &countedBody{ReadCloser: body, n: &p.bytes}
	}
	return body, m, from, err
}

// StatFrom implements origin.Sourced.
func (p *peerSaved) StatFrom(ctx context.Context, key string) (origin.Meta, origin.From, error) {
	m, from, err := p.PeerFill.StatFrom(ctx, key)
	if err == nil && fromOwnerTier(from) {
		p.requests.Add(1)
	}
	return m, from, err
}

// Get implements origin.Origin.
func (p *peerSaved) Get(ctx context.Context, key string, r *origin.Range) (io.ReadCloser, origin.Meta, error) {
	body, m, _, err := p.GetFrom(ctx, key, r)
	return body, m, err
}

// Stat implements origin.Origin.
func (p *peerSaved) Stat(ctx context.Context, key string) (origin.Meta, error) {
	m, _, err := p.StatFrom(ctx, key)
	return m, err
}

// countedBody counts the bytes read from a body into n.
type countedBody struct {
	io.ReadCloser
	n *atomic.Uint64
}

func (b *countedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(uint64(n))
	return n, err
}

var (
	_ origin.Sourced        = (*peerSaved)(nil)
	_ origin.Revalidator    = (*peerSaved)(nil)
	_ origin.Pinger         = (*peerSaved)(nil)
	_ prometheus.Registerer = teeRegisterer{}
)
