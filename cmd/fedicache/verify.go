package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/fedicache/fedicache/backfill"
	"github.com/fedicache/fedicache/origin"
)

// verifyStores compares each old store of cs with the bucket, writes the keys safe to delete
// from it to its list (verifyOut for the old volume, verifyOut with the store's name added for
// the others), and says of each whether it is safe to retire: every object in the bucket and
// equal, or deleted by Mastodon. It returns errIncomplete when one is not.
func verifyStores(ctx context.Context, cs copies, bucket interface {
	origin.Lister
	origin.Origin
}, mode backfill.VerifyMode, eng backfill.Config, verifyOut string, out io.Writer) error {
	incomplete := false
	for _, c := range cs {
		name := verifyFile(verifyOut, c.name)
		f, err := os.Create(name)
		if err != nil {
			return fmt.Errorf("--verify-out: %w", err)
		}
		rep, err := backfill.VerifySource(ctx, c.source, bucket, mode, eng, f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		fmt.Fprintf(out, "verify %s (%s): checked %d, verified %d (listed in %s), missing %d, mismatched %d, errors %d\n",
			c.name, mode, rep.Checked, rep.Verified, name, rep.Missing, rep.Mismatched, rep.Errors)
		for _, k := range rep.Bad {
			fmt.Fprintf(out, "  differs or unreadable: %s\n", k)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
		switch {
		case rep.Missing+rep.Mismatched+rep.Errors == 0:
			fmt.Fprintf(out, "  %s is safe to retire: every object is in the bucket and equal, or deleted by Mastodon\n", c.name)
		default:
			incomplete = true
			if rep.Missing > 0 {
				// Retiring the store now would lose them: they are neither in the bucket nor
				// deleted by Mastodon (a tombstone).
				fmt.Fprintf(out, "  %d objects are not in the bucket yet: run fedicache backfill, then verify again\n", rep.Missing)
			}
			fmt.Fprintf(out, "  %s is NOT safe to retire yet\n", c.name)
		}
	}
	if incomplete {
		return errIncomplete
	}
	return nil
}

// verifyFile is the list of verified keys of the store named store: verifyOut for the old
// volume, else verifyOut with the store's name before its extension.
func verifyFile(verifyOut, store string) string {
	if store == origin.VolumeStoreName {
		return verifyOut
	}
	ext := filepath.Ext(verifyOut)
	return strings.TrimSuffix(verifyOut, ext) + "-" + store + ext
}
