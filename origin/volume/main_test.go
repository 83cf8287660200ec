package volume_test

import (
	"flag"
	"fmt"
	"os"
	"testing"

	"github.com/fedicache/fedicache/origin/volume"
)

// TestMain runs the package's tests twice: first with volumes as Open makes them (one openat2
// call per key on Linux), then with os.Root alone, the path of other systems and of kernels and
// sandboxes that refuse openat2. Benchmarks choose their path themselves and run in the first
// pass only; a listing or a fuzzing run happens once.
func TestMain(m *testing.M) {
	code := m.Run()
	if flagSet("test.list") || flagSet("test.fuzz") || flagSet("test.fuzzworker") {
		os.Exit(code)
	}
	if code != 0 {
		fmt.Fprintln(os.Stderr, "volume: the failures above are of volumes as Open makes them")
	}
	flag.Set("test.bench", "")
	volume.SetRootOnly(true)
	if testing.Verbose() {
		fmt.Println("volume: the tests again, with os.Root alone")
	}
	if again := m.Run(); again != 0 {
		fmt.Fprintln(os.Stderr, "volume: the failures above are of volumes with os.Root alone")
		code = again
	}
	os.Exit(code)
}

// flagSet reports whether the testing flag name has a value other than its zero.
func flagSet(name string) bool {
	f := flag.Lookup(name)
	return f != nil && f.Value.String() != "" && f.Value.String() != "false"
}
