// Package schema is the data model of a project: collections, their typed
// fields, indexes and rules, record validation and the diff of two models.
// It does no I/O.
package schema

import (
	"regexp"
	"slices"
)

// FieldType is the type of a field, as written in mantle.yaml.
type FieldType string

// The seven field types.
const (
	Text     FieldType = "text"
	Number   FieldType = "number"
	Bool     FieldType = "bool"
	Datetime FieldType = "datetime"
	JSON     FieldType = "json"
	Select   FieldType = "select"
	Relation FieldType = "relation"
)

// Types lists every field type.
var Types = []FieldType{Text, Number, Bool, Datetime, JSON, Select, Relation}

// System column names. They are reserved and present on every record.
const (
	ColID        = "id"
	ColCreatedAt = "createdAt"
	ColUpdatedAt = "updatedAt"
	ColVersion   = "version"
)

// Reserved reports whether name is a system column.
func Reserved(name string) bool {
	switch name {
	case ColID, ColCreatedAt, ColUpdatedAt, ColVersion:
		return true
	}
	return false
}

var nameRE = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_]{0,62}$`)

// ValidName reports whether s may name a collection or field: a letter,
// then letters, digits or underscores, at most 63 characters.
func ValidName(s string) bool { return nameRE.MatchString(s) }

// Field is one typed field of a collection.
type Field struct {
	Name       string    `json:"name"`
	Type       FieldType `json:"type"`
	Required   bool      `json:"required,omitempty"`
	Integer    bool      `json:"integer,omitempty"`    // number: whole numbers only
	Min        *float64  `json:"min,omitempty"`        // number: least value; text: least length
	Max        *float64  `json:"max,omitempty"`        // number: greatest value; text: greatest length
	Values     []string  `json:"values,omitempty"`     // select: the allowed values
	Collection string    `json:"collection,omitempty"` // relation: the target collection
	// OnDelete is what a deletion of the target does to records that
	// point at it (relation only): OnDeleteRestrict (the default, as in
	// every SQL database), OnDeleteCascade or OnDeleteSetNull.
	OnDelete string `json:"onDelete,omitempty"`
}

// What a deletion does to the records that point at the deleted one.
const (
	OnDeleteRestrict = "restrict" // refuse the deletion (409 record.referenced)
	OnDeleteCascade  = "cascade"  // delete them too
	OnDeleteSetNull  = "setNull"  // clear their field
)

// OnDeleteAction returns the field's action, restrict when unset.
func (f *Field) OnDeleteAction() string {
	if f.OnDelete == "" {
		return OnDeleteRestrict
	}
	return f.OnDelete
}

// Index is an index over one or more fields.
type Index struct {
	Fields []string `json:"fields"`
	Unique bool     `json:"unique,omitempty"`
}

// Equal reports whether two indexes are the same.
func (ix Index) Equal(o Index) bool {
	return ix.Unique == o.Unique && slices.Equal(ix.Fields, o.Fields)
}

// Operations that rules govern.
const (
	OpList   = "list"
	OpView   = "view"
	OpCreate = "create"
	OpUpdate = "update"
	OpDelete = "delete"
)

// Ops lists the rule operations in the order they are written.
var Ops = []string{OpList, OpView, OpCreate, OpUpdate, OpDelete}

// Rules holds a CEL expression per operation; a missing one means
// administrators only.
type Rules map[string]string

// Collection is a named set of records with typed fields.
type Collection struct {
	Name    string   `json:"name"`
	Fields  []*Field `json:"fields"`
	Indexes []Index  `json:"indexes,omitempty"`
	Rules   Rules    `json:"rules,omitempty"`
	System  bool     `json:"system,omitempty"` // built in, such as users
}

// Field returns the field with the name, or nil.
func (c *Collection) Field(name string) *Field {
	for _, f := range c.Fields {
		if f.Name == name {
			return f
		}
	}
	return nil
}

// Rule returns the rule of op and whether one is set.
func (c *Collection) Rule(op string) (string, bool) {
	r, ok := c.Rules[op]
	return r, ok
}

// Schema is a whole project model. Collections are sorted by name.
type Schema struct {
	Name        string        `json:"name"`
	Collections []*Collection `json:"collections"`
}

// Collection returns the collection with the name, or nil.
func (s *Schema) Collection(name string) *Collection {
	if s == nil {
		return nil
	}
	for _, c := range s.Collections {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// Sort orders the collections by name.
func (s *Schema) Sort() {
	slices.SortFunc(s.Collections, func(a, b *Collection) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
}
