package admin

import (
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/fedicache/fedicache/origin"
)

// migrationView is the card of one old store's copy. BarKnown is false while the store is
// counted (the bar then has no value: it shows work without a measure).
type migrationView struct {
	// ID is appended to the ids of the card's elements: "" for the first card, so that its
	// ids are those of the page of one old volume, and "-<name>" for the others.
	ID string
	// Heading says what is copied where ("old bucket wasabi → bucket"); Store is the old
	// store in a few words ("the old bucket"), for the sentences around the figures.
	Heading, Store string
	// Wide is set when the card is alone: it then spans the page.
	Wide bool

	State          badge
	Counting       bool
	Percent        string
	BarKnown       bool
	BarValue       int64
	BarMax         int64
	Files, Bytes   string
	Rate, ETA      string
	Elapsed        string
	ElapsedLabel   string
	Started        string
	StartedTS      string
	Copied         string
	CopiedBytes    string
	Conflicts      int64
	Errors         int64
	ConflictsText  string
	ErrorsText     string
	NotCopied      string
	RecentErrors   []string
	MoreErrors     string
	ConflictKeys   []string
	MoreConflicts  string
	PercentOfFiles string
	PercentOfBytes string

	// Reporter is the host that copies; Taken is how long ago the figures were taken, and
	// TakenAt and TakenTS when ("" when the copier did not say).
	Reporter                string
	Taken, TakenAt, TakenTS string
	// Stale is set when the copier stopped publishing: the figures are its last.
	Stale bool
	// Retire is set when the copy is done with nothing left behind; Unfinished says, once
	// done, what keeps the store from being retired.
	Retire     bool
	Excluded   string
	Unfinished string
}

// newMigrationViews formats ms, one card each, naming each store's kind from stores.
func newMigrationViews(ms []Migration, stores []origin.StoreHealth, now time.Time) []*migrationView {
	kinds := map[string]origin.Source{}
	for _, s := range stores {
		kinds[s.Name] = s.Source
	}
	used := map[string]bool{}
	var out []*migrationView
	for i := range ms {
		heading, store := storeWords(ms[i].Source, kinds)
		v := newMigrationView(&ms[i], store, now)
		v.Heading = heading
		if i > 0 {
			v.ID = "-" + idPart(ms[i].Source, i)
		}
		for n := 2; used[v.ID]; n++ {
			v.ID = "-" + idPart(ms[i].Source, i) + "-" + strconv.Itoa(n)
		}
		used[v.ID] = true
		v.Wide = len(ms) == 1
		out = append(out, v)
	}
	return out
}

// storeWords names the old store source (of kind kinds[source]) in a heading, "old bucket
// wasabi → bucket", and in a sentence, "the old bucket". The copy of a Migration that names
// no store is the old volume's.
func storeWords(source string, kinds map[string]origin.Source) (heading, store string) {
	kind, known := kinds[source]
	switch {
	case source == "" || (source == origin.VolumeStoreName && (!known || kind == origin.SourceVolume)):
		return "old volume → bucket", "the volume"
	case kind == origin.SourceVolume:
		return "old volume " + source + " → bucket", "the volume"
	case kind == origin.SourceOldBucket:
		return "old bucket " + source + " → bucket", "the old bucket"
	default:
		return "old store " + source + " → bucket", "the old store"
	}
}

// idPart is name as a part of an element id: lower-case letters, digits, '-' and '_', the
// rest as '-'; the card's place i when nothing is left.
func idPart(name string, i int) string {
	id := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		case r >= 'A' && r <= 'Z':
			return r + 'a' - 'A'
		}
		return '-'
	}, name)
	if strings.Trim(id, "-") == "" {
		return strconv.Itoa(i + 1)
	}
	return id
}

// copiedPercent is how much of the old stores whose copy runs is in the bucket, by bytes
// (by files when they hold only empty ones), for the page's title: "" when no copy runs or
// one is still counting its store.
func copiedPercent(ms []Migration) string {
	var files, filesTotal, bytes, bytesTotal int64
	running := false
	for _, m := range ms {
		if !m.Running || m.Done || m.Stale {
			continue
		}
		if m.FilesTotal < 0 || m.BytesTotal < 0 {
			return ""
		}
		running = true
		files += max(min(m.FilesDone, m.FilesTotal), 0)
		filesTotal += m.FilesTotal
		bytes += max(min(m.BytesDone, m.BytesTotal), 0)
		bytesTotal += m.BytesTotal
	}
	switch {
	case !running:
		return ""
	case bytesTotal > 0:
		return percent(bytes, bytesTotal)
	default:
		return percent(files, filesTotal)
	}
}

// newMigrationView formats the figures of the copy of store ("the old bucket"), their age
// measured at now.
func newMigrationView(m *Migration, store string, now time.Time) *migrationView {
	v := &migrationView{
		Store:       store,
		Counting:    !m.Waiting && (m.FilesTotal < 0 || m.BytesTotal < 0),
		Rate:        humanBytes(int64(m.BytesPerSecond)) + "/s",
		Elapsed:     humanDuration(m.Elapsed),
		Copied:      files(m.FilesCopied),
		CopiedBytes: humanBytes(m.BytesCopied),
		Conflicts:   m.Conflicts,
		Errors:      m.Errors,
		Reporter:    m.Reporter,
		Stale:       m.Stale && !m.Done,
	}
	v.ConflictsText = humanize.Comma(m.Conflicts)
	v.ErrorsText = humanize.Comma(m.Errors)
	if !m.Started.IsZero() {
		v.Started = m.Started.UTC().Format("2006-01-02 15:04 UTC")
		v.StartedTS = m.Started.UTC().Format(time.RFC3339)
	}
	if !m.UpdatedAt.IsZero() {
		v.Taken = humanDuration(now.Sub(m.UpdatedAt)) + " ago"
		v.TakenAt = m.UpdatedAt.UTC().Format("2006-01-02 15:04:05 UTC")
		v.TakenTS = m.UpdatedAt.UTC().Format(time.RFC3339)
	}
	v.ElapsedLabel = "running for"
	switch {
	case m.Done && m.Errors+m.Conflicts > 0:
		v.State, v.ElapsedLabel = badge{"warn", "done"}, "took" // with files left for an admin's eye
	case m.Done:
		v.State, v.ElapsedLabel = badge{"ok", "done"}, "took"
	case v.Stale:
		v.State, v.ElapsedLabel = badge{"warn", "stale"}, "ran for"
	case m.Waiting:
		v.State = badge{"idle", "waiting"}
	case !m.Running:
		v.State = badge{"warn", "stopped"}
	case v.Counting:
		v.State = badge{"idle", "counting…"}
	default:
		v.State = badge{"run", "copying"}
	}
	switch {
	case m.Done:
		v.ETA = "finished"
	case v.Stale:
		v.Rate, v.ETA = "–", "unknown: the copier stopped"
	case m.Waiting:
		v.Rate, v.ETA, v.Elapsed = "–", "unknown: it begins once the stores before it are copied", "–"
	case m.ETA < 0 || v.Counting:
		v.ETA = "estimating…"
	case m.ETA < time.Second:
		v.ETA = "any moment"
	default:
		v.ETA = humanDuration(m.ETA)
	}
	v.progress(m)

	var left []string
	if m.Excluded > 0 {
		left = append(left, humanize.Comma(m.Excluded)+" excluded by the filters")
	}
	if m.Skipped > 0 {
		left = append(left, humanize.Comma(m.Skipped)+" skipped (hidden with no ACLs, or changed while read)")
	}
	v.NotCopied = strings.Join(left, "; ")
	v.RecentErrors, v.MoreErrors = listed(m.RecentErrors, m.Errors)
	v.ConflictKeys, v.MoreConflicts = listed(m.ConflictKeys, m.Conflicts)

	if m.Done {
		var unfinished []string
		for _, p := range []struct {
			n    int64
			what string
		}{{m.Errors, "failed"}, {m.Conflicts, "conflicting"}, {m.Skipped, "skipped"}} {
			if p.n > 0 {
				unfinished = append(unfinished, humanize.Comma(p.n)+" "+p.what)
			}
		}
		v.Unfinished = strings.Join(unfinished, ", ")
		v.Retire = v.Unfinished == ""
		if m.Excluded > 0 {
			v.Excluded = files(m.Excluded)
		}
	}
	return v
}

// progress sets v's figures of what the bucket holds of m's store, and its bar.
func (v *migrationView) progress(m *Migration) {
	if m.Waiting {
		v.Files, v.Bytes = "waiting for the stores before it to be copied", "–"
		v.BarKnown, v.BarValue, v.BarMax, v.Percent = true, 0, 1, "–"
		return
	}
	if v.Counting {
		v.Files = files(m.FilesDone) + " in the bucket so far; counting " + v.Store + "…"
		v.Bytes = humanBytes(m.BytesDone) + " so far"
		return
	}
	done, bytesDone := min(m.FilesDone, m.FilesTotal), min(m.BytesDone, m.BytesTotal)
	v.Files = humanize.Comma(done) + " of " + files(m.FilesTotal)
	v.Bytes = humanBytes(bytesDone) + " of " + humanBytes(m.BytesTotal)
	v.PercentOfFiles = percent(done, m.FilesTotal)
	v.PercentOfBytes = percent(bytesDone, m.BytesTotal)
	// The bar follows the bytes, which the time left depends on; the files when the store
	// holds only empty ones.
	v.BarKnown = true
	switch {
	case m.BytesTotal > 0:
		v.BarValue, v.BarMax, v.Percent = max(bytesDone, 0), m.BytesTotal, v.PercentOfBytes
	case m.FilesTotal > 0:
		v.BarValue, v.BarMax, v.Percent = max(done, 0), m.FilesTotal, v.PercentOfFiles
	default:
		v.BarValue, v.BarMax, v.Percent = 1, 1, "100%"
	}
}

// listed returns at most pageListed of items, and how many of total it leaves out, in words.
func listed(items []string, total int64) ([]string, string) {
	if len(items) > pageListed {
		items = items[len(items)-pageListed:]
	}
	if more := total - int64(len(items)); more > 0 && len(items) > 0 {
		return items, "and " + humanize.Comma(more) + " more"
	}
	return items, ""
}

// oldStoreView is an old store's answer to its last check.
type oldStoreView struct {
	Name, Kind string
	// Error is why it did not answer; "" when it did.
	Error string
}

// newOldStoreViews formats the old stores' health.
func newOldStoreViews(stores []origin.StoreHealth) []oldStoreView {
	var out []oldStoreView
	for _, s := range stores {
		kind := "old store"
		switch s.Source {
		case origin.SourceVolume:
			kind = "old volume"
		case origin.SourceOldBucket:
			kind = "old bucket"
		}
		out = append(out, oldStoreView{Name: s.Name, Kind: kind, Error: s.Err})
	}
	return out
}
