package gateway

import "encoding/json"

// splitObject returns the members of a JSON object, each value kept raw
// (a slice of b, not a copy). It expects what json.Valid accepted and
// whose first byte is '{'; anything else it reports as not ok. A name
// that appears twice keeps its last value, as json.Unmarshal does.
//
// json.Unmarshal into a map of json.RawMessage scans the body twice (once
// to check it, once to decode it through reflection) and copies every
// value; on the create path that was 5% of the server's CPU. The body is
// still checked by json.Valid, so only the second scan is replaced, by
// one that needs no validation of its own.
func splitObject(b []byte) (map[string]json.RawMessage, bool) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return nil, false
	}
	m := make(map[string]json.RawMessage, 8)
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return m, true
	}
	for i < len(b) {
		if b[i] != '"' {
			return nil, false
		}
		end, escaped := stringEnd(b, i)
		if end < 0 {
			return nil, false
		}
		var name string
		if escaped {
			var err error
			if name, err = unquoteName(b[i:end]); err != nil {
				return nil, false
			}
		} else {
			name = string(b[i+1 : end-1])
		}
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return nil, false
		}
		i = skipSpace(b, i+1)
		vend := valueEnd(b, i)
		if vend <= i {
			return nil, false
		}
		m[name] = json.RawMessage(b[i:vend:vend])
		i = skipSpace(b, vend)
		if i >= len(b) {
			return nil, false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return m, skipSpace(b, i+1) == len(b)
		default:
			return nil, false
		}
	}
	return nil, false
}

// unquoteName decodes a member name with escapes or non-ASCII bytes in it,
// exactly as json.Unmarshal does (invalid UTF-8 becomes U+FFFD).
func unquoteName(q []byte) (string, error) {
	var s string
	err := json.Unmarshal(q, &s)
	return s, err
}

func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// stringEnd returns the index just past the string that starts at b[i]
// (a '"'), and whether it holds an escape or a byte outside ASCII (which
// json.Unmarshal would check as UTF-8); -1 if it does not end.
func stringEnd(b []byte, i int) (int, bool) {
	escaped := false
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '\\':
			escaped = true
			j++
		case c == '"':
			return j + 1, escaped
		case c >= 0x80:
			escaped = true
		}
	}
	return -1, escaped
}

// valueEnd returns the index just past the JSON value that starts at
// b[i], which must be valid.
func valueEnd(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		end, _ := stringEnd(b, i)
		return end
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				end, _ := stringEnd(b, j)
				if end < 0 {
					return -1
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	}
	// A number, true, false or null: up to the next delimiter.
	j := i
	for j < len(b) {
		switch b[j] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return j
		}
		j++
	}
	return j
}
