//go:build linux

package app

import (
	"testing"

	"golang.org/x/sys/unix"
)

// mapResident maps n bytes outside the Go heap and touches every page.
func mapResident(t *testing.T, n int) []byte {
	b, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANON)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Munmap(b) })
	for i := 0; i < n; i += 4096 {
		b[i] = 1
	}
	return b
}
