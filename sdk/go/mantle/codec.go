package mantle

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// The invocation and result are decoded and encoded by hand: in a
// WebAssembly guest encoding/json's reflection is the largest part of a
// call's cost, and these shapes are fixed. Anything the fast path does not
// understand falls back to encoding/json, so it only needs to be right
// for what it accepts; tests compare the two.

var errSyntax = errors.New("mantle: invocation syntax")

type scanner struct {
	b []byte
	i int
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *scanner) expect(c byte) error {
	if s.peek() != c {
		return errSyntax
	}
	s.i++
	return nil
}

// object calls fn for each key of an object; fn must consume the value.
func (s *scanner) object(fn func(key string) error) error {
	if err := s.expect('{'); err != nil {
		return err
	}
	if s.peek() == '}' {
		s.i++
		return nil
	}
	for {
		key, err := s.str()
		if err != nil {
			return err
		}
		if err := s.expect(':'); err != nil {
			return err
		}
		if err := fn(key); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return nil
		default:
			return errSyntax
		}
	}
}

func (s *scanner) str() (string, error) {
	if s.peek() != '"' {
		return "", errSyntax
	}
	s.i++
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			v := string(s.b[start:s.i])
			s.i++
			return v, nil
		case c == '\\':
			return s.slowStr(start)
		case c < 0x20:
			return "", errSyntax
		case c >= 0x80: // keep the fast path to ASCII; invalid UTF-8 is encoding/json's business
			return s.slowStr(start)
		}
		s.i++
	}
	return "", errSyntax
}

// slowStr decodes a string with escapes or non-ASCII from its start.
func (s *scanner) slowStr(start int) (string, error) {
	out := append([]byte(nil), s.b[start:s.i]...)
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return string(out), nil
		case c < 0x20:
			return "", errSyntax
		case c == '\\':
			if s.i+1 >= len(s.b) {
				return "", errSyntax
			}
			e := s.b[s.i+1]
			s.i += 2
			switch e {
			case '"', '\\', '/':
				out = append(out, e)
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				r, ok := s.hex4()
				if !ok {
					return "", errSyntax
				}
				if utf16.IsSurrogate(r) {
					r2 := rune(-1)
					if s.i+1 < len(s.b) && s.b[s.i] == '\\' && s.b[s.i+1] == 'u' {
						s.i += 2
						var ok bool
						if r2, ok = s.hex4(); !ok {
							return "", errSyntax
						}
					}
					if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
						out = utf8.AppendRune(out, d)
						continue
					}
					out = utf8.AppendRune(out, utf8.RuneError)
					if r2 >= 0 {
						out = utf8.AppendRune(out, r2) // as encoding/json does with a lone surrogate
					}
					continue
				}
				out = utf8.AppendRune(out, r)
			default:
				return "", errSyntax
			}
		case c >= 0x80:
			r, size := utf8.DecodeRune(s.b[s.i:])
			if r == utf8.RuneError && size == 1 {
				return "", errSyntax // encoding/json replaces it; let it
			}
			out = append(out, s.b[s.i:s.i+size]...)
			s.i += size
		default:
			out = append(out, c)
			s.i++
		}
	}
	return "", errSyntax
}

func (s *scanner) hex4() (rune, bool) {
	if s.i+4 > len(s.b) {
		return 0, false
	}
	n, err := strconv.ParseUint(string(s.b[s.i:s.i+4]), 16, 32)
	if err != nil {
		return 0, false
	}
	s.i += 4
	return rune(n), true
}

// skip passes over one value and returns it raw.
func (s *scanner) skip() ([]byte, error) {
	s.ws()
	start := s.i
	if s.i >= len(s.b) {
		return nil, errSyntax
	}
	switch c := s.b[s.i]; {
	case c == '"':
		if _, err := s.str(); err != nil {
			return nil, err
		}
	case c == '{':
		if err := s.object(func(string) error { _, err := s.skip(); return err }); err != nil {
			return nil, err
		}
	case c == '[':
		if err := s.array(func() error { _, err := s.skip(); return err }); err != nil {
			return nil, err
		}
	default:
		for s.i < len(s.b) && (s.b[s.i] == '-' || s.b[s.i] == '+' || s.b[s.i] == '.' || s.b[s.i] >= '0' && s.b[s.i] <= '9' ||
			s.b[s.i] >= 'a' && s.b[s.i] <= 'z' || s.b[s.i] == 'E') {
			s.i++
		}
		lit := string(s.b[start:s.i])
		if lit != "true" && lit != "false" && lit != "null" && !json.Valid(s.b[start:s.i]) {
			return nil, errSyntax
		}
	}
	return s.b[start:s.i], nil
}

func (s *scanner) array(fn func() error) error {
	if err := s.expect('['); err != nil {
		return err
	}
	if s.peek() == ']' {
		s.i++
		return nil
	}
	for {
		if err := fn(); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			return nil
		default:
			return errSyntax
		}
	}
}

func (s *scanner) int() (int64, error) {
	raw, err := s.skip()
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(string(raw), 10, 64)
}

func (s *scanner) boolean() (bool, error) {
	raw, err := s.skip()
	switch {
	case err != nil:
		return false, err
	case string(raw) == "true":
		return true, nil
	case string(raw) == "false":
		return false, nil
	}
	return false, errSyntax
}

func (s *scanner) strMap() (map[string]string, error) {
	if s.peek() == 'n' {
		_, err := s.skip()
		return nil, err
	}
	m := map[string]string{}
	err := s.object(func(k string) error {
		v, err := s.str()
		m[k] = v
		return err
	})
	return m, err
}

// nullOr runs fn unless the value is null, which it skips.
func (s *scanner) nullOr(fn func() error) error {
	if s.peek() == 'n' {
		raw, err := s.skip()
		if err == nil && string(raw) != "null" {
			err = errSyntax
		}
		return err
	}
	return fn()
}

// raw returns a value as it is, as json.RawMessage keeps it (null too).
func (s *scanner) raw() (json.RawMessage, error) {
	raw, err := s.skip()
	return json.RawMessage(raw), err
}

// decodeInvocation decodes the invocation, by hand when it can.
func decodeInvocation(b []byte, inv *Invocation) error {
	s := &scanner{b: b}
	err := s.object(func(key string) error {
		var err error
		switch key {
		case "abi":
			var n int64
			n, err = s.int()
			inv.ABI = int(n)
		case "function":
			inv.Function, err = s.str()
		case "trigger":
			inv.Trigger, err = s.str()
		case "attempt":
			var n int64
			n, err = s.int()
			inv.Attempt = int(n)
		case "data":
			inv.Data, err = s.raw()
		case "env":
			inv.Env, err = s.strMap()
		case "caller":
			err = s.nullOr(func() error { return s.identity(&inv.Caller) })
		case "request":
			err = s.nullOr(func() error { inv.Request = &Request{}; return s.request(inv.Request) })
		case "event":
			err = s.nullOr(func() error { inv.Event = &Event{}; return s.event(inv.Event) })
		case "tick":
			err = s.nullOr(func() error { inv.Tick = &Tick{}; return s.tick(inv.Tick) })
		default:
			if folds(key, "abi", "function", "trigger", "attempt", "data", "env", "caller", "request", "event", "tick") {
				return errSyntax // encoding/json matches keys regardless of case: let it
			}
			_, err = s.skip()
		}
		return err
	})
	if s.ws(); err == nil && s.i != len(s.b) {
		err = errSyntax
	}
	if err != nil {
		*inv = Invocation{}
		return json.Unmarshal(b, inv)
	}
	return nil
}

func (s *scanner) identity(id *Identity) error {
	return s.object(func(key string) error {
		var err error
		switch key {
		case "id":
			id.ID, err = s.str()
		case "email":
			id.Email, err = s.str()
		case "roles":
			err = s.nullOr(func() error {
				id.Roles = []string{}
				return s.array(func() error {
					r, err := s.str()
					id.Roles = append(id.Roles, r)
					return err
				})
			})
		default:
			if folds(key, "id", "email", "roles") {
				return errSyntax // encoding/json matches keys regardless of case: let it
			}
			_, err = s.skip()
		}
		return err
	})
}

func (s *scanner) request(r *Request) error {
	return s.object(func(key string) error {
		var err error
		switch key {
		case "method":
			r.Method, err = s.str()
		case "path":
			r.Path, err = s.str()
		case "query":
			r.Query, err = s.str()
		case "body":
			r.Body, err = s.str()
		case "bodyBase64":
			r.BodyBase64, err = s.str()
		case "params":
			r.Params, err = s.strMap()
		case "headers":
			r.Headers, err = s.strMap()
		default:
			if folds(key, "method", "path", "query", "body", "bodyBase64", "params", "headers") {
				return errSyntax // encoding/json matches keys regardless of case: let it
			}
			_, err = s.skip()
		}
		return err
	})
}

func (s *scanner) event(e *Event) error {
	return s.object(func(key string) error {
		var err error
		switch key {
		case "id":
			e.ID, err = s.str()
		case "seq":
			e.Seq, err = s.int()
		case "type":
			e.Type, err = s.str()
		case "source":
			e.Source, err = s.str()
		case "subject":
			e.Subject, err = s.str()
		case "time":
			e.Time, err = s.str()
		case "collection":
			e.Collection, err = s.str()
		case "actor":
			e.Actor, err = s.str()
		case "data":
			e.Data, err = s.raw()
		default:
			if folds(key, "id", "seq", "type", "source", "subject", "time", "collection", "actor", "data") {
				return errSyntax // encoding/json matches keys regardless of case: let it
			}
			_, err = s.skip()
		}
		return err
	})
}

func (s *scanner) tick(t *Tick) error {
	return s.object(func(key string) error {
		var err error
		switch key {
		case "cron":
			t.Cron, err = s.str()
		case "at":
			t.At, err = s.str()
		case "catchUp":
			t.CatchUp, err = s.boolean()
		default:
			if folds(key, "cron", "at", "catchUp") {
				return errSyntax // encoding/json matches keys regardless of case: let it
			}
			_, err = s.skip()
		}
		return err
	})
}

// folds reports whether key is one of names but for case.
func folds(key string, names ...string) bool {
	for _, n := range names {
		if strings.EqualFold(key, n) {
			return true
		}
	}
	return false
}

// appendResult encodes a result as encoding/json would (with omitempty).
func appendResult(b []byte, r *Result) []byte {
	b = append(b, '{')
	first := true
	sep := func(key string) {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendString(b, key)
		b = append(b, ':')
	}
	if r.Status != 0 {
		sep("status")
		b = strconv.AppendInt(b, int64(r.Status), 10)
	}
	if len(r.Headers) > 0 {
		sep("headers")
		b = append(b, '{')
		i := 0
		for k, v := range r.Headers {
			if i > 0 {
				b = append(b, ',')
			}
			i++
			b = appendString(b, k)
			b = append(b, ':')
			b = appendString(b, v)
		}
		b = append(b, '}')
	}
	if r.Body != "" {
		sep("body")
		b = appendString(b, r.Body)
	}
	if r.BodyBase64 != "" {
		sep("bodyBase64")
		b = appendString(b, r.BodyBase64)
	}
	if len(r.JSON) > 0 {
		sep("json")
		b = append(b, r.JSON...)
	}
	return append(b, '}')
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string; invalid UTF-8 becomes U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
