package app_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"

	"github.com/mantlehq/mantle/internal/app"
	"github.com/mantlehq/mantle/internal/config"
	"github.com/mantlehq/mantle/internal/testenv"
	"github.com/mantlehq/mantle/internal/testenv/natstest"
)

// A start that fails late (here: a node of another cluster on a database
// a cluster runs) closes what it had opened, the NATS connection and the
// follower included, and Close leaves no goroutine behind.
func TestOpenFailsWithoutLeaks(t *testing.T) {
	pgURL := testenv.PostgresURL(t)
	if os.Getenv("MANTLE_TEST_NATS_URL") == "" {
		// An in-process NATS server has goroutines of its own that would
		// blur the count.
		testenv.SkipOrFail(t, "nats", "MANTLE_TEST_NATS_URL is not set; the leak check needs an external NATS server")
	}
	natsURL := natstest.URL(t)
	ignore := goleak.IgnoreCurrent()
	schema := "leak_" + strings.ReplaceAll(strings.ToLower(t.Name()), "/", "_")
	t.Cleanup(func() {
		if c, err := pgx.Connect(context.Background(), pgURL); err == nil {
			c.Exec(context.Background(), `DROP SCHEMA IF EXISTS `+schema+` CASCADE`)
			c.Close(context.Background())
		}
	})
	sep := "?"
	if strings.Contains(pgURL, "?") {
		sep = "&"
	}
	cfg := func(cluster string) config.Config {
		c := config.Default()
		c.Project, c.Data = t.TempDir(), filepath.Join(t.TempDir(), "data")
		c.Store, c.Nats, c.Cluster = pgURL+sep+"search_path="+schema, natsURL, cluster
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		return c
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	a, err := app.Open(context.Background(), cfg(schema), log)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := app.Open(context.Background(), cfg(schema+"_other"), log); err == nil || !strings.Contains(err.Error(), "is run by the cluster") {
		t.Errorf("a node of another cluster: %v", err)
	}
	a.Close()
	goleak.VerifyNone(t, ignore)
}
