package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/mantlehq/mantle/internal/schema"
	sqlite3 "github.com/ncruces/go-sqlite3"
)

// The hot reads (a get that misses the cache, a list page, its count) use
// SQLite connections directly, without database/sql: its locking and value
// conversions cost about a sixth of a list request. Everything else reads
// through database/sql.

// maxStmts bounds the statement cache of one read connection.
const maxStmts = 512

type readConn struct {
	c     *sqlite3.Conn
	stmts map[string]*sqlite3.Stmt
}

type readPool struct{ conns chan *readConn }

func openReadPool(path string, n, cacheBytes int) (*readPool, error) {
	if cacheBytes <= 0 {
		cacheBytes = 16 << 20
	}
	p := &readPool{conns: make(chan *readConn, n)}
	for i := 0; i < n; i++ {
		c, err := sqlite3.OpenFlags(dsn(path), sqlite3.OPEN_READWRITE|sqlite3.OPEN_URI)
		if err != nil {
			p.close()
			return nil, fmt.Errorf("open read connection: %w", err)
		}
		err = c.BusyTimeout(10 * time.Second)
		if err == nil {
			err = c.Exec(fmt.Sprintf("PRAGMA query_only = 1; PRAGMA cache_size = -%d", max(cacheBytes>>10, 256)))
		}
		if err == nil {
			err = stablePlans(c)
		}
		if err != nil {
			c.Close()
			p.close()
			return nil, fmt.Errorf("set up read connection: %w", err)
		}
		p.conns <- &readConn{c: c, stmts: map[string]*sqlite3.Stmt{}}
	}
	return p, nil
}

func (p *readPool) close() {
	for {
		select {
		case rc := <-p.conns:
			rc.reset()
			rc.c.Close()
		default:
			return
		}
	}
}

// query runs q with args on a pooled connection and calls row for each
// result row until it returns false.
func (p *readPool) query(ctx context.Context, q string, args []any, row func(*sqlite3.Stmt) bool) error {
	var rc *readConn
	select {
	case rc = <-p.conns:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { p.conns <- rc }()
	// The statement stops when ctx ends (a query's time budget, a client
	// that left): SQLite's progress handler checks it every 1,000 steps.
	rc.c.SetInterrupt(ctx)
	defer rc.c.SetInterrupt(context.Background())
	s, err := rc.stmt(q)
	if err != nil {
		return err
	}
	defer s.Reset() // ends the read transaction
	for i, a := range args {
		if err := bindValue(s, i+1, a); err != nil {
			return err
		}
	}
	for s.Step() {
		if !row(s) {
			break
		}
	}
	return s.Err()
}

func (rc *readConn) stmt(q string) (*sqlite3.Stmt, error) {
	if s, ok := rc.stmts[q]; ok {
		return s, nil
	}
	if len(rc.stmts) >= maxStmts {
		rc.reset()
	}
	s, _, err := rc.c.Prepare(q)
	if err != nil {
		return nil, err
	}
	rc.stmts[q] = s
	return s, nil
}

// reset closes the cached statements, after a schema change or when the
// cache is full.
func (rc *readConn) reset() {
	for q, s := range rc.stmts {
		s.Close()
		delete(rc.stmts, q)
	}
}

// resetAll drops every connection's statements.
func (p *readPool) resetAll() {
	n := cap(p.conns)
	held := make([]*readConn, 0, n)
	for i := 0; i < n; i++ {
		rc := <-p.conns
		rc.reset()
		held = append(held, rc)
	}
	for _, rc := range held {
		p.conns <- rc
	}
}

func bindValue(s *sqlite3.Stmt, i int, v any) error {
	switch v := v.(type) {
	case nil:
		return s.BindNull(i)
	case int:
		return s.BindInt64(i, int64(v))
	case int64:
		return s.BindInt64(i, v)
	case float64:
		return s.BindFloat(i, v)
	case string:
		return s.BindText(i, v)
	case bool:
		return s.BindBool(i, v)
	case []byte:
		return s.BindBlob(i, v)
	}
	return fmt.Errorf("cannot bind %T", v)
}

// scanRaw reads the current row of a collection's SELECT.
func scanRaw(c *schema.Collection, s *sqlite3.Stmt) *schema.Record {
	r := &schema.Record{Data: make(map[string]any, len(c.Fields))}
	r.ID = s.ColumnText(0)
	r.CreatedAt = parseTime(s.ColumnText(1))
	r.UpdatedAt = parseTime(s.ColumnText(2))
	r.Version = s.ColumnInt64(3)
	for i, f := range c.Fields {
		col := 4 + i
		if s.ColumnType(col) == sqlite3.NULL {
			continue
		}
		switch f.Type {
		case schema.Number:
			r.Data[f.Name] = s.ColumnFloat(col)
		case schema.Bool:
			r.Data[f.Name] = s.ColumnInt64(col) != 0
		case schema.Datetime:
			r.Data[f.Name] = parseTime(s.ColumnText(col))
		case schema.JSON:
			r.Data[f.Name] = json.RawMessage(s.ColumnText(col))
		default:
			r.Data[f.Name] = s.ColumnText(col)
		}
	}
	return r
}
