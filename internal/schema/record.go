package schema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/mantlehq/mantle"
)

// TimeFormat is how times are written: RFC 3339, UTC, always nine digits of
// nanoseconds, so that the text sorts in time order.
const TimeFormat = "2006-01-02T15:04:05.000000000Z"

// MaxJSONDepth bounds the nesting of json field values and request bodies.
const MaxJSONDepth = 32

// Record is one stored record. Data holds the field values, normalised by
// type: string (text, select, relation), float64 (number), bool,
// time.Time (datetime, UTC), json.RawMessage (json, compact); a missing or
// null value is absent or nil.
type Record struct {
	ID        string
	CreatedAt time.Time
	UpdatedAt time.Time
	Version   int64
	Data      map[string]any
}

// Clone returns a copy whose Data map can be changed freely.
func (r *Record) Clone() *Record {
	c := *r
	c.Data = make(map[string]any, len(r.Data))
	for k, v := range r.Data {
		c.Data[k] = v
	}
	return &c
}

// Decode turns the JSON object of a request body into normalised field
// values, checking types, unknown fields and constraints. With partial
// false (a create), required fields must be present; with partial true (an
// update) only the fields given are checked. The returned *mantle.Error
// names every failing field; prefix is put before each field name (for
// batch ops, "ops[3].").
func (c *Collection) Decode(raw map[string]json.RawMessage, partial bool, prefix string) (map[string]any, *mantle.Error) {
	out := make(map[string]any, len(raw))
	var bad map[string]string
	fail := func(name, msg string) {
		if bad == nil {
			bad = map[string]string{}
		}
		bad[prefix+name] = msg
	}
	for name, v := range raw {
		if Reserved(name) {
			if name == ColID && !partial {
				var id string
				if json.Unmarshal(v, &id) != nil || !mantle.ValidID(id) {
					fail(name, "must be 1 to 64 letters, digits, '_' or '-'")
					continue
				}
				out[ColID] = id
				continue
			}
			fail(name, "is read-only")
			continue
		}
		f := c.Field(name)
		if f == nil {
			fail(name, "unknown field")
			continue
		}
		val, msg := f.decode(v)
		if msg != "" {
			fail(name, msg)
			continue
		}
		if val == nil && f.Required {
			fail(name, "required")
			continue
		}
		out[name] = val
	}
	if !partial {
		for _, f := range c.Fields {
			if f.Required && out[f.Name] == nil {
				if _, seen := bad[prefix+f.Name]; !seen {
					fail(f.Name, "required")
				}
			}
		}
	}
	if bad != nil {
		return nil, &mantle.Error{Code: mantle.Invalid, Reason: "record.validation",
			Message: describe(bad), Fields: bad}
	}
	return out, nil
}

// describe turns the failing fields into one sentence, first field first.
func describe(bad map[string]string) string {
	names := make([]string, 0, len(bad))
	for k := range bad {
		names = append(names, k)
	}
	slices.Sort(names)
	msg := fmt.Sprintf("field %q: %s", names[0], bad[names[0]])
	if len(names) == 1 && bad[names[0]] == "required" {
		msg = fmt.Sprintf("field %q is required", names[0])
	}
	if len(names) > 1 {
		msg += fmt.Sprintf(" (and %d more)", len(names)-1)
	}
	return msg
}

func (f *Field) decode(v json.RawMessage) (any, string) {
	v = bytes.TrimSpace(v)
	if len(v) == 0 || string(v) == "null" {
		return nil, ""
	}
	switch f.Type {
	case Text, Select, Relation:
		if v[0] != '"' {
			return nil, "must be a string"
		}
		s, ok := unquote(v)
		if !ok {
			return nil, "must be a string"
		}
		if !utf8.ValidString(s) {
			return nil, "must be valid UTF-8"
		}
		switch f.Type {
		case Text:
			n := utf8.RuneCountInString(s)
			if f.Required && n == 0 {
				return nil, "required"
			}
			if f.Max != nil && float64(n) > *f.Max {
				return nil, fmt.Sprintf("must be at most %g characters", *f.Max)
			}
			if f.Min != nil && float64(n) < *f.Min {
				return nil, fmt.Sprintf("must be at least %g characters", *f.Min)
			}
		case Select:
			if !slices.Contains(f.Values, s) {
				return nil, "must be one of " + quoteList(f.Values)
			}
		case Relation:
			if !mantle.ValidID(s) {
				return nil, "must be a record id"
			}
		}
		return s, ""
	case Number:
		if v[0] != '-' && (v[0] < '0' || v[0] > '9') {
			return nil, "must be a number"
		}
		n, err := strconv.ParseFloat(string(v), 64)
		if err != nil || math.IsInf(n, 0) || math.IsNaN(n) {
			return nil, "must be a finite number"
		}
		tooBig := f.Integer && math.Abs(n) > 1<<53
		if !bytes.ContainsAny(v, ".eE") { // an integer literal: is it exactly what we store?
			i, err := strconv.ParseInt(string(v), 10, 64)
			tooBig = tooBig || err != nil || i > 1<<53 || i < -(1<<53)
		}
		if tooBig {
			// A float64 holds every integer up to 2^53 and not all of them
			// beyond: refuse rather than store a rounded value.
			return nil, "must be between -9007199254740992 and 9007199254740992 (2^53) to be kept exactly; send larger integers as text"
		}
		if f.Integer && n != math.Trunc(n) {
			return nil, "must be an integer"
		}
		if n == 0 {
			n = 0 // -0 is stored and returned as 0
		}
		if f.Min != nil && n < *f.Min {
			return nil, fmt.Sprintf("must be at least %g", *f.Min)
		}
		if f.Max != nil && n > *f.Max {
			return nil, fmt.Sprintf("must be at most %g", *f.Max)
		}
		return n, ""
	case Bool:
		switch string(v) {
		case "true":
			return true, ""
		case "false":
			return false, ""
		}
		return nil, "must be true or false"
	case Datetime:
		var s string
		if v[0] != '"' || json.Unmarshal(v, &s) != nil {
			return nil, "must be an RFC 3339 time string"
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return nil, "must be an RFC 3339 time, such as 2024-05-01T12:00:00Z"
		}
		return t.UTC(), ""
	case JSON:
		if !json.Valid(v) {
			return nil, "must be valid JSON"
		}
		if Depth(v) > MaxJSONDepth {
			return nil, fmt.Sprintf("must be nested at most %d levels deep", MaxJSONDepth)
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, v); err != nil {
			return nil, "must be valid JSON"
		}
		return json.RawMessage(buf.Bytes()), ""
	}
	return nil, "has an unknown type"
}

// Depth returns the deepest nesting of arrays and objects in a JSON text.
func Depth(v []byte) int {
	depth, max := 0, 0
	inStr, esc := false, false
	for _, c := range v {
		switch {
		case esc:
			esc = false
		case inStr:
			if c == '\\' {
				esc = true
			} else if c == '"' {
				inStr = false
			}
		case c == '"':
			inStr = true
		case c == '[' || c == '{':
			depth++
			if depth > max {
				max = depth
			}
		case c == ']' || c == '}':
			depth--
		}
	}
	return max
}

// unquote reads a JSON string. Strings without escapes (most of them) are
// their bytes between the quotes: the value was already validated as JSON.
func unquote(v json.RawMessage) (string, bool) {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' && bytes.IndexByte(v, '\\') < 0 {
		return string(v[1 : len(v)-1]), true
	}
	var s string
	return s, json.Unmarshal(v, &s) == nil
}

// quoteList renders values as "a", "b", "c" for an error message.
func quoteList(values []string) string {
	var b []byte
	for i, v := range values {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = strconv.AppendQuote(b, v)
	}
	return string(b)
}
