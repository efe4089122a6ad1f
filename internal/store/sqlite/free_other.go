//go:build !unix

package sqlite

// freeBytes is unknown here: only SQLITE_FULL marks a full disk.
func freeBytes(string) (int64, bool) { return 0, false }
