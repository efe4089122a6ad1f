// Package openapi renders an OpenAPI 3.1 document of a project's own API:
// the records endpoints of each collection with request and response
// schemas per field type, batch, events, and the meta endpoints.
package openapi

import (
	"encoding/json"

	"github.com/mantlehq/mantle/internal/schema"
)

type obj = map[string]any

func ref(name string) obj { return obj{"$ref": "#/components/schemas/" + name} }

// Render returns the document for s as indented JSON.
func Render(s *schema.Schema) []byte {
	doc := Document(s)
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		panic(err) // the document is built from plain maps and cannot fail
	}
	return b
}

// Document builds the document for s.
func Document(s *schema.Schema) obj {
	name := s.Name
	if name == "" {
		name = "mantle"
	}
	paths := obj{}
	schemas := obj{
		"Problem": problemSchema(),
		"Event":   eventSchema(),
		"Health":  obj{"type": "object", "required": []string{"status"}, "properties": obj{"status": obj{"type": "string", "enum": []string{"ok"}}}},
	}
	var tags []obj
	for _, c := range s.Collections {
		tags = append(tags, obj{"name": c.Name, "description": "Records of the " + c.Name + " collection."})
		collectionPaths(paths, c)
		collectionSchemas(schemas, c)
	}
	tags = append(tags, obj{"name": "events", "description": "The event log."},
		obj{"name": "meta", "description": "Health, schema and this document."},
		obj{"name": "batch", "description": "Atomic multi-record writes."},
		obj{"name": "auth", "description": "Accounts, tokens and API keys."},
		obj{"name": "webhooks", "description": "Webhook deliveries (administrators)."},
		obj{"name": "functions", "description": "WebAssembly functions (administrators)."},
		obj{"name": "automations", "description": "Automations (administrators; hooks by their allow rule)."})
	metaPaths(paths, s)
	authPaths(paths, schemas)
	opsPaths(paths)
	// Credentials are checked on every request: a bearer token that is not
	// valid is a 401 wherever it is sent, even where none is needed. A path
	// with empty, . or .. segments is a 400 (request.unclean_path).
	for _, item := range paths {
		for _, op := range item.(obj) {
			responses := op.(obj)["responses"].(obj)
			for code, name := range map[string]string{"400": "BadRequest", "401": "Unauthenticated"} {
				if _, ok := responses[code]; !ok {
					responses[code] = obj{"$ref": "#/components/responses/" + name}
				}
			}
		}
	}
	return obj{
		"openapi": "3.1.0",
		"info": obj{
			"title":       name + " API",
			"version":     "1",
			"description": "The HTTP API that Mantle serves for the " + name + " project.",
			"license":     obj{"name": "Apache-2.0", "identifier": "Apache-2.0"},
		},
		"servers":  []obj{{"url": "http://127.0.0.1:8090", "description": "mantle serve on its default address"}},
		"security": []obj{{}, {"bearer": []string{}}},
		"tags":     tags,
		"paths":    paths,
		"components": obj{
			"schemas": schemas,
			"securitySchemes": obj{
				"bearer": obj{"type": "http", "scheme": "bearer", "description": "An access token or API key."},
			},
			"responses": errorResponses(),
			"parameters": obj{
				"id":      obj{"name": "id", "in": "path", "required": true, "description": "The record id.", "schema": obj{"type": "string", "maxLength": 64}},
				"IfMatch": obj{"name": "If-Match", "in": "header", "required": false, "description": `The expected record version, such as "3"; 412 when it differs.`, "schema": obj{"type": "string"}},
			},
		},
	}
}

func errorResponses() obj {
	out := obj{}
	for _, e := range []struct{ name, desc string }{
		{"BadRequest", "Malformed JSON, unknown field, failed validation, bad filter or sort."},
		{"Unauthenticated", "Missing, expired or invalid credentials."},
		{"PermissionDenied", "A rule says no."},
		{"NotFound", "No such collection or record, or one the caller may not view."},
		{"Conflict", "A unique constraint."},
		{"PreconditionFailed", "If-Match does not match the record's version."},
		{"TooLarge", "The body is larger than the limit."},
		{"UnsupportedMediaType", "The body is not application/json."},
		{"RateLimited", "Too many attempts; the Retry-After header says when to retry."},
		{"Failed", "The function failed, trapped or answered something invalid."},
		{"BadGateway", "A step of the automation failed."},
		{"Unavailable", "Not now: a query past its time budget, a function not loaded, too many connections; Retry-After when worth retrying."},
		{"Timeout", "The function ran past its timeout."},
		{"InsufficientStorage", "The database's disk is full: nothing was written."},
	} {
		out[e.name] = obj{"description": e.desc, "content": obj{"application/problem+json": obj{"schema": ref("Problem")}}}
	}
	return out
}

func errs(codes ...string) obj {
	names := map[string]string{"400": "BadRequest", "401": "Unauthenticated", "403": "PermissionDenied",
		"404": "NotFound", "409": "Conflict", "412": "PreconditionFailed", "413": "TooLarge", "415": "UnsupportedMediaType", "429": "RateLimited",
		"500": "Failed", "502": "BadGateway", "503": "Unavailable", "504": "Timeout", "507": "InsufficientStorage"}
	out := obj{}
	for _, c := range codes {
		out[c] = obj{"$ref": "#/components/responses/" + names[c]}
	}
	return out
}

func with(base obj, more obj) obj {
	for k, v := range more {
		base[k] = v
	}
	return base
}

func problemSchema() obj {
	return obj{
		"type":     "object",
		"required": []string{"type", "title", "status", "detail", "code", "requestId"},
		"properties": obj{
			"type":      obj{"type": "string"},
			"title":     obj{"type": "string"},
			"status":    obj{"type": "integer"},
			"detail":    obj{"type": "string"},
			"code":      obj{"type": "string", "enum": []string{"invalid", "unauthenticated", "permission_denied", "not_found", "conflict", "failed_precondition", "rate_limited", "unavailable", "internal"}},
			"reason":    obj{"type": "string"},
			"fields":    obj{"type": "object", "additionalProperties": obj{"type": "string"}},
			"requestId": obj{"type": "string"},
		},
	}
}

func eventSchema() obj {
	return obj{
		"type":     "object",
		"required": []string{"specversion", "id", "seq", "source", "type", "time", "datacontenttype", "data"},
		"properties": obj{
			"specversion":     obj{"type": "string", "enum": []string{"1.0"}},
			"id":              obj{"type": "string"},
			"seq":             obj{"type": "integer", "minimum": 1},
			"source":          obj{"type": "string"},
			"type":            obj{"type": "string"},
			"subject":         obj{"type": "string"},
			"time":            obj{"type": "string", "format": "date-time"},
			"actor":           obj{"type": "string"},
			"datacontenttype": obj{"type": "string"},
			"data":            obj{"type": "object"},
		},
	}
}
