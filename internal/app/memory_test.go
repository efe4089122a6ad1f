package app

import (
	"testing"

	"github.com/mantlehq/mantle/internal/config"
)

// The memory budget sizes the caches; a small budget gives small caches,
// and --list-cache only lowers its share.
func TestBudget(t *testing.T) {
	cfg := config.Default()
	cfg.MemoryLimit, cfg.ListCacheMB = 128<<20, 32
	b := budgetOf(cfg)
	if b.heap != 64<<20 || b.listCache != 8<<20 || b.readerCache*b.readers > max(8<<20, b.readers<<20) ||
		b.records != 4096 || b.events != 1024 {
		t.Errorf("128 MiB: %+v", b)
	}
	cfg.MemoryLimit, cfg.ListCacheMB = 1<<30, 32
	if b := budgetOf(cfg); b.listCache != 32<<20 || b.heap != 512<<20 || b.events != 8192 {
		t.Errorf("1 GiB: %+v", b)
	}
	cfg.ListCacheMB = 0
	if b := budgetOf(cfg); b.listCache != -1 {
		t.Errorf("list cache off: %+v", b)
	}
}

// Every kind of system state is registered once, and the consumer kinds
// of each durable consumer are there (replay copies what is registered).
func TestStateKinds(t *testing.T) {
	seen := map[string]bool{}
	for _, k := range StateKinds() {
		if seen[k.Name] || k.Owner == "" || k.What == "" {
			t.Errorf("kind %+v: twice, or without owner or description", k)
		}
		seen[k.Name] = true
	}
	for _, want := range []string{"password", "session", "apikey", "identity", "user_epoch", "kafka_offset",
		"webhook_cursor", "webhook_dead", "fn_cursor", "fn_schedule", "automation_cursor", "automation_failed"} {
		if !seen[want] {
			t.Errorf("%s is not registered", want)
		}
	}
}
