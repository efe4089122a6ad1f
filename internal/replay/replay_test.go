package replay_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mantlehq/mantle/internal/apptest"
	"github.com/mantlehq/mantle/internal/cli"
	"github.com/mantlehq/mantle/internal/config"
	"github.com/mantlehq/mantle/internal/engine"
	"github.com/mantlehq/mantle/internal/policy"
	"github.com/mantlehq/mantle/internal/project"
	"github.com/mantlehq/mantle/internal/store/sqlite"
	_ "github.com/ncruces/go-sqlite3/driver"
)

const v1 = `
name: replay
collections:
  posts:
    fields:
      title: { type: text, required: true }
      views: { type: number, integer: true }
      score: { type: number }
      tags:  { type: json }
      at:    { type: datetime }
      ok:    { type: bool }
      gone:  { type: text }
    indexes:
      - fields: [title]
        unique: true
    rules: { list: "true", view: "true", create: "true", update: "true", delete: "true" }
`

// v2 drops a field, retypes one, adds a field and a collection.
const v2 = `
name: replay
collections:
  posts:
    fields:
      title: { type: text, required: true }
      views: { type: number, integer: true }
      score: { type: text }
      tags:  { type: json }
      at:    { type: datetime }
      ok:    { type: bool }
      extra: { type: select, values: [a, b] }
    indexes:
      - fields: [title]
        unique: true
    rules: { list: "true", view: "true", create: "true", update: "true", delete: "true" }
  notes:
    fields:
      body: { type: text }
    rules: { create: "true" }
`

func TestReplayRebuildsEveryRow(t *testing.T) {
	// mantle replay rebuilds a SQLite data folder: pinned to SQLite even
	// when MANTLE_TEST_STORE runs the API tests on PostgreSQL.
	s := apptest.StartConfig(t, v1, func(c *config.Config) { c.Store = "" })
	var ids []string
	for i := 0; i < 30; i++ {
		r := s.Do("POST", "/api/collections/posts/records", fmt.Sprintf(
			`{"title":"t%d","views":%d,"score":%g,"tags":{"i":[%d]},"at":"2024-01-0%dT10:00:00.5Z","ok":%t,"gone":"g"}`,
			i, i, float64(i)/3, i, i%9+1, i%2 == 0))
		if r.Status != 201 {
			t.Fatalf("create: %s", r.Body)
		}
		ids = append(ids, r.JSON()["id"].(string))
	}
	for i, id := range ids[:10] {
		s.Do("PATCH", "/api/collections/posts/records/"+id, fmt.Sprintf(`{"views":%d,"tags":null}`, i*100))
	}
	for _, id := range ids[10:15] {
		s.Do("DELETE", "/api/collections/posts/records/"+id, nil)
	}
	s.Do("POST", "/api/batch", `{"ops":[{"op":"create","collection":"posts","data":{"title":"b1"}},{"op":"update","collection":"posts","id":"`+ids[20]+`","data":{"title":"renamed"}}]}`)

	// A destructive schema change in the middle of the log.
	os.WriteFile(filepath.Join(s.Dir, "mantle.yaml"), []byte(v2), 0o644)
	p, err := project.Load(s.Dir, policy.Check)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.App.Engine.Apply(context.Background(), p.Schema, engine.AllowDestructive); err != nil {
		t.Fatal(err)
	}
	s.Do("POST", "/api/collections/posts/records", `{"title":"after","score":"high","extra":"a"}`)
	s.Do("POST", "/api/collections/notes/records", `{"body":"n"}`)
	s.Do("PATCH", "/api/collections/posts/records/"+ids[25], `{"score":"x","extra":"b"}`)
	s.Close()

	into := filepath.Join(t.TempDir(), "rebuilt")
	var out, errb bytes.Buffer
	if code := cli.Main(context.Background(), []string{"replay", "--data", s.Data, "--into", into}, &out, &errb); code != 0 {
		t.Fatalf("replay: %d %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "Replayed") {
		t.Errorf("replay output: %q", out.String())
	}
	want, got := dump(t, filepath.Join(s.Data, sqlite.FileName)), dump(t, filepath.Join(into, sqlite.FileName))
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("rebuilt database differs (-original +rebuilt):\n%s", d)
	}
	if len(want["posts"]) != 27 || len(want["_mantle_events"]) < 50 {
		t.Errorf("fixture too small: %d posts, %d events", len(want["posts"]), len(want["_mantle_events"]))
	}
	if code := cli.Main(context.Background(), []string{"replay", "--data", s.Data, "--into", into}, &out, &errb); code == 0 {
		t.Error("replay into a folder that has a database succeeded")
	}
}

// dump returns every table's DDL and rows, as text, by table name.
func dump(t *testing.T, path string) map[string][]string {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT name, sql FROM sqlite_master WHERE type IN ('table', 'index') AND name NOT LIKE 'sqlite_%' ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	var tables []string
	for rows.Next() {
		var name string
		var ddl sql.NullString
		rows.Scan(&name, &ddl)
		out["ddl "+name] = []string{ddl.String}
		if strings.HasPrefix(ddl.String, "CREATE TABLE") {
			tables = append(tables, name)
		}
	}
	rows.Close()
	for _, name := range tables {
		rs, err := db.Query(`SELECT * FROM "` + name + `" ORDER BY 1`)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rs.Columns()
		for rs.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			rs.Scan(ptrs...)
			var b strings.Builder
			for i, v := range vals {
				if b2, ok := v.([]byte); ok {
					v = string(b2)
				}
				fmt.Fprintf(&b, "%s=%#v ", cols[i], v)
			}
			out[name] = append(out[name], b.String())
		}
		rs.Close()
	}
	return out
}
