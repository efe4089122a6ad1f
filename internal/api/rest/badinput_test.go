package rest_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/mantlehq/mantle/internal/apptest"
)

func TestBadInput(t *testing.T) {
	s := apptest.Start(t, blog)
	deep := strings.Repeat("[", 50) + strings.Repeat("]", 50)
	post := "/api/collections/posts/records"
	s.Run(t, []apptest.Scenario{
		{Name: "malformed json", Method: "POST", Path: post, Body: `{"title":`, Status: 400, Code: "invalid", Reason: "request.malformed_json"},
		{Name: "not an object", Method: "POST", Path: post, Body: `[1]`, Status: 400, Code: "invalid", Reason: "request.not_object"},
		{Name: "unknown field", Method: "POST", Path: post, Body: `{"title":"a","nope":1}`, Status: 400, Code: "invalid", Reason: "record.validation", Fields: []string{"nope"}},
		{Name: "missing required", Method: "POST", Path: post, Body: `{"views":1}`, Status: 400, Reason: "record.validation", Fields: []string{"title"},
			Contains: []string{`field \"title\" is required`}},
		{Name: "empty required text", Method: "POST", Path: post, Body: `{"title":""}`, Status: 400, Fields: []string{"title"}},
		{Name: "wrong type text", Method: "POST", Path: post, Body: `{"title":5}`, Status: 400, Fields: []string{"title"}},
		{Name: "wrong type number", Method: "POST", Path: post, Body: `{"title":"a","views":"5"}`, Status: 400, Fields: []string{"views"}},
		{Name: "not integer", Method: "POST", Path: post, Body: `{"title":"a","views":1.5}`, Status: 400, Fields: []string{"views"}},
		{Name: "below min", Method: "POST", Path: post, Body: `{"title":"a","views":-1}`, Status: 400, Fields: []string{"views"}},
		{Name: "wrong type bool", Method: "POST", Path: post, Body: `{"title":"a","published":"yes"}`, Status: 400, Fields: []string{"published"}},
		{Name: "bad datetime", Method: "POST", Path: post, Body: `{"title":"a","publishedAt":"yesterday"}`, Status: 400, Fields: []string{"publishedAt"}},
		{Name: "too long", Method: "POST", Path: post, Body: `{"title":"` + strings.Repeat("é", 21) + `"}`, Status: 400, Fields: []string{"title"}},
		{Name: "max counts characters", Method: "POST", Path: post, Body: `{"title":"` + strings.Repeat("é", 20) + `"}`, Status: 201, Events: []string{"record.created posts"}},
		{Name: "bad select", Method: "POST", Path: post, Body: `{"title":"b","status":"gone"}`, Status: 400, Fields: []string{"status"}},
		{Name: "read-only system field", Method: "POST", Path: post, Body: `{"title":"b","version":7}`, Status: 400, Fields: []string{"version"}},
		{Name: "bad id", Method: "POST", Path: post, Body: `{"title":"b","id":"../x"}`, Status: 400, Fields: []string{"id"}},
		{Name: "dangling relation", Method: "POST", Path: post, Body: `{"title":"b","author":"nobody"}`, Status: 400, Reason: "record.relation_not_found", Fields: []string{"author"}},
		{Name: "invalid utf8", Method: "POST", Path: post, Body: "{\"title\":\"\xff\xfe\"}", Status: 400, Reason: "request.invalid_utf8"},
		{Name: "deep nesting", Method: "POST", Path: post, Body: `{"title":"b","tags":` + deep + `}`, Status: 400, Reason: "request.too_deep"},
		{Name: "json nesting over field limit", Method: "POST", Path: post, Body: `{"title":"b","tags":` + strings.Repeat("[", 33) + strings.Repeat("]", 33) + `}`, Status: 400, Fields: []string{"tags"}},
		{Name: "too large", Method: "POST", Path: post, Body: `{"title":"b","body":"` + strings.Repeat("x", 1<<20) + `"}`, Status: 413, Code: "invalid", Reason: "request.too_large"},
		{Name: "wrong content type", Method: "POST", Path: post, Body: `{"title":"b"}`, Headers: []string{"Content-Type: text/plain"}, Status: 415, Code: "invalid"},
		{Name: "unknown collection", Method: "POST", Path: "/api/collections/nope/records", Body: `{}`, Status: 404, Code: "not_found", Reason: "collection.not_found"},
		{Name: "unknown collection list", Method: "GET", Path: "/api/collections/nope/records", Status: 404, Code: "not_found"},
		{Name: "hostile id", Method: "GET", Path: "/api/collections/posts/records/" + url.PathEscape("x' OR 1=1"), Status: 404, Code: "not_found"},
		{Name: "duplicate unique", Method: "POST", Path: post, Body: `{"title":"` + strings.Repeat("é", 20) + `"}`, Status: 409, Code: "conflict", Reason: "record.unique", Fields: []string{"title"}},
		{Name: "bad if-match", Method: "PATCH", Path: "/api/collections/posts/records/abc", Body: `{}`, Headers: []string{"If-Match: soon"}, Status: 400, Reason: "request.invalid_if_match"},
		{Name: "method not allowed", Method: "PUT", Path: post, Body: `{}`, Status: 405, Code: "invalid"},
		{Name: "unknown route", Method: "GET", Path: "/api/nowhere", Status: 404, Code: "not_found"},
		{Name: "bad at", Method: "GET", Path: "/api/collections/posts/records/abc?at=-1", Status: 400, Reason: "query.invalid_at"},
		{Name: "bad events after", Method: "GET", Path: "/api/events?after=x", Status: 400, Reason: "query.invalid_after"},
		{Name: "bad events collection", Method: "GET", Path: "/api/events?collections=nope", Status: 404},
	})
}

func TestDuplicateClientID(t *testing.T) {
	s := apptest.Start(t, blog)
	s.Run(t, []apptest.Scenario{
		{Name: "first", Method: "POST", Path: "/api/collections/posts/records", Body: `{"id":"p1","title":"a"}`, Status: 201, Events: []string{"record.created posts"}, Contains: []string{`"id":"p1"`}},
		{Name: "again", Method: "POST", Path: "/api/collections/posts/records", Body: `{"id":"p1","title":"b"}`, Status: 409, Reason: "record.exists"},
	})
}
