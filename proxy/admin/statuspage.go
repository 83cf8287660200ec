package admin

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The status page: one HTML document rendered on the server, readable without JavaScript.
// Its inline script fetches the page again every few seconds and swaps the live part in
// place; with scripts off, a meta refresh reloads it. The style sheet and the script are
// embedded and allowed by their hashes in the Content-Security-Policy: the page loads
// nothing from anywhere.
var (
	//go:embed statuspage.html
	pageHTML string
	//go:embed statuspage.css
	pageCSS string
	//go:embed statuspage.js
	pageJS string

	pageTemplate = template.Must(template.New("statuspage.html").Parse(pageHTML))
	pageCSP      = strings.Join([]string{
		"default-src 'none'",
		"style-src " + cspHash(pageCSS),
		"script-src " + cspHash(pageJS),
		"connect-src 'self'",
		"img-src data:",
		"base-uri 'none'",
		"form-action 'none'",
		"frame-ancestors 'none'",
	}, "; ")
)

const (
	// pageRefresh is how often the page refreshes its figures unless ?refresh=N says otherwise.
	pageRefresh = 5 * time.Second
	// pageMaxRefresh bounds ?refresh=N.
	pageMaxRefresh = time.Hour
	// pageListed is how many errors and conflicting keys the page lists.
	pageListed = 5
)

// pageData is what the template renders: the page's figures, and the history's charts.
type pageData struct {
	pageView
	History *historyView
	// Savings is the card "Saved" (savings_view.go); nil when /status has no savings.
	Savings *savingsView
}

// cspHash is a Content-Security-Policy source allowing the inline element whose text is s.
func cspHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}

// page serves the status page. GET /?refresh=N refreshes it every N seconds instead of 5.
func (h *Handler) page(w http.ResponseWriter, r *http.Request) {
	refresh := pageRefresh
	if s := r.URL.Query().Get("refresh"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > int(pageMaxRefresh/time.Second) {
			http.Error(w, "refresh: give whole seconds from 1 to 3600, e.g. /?refresh=10", http.StatusBadRequest)
			return
		}
		refresh = time.Duration(n) * time.Second
	}
	st, now := h.snapshot(r.Context()), time.Now()
	v := pageData{pageView: newPageView(st, h.backfillOnly, refresh, now), History: newHistoryView(st, now), Savings: newSavingsCard(st, now)}
	// The page is a few kilobytes: rendered whole, so that a failure is a clean 500.
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, v); err != nil {
		http.Error(w, "status page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "text/html; charset=utf-8")
	hdr.Set("Content-Security-Policy", pageCSP)
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("X-Frame-Options", "DENY")
	hdr.Set("Referrer-Policy", "no-referrer")
	_, _ = buf.WriteTo(w)
}
