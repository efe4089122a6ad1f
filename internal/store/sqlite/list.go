package sqlite

import (
	"context"
	"strings"

	"github.com/mantlehq/mantle/internal/query"
	"github.com/mantlehq/mantle/internal/schema"
	"github.com/mantlehq/mantle/internal/store"
	"github.com/mantlehq/mantle/internal/store/sqlkit"
	sqlite3 "github.com/ncruces/go-sqlite3"
)

// List implements store.Store with keyset pagination: the cursor becomes a
// condition on the sort keys, so no page costs an offset scan.
func (db *DB) List(ctx context.Context, c *schema.Collection, q *query.Query) (*store.Page, error) {
	var where render
	where.expr(query.Simplify(query.And{L: q.Filter, R: q.Seek()}))
	var b strings.Builder
	b.WriteString(`SELECT ` + columns(c) + ` FROM ` + quote(c.Name) + ` WHERE ` + where.b.String() + ` ORDER BY `)
	sqlkit.OrderBy(&b, q.Sort)
	b.WriteString(` LIMIT ?`)
	args := append(where.args, q.Limit+1)
	sql := b.String()
	var key string
	var gen pageGen
	cacheable := false
	if db.pages != nil {
		key, cacheable = pageKey(sql, args, q.Fields, q.Count, q.Encode)
	}
	if cacheable {
		var hit *store.Page
		if hit, gen = db.pages.get(c.Name, key); hit != nil {
			return hit, nil
		}
	}
	ctx, done, err := store.Enter(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	page := &store.Page{Total: -1}
	n := 0
	err = db.raw.query(ctx, sql, args, func(s *sqlite3.Stmt) bool {
		if n == q.Limit {
			page.More = true
			return false
		}
		n++
		if !q.Encode {
			page.Records = append(page.Records, scanRaw(c, s))
			return true
		}
		page.JSON = append(page.JSON, appendRow(make([]byte, 0, 512), c, s, q.Fields))
		if n == q.Limit {
			// The next cursor now, not the record it is made from: a
			// page kept in the cache costs its rows and a short string.
			page.SetCursor(q.Cursor(scanRaw(c, s)))
		}
		return true
	})
	if err != nil {
		return nil, wrap("list "+c.Name, err)
	}
	if q.Count {
		var cnt render
		cnt.expr(q.Filter)
		err := db.raw.query(ctx, `SELECT count(*) FROM `+quote(c.Name)+` WHERE `+cnt.b.String(), cnt.args, func(s *sqlite3.Stmt) bool {
			page.Total = s.ColumnInt64(0)
			return false
		})
		if err != nil {
			return nil, wrap("count "+c.Name, err)
		}
	}
	if cacheable {
		db.pages.fill(c.Name, key, gen, page)
	}
	return page, nil
}
