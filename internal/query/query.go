package query

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/mantlehq/mantle"
	"github.com/mantlehq/mantle/internal/schema"
)

// List limits.
const (
	DefaultLimit = 50
	MaxLimit     = 1000
	maxSortKeys  = 8
)

// SortKey orders a list by one column. Ascending keys put nulls first,
// descending keys put them last.
type SortKey struct {
	Col  Column
	Desc bool
}

// Query is a parsed list request.
type Query struct {
	Filter Expr
	Sort   []SortKey // always ends with id
	Limit  int
	After  []any           // the cursor: one value per sort key; nil for the first page
	Fields map[string]bool // nil means all fields
	Expand []string        // relation fields to inline
	Count  bool
	// Encode asks the store for each record's JSON (Page.JSON) instead of
	// the records; the last record still comes back in Page.Records, for
	// the cursor.
	Encode bool
}

func invalid(reason, format string, args ...any) *mantle.Error {
	return mantle.Errorf(mantle.Invalid, reason, format, args...)
}

// Parse reads the list parameters of API.md for collection c.
func Parse(c *schema.Collection, comp *Compiler, v url.Values) (*Query, error) {
	q := &Query{Limit: DefaultLimit}
	var err error
	if q.Filter, err = comp.Compile(v.Get("filter")); err != nil {
		return nil, err
	}
	if q.Sort, err = ParseSort(c, v.Get("sort")); err != nil {
		return nil, err
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxLimit {
			return nil, invalid("query.invalid_limit", "limit must be a whole number from 1 to %d", MaxLimit)
		}
		q.Limit = n
	}
	if s := v.Get("cursor"); s != "" {
		if q.After, err = decodeCursor(q.Sort, s); err != nil {
			return nil, err
		}
	}
	if s := v.Get("fields"); s != "" {
		q.Fields = map[string]bool{schema.ColID: true}
		for _, name := range strings.Split(s, ",") {
			name = strings.TrimSpace(name)
			if _, ok := ColumnOf(c, name); !ok {
				return nil, invalid("query.invalid_fields", "fields: no field %q in collection %q", name, c.Name)
			}
			q.Fields[name] = true
		}
	}
	if s := v.Get("expand"); s != "" {
		for _, name := range strings.Split(s, ",") {
			name = strings.TrimSpace(name)
			f := c.Field(name)
			if f == nil || f.Type != schema.Relation {
				return nil, invalid("query.invalid_expand", "expand: %q is not a relation field of %q", name, c.Name)
			}
			q.Expand = append(q.Expand, name)
		}
	}
	switch v.Get("count") {
	case "", "false":
	case "true":
		q.Count = true
	default:
		return nil, invalid("query.invalid_count", "count must be true or false")
	}
	return q, nil
}

// ParseSort reads "-views,title". The id is appended as the tie-breaker,
// in the direction of the last key.
func ParseSort(c *schema.Collection, s string) ([]SortKey, error) {
	var keys []SortKey
	desc := false
	if s != "" {
		parts := strings.Split(s, ",")
		if len(parts) > maxSortKeys {
			return nil, invalid("query.invalid_sort", "sort takes at most %d fields", maxSortKeys)
		}
		for _, p := range parts {
			p = strings.TrimSpace(p)
			desc = strings.HasPrefix(p, "-")
			name := strings.TrimPrefix(strings.TrimPrefix(p, "-"), "+")
			col, ok := ColumnOf(c, name)
			if !ok {
				return nil, invalid("query.invalid_sort", "sort: no field %q in collection %q", name, c.Name)
			}
			if col.Type == schema.JSON {
				return nil, invalid("query.invalid_sort", "sort: json field %q cannot be sorted", name)
			}
			if name == schema.ColID {
				return append(keys, SortKey{Col: col, Desc: desc}), nil
			}
			keys = append(keys, SortKey{Col: col, Desc: desc})
		}
	}
	id, _ := SystemColumn(schema.ColID)
	return append(keys, SortKey{Col: id, Desc: desc}), nil
}

// Seek returns the condition for rows after the cursor, or Const{true}.
func (q *Query) Seek() Expr {
	if q.After == nil {
		return Const{true}
	}
	return seek(q.Sort, q.After)
}

func seek(keys []SortKey, vals []any) Expr {
	k, v := keys[0], vals[0]
	var beyond, equal Expr
	switch {
	case v == nil && k.Desc:
		beyond, equal = Const{false}, Null{Col: k.Col, IsNull: true}
	case v == nil:
		beyond, equal = Null{Col: k.Col, IsNull: false}, Null{Col: k.Col, IsNull: true}
	case k.Desc:
		beyond = Cmp{Col: k.Col, Op: Lt, Value: v}
		if k.Col.Nullable {
			beyond = Or{beyond, Null{Col: k.Col, IsNull: true}}
		}
		equal = Cmp{Col: k.Col, Op: Eq, Value: v}
	default:
		beyond, equal = Cmp{Col: k.Col, Op: Gt, Value: v}, Cmp{Col: k.Col, Op: Eq, Value: v}
	}
	if len(keys) == 1 {
		return beyond
	}
	return Simplify(Or{beyond, And{equal, seek(keys[1:], vals[1:])}})
}

type cursor struct {
	Sort   string `json:"s"`
	Values []any  `json:"v"`
}

func sortSpec(keys []SortKey) string {
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k.Col.Name
		if k.Desc {
			parts[i] = "-" + parts[i]
		}
	}
	return strings.Join(parts, ",")
}

// Cursor returns the cursor that continues after record r.
func (q *Query) Cursor(r *schema.Record) string {
	c := cursor{Sort: sortSpec(q.Sort)}
	for _, k := range q.Sort {
		v := Value(r, k.Col.Name)
		if t, ok := v.(time.Time); ok {
			v = t.UTC().Format(schema.TimeFormat)
		}
		c.Values = append(c.Values, v)
	}
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(keys []SortKey, s string) ([]any, error) {
	bad := invalid("query.invalid_cursor", "cursor is not one this list returned; start again without it")
	if len(s) > 8192 {
		return nil, bad
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, bad
	}
	var c cursor
	if json.Unmarshal(b, &c) != nil || len(c.Values) != len(keys) {
		return nil, bad
	}
	if c.Sort != sortSpec(keys) {
		return nil, invalid("query.invalid_cursor", "cursor belongs to sort %q; keep the sort of the first page", c.Sort)
	}
	for i, k := range keys {
		v := c.Values[i]
		if v == nil {
			if !k.Col.Nullable {
				return nil, bad
			}
			continue
		}
		ok := false
		switch k.Col.Type {
		case schema.Number:
			_, ok = v.(float64)
		case schema.Bool:
			_, ok = v.(bool)
		case schema.Datetime:
			var t time.Time
			if s, isStr := v.(string); isStr {
				t, err = time.Parse(time.RFC3339Nano, s)
				ok = err == nil
				c.Values[i] = t.UTC()
			}
		default:
			_, ok = v.(string)
		}
		if !ok {
			return nil, bad
		}
	}
	return c.Values, nil
}
