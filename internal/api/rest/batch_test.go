package rest_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/mantlehq/mantle/internal/apptest"
)

func TestBatch(t *testing.T) {
	s := apptest.Start(t, blog)
	r := s.Do("POST", "/api/collections/posts/records", `{"title":"old","views":1}`)
	id := r.JSON()["id"].(string)
	s.Run(t, []apptest.Scenario{
		{Name: "atomic success", Method: "POST", Path: "/api/batch", Headers: []string{"admin"},
			Body: `{"ops":[{"op":"create","collection":"posts","data":{"title":"new"}},
				{"op":"update","collection":"posts","id":"` + id + `","data":{"views":2},"ifMatch":1},
				{"op":"create","collection":"people","data":{"name":"Bo"}}]}`,
			Status: 200, Events: []string{"record.created posts", "record.updated posts", "record.created people"},
			Check: func(t *testing.T, r *apptest.Response) {
				var out struct{ Results []map[string]any }
				json.Unmarshal(r.Body, &out)
				if len(out.Results) != 3 || out.Results[0]["title"] != "new" || out.Results[1]["version"] != 2.0 || out.Results[2]["name"] != "Bo" {
					t.Errorf("results: %s", r.Body)
				}
			}},
		{Name: "one failure sinks all", Method: "POST", Path: "/api/batch",
			Body: `{"ops":[{"op":"create","collection":"posts","data":{"title":"ok"}},
				{"op":"create","collection":"posts","data":{"views":-3}}]}`,
			Status: 400, Code: "invalid", Fields: []string{"ops[1].title", "ops[1].views"}},
		{Name: "failure in transaction sinks all", Method: "POST", Path: "/api/batch",
			Body: `{"ops":[{"op":"create","collection":"posts","data":{"title":"ok2"}},
				{"op":"update","collection":"posts","id":"` + id + `","data":{"views":9},"ifMatch":1}]}`,
			Status: 412, Code: "failed_precondition", Fields: []string{"ops[1]"}},
		{Name: "unique conflict inside batch", Method: "POST", Path: "/api/batch",
			Body: `{"ops":[{"op":"create","collection":"posts","data":{"title":"dup"}},
				{"op":"create","collection":"posts","data":{"title":"dup"}}]}`,
			Status: 409, Code: "conflict", Fields: []string{"ops[1].title"}},
		{Name: "delete and null result", Method: "POST", Path: "/api/batch", Headers: []string{"admin"},
			Body:   `{"ops":[{"op":"delete","collection":"posts","id":"` + id + `"}]}`,
			Status: 200, Events: []string{"record.deleted posts"}, Contains: []string{`{"results":[null]}`}},
		{Name: "bad op", Method: "POST", Path: "/api/batch", Body: `{"ops":[{"op":"upsert","collection":"posts"}]}`,
			Status: 400, Fields: []string{"ops[0].op"}},
		{Name: "unknown op field", Method: "POST", Path: "/api/batch", Body: `{"ops":[{"op":"create","collection":"posts","data":{},"x":1}]}`,
			Status: 400, Fields: []string{"ops[0].x"}},
		{Name: "empty", Method: "POST", Path: "/api/batch", Body: `{"ops":[]}`, Status: 400, Fields: []string{"ops"}},
		{Name: "not a list", Method: "POST", Path: "/api/batch", Body: `{"ops":{}}`, Status: 400},
		{Name: "unknown collection", Method: "POST", Path: "/api/batch", Body: `{"ops":[{"op":"create","collection":"nope","data":{}}]}`, Status: 404, Fields: []string{"ops[0]"}},
		{Name: "rule inside batch", Method: "POST", Path: "/api/batch", Body: `{"ops":[{"op":"create","collection":"secrets","data":{}}]}`, Status: 401},
	})
	if n := len(list(t, s, "posts", nil).Items); n != 1 {
		t.Errorf("posts after batches: %d, want 1 (only 'new')", n)
	}
}

func TestTimeTravel(t *testing.T) {
	s := apptest.Start(t, blog)
	r := s.Do("POST", "/api/collections/posts/records", `{"title":"v1"}`)
	id := r.JSON()["id"].(string)
	created := s.LastSeq()
	s.Do("POST", "/api/collections/people/records", `{"name":"noise"}`)
	s.Do("PATCH", "/api/collections/posts/records/"+id, `{"title":"v2"}`)
	updated := s.LastSeq()
	s.Do("DELETE", "/api/collections/posts/records/"+id, nil, "admin")
	deleted := s.LastSeq()
	path := "/api/collections/posts/records/" + id + "?at="
	cases := []struct {
		at     int64
		status int
		title  string
	}{{created - 1, 404, ""}, {created, 200, "v1"}, {created + 1, 200, "v1"}, {updated, 200, "v2"}, {deleted, 404, ""}}
	for _, c := range cases {
		r := s.Do("GET", path+itoa(c.at), nil)
		if r.Status != c.status {
			t.Errorf("at=%d: %d %s", c.at, r.Status, r.Body)
			continue
		}
		if c.status == 200 && r.JSON()["title"] != c.title {
			t.Errorf("at=%d: title %v, want %s", c.at, r.JSON()["title"], c.title)
		}
	}
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// A create's op-level id chooses the record's id, as the OpenAPI document
// says; one that contradicts data.id is refused.
func TestBatchCreateID(t *testing.T) {
	s := apptest.Start(t, blog)
	r := s.Do("POST", "/api/batch", map[string]any{"ops": []any{
		map[string]any{"op": "create", "collection": "posts", "id": "chosen-1", "data": map[string]any{"title": "a"}},
	}}, "admin")
	if r.Status != 200 || !strings.Contains(string(r.Body), `"id":"chosen-1"`) {
		t.Fatalf("op-level id: %d %s", r.Status, r.Body)
	}
	r = s.Do("POST", "/api/batch", map[string]any{"ops": []any{
		map[string]any{"op": "create", "collection": "posts", "id": "chosen-2", "data": map[string]any{"id": "other", "title": "b"}},
	}}, "admin")
	apptest.CheckProblem(t, r, "invalid", "batch.invalid_op", []string{"ops[0].id"})
}
