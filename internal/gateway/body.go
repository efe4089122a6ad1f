package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"unicode/utf8"

	"github.com/mantlehq/mantle"
	"github.com/mantlehq/mantle/internal/schema"
)

// ReadBody reads a JSON request body and checks it: application/json
// (415), within the size limit (413), valid UTF-8, nested at most
// schema.MaxJSONDepth+2 levels (400). Decoding it checks that it is JSON.
func ReadBody(r *http.Request) ([]byte, error) {
	if ct := r.Header.Get("Content-Type"); ct != "application/json" && !isJSONType(ct) {
		return nil, &mantle.Error{Code: mantle.Invalid, Reason: "request.unsupported_media_type", Status: http.StatusUnsupportedMediaType,
			Message: "send the body as application/json"}
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &mantle.Error{Code: mantle.Invalid, Reason: "request.too_large", Status: http.StatusRequestEntityTooLarge,
				Message: "the body is larger than the limit of " + humanBytes(mbe.Limit)}
		}
		return nil, mantle.Errorf(mantle.Invalid, "request.unreadable", "could not read the body: %v", err)
	}
	// A byte order mark is no part of JSON (RFC 8259 lets a parser ignore
	// it); editors on some systems add one.
	body = bytes.TrimPrefix(body, []byte("\xef\xbb\xbf"))
	if !utf8.Valid(body) {
		return nil, mantle.Errorf(mantle.Invalid, "request.invalid_utf8", "the body is not valid UTF-8")
	}
	if d := schema.Depth(body); d > schema.MaxJSONDepth+2 {
		return nil, mantle.Errorf(mantle.Invalid, "request.too_deep", "the body is nested %d levels deep; the limit is %d", d, schema.MaxJSONDepth+2)
	}
	return body, nil
}

// ReadObject reads a body that must be a JSON object, keeping its values raw.
func ReadObject(r *http.Request) (map[string]json.RawMessage, error) {
	body, err := ReadBody(r)
	if err != nil {
		return nil, err
	}
	return DecodeObject(body, "the body")
}

// DecodeObject decodes a JSON object, keeping its values raw. The values
// are slices of b, not copies: b must not change while they are in use.
func DecodeObject(b []byte, what string) (map[string]json.RawMessage, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return nil, mantle.Errorf(mantle.Invalid, "request.not_object", "%s must be a JSON object", what)
	}
	if !json.Valid(b) {
		return nil, mantle.Errorf(mantle.Invalid, "request.malformed_json", "%s is not valid JSON: %s", what, jsonError(b))
	}
	m, ok := splitObject(b) // ok for every valid object (FuzzSplitObject)
	if !ok {
		return nil, mantle.Errorf(mantle.Invalid, "request.malformed_json", "%s is not a JSON object this server can read", what)
	}
	return m, nil
}

func jsonError(b []byte) string {
	var v any
	err := json.Unmarshal(b, &v)
	if err == nil {
		return "unexpected content"
	}
	return err.Error()
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return itoa(n>>20) + " MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return itoa(n>>10) + " KiB"
	}
	return itoa(n) + " bytes"
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// isJSONType reports whether a Content-Type header names JSON:
// application/json or any +json type, with parameters or without.
func isJSONType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && (mt == "application/json" || len(mt) > 5 && mt[len(mt)-5:] == "+json")
}
