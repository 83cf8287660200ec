package admin_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fedicache/fedicache/origin"
	"github.com/fedicache/fedicache/proxy/admin"
)

// storesAt serves the copies of several old stores, which the test can change while the
// admin runs; each call dates the figures 12 seconds back, as a copier's last publication.
type storesAt struct {
	p atomic.Pointer[[]admin.Migration]
}

func (s *storesAt) set(ms ...admin.Migration) { s.p.Store(&ms) }

func (s *storesAt) get() []admin.Migration {
	ms := append([]admin.Migration(nil), *s.p.Load()...)
	for i := range ms {
		ms[i].UpdatedAt = time.Now().Add(-12 * time.Second)
	}
	return ms
}

// volumeCopy is the old volume a quarter copied, by a Job.
func volumeCopy() admin.Migration {
	return admin.Migration{
		Source: origin.VolumeStoreName, Reporter: "backfill-job-x7k2p",
		Running: true, Started: time.Now().Add(-time.Hour), Elapsed: time.Hour,
		FilesTotal: 1000, BytesTotal: 8 << 30, FilesScanned: 260, FilesDone: 250, BytesDone: 2 << 30,
		FilesCopied: 240, BytesCopied: 3 << 29, BytesPerSecond: 2 << 20, ETA: 50 * time.Minute,
	}
}

// wasabiCopy is the old bucket "wasabi", copied whole, by a replica.
func wasabiCopy() admin.Migration {
	return admin.Migration{
		Source: "wasabi", Reporter: "media-7f9c",
		Done: true, Started: time.Now().Add(-3 * time.Hour), Elapsed: 2*time.Hour + 10*time.Minute,
		FilesTotal: 400, BytesTotal: 3 << 30, FilesScanned: 400, FilesDone: 400, BytesDone: 3 << 30,
		FilesCopied: 390, BytesCopied: 3<<30 - 1<<20, ETA: -1,
	}
}

// oldStores are the volume and the old bucket, both answering.
func oldStores(context.Context) []origin.StoreHealth {
	return []origin.StoreHealth{{Name: "volume", Source: origin.SourceVolume}, {Name: "wasabi", Source: origin.SourceOldBucket}}
}

// card returns the status page's card whose id is id, "" when it has none.
func card(body, id string) string {
	return regexp.MustCompile(`(?s)<section id="` + regexp.QuoteMeta(id) + `".*?</section>`).FindString(body)
}

// checkUniqueIDs reports each element id the page uses more than once.
func checkUniqueIDs(t *testing.T, body string) {
	t.Helper()
	seen := map[string]bool{}
	for _, m := range regexp.MustCompile(`\sid="([^"]*)"`).FindAllStringSubmatch(body, -1) {
		if seen[m[1]] {
			t.Errorf("the page uses the id %q twice", m[1])
		}
		seen[m[1]] = true
	}
}

// TestStatusPageShowsEveryOldStore renders the copies of two old stores, the volume a
// quarter through and an old bucket done: a card each, with its own figures, copier and
// ids, a title that counts the copy still running, and /status listing both.
func TestStatusPageShowsEveryOldStore(t *testing.T) {
	var stores storesAt
	stores.set(volumeCopy(), wasabiCopy())
	srv := httptest.NewServer(admin.NewBackfill(admin.Config{Migrations: stores.get, OldStores: oldStores,
		Info: map[string]any{"host": "media-7f9c"}}))
	t.Cleanup(srv.Close)

	resp, body := getPage(t, srv, "/")
	checkSelfContained(t, resp, body)
	checkUniqueIDs(t, body)
	volume, wasabi := card(body, "migration"), card(body, "migration-wasabi")
	if volume == "" || wasabi == "" {
		t.Fatalf("the page lacks a card for the volume or for wasabi:\n%s", body)
	}
	// The volume's card keeps the ids of the page of one old volume.
	checkContains(t, volume, "Migration <small>old volume → bucket</small>",
		`id="migration-state" class="pill run">copying<`, `id="migration-percent">25%<`, "of the volume is in the bucket",
		`id="migration-files">250 of 1,000 files<`, `id="migration-bytes">2.0 GiB of 8.0 GiB<`,
		`<progress id="migration-progress" value="2147483648" max="8589934592"`,
		`id="migration-rate">2.0 MiB/s<`, `id="migration-eta">50m 00s<`,
		`id="migration-copied">240 files <span class="unit">1.5 GiB</span>`,
		"Copied by <code>backfill-job-x7k2p</code>.", ">12s ago</time>")
	checkContains(t, wasabi, "Migration <small>old bucket wasabi → bucket</small>",
		`id="migration-wasabi-state" class="pill ok">done<`, `id="migration-wasabi-percent">100%<`, "of the old bucket is in the bucket",
		`id="migration-wasabi-files">400 of 400 files<`, `id="migration-wasabi-bytes">3.0 GiB of 3.0 GiB<`,
		`id="migration-wasabi-eta">finished<`, `id="migration-wasabi-errors" class="">0<`,
		`id="migration-wasabi-retire" class="callout ok">Done — safe to retire after <code>fedicache backfill --verify</code>.`,
		"Copied by <code>media-7f9c</code>.", ">12s ago</time>")
	if strings.Contains(volume, "safe to retire") || strings.Contains(wasabi, "backfill-job-x7k2p") {
		t.Error("a card shows the other store's figures")
	}
	if title := regexp.MustCompile(`<title>(.*?)</title>`).FindStringSubmatch(body); title == nil || title[1] != "25% copied · fedicache · media-7f9c" {
		t.Errorf("title %q, want the volume's 25%% alone (the old bucket is done)", title)
	}

	// With both running, the title counts the bytes of both: 2 + 1.5 GiB of 8 + 3 GiB.
	w := wasabiCopy()
	w.Done, w.Running, w.FilesDone, w.BytesDone = false, true, 100, 3<<29
	stores.set(volumeCopy(), w)
	_, body = getPage(t, srv, "/")
	if title := regexp.MustCompile(`<title>(.*?)</title>`).FindStringSubmatch(body); title == nil || title[1] != "31.8% copied · fedicache · media-7f9c" {
		t.Errorf("title %q, want 31.8%% of the bytes of both copies", title)
	}
	checkContains(t, card(body, "migration-wasabi"), `id="migration-wasabi-state" class="pill run">copying<`, "(25%)")

	// /status lists both, and keeps the first as migration for its older readers.
	_, js := getPage(t, srv, "/status")
	var st admin.Status
	if err := json.Unmarshal([]byte(js), &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Migrations) != 2 || st.Migrations[0].Source != "volume" || st.Migrations[1].Source != "wasabi" ||
		st.Migrations[1].Reporter != "media-7f9c" || st.Migration == nil || st.Migration.Source != "volume" || st.Migration.FilesDone != 250 {
		t.Errorf("/status: migrations %+v, migration %+v", st.Migrations, st.Migration)
	}
}

// TestStatusListsTheOneMigration: a process that reports one copy (Config.Migration) has
// it in /status both as migration and as the one element of migrations.
func TestStatusListsTheOneMigration(t *testing.T) {
	srv := httptest.NewServer(admin.NewBackfill(admin.Config{Migration: running}))
	t.Cleanup(srv.Close)
	_, js := getPage(t, srv, "/status")
	var st admin.Status
	if err := json.Unmarshal([]byte(js), &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Migrations) != 1 || st.Migrations[0].FilesDone != 300 || st.Migration == nil || st.Migration.FilesDone != 300 {
		t.Errorf("/status: migrations %+v, migration %+v", st.Migrations, st.Migration)
	}
	if !strings.Contains(js, `"migrations": [`) || !strings.Contains(js, `"migration": {`) {
		t.Errorf("/status lacks migrations or migration:\n%s", js)
	}
}

// TestStatusPageStaleCopy: a copy whose copier stopped publishing shows as stale, with its
// last figures, the copier and when it stopped, no rate nor time left, and no title count.
func TestStatusPageStaleCopy(t *testing.T) {
	stoppedAt := time.Now().Add(-7 * time.Minute).UTC()
	m := volumeCopy()
	m.Stale, m.UpdatedAt = true, stoppedAt
	srv := httptest.NewServer(admin.NewBackfill(admin.Config{Migrations: func() []admin.Migration { return []admin.Migration{m} }}))
	t.Cleanup(srv.Close)

	resp, body := getPage(t, srv, "/")
	checkSelfContained(t, resp, body)
	checkContains(t, body, `id="migration-state" class="pill warn">stale<`,
		`id="migration-stale" class="callout warn lead">Stale: the copier on <code>backfill-job-x7k2p</code> stopped reporting at <time datetime="`+
			stoppedAt.Format(time.RFC3339)+`">`+stoppedAt.Format("2006-01-02 15:04:05 UTC")+`</time> (7m 00s ago)`,
		"The figures below are its last", `id="migration-files">250 of 1,000 files<`,
		`id="migration-rate">–<`, `id="migration-eta">unknown: the copier stopped<`, "<dt>ran for</dt>")
	if strings.Contains(body, "copying") || strings.Contains(body, "copied ·") || strings.Contains(body, "safe to retire") {
		t.Error("a stale copy shows as running, in the title, or as safe to retire")
	}
}

// TestStatusPageOldStoreHealth: the bucket's card lists the old stores, each answering or
// failing with its error written as text.
func TestStatusPageOldStoreHealth(t *testing.T) {
	const cause = `s3: ping bucket "old-media" at <https://s3.wasabisys.com>: 403 Forbidden & <b>denied</b>`
	srv := httptest.NewServer(admin.New(admin.Config{OldStores: func(context.Context) []origin.StoreHealth {
		return []origin.StoreHealth{{Name: "volume", Source: origin.SourceVolume}, {Name: "wasabi", Source: origin.SourceOldBucket, Err: cause}}
	}}))
	t.Cleanup(srv.Close)

	resp, body := getPage(t, srv, "/")
	checkSelfContained(t, resp, body)
	list := regexp.MustCompile(`(?s)<ul id="old-stores".*?</ul>`).FindString(body)
	if list == "" || !strings.Contains(card(body, "bucket"), list) {
		t.Fatalf("the bucket's card lists no old stores:\n%s", body)
	}
	checkContains(t, list, "<code>volume</code>", "old volume", `<span class="pill ok">answering</span>`,
		"<code>wasabi</code>", "old bucket", `<span class="pill bad">failing</span>`,
		"s3: ping bucket &#34;old-media&#34; at &lt;https://s3.wasabisys.com&gt;: 403 Forbidden &amp; &lt;b&gt;denied&lt;/b&gt;")
	if strings.Contains(body, "<b>denied</b>") {
		t.Error("an old store's error was written into the page as markup")
	}
	if strings.Count(list, "answering") != 1 || strings.Count(list, "failing") != 1 {
		t.Errorf("want one store answering and one failing:\n%s", list)
	}
}

// TestStatusPageCardIDs: the ids of a card end with its store's name, made fit for an id,
// and stay unique when two names make the same.
func TestStatusPageCardIDs(t *testing.T) {
	ms := []admin.Migration{volumeCopy(), wasabiCopy(), wasabiCopy(), wasabiCopy()}
	ms[1].Source, ms[2].Source, ms[3].Source = `Wasabi EU/"2"`, "wasabi-eu--2-", "Ω"
	srv := httptest.NewServer(admin.NewBackfill(admin.Config{Migrations: func() []admin.Migration { return ms }}))
	t.Cleanup(srv.Close)

	resp, body := getPage(t, srv, "/")
	checkSelfContained(t, resp, body)
	checkUniqueIDs(t, body)
	for id, heading := range map[string]string{
		"migration":                 "old volume → bucket",
		"migration-wasabi-eu--2-":   "old store Wasabi EU/&#34;2&#34; → bucket",
		"migration-wasabi-eu--2--2": "old store wasabi-eu--2- → bucket",
		"migration-4":               "old store Ω → bucket",
	} {
		c := card(body, id)
		checkContains(t, c, "<small>"+heading+"</small>", `id="`+id+`-files"`, `id="`+id+`-state"`)
	}
}
