package app

import (
	"context"
	"fmt"

	"github.com/mantlehq/mantle/internal/bus"
	"github.com/mantlehq/mantle/internal/config"
	"github.com/mantlehq/mantle/internal/engine"
)

// The cluster identity is recorded in the store: the nodes that share a
// database must be one cluster (one NATS stream, one lease bucket), or
// each cluster would run every webhook, automation and schedule.
const (
	kindCluster = "cluster"
	keyCluster  = "name"
	standalone  = "-" // a PostgreSQL database served by one node without NATS
)

// claimCluster records this node's cluster in a PostgreSQL store the first
// time, and refuses to start a node whose cluster differs from the one
// recorded: another --cluster name, or a node without NATS on a database
// that a cluster runs. A database that was served by a single node may
// join a cluster (the first node started with --nats claims it). SQLite is
// one node by construction (the data folder is locked).
func claimCluster(ctx context.Context, eng *engine.Engine, cfg config.Config) error {
	if !cfg.Postgres() {
		return nil
	}
	want := standalone
	if cfg.Nats != "" {
		want = cfg.Cluster
		if want == "" {
			want = bus.DefaultCluster
		}
	}
	var got string
	err := eng.Transact(ctx, func(tx engine.SystemTx) error {
		raw, err := tx.CreateSecret(kindCluster, keyCluster, []byte(want))
		if err != nil {
			return err
		}
		got = string(raw)
		if got == standalone && want != standalone {
			got = want // a single node's database joins a cluster
			return tx.PutSecret(kindCluster, keyCluster, []byte(want))
		}
		return nil
	})
	switch {
	case err != nil:
		return fmt.Errorf("record the cluster: %w", err)
	case got == want:
		return nil
	case want == standalone:
		return fmt.Errorf("this database is run by the cluster %q: start this node with --nats and --cluster %s, or give it a database of its own (a node outside the cluster would run every webhook, automation and schedule a second time)", got, got)
	}
	return fmt.Errorf("this database is run by the cluster %q, not %q: start this node with --cluster %s (nodes of two clusters on one database would each run every webhook, automation and schedule)", got, want, got)
}
