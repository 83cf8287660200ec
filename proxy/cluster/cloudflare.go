package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limits of the Cloudflare purger that are not configurable: how many URLs may wait at once,
// how long one request may take, how long the last flush at shutdown may take, how long a
// Retry-After is honoured at most, and how much of an answer is read.
const (
	cfQueueSize      = 10000
	cfAttemptTimeout = 30 * time.Second
	cfFlushTimeout   = 5 * time.Second
	cfRetryAfterMax  = time.Minute
	cfBodyBytes      = 64 << 10
)

// Backoff between attempts when Cloudflare gives no Retry-After: the n-th wait is between half
// and all of cfBackoffBase<<(n-1), never more than cfBackoffMax.
const (
	cfBackoffBase = 250 * time.Millisecond
	cfBackoffMax  = 30 * time.Second
)

// CloudflareConfig says which Cloudflare zone to purge URLs from and how fast. Only ZoneID and
// APIToken are required.
type CloudflareConfig struct {
	// ZoneID is the identifier of the zone that serves the media, from the zone's overview
	// page in the Cloudflare dashboard.
	ZoneID string
	// APIToken is an API token with the Zone / Cache Purge permission on the zone, sent as
	// "Authorization: Bearer <APIToken>".
	APIToken string
	// BaseURL is the root of the Cloudflare API. Zero means "https://api.cloudflare.com/client/v4".
	BaseURL string
	// BatchSize is the most URLs sent in one purge request. Zero means 30, the limit of purge by
	// URL per request that holds on every plan.
	BatchSize int
	// Interval is how long URLs gather before a batch that is not full is sent. Zero means 1s.
	Interval time.Duration
	// Rate is the most purge requests sent per second, retries included. Zero means 4 (the API
	// allows 1,200 requests per five minutes).
	Rate float64
	// Attempts is how many times a batch is sent when Cloudflare answers 429 or 5xx or does not
	// answer at all; the attempts are separated by Retry-After when Cloudflare gives one
	// (capped at a minute), else by a backoff with jitter. Another 4xx is never retried. Zero
	// means 5.
	Attempts int
	// Client sends the requests. Zero means a client with a 30s timeout.
	Client *http.Client
	// OnResult, when set, is called once per batch, from the goroutine of Run, with the number
	// of URLs in the batch and nil or the reason the batch was not purged (for metrics, say).
	OnResult func(urls int, err error)
	// Logger receives the failed batches with their cause. Zero means slog.Default().
	Logger *slog.Logger
}

// Validate reports a value of c that Cloudflare cannot work with, naming the field and the fix.
func (c CloudflareConfig) Validate() error {
	switch {
	case strings.TrimSpace(c.ZoneID) == "":
		return badField("CloudflareConfig", "ZoneID", "", "is empty", "give the zone ID from the zone's overview page", "")
	case strings.TrimSpace(c.APIToken) == "":
		return badField("CloudflareConfig", "APIToken", "", "is empty", "give an API token with the Cache Purge permission on the zone", "")
	case c.BatchSize < 0:
		return badField("CloudflareConfig", "BatchSize", strconv.Itoa(c.BatchSize), "is negative", "give 1 or more (zero means 30)", "")
	case c.Interval < 0:
		return badField("CloudflareConfig", "Interval", c.Interval.String(), "is negative", "give a duration (zero means 1s)", "1s")
	case c.Rate < 0:
		return badField("CloudflareConfig", "Rate", fmt.Sprint(c.Rate), "is negative", "give requests per second (zero means 4)", "4")
	case c.Attempts < 0:
		return badField("CloudflareConfig", "Attempts", strconv.Itoa(c.Attempts), "is negative", "give 1 or more (zero means 5)", "")
	}
	if c.BaseURL != "" {
		u, err := url.Parse(c.BaseURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return badField("CloudflareConfig", "BaseURL", fmt.Sprintf("%q", c.BaseURL), "is not an http(s) URL",
				"give the API root (zero means that)", "https://api.cloudflare.com/client/v4")
		}
	}
	return nil
}

func (c CloudflareConfig) withDefaults() CloudflareConfig {
	if c.BaseURL == "" {
		c.BaseURL = "https://api.cloudflare.com/client/v4"
	}
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	if c.BatchSize <= 0 {
		c.BatchSize = 30
	}
	if c.Interval <= 0 {
		c.Interval = time.Second
	}
	if c.Rate <= 0 {
		c.Rate = 4
	}
	if c.Attempts <= 0 {
		c.Attempts = 5
	}
	if c.Client == nil {
		c.Client = &http.Client{Timeout: cfAttemptTimeout}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// cfQueued is a URL waiting to be purged, with the time it was queued.
type cfQueued struct {
	url string
	at  time.Time
}

// Cloudflare purges URLs from Cloudflare's cache: Purge queues a URL, and Run sends the queued
// URLs in batches, at a bounded rate, retrying what Cloudflare asks to be retried. Its methods
// are safe for concurrent use.
type Cloudflare struct {
	cfg      CloudflareConfig
	err      error // a configuration error: nothing is queued or sent
	endpoint string
	limiter  *rate.Limiter
	wake     chan struct{} // signalled, without blocking, when a URL is queued

	mu      sync.Mutex
	queue   []cfQueued          // oldest first
	waiting map[string]struct{} // the URLs in queue
	stopped bool                // Run took its last flush: nothing more is queued
}

// NewCloudflare returns the purger cfg describes; call Run to send what Purge queues. A cfg that
// Validate rejects gives a Cloudflare that queues nothing and whose Run logs the error and
// returns.
func NewCloudflare(cfg CloudflareConfig) *Cloudflare {
	err := cfg.Validate()
	cfg = cfg.withDefaults()
	return &Cloudflare{
		cfg:      cfg,
		err:      err,
		endpoint: cfg.BaseURL + "/zones/" + url.PathEscape(cfg.ZoneID) + "/purge_cache",
		limiter:  rate.NewLimiter(rate.Limit(cfg.Rate), 1),
		wake:     make(chan struct{}, 1),
		waiting:  make(map[string]struct{}),
	}
}

// Purge queues url (the full public URL, e.g. "https://media.example/media_attachments/...")
// to be purged from Cloudflare's cache, without waiting. It returns false, and queues nothing,
// when url is empty, is already waiting, the queue is full (10,000 URLs), Run has returned, or
// the configuration is invalid. Purge on a nil *Cloudflare returns false: purging is off.
func (c *Cloudflare) Purge(url string) bool {
	if c == nil || c.err != nil || url == "" {
		return false
	}
	c.mu.Lock()
	_, dup := c.waiting[url]
	if dup || c.stopped || len(c.queue) >= cfQueueSize {
		c.mu.Unlock()
		return false
	}
	c.waiting[url] = struct{}{}
	c.queue = append(c.queue, cfQueued{url: url, at: time.Now()})
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return true
}

// Run sends the queued URLs until ctx ends: a batch goes out when BatchSize URLs wait or the
// oldest has waited Interval, and no faster than Rate. When ctx ends, Run sends what is still
// queued (and a batch it was sending) once more, within a few seconds, and returns; after that
// Purge queues nothing. Run is meant to be called once. Run on a nil *Cloudflare returns at once.
func (c *Cloudflare) Run(ctx context.Context) {
	if c == nil {
		return
	}
	if c.err != nil {
		c.cfg.Logger.Error("cloudflare purge is off", "err", c.err)
		return
	}
	var unsent []string
	for {
		batch := c.next(ctx)
		if batch == nil {
			break
		}
		if err := c.limiter.Wait(ctx); err != nil {
			unsent = batch
			break
		}
		err := c.send(ctx, batch)
		if err != nil && ctx.Err() != nil {
			unsent = batch
			break
		}
		c.report(batch, err)
	}
	c.flush(context.WithoutCancel(ctx), unsent)
}

// next waits until a batch is due and takes it from the queue. It returns nil when ctx ends.
func (c *Cloudflare) next(ctx context.Context) []string {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		c.mu.Lock()
		n := len(c.queue)
		var due time.Duration
		if n > 0 {
			due = time.Until(c.queue[0].at.Add(c.cfg.Interval))
		}
		if n >= c.cfg.BatchSize || (n > 0 && due <= 0) {
			batch := c.takeLocked(c.cfg.BatchSize)
			c.mu.Unlock()
			return batch
		}
		c.mu.Unlock()

		var fire <-chan time.Time
		if n > 0 {
			if timer == nil {
				timer = time.NewTimer(due)
			} else {
				timer.Reset(due)
			}
			fire = timer.C
		}
		select {
		case <-c.wake:
		case <-fire:
		case <-ctx.Done():
			return nil
		}
	}
}

// takeLocked removes up to n URLs, the oldest, from the queue and returns them. c.mu is held.
func (c *Cloudflare) takeLocked(n int) []string {
	n = min(n, len(c.queue))
	batch := make([]string, n)
	for i, q := range c.queue[:n] {
		batch[i] = q.url
		delete(c.waiting, q.url)
	}
	rest := copy(c.queue, c.queue[n:])
	clear(c.queue[rest:])
	c.queue = c.queue[:rest]
	return batch
}

// flush sends unsent and everything still queued, within cfFlushTimeout, and stops the queue.
func (c *Cloudflare) flush(ctx context.Context, unsent []string) {
	ctx, cancel := context.WithTimeout(ctx, cfFlushTimeout)
	defer cancel()
	c.mu.Lock()
	c.stopped = true
	rest := c.takeLocked(len(c.queue))
	c.mu.Unlock()
	all := append(unsent, rest...)
	for len(all) > 0 {
		batch := all[:min(c.cfg.BatchSize, len(all))]
		all = all[len(batch):]
		err := c.limiter.Wait(ctx)
		if err == nil {
			err = c.send(ctx, batch)
		} else {
			err = fmt.Errorf("cloudflare: purge %d URLs at shutdown: %w", len(batch), err)
		}
		c.report(batch, err)
	}
}

// report logs a failed batch and passes the outcome to OnResult.
func (c *Cloudflare) report(batch []string, err error) {
	if err != nil {
		c.cfg.Logger.Warn("cloudflare purge failed", "urls", len(batch), "first", batch[0], "err", err)
	} else {
		c.cfg.Logger.Debug("cloudflare purge", "urls", len(batch))
	}
	if c.cfg.OnResult != nil {
		c.cfg.OnResult(len(batch), err)
	}
}

// send purges batch, trying again after no answer, a 429 or a 5xx while attempts remain and
// ctx lasts. Every attempt after the first waits for the rate limiter.
func (c *Cloudflare) send(ctx context.Context, batch []string) error {
	body, err := json.Marshal(struct {
		Files []string `json:"files"`
	}{batch})
	if err != nil {
		return fmt.Errorf("cloudflare: purge %d URLs: encode: %w", len(batch), err)
	}
	r := retry{attempts: c.cfg.Attempts, base: cfBackoffBase, max: cfBackoffMax, pace: c.limiter.Wait}
	out := r.do(ctx, func(int) try {
		status, wait, err := c.attempt(ctx, body)
		return try{err: err, again: status == 0 || status == http.StatusTooManyRequests || status >= 500, after: wait}
	})
	if out.err == nil {
		return nil
	}
	err = fmt.Errorf("cloudflare: purge %d URLs: %w", len(batch), out.err)
	if out.stopped != nil {
		return fmt.Errorf("%w (gave up after attempt %d: %w)", err, out.attempts, out.stopped)
	}
	return fmt.Errorf("%w (attempt %d of %d)", err, out.attempts, c.cfg.Attempts)
}

// cfAnswer is the envelope of every Cloudflare API answer.
type cfAnswer struct {
	Success bool `json:"success"`
	Errors  []struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"errors"`
}

// messages returns the answer's errors as one string, e.g. "1012: Request must contain ...".
func (a cfAnswer) messages() string {
	parts := make([]string, 0, len(a.Errors))
	for _, e := range a.Errors {
		parts = append(parts, strconv.Itoa(e.Code)+": "+e.Message)
	}
	return strings.Join(parts, "; ")
}

// attempt POSTs body to the purge endpoint once, within cfAttemptTimeout. It returns the status
// of the answer (zero when there was none), the wait Retry-After asks for (negative when it asks
// for none), and an error unless Cloudflare answered 2xx with success true.
func (c *Cloudflare) attempt(ctx context.Context, body []byte) (int, time.Duration, error) {
	actx, cancel := context.WithTimeout(ctx, cfAttemptTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, c.endpoint, bytes.NewReader(body))
	if err != nil {
		return 0, -1, err
	}
	req.Header.Set("Authorization", "Bearer "+c.cfg.APIToken)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "fedicache")
	resp, err := c.cfg.Client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL holds nothing secret, but says nothing new either
		}
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			err = fmt.Errorf("no answer within %v", cfAttemptTimeout)
		}
		return 0, -1, err
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, cfBodyBytes))
		_ = resp.Body.Close()
	}()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, cfBodyBytes))
	var ans cfAnswer
	jsonErr := json.Unmarshal(raw, &ans)
	ok := resp.StatusCode >= 200 && resp.StatusCode < 300
	switch {
	case ok && jsonErr == nil && ans.Success:
		return resp.StatusCode, -1, nil
	case ok && jsonErr != nil:
		return resp.StatusCode, -1, fmt.Errorf("status %d with an answer that is not the API's JSON: %w", resp.StatusCode, jsonErr)
	}
	msg := "status " + strconv.Itoa(resp.StatusCode)
	if ok {
		msg += ", success false"
	}
	if m := ans.messages(); m != "" {
		msg += ": " + m
	} else if b := strings.Join(strings.Fields(strings.ToValidUTF8(string(raw[:min(len(raw), 256)]), "")), " "); b != "" {
		msg += ": " + b
	}
	return resp.StatusCode, retryAfter(resp.Header.Get("Retry-After"), cfRetryAfterMax), errors.New(msg)
}
