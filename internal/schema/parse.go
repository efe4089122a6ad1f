package schema

import (
	"encoding/json"
	"fmt"
	"time"
)

// ParseRecord reads a record back from the JSON that AppendJSON wrote (for
// example the record inside an event). Field values are normalised by
// type; fields the collection does not have are dropped.
func (c *Collection) ParseRecord(raw json.RawMessage) (*Record, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("parse %s record: %w", c.Name, err)
	}
	r := &Record{Data: make(map[string]any, len(c.Fields))}
	if err := json.Unmarshal(m[ColID], &r.ID); err != nil {
		return nil, fmt.Errorf("parse %s record id: %w", c.Name, err)
	}
	var created, updated string
	_ = json.Unmarshal(m[ColCreatedAt], &created)
	_ = json.Unmarshal(m[ColUpdatedAt], &updated)
	r.CreatedAt, _ = time.Parse(time.RFC3339Nano, created)
	r.UpdatedAt, _ = time.Parse(time.RFC3339Nano, updated)
	_ = json.Unmarshal(m[ColVersion], &r.Version)
	for _, f := range c.Fields {
		v, ok := m[f.Name]
		if !ok {
			continue
		}
		loose := *f
		loose.Required, loose.Min, loose.Max, loose.Values = false, nil, nil, nil
		if f.Type == Select {
			loose.Type = Text
		}
		val, msg := loose.decode(v)
		if msg != "" {
			return nil, fmt.Errorf("parse %s record field %q: %s", c.Name, f.Name, msg)
		}
		if val != nil {
			r.Data[f.Name] = val
		}
	}
	return r, nil
}
