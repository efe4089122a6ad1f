//go:build unix

package fn

import (
	"golang.org/x/sys/unix"

	"github.com/tetratelabs/wazero/experimental"
)

// mmapMemory is a guest's linear memory in its own mapping, outside the Go
// heap: its whole maximum is reserved as address space (no memory), and
// pages are committed as the guest grows, in place: no copy, no garbage
// for the collector, and the server's resident memory grows by what the
// guest touches, never by a copy of it. Freed, the mapping goes back to
// the system at once. A guest limited to 48 MiB costs the server at most
// 48 MiB, not the several times that copies and uncollected old slices of
// a growing Go slice cost.
type mmapMemory struct {
	mem       []byte // the reservation: len is the maximum
	committed int
}

// memoryAllocator makes every instance's linear memory an mmapMemory
// (a sliceMemory when the system refuses the reservation).
var memoryAllocator = experimental.MemoryAllocatorFunc(func(capacity, max uint64) experimental.LinearMemory {
	size := int(roundPage(max))
	if size == 0 {
		return newSliceMemory(capacity, max)
	}
	b, err := unix.Mmap(-1, 0, size, unix.PROT_NONE, unix.MAP_PRIVATE|unix.MAP_ANON|unix.MAP_NORESERVE)
	if err != nil {
		return newSliceMemory(capacity, max)
	}
	return &mmapMemory{mem: b}
})

func roundPage(n uint64) uint64 {
	p := uint64(unix.Getpagesize())
	return (n + p - 1) &^ (p - 1)
}

// Reallocate answers the memory at size bytes, committing what is new;
// nil over the maximum (the guest's memory.grow then fails).
func (m *mmapMemory) Reallocate(size uint64) []byte {
	if size > uint64(len(m.mem)) {
		return nil
	}
	if want := int(roundPage(size)); want > m.committed {
		if err := unix.Mprotect(m.mem[m.committed:want], unix.PROT_READ|unix.PROT_WRITE); err != nil {
			return nil
		}
		guestBytes.Add(int64(want - m.committed))
		m.committed = want
	}
	return m.mem[:size:size]
}

// Free gives the mapping back.
func (m *mmapMemory) Free() {
	if m.mem != nil {
		unix.Munmap(m.mem)
		guestBytes.Add(-int64(m.committed))
		m.mem, m.committed = nil, 0
	}
}
