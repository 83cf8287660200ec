package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fedicache/fedicache/cache/state"
	"github.com/fedicache/fedicache/origin/origintest"
	"github.com/fedicache/fedicache/proxy/admin"
)

// TestProgressOnEveryReplica: a replica that copies the old volume publishes its progress
// under the state prefix; another replica, which copies nothing, shows it on its /status, and
// shows the copy of a store whose copier vanished mid-copy as stale rather than running.
func TestProgressOnEveryReplica(t *testing.T) {
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	oldEvery, oldStale := progressEvery, progressStaleAfter
	progressEvery, progressStaleAfter = 100*time.Millisecond, time.Second
	t.Cleanup(func() { progressEvery, progressStaleAfter = oldEvery, oldStale })

	bucket := origintest.NewFakeBucket(t)
	vol := t.TempDir()
	files := map[string][]byte{}
	for i := range 20 {
		files[fmt.Sprintf("media_attachments/files/000/000/%03d/original/%016d.jpg", i, i)] = []byte(strings.Repeat("x", 1000+i))
	}
	writeTree(t, vol, files)
	// A copier of another store that vanished mid-copy (a Job killed): its last figures.
	gone, _ := json.Marshal(admin.Migration{Source: "wasabi", Reporter: "fedicache-backfill-x7k2p", Running: true,
		UpdatedAt: time.Now().Add(-time.Minute), FilesTotal: 100, FilesDone: 40})
	bucket.Put(t, progressKey(state.DefaultPrefix, "wasabi"), gone)
	base := `
listen: "127.0.0.1:0"
admin_listen: "127.0.0.1:0"
state_refresh: 1s
` + bucketYAML(bucket) + `  permission: ""
fallback:
  dir: ` + vol + `
`
	copier := startReplica(t, base+"backfill:\n  enabled: true\n")
	reader := startReplica(t, base)

	var st struct {
		Migrations []admin.Migration `json:"migrations"`
	}
	within(t, 20*time.Second, "the reader shows the finished copy", func() (bool, string) {
		getJSON(t, "http://"+reader.admin+"/status", &st)
		ok := len(st.Migrations) == 2 && st.Migrations[0].Source == "volume" && st.Migrations[0].Done &&
			st.Migrations[0].FilesDone == int64(len(files)) && st.Migrations[0].Reporter != "" &&
			st.Migrations[1].Source == "wasabi" && st.Migrations[1].Stale && !st.Migrations[1].Running && st.Migrations[1].FilesDone == 40
		return ok, fmt.Sprintf("%+v", st.Migrations)
	})
	getJSON(t, "http://"+copier.admin+"/status", &st)
	if len(st.Migrations) == 0 || !st.Migrations[0].Done || st.Migrations[0].FilesCopied != int64(len(files)) {
		t.Errorf("the copier's own /status: %+v", st.Migrations)
	}
	copier.close()
	if bucket.Puts() < len(files) {
		t.Errorf("%d PUTs for %d files", bucket.Puts(), len(files))
	}
}
