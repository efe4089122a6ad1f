package sqlite

import (
	"context"
	"strings"

	"github.com/mantlehq/mantle/internal/query"
	"github.com/mantlehq/mantle/internal/schema"
	"github.com/mantlehq/mantle/internal/store"
)

// List implements store.Store with keyset pagination: the cursor becomes a
// condition on the sort keys, so no page costs an offset scan.
func (db *DB) List(ctx context.Context, c *schema.Collection, q *query.Query) (*store.Page, error) {
	var where render
	where.expr(query.Simplify(query.And{L: q.Filter, R: q.Seek()}))
	var b strings.Builder
	b.WriteString(`SELECT ` + columns(c) + ` FROM ` + quote(c.Name) + ` WHERE ` + where.b.String() + ` ORDER BY `)
	for i, k := range q.Sort {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(quote(k.Col.Name))
		if k.Desc {
			b.WriteString(" DESC NULLS LAST")
		} else if k.Col.Nullable {
			b.WriteString(" ASC NULLS FIRST")
		}
	}
	b.WriteString(` LIMIT ?`)
	args := append(where.args, q.Limit+1)
	s, err := db.readStmt(ctx, b.String())
	if err != nil {
		return nil, wrap("list "+c.Name, err)
	}
	rows, err := s.QueryContext(ctx, args...)
	if err != nil {
		return nil, wrap("list "+c.Name, err)
	}
	defer rows.Close()
	page := &store.Page{Total: -1, Records: make([]*schema.Record, 0, q.Limit)}
	sc := newScanner(c)
	for rows.Next() {
		if len(page.Records) == q.Limit {
			page.More = true
			break
		}
		r, err := sc.scan(rows)
		if err != nil {
			return nil, wrap("list "+c.Name, err)
		}
		page.Records = append(page.Records, r)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("list "+c.Name, err)
	}
	if q.Count {
		var cnt render
		cnt.expr(q.Filter)
		s, err := db.readStmt(ctx, `SELECT count(*) FROM `+quote(c.Name)+` WHERE `+cnt.b.String())
		if err != nil {
			return nil, wrap("count "+c.Name, err)
		}
		if err := s.QueryRowContext(ctx, cnt.args...).Scan(&page.Total); err != nil {
			return nil, wrap("count "+c.Name, err)
		}
	}
	return page, nil
}
