package query

import "strconv"

// normalize replaces the simple literals of a filter (decimal numbers and
// quoted strings without escapes) with parameters __p0, __p1, … and
// returns the template and the values. Filters that differ only in their
// values share one template, so the CEL parse and check (the costly part
// of a list request) runs once per template. Literals it cannot read
// exactly as CEL would (escapes, raw or byte strings, hex, unsigned) are
// left in the template.
func normalize(src string) (string, []any) {
	var out []byte
	var params []any
	last := 0
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case (c == '"' || c == '\'') && afterDot(src, i):
			return src, nil // ."x" is not valid CEL, but .__p0 would be
		case (c >= '0' && c <= '9') && afterDot(src, i) && (i == 0 || src[i-1] != '.'):
			return src, nil
		case c == '"' || c == '\'':
			if i > 0 && isIdent(src[i-1]) { // r"…", b"…" and the like
				i++
				continue
			}
			if i+2 < len(src) && src[i+1] == c && src[i+2] == c { // triple-quoted
				return src, nil
			}
			j := i + 1
			for j < len(src) && src[j] != c && src[j] != '\\' && src[j] != '\n' && src[j] != '\r' {
				j++
			}
			if j >= len(src) || src[j] != c {
				return src, nil // escapes or unterminated: compile as written
			}
			out = append(out, src[last:i]...)
			out = appendParam(out, len(params))
			params = append(params, src[i+1:j])
			i, last = j+1, j+1
		case c >= '0' && c <= '9':
			if i > 0 && (isIdent(src[i-1]) || src[i-1] == '.') {
				i++
				continue
			}
			j := i
			for j < len(src) && src[j] >= '0' && src[j] <= '9' {
				j++
			}
			if j+1 < len(src) && src[j] == '.' && src[j+1] >= '0' && src[j+1] <= '9' {
				j++
				for j < len(src) && src[j] >= '0' && src[j] <= '9' {
					j++
				}
			}
			if j < len(src) && (isIdent(src[j]) || src[j] == '.') || src[i] == '0' && j > i+1 && src[i+1] != '.' {
				i = j // 0x1F, 1u, 1e3, 1., 007: leave as written
				continue
			}
			f, err := strconv.ParseFloat(src[i:j], 64)
			if err != nil {
				i = j
				continue
			}
			out = append(out, src[last:i]...)
			out = appendParam(out, len(params))
			params = append(params, f)
			i, last = j, j
		default:
			i++
		}
	}
	if len(params) == 0 {
		return src, nil
	}
	return string(append(out, src[last:]...)), params
}

func appendParam(b []byte, n int) []byte {
	b = append(b, " __p"...)
	b = strconv.AppendInt(b, int64(n), 10)
	return append(b, ' ')
}

func isIdent(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// param returns the value of a parameter identifier.
func param(name string, params []any) (any, bool) {
	if len(name) < 4 || name[:3] != "__p" {
		return nil, false
	}
	n, err := strconv.Atoi(name[3:])
	if err != nil || n < 0 || n >= len(params) {
		return nil, false
	}
	return params[n], true
}

// afterDot reports whether the last non-space byte before i is a dot.
func afterDot(src string, i int) bool {
	for j := i - 1; j >= 0; j-- {
		switch src[j] {
		case ' ', '\t', '\n', '\r':
			continue
		case '.':
			return true
		}
		return false
	}
	return false
}
