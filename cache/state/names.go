package state

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// Kind is what a bust or purge did to a key.
type Kind byte

// The kinds of log entries.
const (
	// Deleted: the bucket no longer holds the key. It is tombstoned for good (the old volume's
	// copy is never served, the backfill never copies it back), dropped from every tier, and
	// its fetches under way are cut.
	Deleted Kind = 'd'
	// Hidden: Mastodon hid the object (a private ACL, mode 0600 on the volume). It is dropped
	// from every tier and its fetches under way are cut; the next fill checks again, so an
	// unsuspension brings it back.
	Hidden Kind = 'h'
	// Purged: dropped from every tier (an operator's purge, a bust of a visible object).
	Purged Kind = 'p'
	// PrefixPurged: every key under the prefix dropped from every tier.
	PrefixPurged Kind = 'x'
)

// String names the kind as /status, logs and the admin API say it.
func (k Kind) String() string {
	switch k {
	case Deleted:
		return "deleted"
	case Hidden:
		return "hidden"
	case Purged:
		return "purged"
	case PrefixPurged:
		return "prefix_purged"
	}
	return fmt.Sprintf("kind(%q)", byte(k))
}

// ParseKind is the inverse of Kind.String.
func ParseKind(s string) (Kind, bool) {
	for _, k := range []Kind{Deleted, Hidden, Purged, PrefixPurged} {
		if k.String() == s {
			return k, true
		}
	}
	return 0, false
}

// timeLayout names log entries and snapshots: fixed width, so that the names sort as the times.
const timeLayout = "20060102T150405.000000000Z"

// maxInlineKey is the longest encoded key written into a log entry's name; a longer one is
// named by its hash and read from the entry's body. Bucket keys are at most 1024 bytes.
const maxInlineKey = 700

// The folders under the state prefix.
const (
	tombstoneDir = "tombstones/"
	logDir       = "log/"
	snapshotDir  = "snapshot/"
)

func timeName(t time.Time) string { return t.UTC().Format(timeLayout) }

// writerID tells apart the entries of replicas that record at the same nanosecond.
var writerID = func() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}()

// entryName returns the name of a log entry (under the log folder) and whether its key is in
// the name (else only in its body).
func entryName(at time.Time, k Kind, key string) (string, bool) {
	enc := base64.RawURLEncoding.EncodeToString([]byte(key))
	if len(enc) <= maxInlineKey {
		return timeName(at) + "-" + writerID + "-" + string(k) + "-" + enc, true
	}
	sum := sha256.Sum256([]byte(key))
	return timeName(at) + "-" + writerID + "-" + strings.ToUpper(string(k)) + "-" + hex.EncodeToString(sum[:]), false
}

// entry is a log entry as its name describes it.
type entry struct {
	name   string // under the log folder
	at     time.Time
	kind   Kind
	key    string // "" when only the body has it
	inBody bool
}

// parseEntry reads a log entry's name (under the log folder).
func parseEntry(name string) (entry, error) {
	e := entry{name: name}
	if len(name) < len(timeLayout)+1 || name[len(timeLayout)] != '-' {
		return e, fmt.Errorf("state: log entry %q: no time", name)
	}
	at, err := time.Parse(timeLayout, name[:len(timeLayout)])
	if err != nil {
		return e, fmt.Errorf("state: log entry %q: %w", name, err)
	}
	e.at = at
	parts := strings.SplitN(name[len(timeLayout)+1:], "-", 3)
	if len(parts) != 3 || len(parts[1]) != 1 {
		return e, fmt.Errorf("state: log entry %q: want <time>-<writer>-<kind>-<key>", name)
	}
	k, inBody := Kind(parts[1][0]), false
	if 'A' <= k && k <= 'Z' {
		k, inBody = k+'a'-'A', true
	}
	switch k {
	case Deleted, Hidden, Purged, PrefixPurged:
	default:
		return e, fmt.Errorf("state: log entry %q: unknown kind %q", name, parts[1])
	}
	e.kind, e.inBody = k, inBody
	if !inBody {
		b, err := base64.RawURLEncoding.DecodeString(parts[2])
		if err != nil || len(b) == 0 {
			return e, fmt.Errorf("state: log entry %q: the key is not base64url", name)
		}
		e.key = string(b)
	}
	return e, nil
}

// tombstoneName returns the name of key's tombstone object (under the tombstone folder).
func tombstoneName(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// parseTombstone returns the hash a tombstone object's name (under the folder) stands for.
func parseTombstone(name string) (hash, bool) {
	var full [sha256.Size]byte
	if len(name) != 2*sha256.Size {
		return hash{}, false
	}
	if _, err := hex.Decode(full[:], []byte(name)); err != nil {
		return hash{}, false
	}
	return hash(full[:16]), true
}
