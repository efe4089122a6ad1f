// Package testenv decides what tests do when an outside dependency (a
// PostgreSQL server, NATS, an npm tool) is missing: skip with the reason
// printed, or fail when MANTLE_TEST_REQUIRE names it (as CI does).
package testenv

import (
	"os"
	"strings"
	"testing"
)

// Required reports whether MANTLE_TEST_REQUIRE (comma-separated) names dep.
func Required(dep string) bool {
	for _, d := range strings.Split(os.Getenv("MANTLE_TEST_REQUIRE"), ",") {
		if strings.TrimSpace(d) == dep {
			return true
		}
	}
	return false
}

// SkipOrFail skips the test with the reason, or fails it when dep is
// required.
func SkipOrFail(t testing.TB, dep, reason string) {
	t.Helper()
	if Required(dep) {
		t.Fatalf("%s is required (MANTLE_TEST_REQUIRE) but unavailable: %s", dep, reason)
	}
	t.Skipf("skipping: %s (set MANTLE_TEST_REQUIRE=%s to make this a failure)", reason, dep)
}

// PostgresURL returns MANTLE_TEST_POSTGRES_URL, or skips (or fails) the
// test when it is unset.
func PostgresURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("MANTLE_TEST_POSTGRES_URL")
	if u == "" {
		SkipOrFail(t, "postgres", "MANTLE_TEST_POSTGRES_URL is not set")
	}
	return u
}
