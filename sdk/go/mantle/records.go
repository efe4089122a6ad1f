package mantle

import (
	"encoding/json"
	"strconv"
)

// Collection is a handle on one collection, for host calls.
type Collection struct{ name string }

// Records returns a handle on the named collection.
func Records(collection string) Collection { return Collection{collection} }

// Record is a record as the API renders it: system fields and the
// collection's fields.
type Record map[string]any

// ID returns the record's id.
func (r Record) ID() string { s, _ := r["id"].(string); return s }

// String returns a string field, or "".
func (r Record) String(field string) string { s, _ := r[field].(string); return s }

// Number returns a number field, or 0.
func (r Record) Number(field string) float64 { f, _ := r[field].(float64); return f }

// Query selects records for List. Filter and Sort are those of the
// records API (a CEL filter; "-createdAt,title").
type Query struct {
	Filter string `json:"filter,omitempty"`
	Sort   string `json:"sort,omitempty"`
	Limit  int    `json:"limit,omitempty"` // default 50, at most 1000
	Cursor string `json:"cursor,omitempty"`
}

// Page is one page of a List.
type Page struct {
	Items      []Record `json:"items"`
	NextCursor string   `json:"nextCursor,omitempty"` // empty on the last page
}

// Get returns a record by id; a missing one (or one the function may not
// view) is an Error that NotFound recognises.
func (c Collection) Get(id string) (Record, error) {
	var r Record
	err := invoke("records.get", map[string]any{"collection": c.name, "id": id}, &r)
	return r, err
}

// List returns a page of the records the query selects.
func (c Collection) List(q Query) (*Page, error) {
	var p Page
	err := invoke("records.list", struct {
		Collection string `json:"collection"`
		Query
	}{c.name, q}, &p)
	return &p, err
}

// Create creates a record from data (a struct or map) and returns it.
func (c Collection) Create(data any) (Record, error) {
	var r Record
	err := invoke("records.create", map[string]any{"collection": c.name, "data": data}, &r)
	return r, err
}

// Update changes the given fields of a record and returns it. ifMatch,
// when not 0, is the version the record must have.
func (c Collection) Update(id string, data any, ifMatch int64) (Record, error) {
	var r Record
	err := invoke("records.update", map[string]any{"collection": c.name, "id": id, "data": data, "ifMatch": ifMatch}, &r)
	return r, err
}

// Delete deletes a record.
func (c Collection) Delete(id string, ifMatch int64) error {
	return invoke("records.delete", map[string]any{"collection": c.name, "id": id, "ifMatch": ifMatch}, nil)
}

// Decode converts a record into a struct with json tags.
func (r Record) Decode(v any) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// Quote returns s as a CEL string literal, for filters:
// "account == " + mantle.Quote(id).
func Quote(s string) string { return strconv.Quote(s) }
