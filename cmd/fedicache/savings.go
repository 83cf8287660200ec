package main

// What the cache saved the bucket's bill, per UTC day and month, across the replicas. Each
// replica counts what it saved (savings_counts.go), attributes the counts to the UTC day they
// were taken in, and publishes its day under the state prefix, as progress.go publishes a
// copy's progress: <state_prefix>savings/<yyyy-mm-dd>/<replica>.json, every minute while the
// counts grow and once more at shutdown. The replica's name is its host name and the time it
// started, so that a restarted pod writes a new object beside its earlier counts instead of
// over them. Every replica lists the month's objects every few minutes (reading again only
// those that changed) and sums them with its own live counts: the figures survive restarts and
// add up across replicas, and every replica shows the same.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fedicache/fedicache/cmd/fedicache/config"
	"github.com/fedicache/fedicache/origin"
	"github.com/fedicache/fedicache/proxy/admin"
	"golang.org/x/sync/errgroup"
)

// savingsDir is the folder, under the state prefix, of the published counts: one folder per
// UTC day, one object per replica in it.
const savingsDir = "savings/"

// savingsEvery is how often a replica publishes its counts (when they grew); savingsReadEvery
// how often it reads the month's published counts back. Variables for the tests.
var (
	savingsEvery     = time.Minute
	savingsReadEvery = 5 * time.Minute
)

// Bounds of what a replica reads back: the month's first savingsMaxObjects objects (a month of
// 31 days holds 160 replicas' days), each at most savingsMaxBytes (a published count is about
// 300 bytes), at most savingsReaders at a time.
const (
	savingsMaxObjects = 5000
	savingsMaxBytes   = 4 << 10
	savingsReaders    = 8
)

// savingsProjectAfter is how much of the month must be counted before it is projected to the
// whole month: an hour's counts scaled by 700 say little.
const savingsProjectAfter = time.Hour

// savingsKeepDays bounds the ended days a replica keeps while the bucket refuses them.
const savingsKeepDays = 3

// dayLayout names a UTC day, monthLayout a UTC month.
const (
	dayLayout   = "2006-01-02"
	monthLayout = "2006-01"
)

// savingsRecord is one replica's counts of one UTC day, as published.
type savingsRecord struct {
	Replica string `json:"replica"`
	Day     string `json:"day"` // yyyy-mm-dd, UTC
	// Since is when these counts began: the day's start, or the replica's when it started later.
	Since   time.Time         `json:"since"`
	Updated time.Time         `json:"updated"`
	Counts  admin.SavedCounts `json:"counts"`
}

// savingsKey is the key, under the state prefix, of replica's counts of day.
func savingsKey(statePrefix, day, replica string) string {
	return statePrefix + savingsDir + day + "/" + replica + ".json"
}

// replicaName is the name a replica publishes its counts under: the host name and the time it
// started, to the millisecond, so that a restarted pod never writes over its earlier counts.
func replicaName(host string, started time.Time) string {
	host = strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '.', r == '_':
			return r
		}
		return '_'
	}, host)
	if host == "" {
		host = "fedicache"
	}
	return host + "-" + started.UTC().Format("20060102T150405.000Z")
}

func dayStart(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

func monthStart(t time.Time) time.Time {
	y, m, _ := t.UTC().Date()
	return time.Date(y, m, 1, 0, 0, 0, 0, time.UTC)
}

// savingsLedger is one replica's counts of what the cache saved, day by day, and what the other
// replicas published, read back.
//
// Lock order: pub, then mu.
type savingsLedger struct {
	store       progressStore // nil: the counts are neither published nor read (see notShared)
	statePrefix string
	replica     string
	started     time.Time
	prices      admin.SavingsPrices
	currency    string
	clock       func() time.Time
	log         *slog.Logger
	notShared   string
	// every and readEvery are savingsEvery and savingsReadEvery when the ledger was made.
	every, readEvery time.Duration

	pub sync.Mutex // held while publishing, so that publishes never overlap

	mu sync.Mutex
	// counters returns the process's counters since it started; nil until they are tapped.
	counters func() admin.SavedCounts
	// stored returns the bytes fedicache knows the bucket holds (0 when it knows none).
	stored func() int64
	last   admin.SavedCounts // the counters at the last sample
	day    time.Time         // the start of the day the counts go to
	since  time.Time         // when the day's counts began
	today  admin.SavedCounts
	// ended are the days that ended and are not published yet, oldest first.
	ended []savingsRecord
	// publishedDay and published are the day and the counts last published of it.
	publishedDay string
	published    admin.SavedCounts
	publishedAt  time.Time
	publishErr   error
	// read are the month's published counts (readMonth), by key, with their ETags.
	readMonth string
	read      map[string]readSavings
	readAt    time.Time
	readErr   error
	partial   bool
}

// readSavings is a published count read back, with the ETag it was listed with ("" for one
// this replica wrote since: read again at the next listing).
type readSavings struct {
	etag string
	rec  savingsRecord
}

// newSavingsLedger returns the ledger of the replica named replica, started at started, which
// publishes to store (nil: nowhere). Its counters are tapped by tap.
func newSavingsLedger(store progressStore, statePrefix, replica string, started time.Time, cost config.CostConfig,
	clock func() time.Time, log *slog.Logger) *savingsLedger {
	if clock == nil {
		clock = time.Now
	}
	return &savingsLedger{
		store: store, statePrefix: statePrefix, replica: replica, started: started, clock: clock, log: log,
		prices: admin.SavingsPrices{
			EgressPerGiB: cost.EgressPerGiB, GetPer1000: cost.GetPer1000, StoragePerGiBMonth: cost.StoragePerGiBMonth,
		},
		currency: cost.Currency,
		every:    savingsEvery, readEvery: savingsReadEvery,
		day:    dayStart(started),
		since:  started.UTC(),
		stored: func() int64 { return 0 },
	}
}

// tap makes counters the ledger's source, counting from their values now.
func (l *savingsLedger) tap(counters func() admin.SavedCounts) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.counters = counters
	l.last = counters()
}

// sampleLocked adds what the counters counted since the last sample to the current day, and
// ends the day when now is in another: what was counted between a sample before midnight and
// one after it goes to the day before (run samples at midnight, so that is little).
func (l *savingsLedger) sampleLocked(now time.Time) {
	if l.counters != nil {
		cur := l.counters()
		l.today = l.today.Add(cur.Since(l.last))
		l.last = cur
	}
	if d := dayStart(now); d.After(l.day) {
		if l.today != (admin.SavedCounts{}) {
			end := l.day.AddDate(0, 0, 1)
			l.ended = append(l.ended, savingsRecord{Replica: l.replica, Day: l.day.Format(dayLayout), Since: l.since, Updated: end, Counts: l.today})
			if n := len(l.ended) - savingsKeepDays; n > 0 {
				l.log.Warn("savings: the bucket refused the counts of days that ended; the oldest are dropped", "days", n)
				l.ended = l.ended[n:]
			}
		}
		l.day, l.since, l.today = d, d, admin.SavedCounts{}
	}
}

// todayLocked is the current day's record as of now.
func (l *savingsLedger) todayLocked(now time.Time) savingsRecord {
	return savingsRecord{Replica: l.replica, Day: l.day.Format(dayLayout), Since: l.since, Updated: now.UTC(), Counts: l.today}
}

// publish writes the days that ended and are not published yet, and the current day when its
// counts grew since it was last published (or it was not published yet).
func (l *savingsLedger) publish(ctx context.Context) {
	l.pub.Lock()
	defer l.pub.Unlock()
	l.mu.Lock()
	now := l.clock()
	l.sampleLocked(now)
	ended := slices.Clone(l.ended)
	cur := l.todayLocked(now)
	// A day's first publish goes out even with nothing counted: it tells when the replica began
	// counting (the projection's start). Later ones only when the counts grew.
	writeCur := cur.Day != l.publishedDay || cur.Counts != l.published
	l.mu.Unlock()
	if l.store == nil {
		return
	}
	var err error
	var written []savingsRecord
	for _, r := range ended {
		if err = l.put(ctx, r); err != nil {
			break
		}
		written = append(written, r)
	}
	if err == nil && writeCur {
		if err = l.put(ctx, cur); err == nil {
			written = append(written, cur)
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ended = slices.DeleteFunc(l.ended, func(e savingsRecord) bool {
		return slices.ContainsFunc(written, func(w savingsRecord) bool { return w.Day == e.Day })
	})
	for _, r := range written {
		// Counted from the cache until the next listing reads it back.
		if l.read != nil && strings.HasPrefix(r.Day, l.readMonth+"-") {
			l.read[savingsKey(l.statePrefix, r.Day, l.replica)] = readSavings{rec: r}
		}
	}
	if err == nil {
		if writeCur {
			l.publishedDay, l.published = cur.Day, cur.Counts
		}
		l.publishedAt = now
	}
	if err != nil && ctx.Err() == nil {
		l.log.Warn("savings: could not publish this replica's counts; they are published again at the next", "err", err)
	}
	l.publishErr = err
}

// put writes r.
func (l *savingsLedger) put(ctx context.Context, r savingsRecord) error {
	body, err := json.Marshal(r)
	if err != nil {
		return err
	}
	key := savingsKey(l.statePrefix, r.Day, r.Replica)
	if err := l.store.Put(ctx, key, bytes.NewReader(body), int64(len(body)),
		origin.PutOptions{ContentType: "application/json", CacheControl: "no-store"}); err != nil {
		return fmt.Errorf("write %s: %w", key, err)
	}
	return nil
}

var errSavingsListed = errors.New("listed")

// refresh lists the current month's published counts and reads those that are new or changed
// since the last listing, at most savingsMaxObjects of them.
func (l *savingsLedger) refresh(ctx context.Context) error {
	if l.store == nil {
		return nil
	}
	now := l.clock()
	month := now.UTC().Format(monthLayout)
	dir := l.statePrefix + savingsDir + month + "-"
	type listed struct{ key, etag string }
	var keys []listed
	partial := false
	err := l.store.List(ctx, dir, func(o origin.Object) error {
		if !strings.HasPrefix(o.Key, dir) {
			return errSavingsListed
		}
		if !strings.HasSuffix(o.Key, ".json") || o.Size > savingsMaxBytes {
			return nil
		}
		if len(keys) == savingsMaxObjects {
			partial = true
			return errSavingsListed
		}
		keys = append(keys, listed{o.Key, o.ETag})
		return nil
	})
	if err != nil && !errors.Is(err, errSavingsListed) {
		err = fmt.Errorf("list %s: %w", dir, err)
		l.readFailed(err)
		return err
	}
	l.mu.Lock()
	old := l.read
	if l.readMonth != month {
		old = nil
	}
	l.mu.Unlock()
	next := make(map[string]readSavings, len(keys))
	var nextMu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(savingsReaders)
	var todo []listed
	for _, k := range keys {
		if r, ok := old[k.key]; ok && r.etag != "" && r.etag == k.etag {
			next[k.key] = r
		} else {
			todo = append(todo, k)
		}
	}
	for _, k := range todo {
		g.Go(func() error {
			rec, ok, err := l.readRecord(gctx, k.key)
			if ok {
				nextMu.Lock()
				next[k.key] = readSavings{etag: k.etag, rec: rec}
				nextMu.Unlock()
			}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		l.readFailed(err)
		return err
	}
	if partial {
		l.log.Warn("savings: the month holds more published counts than are read; the figures leave the rest out", "read", savingsMaxObjects)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	// What this replica wrote while the listing ran is counted until the next one.
	for k, r := range l.read {
		if _, ok := next[k]; !ok && r.etag == "" && r.rec.Replica == l.replica && l.readMonth == month {
			next[k] = r
		}
	}
	l.read, l.readMonth, l.readAt, l.readErr, l.partial = next, month, now, nil, partial
	return nil
}

func (l *savingsLedger) readFailed(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.readErr = err
}

// readRecord reads the published count at key; ok is false for one that is gone or does not
// decode (left out, and logged).
func (l *savingsLedger) readRecord(ctx context.Context, key string) (savingsRecord, bool, error) {
	body, _, err := l.store.Get(ctx, key, nil)
	if errors.Is(err, origin.ErrNotFound) {
		return savingsRecord{}, false, nil
	}
	if err != nil {
		return savingsRecord{}, false, fmt.Errorf("read %s: %w", key, err)
	}
	defer body.Close()
	var r savingsRecord
	err = json.NewDecoder(io.LimitReader(body, savingsMaxBytes)).Decode(&r)
	folder := strings.TrimPrefix(key, l.statePrefix+savingsDir)
	if err == nil && !strings.HasPrefix(folder, r.Day+"/") {
		err = fmt.Errorf("its day %q is not its folder's", r.Day)
	}
	if err != nil {
		l.log.Warn("savings: a published count does not decode; it is left out", "key", key, "err", err)
		return savingsRecord{}, false, nil
	}
	return r, true, nil
}

// snapshot sums this replica's live counts and the others' published ones, as of the ledger's
// clock.
func (l *savingsLedger) snapshot() admin.Savings {
	l.mu.Lock()
	now := l.clock()
	l.sampleLocked(now)
	own := map[string]savingsRecord{}
	for _, r := range l.ended {
		own[r.Day] = r
	}
	cur := l.todayLocked(now)
	own[cur.Day] = cur
	records := make([]savingsRecord, 0, len(l.read)+len(own))
	for _, r := range l.read {
		if _, live := own[r.rec.Day]; r.rec.Replica == l.replica && live {
			continue // the live counts are newer
		}
		records = append(records, r.rec)
	}
	for _, r := range own {
		records = append(records, r)
	}
	s := admin.Savings{
		Currency: l.currency, Prices: l.prices, Priced: l.prices.Priced(),
		ReadAt: l.readAt, Partial: l.partial, PublishedAt: l.publishedAt, NotShared: l.notShared,
	}
	if l.readErr != nil {
		s.ReadError = l.readErr.Error()
	}
	if l.publishErr != nil {
		s.PublishError = l.publishErr.Error()
	}
	stored := l.stored
	l.mu.Unlock()

	day, ms := dayStart(now), monthStart(now)
	dayName, monthName := day.Format(dayLayout), ms.Format(monthLayout)
	var dayCounts, monthCounts admin.SavedCounts
	var first time.Time
	for _, r := range records {
		if !strings.HasPrefix(r.Day, monthName+"-") {
			continue
		}
		s.Counts++
		monthCounts = monthCounts.Add(r.Counts)
		if r.Day == dayName {
			dayCounts = dayCounts.Add(r.Counts)
		}
		if first.IsZero() || r.Since.Before(first) {
			first = r.Since
		}
	}
	s.Day = l.prices.Period(day, now, dayCounts)
	s.Month = l.prices.Period(ms, now, monthCounts)
	// The month so far, scaled to the whole month by the time counted of it: from its start,
	// or from the first count when counting began later.
	me := ms.AddDate(0, 1, 0)
	from := ms
	if first.After(ms) {
		from = first
	}
	if counted := now.Sub(from); counted >= savingsProjectAfter {
		scale := me.Sub(ms).Seconds() / counted.Seconds()
		p := l.prices.Period(ms, me, monthCounts.Scale(scale))
		p.Scale = scale
		s.MonthProjected = &p
	}
	s.Storage = l.prices.Storage(stored())
	return s
}

// run publishes the counts every savingsEvery and right after each UTC midnight, and reads the
// month's published counts back at once and every savingsReadEvery (and when a month begins),
// until ctx ends.
func (l *savingsLedger) run(ctx context.Context) {
	if l.store == nil {
		return
	}
	read := func() {
		if err := l.refresh(ctx); err != nil && ctx.Err() == nil {
			l.log.Warn("savings: could not read the replicas' published counts", "err", err)
		}
	}
	read()
	nextRead := l.clock().Add(l.readEvery)
	for {
		now := l.clock()
		wait := l.every
		if m := dayStart(now).AddDate(0, 0, 1).Sub(now) + time.Millisecond; m < wait {
			wait = m
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		l.publish(ctx)
		now = l.clock()
		l.mu.Lock()
		newMonth := l.readMonth != now.UTC().Format(monthLayout)
		l.mu.Unlock()
		if newMonth || !now.Before(nextRead) {
			read()
			nextRead = now.Add(l.readEvery)
		}
	}
}

// flush publishes the counts once more, at shutdown: the answers of the last minute too.
func (l *savingsLedger) flush(ctx context.Context) {
	c, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	l.publish(c)
}

// hostName is os.Hostname; tests replace it.
var hostName = os.Hostname
