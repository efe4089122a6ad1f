package openapi

import "github.com/mantlehq/mantle/internal/schema"

func metaPaths(paths obj, s *schema.Schema) {
	paths["/api/health"] = obj{"get": obj{
		"operationId": "health", "summary": "Health", "tags": []string{"meta"}, "security": []obj{{}},
		"responses": with(obj{"200": obj{"description": "The server is up.", "content": obj{"application/json": obj{"schema": ref("Health")}}}}, errs("404")),
	}}
	paths["/api/schema"] = obj{"get": obj{
		"operationId": "schema", "summary": "The applied project model", "tags": []string{"meta"},
		"responses": with(obj{"200": obj{"description": "The schema.", "content": obj{"application/json": obj{"schema": obj{"type": "object"}}}}}, errs("401")),
	}}
	paths["/api/openapi.json"] = obj{"get": obj{
		"operationId": "openapi", "summary": "This document", "tags": []string{"meta"},
		"responses": with(obj{"200": obj{"description": "An OpenAPI 3.1 document.", "content": obj{"application/json": obj{"schema": obj{"type": "object"}}}}}, errs("401")),
	}}
	var ops []any
	for _, c := range s.Collections {
		ops = append(ops, c.Name)
	}
	paths["/api/batch"] = obj{"post": obj{
		"operationId": "batch", "summary": "Atomic batch of writes", "tags": []string{"batch"},
		"description": "All ops commit together or none does; errors name the op index in fields.",
		"requestBody": obj{"required": true, "content": obj{"application/json": obj{"schema": obj{
			"type": "object", "required": []string{"ops"}, "additionalProperties": false,
			"properties": obj{"ops": obj{"type": "array", "minItems": 1, "maxItems": 1000, "items": obj{
				"type": "object", "required": []string{"op", "collection"}, "additionalProperties": false,
				"properties": obj{
					"op":         obj{"type": "string", "enum": []string{"create", "update", "delete"}},
					"collection": obj{"type": "string", "enum": ops},
					"id":         obj{"type": "string", "description": "update, delete: the record; create: the new record's id (as data.id)"},
					"data":       obj{"type": "object"},
					"ifMatch":    obj{"type": "integer", "minimum": 1},
				},
			}}},
		}}}},
		"responses": with(obj{"200": obj{"description": "One result per op; null for deletes.", "content": obj{"application/json": obj{"schema": obj{
			"type": "object", "required": []string{"results"},
			"properties": obj{"results": obj{"type": "array", "items": obj{"type": []string{"object", "null"}}}},
		}}}}}, errs("400", "401", "403", "404", "409", "412", "413", "415")),
	}}
	evParams := []obj{
		queryParam("after", "Return events after this sequence.", obj{"type": "integer", "minimum": 0}),
		queryParam("collections", "Comma-separated collection names.", obj{"type": "string"}),
	}
	paths["/api/events"] = obj{"get": obj{
		"operationId": "events", "summary": "Read the event log", "tags": []string{"events"},
		"parameters": append(evParams,
			queryParam("limit", "At most this many events.", obj{"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}),
			queryParam("types", "Comma-separated event types.", obj{"type": "string"})),
		"responses": with(obj{"200": obj{"description": "Events in sequence order.", "content": obj{"application/json": obj{"schema": obj{
			"type": "object", "required": []string{"events", "lastSeq"},
			"properties": obj{"events": obj{"type": "array", "items": ref("Event")}, "lastSeq": obj{"type": "integer"}},
		}}}}}, errs("400", "401", "404")),
	}}
	paths["/api/events/stream"] = obj{"get": obj{
		"operationId": "eventStream", "summary": "Stream the event log (SSE)", "tags": []string{"events"},
		"description": "Server-Sent Events: id is the sequence, event the type, data the CloudEvent. Resume with Last-Event-ID.",
		"parameters": append(evParams,
			queryParam("filter", "A CEL expression over data.record.", obj{"type": "string"}),
			obj{"name": "Last-Event-ID", "in": "header", "required": false, "description": "Resume after this sequence.", "schema": obj{"type": "string"}}),
		"responses": with(obj{"200": obj{"description": "An endless event stream.", "content": obj{"text/event-stream": obj{"schema": obj{"type": "string"}}}}}, errs("400", "401", "404")),
	}}
}
