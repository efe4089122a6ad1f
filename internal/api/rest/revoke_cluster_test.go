package rest_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/mantlehq/mantle/internal/apptest"
	"github.com/mantlehq/mantle/internal/config"
	"github.com/mantlehq/mantle/internal/testenv"
	"github.com/mantlehq/mantle/internal/testenv/natstest"
)

// A logout or a revoked key on one node of a cluster ends the streams of
// that credential on another node, and the other node refuses it: the
// revocation travels in the log, not in one process's memory.
func TestRevocationReachesEveryNode(t *testing.T) {
	pgURL, natsURL := testenv.PostgresURL(t), natstest.URL(t)
	r := make([]byte, 5)
	rand.Read(r)
	name := "revoke_" + hex.EncodeToString(r)
	t.Cleanup(func() {
		if c, err := pgx.Connect(context.Background(), pgURL); err == nil {
			c.Exec(context.Background(), `DROP SCHEMA IF EXISTS `+name+` CASCADE`)
			c.Close(context.Background())
		}
	})
	sep := "?"
	if strings.Contains(pgURL, "?") {
		sep = "&"
	}
	dir := t.TempDir()
	node := func(n string) *apptest.Server {
		return apptest.StartDirConfig(t, writeProject(t, dir, ruled), filepath.Join(dir, n), func(c *config.Config) {
			c.Store, c.Nats, c.Cluster, c.Node = pgURL+sep+"search_path="+name, natsURL, name, n
		})
	}
	a, b := node("a"), node("b")
	// A node of another cluster, or one without NATS, on the same database
	// would run every webhook and schedule again: it is refused.
	store := pgURL + sep + "search_path=" + name
	for _, set := range []func(*config.Config){
		func(c *config.Config) { c.Store, c.Nats, c.Cluster, c.Node = store, natsURL, name+"_other", "c" },
		func(c *config.Config) { c.Store, c.Node = store, "d" },
	} {
		if err := apptest.TryStartDir(t, dir, filepath.Join(dir, "x"), set); err == nil || !strings.Contains(err.Error(), "is run by the cluster") {
			t.Errorf("a node outside the cluster started: %v", err)
		}
	}
	post := a.Do("POST", "/api/collections/posts/records", map[string]any{"title": "p", "published": true}, "admin").JSON()["id"].(string)
	since := "collections=comments&after=" + itoa(a.LastSeq())

	_, adaAuth := a.User("ada@example.com")
	ada := strings.TrimPrefix(adaAuth, "Authorization: Bearer ")
	onB := sseLines(t, b.URL, since, ada)
	if r := a.Do("POST", "/api/auth/logout", nil, adaAuth); r.Status != 204 {
		t.Fatal(r.Status)
	}
	comment(t, a, post)
	if got := ended(t, onB); strings.Join(got, ",") != "auth.revoked" {
		t.Errorf("node b's stream after a logout on node a got %v", got)
	}
	if r := b.Do("GET", "/api/auth/me", nil, adaAuth); r.Status != 401 {
		t.Errorf("node b still takes the logged-out token: %d", r.Status)
	}

	kr := a.Do("POST", "/api/keys", map[string]any{"name": "k", "roles": []string{"reader"}}, "admin").JSON()
	key := kr["key"].(string)
	if r := b.Do("GET", "/api/collections/comments/records", nil, bearer(key)); r.Status != 200 {
		t.Fatalf("the key on node b: %d", r.Status) // node b caches the key now
	}
	onB = sseLines(t, b.URL, since, key)
	received(t, onB, "record.created") // the comment made before, while the key is valid
	if r := a.Do("DELETE", "/api/keys/"+kr["id"].(string), nil, "admin"); r.Status != 204 {
		t.Fatal(r.Status)
	}
	comment(t, a, post)
	if got := ended(t, onB); strings.Join(got, ",") != "auth.revoked" {
		t.Errorf("node b's stream after the key's revocation on node a got %v", got)
	}
	if r := b.Do("GET", "/api/collections/comments/records", nil, bearer(key)); r.Status != 401 {
		t.Errorf("node b still takes the revoked key: %d", r.Status)
	}
}

// writeProject writes a project file into dir and returns dir.
func writeProject(t *testing.T, dir, project string) string {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "mantle.yaml"), []byte(project), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}
