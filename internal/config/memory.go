package config

import (
	"fmt"
	"strconv"
	"strings"
)

// EnvMemoryLimit sets the server's memory budget.
const EnvMemoryLimit = "MANTLE_MEMORY_LIMIT"

// DefaultMemoryLimit is the memory budget unless set: sized so that a
// server on a 512 MB machine never meets the OOM killer (see
// docs/storage.md, "Memory").
const DefaultMemoryLimit = 128 << 20

// ParseBytes reads a size: a number of bytes, or one with a unit of KiB,
// MiB or GiB (K, M, G and KB, MB, GB are read the same, as powers of 2).
func ParseBytes(s string) (int64, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"kb", 1 << 10}, {"mb", 1 << 20}, {"gb", 1 << 30},
		{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"b", 1}} {
		if strings.HasSuffix(strings.ToLower(t), u.suffix) {
			t, mult = strings.TrimSpace(t[:len(t)-len(u.suffix)]), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > (1<<50)/mult {
		return 0, fmt.Errorf("%q is not a size such as 128MiB or 2GiB", s)
	}
	return n * mult, nil
}
