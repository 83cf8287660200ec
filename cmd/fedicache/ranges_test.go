package main

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/fedicache/fedicache/origin"
	"github.com/fedicache/fedicache/origin/origintest"
	"github.com/fedicache/fedicache/origin/s3/s3test"
)

// TestRecordNeverVouchesForAnotherBucket: the record a run keeps in the bucket's state prefix
// lets the next run skip the listing; copied along with the state prefix into a new bucket (a
// move between providers copies it), it is not taken for the new bucket's.
func TestRecordNeverVouchesForAnotherBucket(t *testing.T) {
	oldBucket, files, cfg := backfillWorld(t, 30, "")
	if code, out, errOut := runCLI(t, "backfill", "--config", cfg); code != 0 || !strings.Contains(out, "copied           30 files") {
		t.Fatalf("copy: exit %d\n%s\n%s", code, out, errOut)
	}
	var records []string
	state := map[string][]byte{}
	err := s3test.New(t, oldBucket).List(context.Background(), "", func(o origin.Object) error {
		if strings.HasPrefix(o.Key, "_fedicache/") {
			data, err := oldBucket.Object(o.Key)
			state[o.Key] = data
			if strings.HasPrefix(o.Key, "_fedicache/backfill/volume-") && strings.HasSuffix(o.Key, ".ranges.json") {
				records = append(records, o.Key)
			}
			return err
		}
		return nil
	})
	if err != nil || len(records) != 1 {
		t.Fatalf("records in the state prefix: %v, %v", records, err)
	}
	if code, out, _ := runCLI(t, "backfill", "--config", cfg); code != 0 || !strings.Contains(out, "not listed       30 of those") {
		t.Fatalf("rerun: exit %d\n%s", code, out)
	}

	// The state prefix copied into a new bucket, as the runbook does before the swap.
	newBucket := origintest.NewFakeBucket(t)
	for k, v := range state {
		newBucket.Put(t, k, v)
	}
	newCfg := writeConfig(t, strings.Replace(readFile(t, cfg), oldBucket.URL, newBucket.URL, 1))
	code, out, errOut := runCLI(t, "backfill", "--config", newCfg)
	if code != 0 || !strings.Contains(out, "copied           30 files") || strings.Contains(out, "not listed") {
		t.Fatalf("copy into the new bucket: exit %d\n%s\n%s", code, out, errOut)
	}
	for k, v := range files {
		if got, err := newBucket.Object(k); err != nil || string(got) != string(v) {
			t.Errorf("%s in the new bucket: %d bytes, %v", k, len(got), err)
		}
	}
}

// readFile returns the file at path.
func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
