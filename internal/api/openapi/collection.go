package openapi

import (
	"github.com/mantlehq/mantle/internal/schema"
)

// fieldSchema is the JSON Schema of a field's value.
func fieldSchema(f *schema.Field) obj {
	var s obj
	switch f.Type {
	case schema.Text:
		s = obj{"type": "string"}
		if f.Max != nil {
			s["maxLength"] = int(*f.Max)
		}
		if f.Min != nil {
			s["minLength"] = int(*f.Min)
		}
	case schema.Number:
		s = obj{"type": "number"}
		if f.Integer {
			s["type"] = "integer"
		}
		if f.Min != nil {
			s["minimum"] = *f.Min
		}
		if f.Max != nil {
			s["maximum"] = *f.Max
		}
	case schema.Bool:
		s = obj{"type": "boolean"}
	case schema.Datetime:
		s = obj{"type": "string", "format": "date-time"}
	case schema.JSON:
		return obj{"description": "Any JSON value."}
	case schema.Select:
		s = obj{"type": "string", "enum": f.Values}
	case schema.Relation:
		s = obj{"type": "string", "description": "The id of a record in " + f.Collection + "."}
	}
	return s
}

// itemSchema is a field's value in a list page: with expand, a relation
// is the related record (or null when it is gone or hidden).
func itemSchema(f *schema.Field) obj {
	if f.Type != schema.Relation {
		return nullable(fieldSchema(f))
	}
	return obj{"type": []string{"string", "object", "null"},
		"description": "The id of a record in " + f.Collection + "; with expand, that record, or null when it is gone or hidden from the caller."}
}

// nullable lets a field's schema also be null.
func nullable(s obj) obj {
	out := obj{}
	for k, v := range s {
		out[k] = v
	}
	if t, ok := s["type"].(string); ok {
		out["type"] = []string{t, "null"}
		if e, ok := s["enum"].([]string); ok {
			vals := make([]any, 0, len(e)+1)
			for _, v := range e {
				vals = append(vals, v)
			}
			out["enum"] = append(vals, nil)
		}
	}
	return out
}

func collectionSchemas(schemas obj, c *schema.Collection) {
	record := obj{
		"id":        obj{"type": "string"},
		"createdAt": obj{"type": "string", "format": "date-time"},
		"updatedAt": obj{"type": "string", "format": "date-time"},
		"version":   obj{"type": "integer", "minimum": 1},
	}
	create, update, item := obj{}, obj{}, obj{}
	var required []string
	for k, v := range record {
		item[k] = v
	}
	for _, f := range c.Fields {
		item[f.Name] = itemSchema(f)
		fs := fieldSchema(f)
		if f.Required {
			required = append(required, f.Name)
			record[f.Name] = fs
			create[f.Name] = fs
			update[f.Name] = fs
		} else {
			record[f.Name] = nullable(fs)
			create[f.Name] = nullable(fs)
			update[f.Name] = nullable(fs)
		}
	}
	create["id"] = obj{"type": "string", "maxLength": 64, "pattern": "^[A-Za-z0-9_-]+$", "description": "Optional: a client-chosen id."}
	createSchema := obj{"type": "object", "additionalProperties": false, "properties": create}
	if len(required) > 0 {
		createSchema["required"] = required
	}
	schemas[c.Name+"Record"] = obj{"type": "object", "required": []string{"id", "createdAt", "updatedAt", "version"}, "properties": record}
	schemas[c.Name+"Item"] = obj{"type": "object", "required": []string{"id"}, "properties": item,
		"description": "A record in a page: every field, or with fields= only id and those asked for; relations expanded when asked."}
	schemas[c.Name+"Create"] = createSchema
	schemas[c.Name+"Update"] = obj{"type": "object", "additionalProperties": false, "properties": update}
	schemas[c.Name+"Page"] = obj{
		"type":     "object",
		"required": []string{"items", "nextCursor"},
		"properties": obj{
			"items":      obj{"type": "array", "items": ref(c.Name + "Item")},
			"nextCursor": obj{"type": []string{"string", "null"}},
			"total":      obj{"type": "integer"},
		},
	}
}

func jsonBody(schemaName string) obj {
	return obj{"required": true, "content": obj{"application/json": obj{"schema": ref(schemaName)}}}
}

func jsonResponse(desc, schemaName string) obj {
	return obj{"description": desc, "headers": obj{"ETag": obj{"description": "The record version in quotes.", "schema": obj{"type": "string"}}},
		"content": obj{"application/json": obj{"schema": ref(schemaName)}}}
}

func queryParam(name, desc string, s obj) obj {
	return obj{"name": name, "in": "query", "required": false, "description": desc, "schema": s}
}

func collectionPaths(paths obj, c *schema.Collection) {
	n := c.Name
	tags := []string{n}
	paths["/api/collections/"+n+"/records"] = obj{
		"get": obj{
			"operationId": "list_" + n, "summary": "List " + n, "tags": tags,
			"description": "A page of " + n + " records, filtered, sorted and paged by keyset cursor.",
			"parameters": []obj{
				queryParam("filter", "A CEL expression over the fields, such as views > 100.", obj{"type": "string", "maxLength": 4096}),
				queryParam("sort", "Comma-separated fields, - for descending.", obj{"type": "string"}),
				queryParam("limit", "Page size.", obj{"type": "integer", "minimum": 1, "maximum": 1000, "default": 50}),
				queryParam("cursor", "The nextCursor of the previous page.", obj{"type": "string"}),
				queryParam("fields", "Comma-separated fields to return.", obj{"type": "string"}),
				queryParam("expand", "Comma-separated relation fields to inline.", obj{"type": "string"}),
				queryParam("count", "Include total.", obj{"type": "boolean"}),
			},
			"responses": with(obj{"200": obj{"description": "A page.", "content": obj{"application/json": obj{"schema": ref(n + "Page")}}}}, errs("400", "401", "403", "404", "429", "503")),
		},
		"post": obj{
			"operationId": "create_" + n, "summary": "Create a " + n + " record", "tags": tags,
			"requestBody": jsonBody(n + "Create"),
			"responses": with(obj{"201": jsonResponse("The new record.", n+"Record")},
				errs("400", "401", "403", "404", "409", "413", "415", "429", "503", "507")),
		},
	}
	idParams := []obj{{"$ref": "#/components/parameters/id"}}
	paths["/api/collections/"+n+"/records/{id}"] = obj{
		"get": obj{
			"operationId": "get_" + n, "summary": "Get a " + n + " record", "tags": tags,
			"parameters": append(idParams, queryParam("at", "An event sequence: the record as it was right after it.", obj{"type": "integer", "minimum": 1})),
			"responses":  with(obj{"200": jsonResponse("The record.", n+"Record")}, errs("400", "401", "404", "429")),
		},
		"patch": obj{
			"operationId": "update_" + n, "summary": "Update a " + n + " record", "tags": tags,
			"parameters":  append(idParams, obj{"$ref": "#/components/parameters/IfMatch"}),
			"requestBody": jsonBody(n + "Update"),
			"responses":   with(obj{"200": jsonResponse("The updated record.", n+"Record")}, errs("400", "401", "403", "404", "409", "412", "413", "415", "429", "503", "507")),
		},
		"delete": obj{
			"operationId": "delete_" + n, "summary": "Delete a " + n + " record", "tags": tags,
			"parameters": append(idParams, obj{"$ref": "#/components/parameters/IfMatch"}),
			"responses":  with(obj{"204": obj{"description": "Deleted."}}, errs("400", "401", "403", "404", "409", "412", "429", "503", "507")),
		},
	}
}
