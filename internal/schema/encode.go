package schema

import (
	"encoding/json"
	"math"
	"strconv"
	"time"
)

// AppendJSON appends the record as a JSON object: system columns first,
// then the fields in schema order. A nil only keeps every field; otherwise
// only the fields it names (and id) are written. expanded, if not nil,
// holds JSON objects to write in place of relation ids.
func (c *Collection) AppendJSON(b []byte, r *Record, only map[string]bool, expanded map[string]json.RawMessage) []byte {
	b = append(b, `{"id":`...)
	b = AppendString(b, r.ID)
	if only == nil || only[ColCreatedAt] {
		b = append(b, `,"createdAt":"`...)
		b = appendTime(b, r.CreatedAt)
		b = append(b, '"')
	}
	if only == nil || only[ColUpdatedAt] {
		b = append(b, `,"updatedAt":"`...)
		b = appendTime(b, r.UpdatedAt)
		b = append(b, '"')
	}
	if only == nil || only[ColVersion] {
		b = append(b, `,"version":`...)
		b = strconv.AppendInt(b, r.Version, 10)
	}
	for _, f := range c.Fields {
		if only != nil && !only[f.Name] {
			continue
		}
		b = append(b, ',', '"')
		b = append(b, f.Name...)
		b = append(b, '"', ':')
		if x, ok := expanded[f.Name]; ok {
			b = append(b, x...)
			continue
		}
		b = AppendValue(b, r.Data[f.Name])
	}
	return append(b, '}')
}

// AppendValue appends one normalised field value as JSON.
func AppendValue(b []byte, v any) []byte {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...)
	case string:
		return AppendString(b, v)
	case float64:
		return AppendNumber(b, v)
	case bool:
		return strconv.AppendBool(b, v)
	case time.Time:
		b = append(b, '"')
		b = appendTime(b, v)
		return append(b, '"')
	case json.RawMessage:
		return append(b, v...)
	}
	x, err := json.Marshal(v)
	if err != nil {
		return append(b, "null"...)
	}
	return append(b, x...)
}

// AppendNumber writes a float the way encoding/json does.
func AppendNumber(b []byte, f float64) []byte {
	abs := math.Abs(f)
	fmt := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		fmt = 'e'
	}
	return strconv.AppendFloat(b, f, fmt, -1, 64)
}

// AppendString appends s as a JSON string, escaping like encoding/json
// (including <, > and &, so the output is safe inside HTML).
func AppendString(b []byte, s string) []byte {
	simple := true
	for i := 0; i < len(s); i++ {
		if !plain[s[i]] {
			simple = false
			break
		}
	}
	if simple {
		b = append(b, '"')
		b = append(b, s...)
		return append(b, '"')
	}
	x, _ := json.Marshal(s)
	return append(b, x...)
}

// MarshalRecord returns the record's JSON.
func (c *Collection) MarshalRecord(r *Record) json.RawMessage {
	return c.AppendJSON(nil, r, nil, nil)
}

// plain marks the bytes a JSON string can hold as they are.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()
