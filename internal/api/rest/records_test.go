package rest_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/mantlehq/mantle/internal/apptest"
)

func TestRecordsCRUD(t *testing.T) {
	s := apptest.Start(t, blog)
	var id string
	s.Run(t, []apptest.Scenario{
		{Name: "create", Method: "POST", Path: "/api/collections/posts/records",
			Body:   `{"title":"Hello","views":3,"tags":{"a":[1,2]},"status":"draft","publishedAt":"2024-05-01T12:00:00+02:00"}`,
			Status: 201, Events: []string{"record.created posts"},
			Contains: []string{`"version":1`, `"title":"Hello"`, `"views":3`, `"tags":{"a":[1,2]}`, `"publishedAt":"2024-05-01T10:00:00.000000000Z"`, `"body":null`},
			Check: func(t *testing.T, r *apptest.Response) {
				id = r.JSON()["id"].(string)
				if r.Header.Get("ETag") != `"1"` {
					t.Errorf("ETag %q", r.Header.Get("ETag"))
				}
				if r.Header.Get("Location") != "/api/collections/posts/records/"+id {
					t.Errorf("Location %q", r.Header.Get("Location"))
				}
			}},
	})
	s.Run(t, []apptest.Scenario{
		{Name: "get", Method: "GET", Path: "/api/collections/posts/records/" + id, Status: 200,
			Contains: []string{`"id":"` + id + `"`, `"title":"Hello"`}},
		{Name: "patch", Method: "PATCH", Path: "/api/collections/posts/records/" + id, Headers: []string{`If-Match: "1"`},
			Body: `{"title":"Hello 2","body":"text"}`, Status: 200, Events: []string{"record.updated posts"},
			Contains: []string{`"version":2`, `"title":"Hello 2"`, `"views":3`, `"body":"text"`}},
		{Name: "patch stale version", Method: "PATCH", Path: "/api/collections/posts/records/" + id, Headers: []string{`If-Match: "1"`},
			Body: `{"title":"x"}`, Status: 412, Code: "failed_precondition", Reason: "record.version_mismatch"},
		{Name: "patch to null", Method: "PATCH", Path: "/api/collections/posts/records/" + id,
			Body: `{"body":null}`, Status: 200, Events: []string{"record.updated posts"}, Contains: []string{`"body":null`, `"version":3`}},
		{Name: "delete stale", Method: "DELETE", Path: "/api/collections/posts/records/" + id, Headers: []string{`If-Match: "2"`, "admin"},
			Status: 412, Code: "failed_precondition"},
		{Name: "delete without rule anonymous", Method: "DELETE", Path: "/api/collections/posts/records/" + id,
			Status: 401, Code: "unauthenticated"},
		{Name: "delete as admin", Method: "DELETE", Path: "/api/collections/posts/records/" + id, Headers: []string{`If-Match: "3"`, "admin"},
			Status: 204, Events: []string{"record.deleted posts"}},
		{Name: "get deleted", Method: "GET", Path: "/api/collections/posts/records/" + id, Status: 404, Code: "not_found", Reason: "record.not_found"},
		{Name: "patch deleted", Method: "PATCH", Path: "/api/collections/posts/records/" + id, Body: `{"title":"x"}`, Status: 404, Code: "not_found"},
	})
}

func TestUpdateEventCarriesPreviousAndChanged(t *testing.T) {
	s := apptest.Start(t, blog)
	r := s.Do("POST", "/api/collections/posts/records", `{"title":"a","views":1}`)
	id := r.JSON()["id"].(string)
	s.Do("PATCH", "/api/collections/posts/records/"+id, `{"views":2,"title":"a"}`)
	ev := s.Do("GET", "/api/events?after=2", nil, "admin")
	var page struct {
		Events []struct {
			Type    string
			Subject string
			Seq     int64
			Data    struct {
				Record, Previous map[string]any
				Changed          []string
			}
		}
		LastSeq int64
	}
	if err := json.Unmarshal(ev.Body, &page); err != nil {
		t.Fatal(err)
	}
	if len(page.Events) != 1 {
		t.Fatalf("events: %s", ev.Body)
	}
	e := page.Events[0]
	if e.Type != "record.updated" || e.Subject != id || e.Seq != 3 || page.LastSeq != 3 {
		t.Errorf("event %+v lastSeq %d", e, page.LastSeq)
	}
	if e.Data.Record["views"] != 2.0 || e.Data.Previous["views"] != 1.0 {
		t.Errorf("record/previous: %+v", e.Data)
	}
	if strings.Join(e.Data.Changed, ",") != "views" {
		t.Errorf("changed %v, want [views]", e.Data.Changed)
	}
}

func TestRules(t *testing.T) {
	s := apptest.Start(t, blog)
	s.Run(t, []apptest.Scenario{
		{Name: "anonymous create without rule", Method: "POST", Path: "/api/collections/secrets/records", Body: `{"value":"x"}`,
			Status: 401, Code: "unauthenticated"},
		{Name: "anonymous list without rule", Method: "GET", Path: "/api/collections/secrets/records", Status: 401, Code: "unauthenticated"},
		{Name: "admin create", Method: "POST", Path: "/api/collections/secrets/records", Body: `{"value":"x"}`, Headers: []string{"admin"},
			Status: 201, Events: []string{"record.created secrets"}},
		{Name: "admin list", Method: "GET", Path: "/api/collections/secrets/records", Headers: []string{"admin"}, Status: 200, Contains: []string{`"value":"x"`}},
		{Name: "bad token", Method: "GET", Path: "/api/collections/posts/records", Headers: []string{"Authorization: Bearer nope"},
			Status: 401, Code: "unauthenticated", Reason: "auth.invalid_credentials"},
	})
	evs := s.Do("GET", "/api/events", nil)
	if strings.Contains(string(evs.Body), "secrets") {
		t.Errorf("anonymous caller sees events of a collection it may not view: %s", evs.Body)
	}
	if strings.Contains(string(evs.Body), "schema.applied") {
		t.Errorf("anonymous caller sees schema events: %s", evs.Body)
	}
}

func TestAdminWritesRecordActor(t *testing.T) {
	s := apptest.Start(t, blog)
	s.Do("POST", "/api/collections/secrets/records", `{"value":"x"}`, "admin")
	r := s.Do("GET", "/api/events?types=record.created", nil, "admin")
	if !strings.Contains(string(r.Body), `"actor":"mantle:admin"`) {
		t.Errorf("admin write has no actor: %s", r.Body)
	}
}

func TestMeta(t *testing.T) {
	s := apptest.Start(t, blog)
	s.Run(t, []apptest.Scenario{
		{Name: "health", Method: "GET", Path: "/api/health", Status: 200, Contains: []string{`{"status":"ok"}`}},
		{Name: "schema", Method: "GET", Path: "/api/schema", Status: 200, Contains: []string{`"name":"posts"`, `"name":"users"`}},
		{Name: "openapi", Method: "GET", Path: "/api/openapi.json", Status: 200, Contains: []string{`"openapi": "3.1.0"`, `"/api/collections/posts/records/{id}"`}},
		{Name: "ready", Method: "GET", Path: "/api/ready", Status: 200, Contains: []string{`"status":"ready"`, `"store":"ok"`}},
	})
}

// TestReadyFailsWhileShuttingDown: a node that closes says so, so that a
// load balancer stops sending it requests.
func TestReadyFailsWhileShuttingDown(t *testing.T) {
	s := apptest.Start(t, blog)
	if checks := s.App.Ready(context.Background()); checks["store"] != nil || checks["shutdown"] != nil {
		t.Fatalf("a running node: %v", checks)
	}
	s.App.Close()
	if checks := s.App.Ready(context.Background()); checks["shutdown"] == nil {
		t.Fatalf("a closed node: %v", checks)
	}
}
