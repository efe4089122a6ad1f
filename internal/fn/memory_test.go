package fn

import (
	"testing"
	"unsafe"
)

// TestSliceMemoryGrowsGeometrically grows a memory a page at a time, as
// a Go guest does, and counts how often the backing array moved: a copy
// of the whole memory per grow made filling 32 MiB take most of a second.
func TestSliceMemoryGrowsGeometrically(t *testing.T) {
	const page, maxPages = 65536, 512
	lm := memoryAllocator.Allocate(page, maxPages*page)
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
