package schema

import (
	"fmt"
	"slices"
	"strings"
)

// StepKind names a kind of migration step.
type StepKind string

// The migration steps, in the order Diff emits them.
const (
	DropIndex        StepKind = "drop index"
	DropField        StepKind = "drop field"
	DropCollection   StepKind = "drop collection"
	CreateCollection StepKind = "create collection"
	AddField         StepKind = "add field"
	AlterField       StepKind = "alter field"
	CreateIndex      StepKind = "create index"
	UpdateRules      StepKind = "update rules"
)

// Step is one change between two schemas.
type Step struct {
	Kind        StepKind
	Collection  string
	Field       *Field // add, alter (the new field), drop (the old field)
	OldField    *Field // alter: the field as it was
	Index       Index  // create/drop index
	Destructive bool   // loses data: needs --allow-destructive
}

// String renders the step for `mantle plan`: "+" adds, "~" changes, "-"
// removes without losing data, "!" loses data.
func (s Step) String() string {
	var b strings.Builder
	switch {
	case s.Destructive:
		b.WriteString("! ")
	case s.Kind == DropIndex:
		b.WriteString("- ")
	case s.Kind == AlterField || s.Kind == UpdateRules:
		b.WriteString("~ ")
	default:
		b.WriteString("+ ")
	}
	switch s.Kind {
	case CreateCollection, DropCollection, UpdateRules:
		fmt.Fprintf(&b, "%s %s", s.Kind, s.Collection)
	case AddField, DropField:
		fmt.Fprintf(&b, "%s %s.%s (%s)", s.Kind, s.Collection, s.Field.Name, describeField(s.Field))
	case AlterField:
		fmt.Fprintf(&b, "%s %s.%s (%s -> %s)", s.Kind, s.Collection, s.Field.Name,
			describeField(s.OldField), describeField(s.Field))
	case CreateIndex, DropIndex:
		u := ""
		if s.Index.Unique {
			u = "unique "
		}
		fmt.Fprintf(&b, "%s %s%s(%s)", s.Kind, u, s.Collection, strings.Join(s.Index.Fields, ", "))
	}
	if s.Destructive {
		b.WriteString("  [destructive]")
	}
	return b.String()
}

func describeField(f *Field) string {
	parts := []string{string(f.Type)}
	if f.Required {
		parts = append(parts, "required")
	}
	if f.Integer {
		parts = append(parts, "integer")
	}
	if f.Min != nil {
		parts = append(parts, fmt.Sprintf("min %g", *f.Min))
	}
	if f.Max != nil {
		parts = append(parts, fmt.Sprintf("max %g", *f.Max))
	}
	if len(f.Values) > 0 {
		parts = append(parts, "values "+strings.Join(f.Values, "|"))
	}
	if f.Collection != "" {
		parts = append(parts, "-> "+f.Collection)
	}
	if f.OnDelete != "" && f.OnDelete != OnDeleteRestrict {
		parts = append(parts, "on delete "+f.OnDelete)
	}
	return strings.Join(parts, ", ")
}

// Diff returns the steps that turn schema from into schema to. A nil from
// is the empty schema. Steps are ordered so they can run one after the
// other: drops of indexes, fields and collections first, then creations,
// additions and alterations, then new indexes.
func Diff(from, to *Schema) []Step {
	if from == nil {
		from = &Schema{}
	}
	var drops, adds, indexes []Step
	for _, oc := range from.Collections {
		nc := to.Collection(oc.Name)
		if nc == nil {
			for _, ix := range oc.Indexes {
				drops = append(drops, Step{Kind: DropIndex, Collection: oc.Name, Index: ix})
			}
			drops = append(drops, Step{Kind: DropCollection, Collection: oc.Name, Destructive: true})
			continue
		}
		for _, ix := range oc.Indexes {
			if !slices.ContainsFunc(nc.Indexes, ix.Equal) || touchesRetyped(ix, oc, nc) {
				drops = append(drops, Step{Kind: DropIndex, Collection: oc.Name, Index: ix})
			}
		}
		for _, of := range oc.Fields {
			if nc.Field(of.Name) == nil {
				drops = append(drops, Step{Kind: DropField, Collection: oc.Name, Field: of, Destructive: true})
			}
		}
	}
	for _, nc := range to.Collections {
		oc := from.Collection(nc.Name)
		if oc == nil {
			adds = append(adds, Step{Kind: CreateCollection, Collection: nc.Name})
			for _, ix := range nc.Indexes {
				indexes = append(indexes, Step{Kind: CreateIndex, Collection: nc.Name, Index: ix})
			}
			continue
		}
		for _, nf := range nc.Fields {
			of := oc.Field(nf.Name)
			switch {
			case of == nil:
				adds = append(adds, Step{Kind: AddField, Collection: nc.Name, Field: nf})
			case !fieldEqual(of, nf):
				adds = append(adds, Step{Kind: AlterField, Collection: nc.Name, Field: nf, OldField: of,
					Destructive: retyped(of, nf)})
			}
		}
		for _, ix := range nc.Indexes {
			if !slices.ContainsFunc(oc.Indexes, ix.Equal) || touchesRetyped(ix, oc, nc) {
				indexes = append(indexes, Step{Kind: CreateIndex, Collection: nc.Name, Index: ix})
			}
		}
		if !rulesEqual(oc.Rules, nc.Rules) {
			adds = append(adds, Step{Kind: UpdateRules, Collection: nc.Name})
		}
	}
	return append(append(drops, adds...), indexes...)
}

// retyped reports whether a field changed how it is stored, which means
// rebuilding its column and losing its values.
func retyped(a, b *Field) bool {
	return storage(a) != storage(b)
}

// storage is the storage class of a field: fields with the same class share
// a column type and their values carry over.
func storage(f *Field) string {
	switch f.Type {
	case Text, Select, Relation:
		return "text"
	case Number:
		if f.Integer {
			return "integer"
		}
		return "real"
	}
	return string(f.Type)
}

func touchesRetyped(ix Index, oc, nc *Collection) bool {
	for _, name := range ix.Fields {
		of, nf := oc.Field(name), nc.Field(name)
		if of != nil && nf != nil && retyped(of, nf) {
			return true
		}
	}
	return false
}

func fieldEqual(a, b *Field) bool {
	return a.Type == b.Type && a.Required == b.Required && a.Integer == b.Integer &&
		floatPtrEqual(a.Min, b.Min) && floatPtrEqual(a.Max, b.Max) &&
		slices.Equal(a.Values, b.Values) && a.Collection == b.Collection && a.OnDeleteAction() == b.OnDeleteAction()
}

func floatPtrEqual(a, b *float64) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func rulesEqual(a, b Rules) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
