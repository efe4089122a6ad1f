package auth

import (
	"context"
	"testing"

	"github.com/mantlehq/mantle/internal/engine"
	"github.com/mantlehq/mantle/internal/store/sqlite"
)

// TestStoredKeysAreShared: nodes that load the keyset from one store get
// the same keys (a token one signs, another verifies), and a rotation is
// stored for the next load.
func TestStoredKeysAreShared(t *testing.T) {
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
	a, err := LoadStoredKeys(ctx, eng)
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadStoredKeys(ctx, eng)
	if err != nil {
		t.Fatal(err)
	}
	if a.current().ID != b.current().ID {
		t.Fatalf("two nodes sign with %s and %s", a.current().ID, b.current().ID)
	}
	if err := a.Rotate(); err != nil {
		t.Fatal(err)
	}
	c, err := LoadStoredKeys(ctx, eng)
	if err != nil {
		t.Fatal(err)
	}
	if c.current().ID != a.current().ID || c.current().ID == b.current().ID {
		t.Fatalf("after a rotation a node loads %s, want %s", c.current().ID, a.current().ID)
	}
}
