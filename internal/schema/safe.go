package schema

// Safe returns the schema that results from applying only the steps of
// Diff(from, to) that lose no data: new collections, fields and indexes,
// changed validation and rules. Collections and fields that to drops are
// kept, and fields whose storage would change keep their old definition.
func Safe(from, to *Schema) *Schema {
	if from == nil {
		return to
	}
	out := &Schema{Name: to.Name}
	for _, nc := range to.Collections {
		oc := from.Collection(nc.Name)
		if oc == nil {
			out.Collections = append(out.Collections, nc)
			continue
		}
		c := *nc
		c.Fields = nil
		for _, nf := range nc.Fields {
			if of := oc.Field(nf.Name); of != nil && retyped(of, nf) {
				c.Fields = append(c.Fields, of)
			} else {
				c.Fields = append(c.Fields, nf)
			}
		}
		for _, of := range oc.Fields {
			if nc.Field(of.Name) == nil {
				c.Fields = append(c.Fields, of)
			}
		}
		out.Collections = append(out.Collections, &c)
	}
	for _, oc := range from.Collections {
		if to.Collection(oc.Name) == nil {
			out.Collections = append(out.Collections, oc)
		}
	}
	out.Sort()
	return out
}
