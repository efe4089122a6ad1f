package fn

import (
	"context"

	"github.com/tetratelabs/wazero/experimental"
)

// sliceMemory is a guest's linear memory in a Go slice, where a mapping of
// its own (memory_unix.go) cannot be had whose capacity
// grows by a quarter at least (up to the memory's maximum) when the guest
// grows past it: a bounded number of copies, and at most a quarter of
// the memory allocated but unused. wazero's own backing grows by append
// with the slice's length as its capacity, so a guest that asks for
// memory page by page pays for copies of its whole memory again and
// again: a guest filling 32 MiB a megabyte at a time took 0.8 s, most of
// it in memmove and in the collector waiting for the guest.
type sliceMemory struct {
	buf []byte
	max uint64
}

func newSliceMemory(capacity, max uint64) *sliceMemory {
	guestBytes.Add(int64(capacity))
	return &sliceMemory{buf: make([]byte, 0, capacity), max: max}
}

// withMemory has the instances made under ctx use memoryAllocator.
func withMemory(ctx context.Context) context.Context {
	return experimental.WithMemoryAllocator(ctx, memoryAllocator)
}

// Reallocate answers the memory at size bytes, or nil over the maximum
// (the guest's memory.grow then fails).
func (m *sliceMemory) Reallocate(size uint64) []byte {
	if size > m.max {
		return nil
	}
	if size > uint64(cap(m.buf)) {
		grown := make([]byte, size, max(size, min(uint64(cap(m.buf))*5/4, m.max)))
		copy(grown, m.buf)
		guestBytes.Add(int64(cap(grown) - cap(m.buf)))
		m.buf = grown
	}
	m.buf = m.buf[:size]
	return m.buf
}

// Free lets the collector have the memory.
func (m *sliceMemory) Free() {
	guestBytes.Add(-int64(cap(m.buf)))
	m.buf = nil
}
