package postgres

import (
	"context"
	"strings"

	"github.com/mantlehq/mantle/internal/query"
	"github.com/mantlehq/mantle/internal/schema"
	"github.com/mantlehq/mantle/internal/store"
	"github.com/mantlehq/mantle/internal/store/sqlkit"
)

// List implements store.Store with keyset pagination: the cursor becomes a
// condition on the sort keys, so no page costs an offset scan.
func (db *DB) List(ctx context.Context, c *schema.Collection, q *query.Query) (*store.Page, error) {
	var where render
	where.expr(query.Simplify(query.And{L: q.Filter, R: q.Seek()}))
	var b strings.Builder
	b.WriteString(`SELECT ` + columns(c) + ` FROM ` + quote(c.Name) + ` WHERE ` + where.b.String() + ` ORDER BY `)
	sqlkit.OrderBy(&b, q.Sort)
	b.WriteString(` LIMIT ` + where.param(q.Limit+1))
	ctx, done, err := store.Enter(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	page := &store.Page{Total: -1}
	rows, err := db.pool.Query(ctx, b.String(), where.args...)
	if err != nil {
		return nil, wrap("list "+c.Name, err)
	}
	defer rows.Close()
	s := newScanner(c)
	n := 0
	for rows.Next() {
		if n == q.Limit {
			page.More = true
			break
		}
		n++
		if err := rows.Scan(s.dest...); err != nil {
			return nil, wrap("list "+c.Name, err)
		}
		r := s.record()
		if !q.Encode {
			page.Records = append(page.Records, r)
			continue
		}
		page.JSON = append(page.JSON, c.AppendJSON(make([]byte, 0, 512), r, q.Fields, nil))
		if n == q.Limit {
			page.Records = []*schema.Record{r} // for the cursor
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, wrap("list "+c.Name, err)
	}
	if q.Count {
		var cnt render
		cnt.expr(q.Filter)
		err := db.pool.QueryRow(ctx, `SELECT count(*) FROM `+quote(c.Name)+` WHERE `+cnt.b.String(), cnt.args...).Scan(&page.Total)
		if err != nil {
			return nil, wrap("count "+c.Name, err)
		}
	}
	return page, nil
}
