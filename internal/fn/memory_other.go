//go:build !unix

package fn

import "github.com/tetratelabs/wazero/experimental"

// memoryAllocator makes every instance's linear memory a sliceMemory.
var memoryAllocator = experimental.MemoryAllocatorFunc(func(capacity, max uint64) experimental.LinearMemory {
	return newSliceMemory(capacity, max)
})
