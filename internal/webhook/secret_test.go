package webhook

import (
	"context"
	"testing"

	"github.com/mantlehq/mantle/internal/engine"
	"github.com/mantlehq/mantle/internal/store/sqlite"
)

// TestStoredSecretIsShared: with StoredSecrets, managers over one store
// (nodes of a cluster) generate a webhook's secret once and all sign with
// it; without, each data folder would get a secret of its own.
func TestStoredSecretIsShared(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	eng, err := engine.New(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	a := NewManager(Options{Engine: eng, DataDir: t.TempDir(), StoredSecrets: true})
	b := NewManager(Options{Engine: eng, DataDir: t.TempDir(), StoredSecrets: true})
	ka, err := a.secret(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	kb, err := b.secret(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	if len(ka) != 32 || string(ka) != string(kb) {
		t.Fatalf("two nodes got different secrets (%d and %d bytes)", len(ka), len(kb))
	}
	if kc, _ := a.secret(ctx, "other"); string(kc) == string(ka) {
		t.Fatal("two webhooks share a secret")
	}
}
