package sqlite_test

import (
	"context"
	"testing"

	"github.com/mantlehq/mantle/internal/store"
	"github.com/mantlehq/mantle/internal/store/sqlite"
	"github.com/mantlehq/mantle/internal/store/storetest"
)

func open(t *testing.T) store.Store { return openTB(t) }

func openTB(t testing.TB) *sqlite.DB {
	db, err := sqlite.Open(context.Background(), t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestConformance(t *testing.T) { storetest.Run(t, open) }

func TestDirectoryLock(t *testing.T) {
	dir := t.TempDir()
	db, err := sqlite.Open(context.Background(), dir, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := sqlite.Open(context.Background(), dir, sqlite.Options{}); err == nil {
		t.Fatal("a second writer opened a locked data directory")
	}
}
