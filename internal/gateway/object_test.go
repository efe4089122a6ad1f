package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/mantlehq/mantle"
)

var objectCases = []string{
	`{}`,
	` { } `,
	`{"title":"hello","views":3,"published":true,"tags":null}`,
	`{"a":{"b":[1,{"c":"}]"}],"d":"\"{"},"e":-1.5e+3}`,
	`{"t\u0069tle":"x","a\"b":"y","\\":1}`,
	`{"dup":1,"dup":2}`,
	"{\n\t\"a\" :\r\n [ ] ,\"b\":{ }\n}",
	`{"s":"\\\"","n":0}`,
	`{"ü":"ß","emoji":"\ud83d\ude00"}`,
}

func TestSplitObjectMatchesUnmarshal(t *testing.T) {
	for _, c := range objectCases {
		want := map[string]json.RawMessage{}
		if err := json.Unmarshal([]byte(c), &want); err != nil {
			t.Fatalf("%s: %v", c, err)
		}
		got, ok := splitObject([]byte(c))
		if !ok {
			t.Fatalf("%s: not split", c)
		}
		if !maps.EqualFunc(got, want, func(a, b json.RawMessage) bool { return bytes.Equal(a, b) }) {
			t.Errorf("%s:\n got %q\nwant %q", c, got, want)
		}
	}
}

func TestDecodeObjectErrors(t *testing.T) {
	for body, reason := range map[string]string{
		`{"a":`:     "request.malformed_json",
		`{"a":1,}`:  "request.malformed_json",
		`{"a" 1}`:   "request.malformed_json",
		`{"a":1}x`:  "request.malformed_json",
		`{'a':1}`:   "request.malformed_json",
		`[1,2]`:     "request.not_object",
		`"text"`:    "request.not_object",
		`   `:       "request.not_object",
		`{"a":tru}`: "request.malformed_json",
	} {
		_, err := DecodeObject([]byte(body), "the body")
		if reasonOf(err) != reason {
			t.Errorf("%s: got %v, want reason %s", body, err, reason)
		}
	}
}

func reasonOf(err error) string {
	var me *mantle.Error
	if errors.As(err, &me) {
		return me.Reason
	}
	return ""
}

// FuzzSplitObject: DecodeObject accepts exactly the valid JSON objects,
// and for each, splitObject gives exactly what json.Unmarshal into a map
// of raw values gives.
func FuzzSplitObject(f *testing.F) {
	for _, c := range objectCases {
		f.Add(c)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := bytes.TrimSpace([]byte(s))
		isObject := json.Valid(b) && len(b) > 0 && b[0] == '{'
		if _, err := DecodeObject([]byte(s), "the body"); (err == nil) != isObject {
			t.Fatalf("%q: DecodeObject error %v, want an error: %v", s, err, !isObject)
		}
		if !isObject {
			return
		}
		want := map[string]json.RawMessage{}
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatalf("valid but not decoded: %v", err)
		}
		got, ok := splitObject(b)
		if !ok {
			t.Fatalf("%q: not split", b)
		}
		if !maps.EqualFunc(got, want, func(a, b json.RawMessage) bool { return bytes.Equal(a, b) }) {
			t.Fatalf("%q:\n got %q\nwant %q", b, got, want)
		}
	})
}

var benchBody = []byte(`{"title":"post 12345 about something","body":"` + strings.Repeat("lorem ipsum ", 25) + `","views":4711}`)

// BenchmarkDecodeObject/split is what DecodeObject does; /unmarshal is
// json.Unmarshal into the same map, the reference it replaced.
func BenchmarkDecodeObject(b *testing.B) {
	b.Run("split", func(b *testing.B) {
		b.SetBytes(int64(len(benchBody)))
		for b.Loop() {
			if _, err := DecodeObject(benchBody, "the body"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("unmarshal", func(b *testing.B) {
		b.SetBytes(int64(len(benchBody)))
		for b.Loop() {
			var m map[string]json.RawMessage
			if err := json.Unmarshal(benchBody, &m); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestIsJSONType(t *testing.T) {
	for ct, want := range map[string]bool{
		"application/json":                true,
		"application/json; charset=utf-8": true,
		"Application/JSON":                true,
		"application/merge-patch+json":    true,
		"application/cloudevents+json":    true,
		"text/plain":                      false,
		"application/jsonx":               false,
		"":                                false,
		"application/json; =":             false,
	} {
		if got := isJSONType(ct); got != want {
			t.Errorf("isJSONType(%q) = %v, want %v", ct, got, want)
		}
	}
}
