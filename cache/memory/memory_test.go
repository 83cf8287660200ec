package memory_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/fedicache/fedicache/cache"
	"github.com/fedicache/fedicache/cache/memory"
	"github.com/fedicache/fedicache/cache/tiertest"
	"github.com/fedicache/fedicache/origin"
	"github.com/fedicache/fedicache/origin/fielderr"
	"github.com/fedicache/fedicache/origin/origintest"
)

// newMemory returns a tier of maxBytes that the test closes.
func newMemory(t testing.TB, maxBytes int64) *memory.Memory {
	t.Helper()
	m, err := memory.New(memory.Config{MaxBytes: maxBytes})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

// store puts e with body into m and waits until it is applied.
func store(t testing.TB, m *memory.Memory, e cache.Entry, body []byte) {
	t.Helper()
	if !m.Put(e, body) {
		t.Fatalf("Put(%q, %d bytes) refused", e.Key, len(body))
	}
	m.Wait()
}

func TestTier(t *testing.T) {
	tiertest.Run(t, func(t *testing.T, maxBytes int64) (cache.Tier, tiertest.Store) {
		m := newMemory(t, maxBytes)
		return m, func(e cache.Entry, body []byte) error {
			if !m.Put(e, body) {
				return fmt.Errorf("Put(%q, %d bytes) refused", e.Key, len(body))
			}
			m.Wait()
			return nil
		}
	})
}

func TestNewConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  memory.Config
		want string // in the error; "" for none
	}{
		{"zero", memory.Config{}, ""},
		{"small tier, default object limit", memory.Config{MaxBytes: 64 << 10}, ""},
		{"object limit at the tier size", memory.Config{MaxBytes: 1 << 20, MaxObjectBytes: 1 << 20}, ""},
		{"negative size", memory.Config{MaxBytes: -1}, "memory: Config.MaxBytes -1 is negative"},
		{"negative object limit", memory.Config{MaxObjectBytes: -1}, "memory: Config.MaxObjectBytes -1 is negative"},
		{"object limit above the tier size", memory.Config{MaxBytes: 1 << 20, MaxObjectBytes: 2 << 20},
			"memory: Config.MaxObjectBytes 2097152 is larger than Config.MaxBytes (1048576)"},
		{"object limit above the default tier size", memory.Config{MaxObjectBytes: 512 << 20},
			"memory: Config.MaxObjectBytes 536870912 is larger than Config.MaxBytes (268435456)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := memory.New(tc.cfg)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("New(%+v): %v", tc.cfg, err)
				}
				m.Close()
				return
			}
			if err == nil {
				m.Close()
				t.Fatalf("New(%+v) succeeded, want an error about %q", tc.cfg, tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "e.g.") {
				t.Errorf("New(%+v): %q, want it to say %q and give an example", tc.cfg, err, tc.want)
			}
			if fe := (*fielderr.Error)(nil); !errors.As(err, &fe) || fe.Pkg != "memory" {
				t.Errorf("New(%+v): %v (%T), want a *fielderr.Error of package memory", tc.cfg, err, err)
			}
		})
	}
}

func TestPutRefuses(t *testing.T) {
	m, err := memory.New(memory.Config{MaxBytes: 1 << 20, MaxObjectBytes: 1000})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	fits := tiertest.Blob(1, 1000)
	big := tiertest.Blob(2, 1001)
	for _, tc := range []struct {
		name string
		e    cache.Entry
		body []byte
	}{
		{"larger than MaxObjectBytes", tiertest.NewEntry("a/big.png", big), big},
		{"shorter than its Size", tiertest.NewEntry("a/short.png", fits), fits[:999]},
		{"longer than its Size", tiertest.NewEntry("a/long.png", fits[:10]), fits},
		{"without a key", tiertest.NewEntry("", fits), fits},
	} {
		if m.Put(tc.e, tc.body) {
			t.Errorf("Put of an entry %s was taken", tc.name)
		}
	}
	m.Wait()
	for _, k := range []string{"a/big.png", "a/short.png", "a/long.png"} {
		if _, ok := m.Peek(k); ok {
			t.Errorf("Peek(%q) found a refused entry", k)
		}
	}
	if st := m.Stats(); st.Entries != 0 {
		t.Errorf("Stats after refused Puts: %+v", st)
	}
	store(t, m, tiertest.NewEntry("a/fits.png", fits), fits)
	if _, ok := m.Peek("a/fits.png"); !ok {
		t.Error("an entry of exactly MaxObjectBytes was not stored")
	}
}

func TestOpenAfterClose(t *testing.T) {
	m, err := memory.New(memory.Config{MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	body := []byte("hello")
	store(t, m, tiertest.NewEntry("a/1.txt", body), body)
	m.Close()
	if _, _, err := m.Open("a/1.txt", nil); !errors.Is(err, origin.ErrNotFound) {
		t.Errorf("Open after Close: %v, want ErrNotFound", err)
	}
	if m.Put(tiertest.NewEntry("a/2.txt", body), body) {
		t.Error("Put after Close was taken")
	}
	if st := m.Stats(); st.Entries != 0 || st.Bytes != 0 {
		t.Errorf("Stats after Close: %+v", st)
	}
	m.Close() // a second Close is harmless
}

func TestReader(t *testing.T) {
	m := newMemory(t, 1<<20)
	data := tiertest.Blob(7, 10_000)
	store(t, m, tiertest.NewEntry("a/r.bin", data), data)

	body, _, err := m.Open("a/r.bin", &origin.Range{Start: 100, End: 5099})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if n, err := buf.ReadFrom(body); err != nil || n != 5000 || !bytes.Equal(buf.Bytes(), data[100:5100]) {
		t.Errorf("reading a range: %d bytes, %v", n, err)
	}
	body.Close()
	if _, err := body.Read(make([]byte, 1)); err == nil {
		t.Error("Read after Close succeeded")
	}

	body, _, err = m.Open("a/r.bin", nil)
	if err != nil {
		t.Fatal(err)
	}
	small := make([]byte, 3)
	if n, err := body.Read(small); n != 3 || err != nil || !bytes.Equal(small, data[:3]) {
		t.Errorf("first Read: %d, %v", n, err)
	}
	if got := origintest.ReadAll(t, body); !bytes.Equal(got, data[3:]) {
		t.Errorf("the rest: %d bytes, want %d", len(got), len(data)-3)
	}
}
