package rest_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/mantlehq/mantle/internal/apptest"
)

// oasProject has a webhook and an automation, so that their operations
// answer with real content.
const oasProject = blog + `
webhooks:
  audit:
    url: https://hooks.example.com/never
    collections: [posts]
automations:
  greet:
    hook: true
    do:
      - emit: { type: "greet.sent", subject: "'x'" }
`

// openapiChecker validates real answers against the server's own OpenAPI
// document with a JSON Schema 2020-12 validator.
type openapiChecker struct {
	t     *testing.T
	doc   map[string]any
	c     *jsonschema.Compiler
	seen  map[string]bool // "METHOD path" operations exercised
	cache map[string]*jsonschema.Schema
}

const oasURL = "mem://openapi.json"

func newChecker(t *testing.T, s *apptest.Server) *openapiChecker {
	r := s.Do("GET", "/api/openapi.json", nil)
	var doc map[string]any
	if err := json.Unmarshal(r.Body, &doc); err != nil {
		t.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(r.Body))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(oasURL, inst); err != nil {
		t.Fatal(err)
	}
	return &openapiChecker{t: t, doc: doc, c: c, seen: map[string]bool{}, cache: map[string]*jsonschema.Schema{}}
}

func esc(s string) string { return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1") }

// check finds the operation of path (a document path template), the
// documented answer for the status, and validates the body against its
// schema for the answer's content type.
func (o *openapiChecker) check(method, tmpl string, r *apptest.Response) {
	o.t.Helper()
	paths := o.doc["paths"].(map[string]any)
	item, ok := paths[tmpl].(map[string]any)
	if !ok {
		o.t.Errorf("%s %s: the path is not in the document", method, tmpl)
		return
	}
	op, ok := item[strings.ToLower(method)].(map[string]any)
	if !ok {
		o.t.Errorf("%s %s: the method is not in the document", method, tmpl)
		return
	}
	o.seen[method+" "+tmpl] = true
	status := fmt.Sprint(r.Status)
	responses := op["responses"].(map[string]any)
	resp, ok := responses[status].(map[string]any)
	ptr := "#/paths/" + esc(tmpl) + "/" + strings.ToLower(method) + "/responses/" + status
	if !ok {
		o.t.Errorf("%s %s answered %d, which the document does not list (%s)", method, tmpl, r.Status, r.Body)
		return
	}
	if ref, ok := resp["$ref"].(string); ok {
		ptr = ref
		name := strings.TrimPrefix(ref, "#/components/responses/")
		resp = o.doc["components"].(map[string]any)["responses"].(map[string]any)[name].(map[string]any)
	}
	content, _ := resp["content"].(map[string]any)
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if len(content) == 0 {
		if len(r.Body) > 0 && r.Status != 302 && r.Status != 307 {
			o.t.Errorf("%s %s %d: a body the document does not describe: %.200s", method, tmpl, r.Status, r.Body)
		}
		return
	}
	media, ok := content[ct].(map[string]any)
	if !ok {
		o.t.Errorf("%s %s %d: content type %q is not documented", method, tmpl, r.Status, ct)
		return
	}
	if _, ok := media["schema"]; !ok || ct != "application/json" && ct != "application/problem+json" {
		return
	}
	loc := oasURL + ptr + "/content/" + esc(ct) + "/schema"
	sch := o.cache[loc]
	if sch == nil {
		var err error
		if sch, err = o.c.Compile(loc); err != nil {
			o.t.Fatalf("compile %s: %v", loc, err)
		}
		o.cache[loc] = sch
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(r.Body))
	if err != nil {
		o.t.Errorf("%s %s %d: not JSON: %v", method, tmpl, r.Status, err)
		return
	}
	if err := sch.Validate(inst); err != nil {
		o.t.Errorf("%s %s %d: the answer does not match the document: %v\n%.300s", method, tmpl, r.Status, err, r.Body)
	}
}

var pathParam = regexp.MustCompile(`\{[^}]+\}`)

// TestResponsesMatchOpenAPI calls every operation the document lists,
// with good and bad input, and validates each answer (status, content
// type, body) against the document.
func TestResponsesMatchOpenAPI(t *testing.T) {
	s := apptest.Start(t, oasProject)
	o := newChecker(t, s)
	do := func(method, tmpl, path string, body any, headers ...string) *apptest.Response {
		t.Helper()
		r := s.Do(method, path, body, headers...)
		o.check(method, tmpl, r)
		return r
	}
	_, userAuth := s.User("oas@example.com")
	access, refresh := s.Login("oas@example.com", "password-oas@example.com")
	person := do("POST", "/api/collections/people/records", "/api/collections/people/records", map[string]any{"name": "Ada"}).JSON()["id"].(string)
	post := do("POST", "/api/collections/posts/records", "/api/collections/posts/records", map[string]any{"title": "t", "author": person, "tags": []string{"a"}, "publishedAt": "2026-01-02T03:04:05Z"}).JSON()["id"].(string)
	recs := "/api/collections/posts/records"
	rec := "/api/collections/posts/records/{id}"
	do("POST", recs, recs, map[string]any{"title": 5})
	do("POST", recs, recs, "{bad")
	do("POST", recs, recs, map[string]any{"title": "t"}) // unique title: 409
	do("GET", recs, recs+"?limit=2&sort=-views&count=true", nil)
	do("GET", recs, recs+"?fields=title&expand=author", nil)
	do("GET", recs, recs+"?expand=author", nil)
	do("GET", recs, recs+"?filter="+url.QueryEscape("views >"), nil)
	do("GET", rec, recs+"/"+post, nil)
	do("GET", rec, recs+"/"+post+"?at=1", nil)
	do("GET", rec, recs+"/nope", nil)
	do("PATCH", rec, recs+"/"+post, map[string]any{"views": 3}, `If-Match: "1"`)
	do("PATCH", rec, recs+"/"+post, map[string]any{"views": 4}, `If-Match: "1"`)
	do("DELETE", "/api/collections/secrets/records/{id}", "/api/collections/secrets/records/x", nil, userAuth)
	do("GET", "/api/collections/secrets/records", "/api/collections/secrets/records", nil)
	do("POST", "/api/batch", "/api/batch", map[string]any{"ops": []any{map[string]any{"op": "create", "collection": "people", "data": map[string]any{"name": "B"}}}})
	do("POST", "/api/batch", "/api/batch", map[string]any{"ops": []any{}})
	do("GET", "/api/events", "/api/events?limit=5", nil, "admin")
	do("GET", "/api/events", "/api/events?after=-1", nil)
	do("GET", "/api/health", "/api/health", nil)
	do("GET", "/api/ready", "/api/ready", nil)
	do("GET", "/api/schema", "/api/schema", nil)
	do("GET", "/api/openapi.json", "/api/openapi.json", nil)
	do("POST", "/api/auth/signup", "/api/auth/signup", map[string]any{"email": "new@example.com", "password": "a fine passphrase"})
	do("POST", "/api/auth/signup", "/api/auth/signup", map[string]any{"email": "new@example.com", "password": "a fine passphrase"})
	do("POST", "/api/auth/login", "/api/auth/login", map[string]any{"email": "new@example.com", "password": "a fine passphrase"})
	do("POST", "/api/auth/login", "/api/auth/login", map[string]any{"email": "new@example.com", "password": "wrong one here"})
	do("POST", "/api/auth/refresh", "/api/auth/refresh", map[string]any{"refreshToken": refresh})
	do("POST", "/api/auth/refresh", "/api/auth/refresh", map[string]any{"refreshToken": "mr_x_y"})
	do("GET", "/api/auth/me", "/api/auth/me", nil, bearer(access))
	do("GET", "/api/auth/me", "/api/auth/me", nil)
	do("GET", "/api/auth/providers", "/api/auth/providers", nil)
	do("GET", "/api/auth/oidc/{provider}", "/api/auth/oidc/nope", nil)
	do("GET", "/api/auth/oidc/{provider}/callback", "/api/auth/oidc/nope/callback", nil)
	key := do("POST", "/api/keys", "/api/keys", map[string]any{"name": "k", "roles": []string{"reader"}}, "admin").JSON()["id"].(string)
	do("GET", "/api/keys", "/api/keys", nil, "admin")
	do("GET", "/api/keys", "/api/keys", nil)
	do("DELETE", "/api/keys/{keyId}", "/api/keys/"+key, nil, "admin")
	do("DELETE", "/api/keys/{keyId}", "/api/keys/"+key, nil, "admin")
	do("POST", "/api/auth/logout", "/api/auth/logout", nil, bearer(access))
	do("GET", "/api/webhooks", "/api/webhooks", nil, "admin")
	do("GET", "/api/webhooks", "/api/webhooks", nil)
	do("GET", "/api/webhooks/{name}/deliveries", "/api/webhooks/audit/deliveries", nil, "admin")
	do("GET", "/api/webhooks/{name}/dead", "/api/webhooks/audit/dead", nil, "admin")
	do("POST", "/api/webhooks/{name}/replay", "/api/webhooks/audit/replay", map[string]any{"from": 1}, "admin")
	do("GET", "/api/webhooks/{name}/deliveries", "/api/webhooks/nope/deliveries", nil, "admin")
	do("GET", "/api/automations", "/api/automations", nil, "admin")
	do("POST", "/api/automations/{name}/run", "/api/automations/greet/run", map[string]any{}, "admin")
	do("GET", "/api/automations/{name}/runs", "/api/automations/greet/runs", nil, "admin")
	do("GET", "/api/automations/{name}/failed", "/api/automations/greet/failed", nil, "admin")
	do("GET", "/api/automations/{name}/dead", "/api/automations/greet/dead", nil, "admin")
	do("POST", "/api/automations/{name}/replay", "/api/automations/greet/replay", map[string]any{"from": 1}, "admin")
	do("GET", "/api/functions", "/api/functions", nil, "admin")
	do("GET", "/api/functions/{name}/logs", "/api/functions/nope/logs", nil, "admin")
	// A token that is not valid is a 401 on any operation; an unclean path
	// a 400 (net/http's mux would have answered an HTML 307).
	for _, c := range [][2]string{{"GET", "/api/health"}, {"GET", "/api/schema"}, {"GET", "/api/auth/providers"}, {"GET", "/api/ready"},
		{"POST", "/api/auth/login"}, {"GET", "/api/collections/posts/records"}} {
		r := do(c[0], c[1], c[1], map[string]any{}, bearer("not-a-token"))
		if r.Status != 401 {
			t.Errorf("%s %s with a bad token: %d", c[0], c[1], r.Status)
		}
	}
	if r := do("GET", "/api/health", "/api//health", nil); r.Status != 400 || !strings.Contains(string(r.Body), "request.unclean_path") {
		t.Errorf("an unclean path: %d %s", r.Status, r.Body)
	}
	// Every documented operation was called.
	for tmpl, item := range o.doc["paths"].(map[string]any) {
		for method := range item.(map[string]any) {
			m := strings.ToUpper(method)
			if m == "PARAMETERS" {
				continue
			}
			if !o.seen[m+" "+tmpl] && !strings.Contains(tmpl, "/collections/") && tmpl != "/api/events/stream" && tmpl != "/api/realtime/ws" &&
				!strings.HasPrefix(tmpl, "/api/functions/") {
				t.Errorf("%s %s is documented but the test never calls it", m, pathParam.ReplaceAllString(tmpl, "X"))
			}
		}
	}
	_ = http.MethodGet
}
