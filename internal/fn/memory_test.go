package fn

import (
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"
)

// TestSliceMemoryGrowsGeometrically grows a memory a page at a time, as
// a Go guest does, and counts how often the backing array moved: a copy
// of the whole memory per grow made filling 32 MiB take most of a second.
func TestSliceMemoryGrowsGeometrically(t *testing.T) {
	const page, maxPages = 65536, 512
	lm := newSliceMemory(page, maxPages*page)
	defer lm.Free()
	buf := lm.Reallocate(page)
	buf[0] = 42
	moves := 0
	for n := uint64(2); n <= maxPages; n++ {
		grown := lm.Reallocate(n * page)
		if uint64(len(grown)) != n*page || grown[0] != 42 || grown[len(grown)-1] != 0 {
			t.Fatalf("page %d: len %d, first byte %d", n, len(grown), grown[0])
		}
		if unsafe.SliceData(grown) != unsafe.SliceData(buf) {
			moves++
		}
		grown[len(grown)-1] = 7 // the next page must still come zeroed
		buf = grown
	}
	if moves > 32 {
		t.Fatalf("the memory moved %d times in %d grows", moves, maxPages-1)
	}
	if lm.Reallocate(maxPages*page+1) != nil {
		t.Fatal("grew past the maximum")
	}
}

// procKiB reads a field (VmRSS, VmHWM) of this process's status, in KiB.
func procKiB(t *testing.T, field string) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("skipping: no /proc/self/status (%v)", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	t.Fatalf("no %s in /proc/self/status", field)
	return 0
}

// A guest's memory limit bounds what it costs the server: guests that
// fill their 48 MiB over and over raise the process's peak resident
// memory by about that, not by several times it (copies of a growing
// slice and old slices the collector had not reclaimed).
func TestGuestMemoryBoundsServerRSS(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("skipping: peak resident memory is read from Linux's /proc")
	}
	const limit = 48 << 20
	m := compile(t, Reactor, Limits{Timeout: 10 * time.Second, MemoryBytes: limit, MaxOutput: 4096})
	invoke(t, m, `{"do":"echo"}`) // warm: the instance pool and the compiled code are there
	runtime.GC()
	debug.FreeOSMemory()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Skipf("skipping: cannot reset the peak resident memory (%v)", err)
	}
	before := procKiB(t, "VmRSS")
	for range 5 {
		if _, _, err := invoke(t, m, `{"do":"alloc"}`); err == nil {
			t.Fatal("the guest grew without bound")
		}
	}
	grew := (procKiB(t, "VmHWM") - before) << 10
	t.Logf("5 guests that filled %d MiB raised the peak resident memory by %d MiB", limit>>20, grew>>20)
	if grew > limit+16<<20 {
		t.Errorf("the peak resident memory grew by %d MiB for a guest limited to %d MiB", grew>>20, limit>>20)
	}
}
