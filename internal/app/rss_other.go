//go:build !linux

package app

// residentBytes is not measured here: the governor keeps a fixed limit.
func residentBytes() (int64, bool) { return 0, false }
