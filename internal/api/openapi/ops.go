package openapi

// opsPaths documents what operators call: readiness, the realtime
// WebSocket, and the administration of webhooks, functions and
// automations (administrators only; their answers carry every event).
func opsPaths(paths obj) {
	ready := obj{"type": "object", "required": []string{"status", "checks"}, "properties": obj{
		"status": obj{"type": "string", "enum": []string{"ready", "unavailable"}},
		"checks": obj{"type": "object", "description": "Each check (store, bus, shutdown): ok, or why not.", "additionalProperties": obj{"type": "string"}},
	}}
	paths["/api/ready"] = obj{"get": obj{
		"operationId": "ready", "summary": "Is this node ready to serve?", "tags": []string{"meta"},
		"description": "200 when the store (and, in a cluster, the bus) answer; 503 while the node shuts down, its database is unreachable, or its disk is full.",
		"security":    []obj{{}},
		"responses": obj{
			"200": obj{"description": "Ready.", "content": obj{"application/json": obj{"schema": ready}}},
			"503": obj{"description": "Not ready; checks say why.", "content": obj{"application/json": obj{"schema": ready}}},
		},
	}}
	paths["/api/realtime/ws"] = obj{"get": obj{
		"operationId": "realtime", "summary": "The realtime WebSocket", "tags": []string{"events"},
		"description": "Upgrade to a WebSocket (subprotocol-free JSON messages: subscribe, unsubscribe, ping; events, errors and close codes as docs/realtime.md describes). Credentials: the Authorization header or ?token=.",
		"parameters":  []obj{queryParam("token", "An access token or API key, for clients that cannot set headers.", obj{"type": "string"})},
		"responses": with(obj{"101": obj{"description": "Switching protocols: the WebSocket is open."}},
			errs("400", "401")),
	}}
	items := func(desc string) obj {
		return obj{"200": obj{"description": desc, "content": obj{"application/json": obj{"schema": obj{
			"type": "object", "required": []string{"items"},
			"properties": obj{"items": obj{"type": "array", "items": obj{"type": "object"}}},
		}}}}}
	}
	name := []obj{{"name": "name", "in": "path", "required": true, "description": "The name in the project file.", "schema": obj{"type": "string"}}}
	replay := func(kind, tag string) obj {
		return obj{"post": obj{
			"operationId": kind + "Replay", "summary": "Deliver again from a sequence", "tags": []string{tag}, "parameters": name,
			"requestBody": obj{"required": true, "content": obj{"application/json": obj{"schema": obj{
				"type": "object", "required": []string{"from"}, "properties": obj{"from": obj{"type": "integer", "minimum": 1}}}}}},
			"responses": with(obj{"202": obj{"description": "The consumer goes back to the sequence.", "content": obj{"application/json": obj{"schema": obj{
				"type": "object", "required": []string{"from"}, "properties": obj{"from": obj{"type": "integer"}}}}}}},
				errs("400", "401", "403", "404", "412", "413", "415")),
		}}
	}
	list := func(id, summary, tag string, params []obj) obj {
		op := obj{"operationId": id, "summary": summary, "tags": []string{tag},
			"responses": with(items(summary+"."), errs("400", "401", "403", "404"))}
		if params != nil {
			op["parameters"] = params
		}
		return obj{"get": op}
	}
	for _, k := range []struct{ kind, tag, plural string }{
		{"webhook", "webhooks", "webhooks"}, {"function", "functions", "functions"}, {"automation", "automations", "automations"}} {
		paths["/api/"+k.plural] = list(k.kind+"s", "The project's "+k.plural+" and their state", k.tag, nil)
		paths["/api/"+k.plural+"/{name}/dead"] = list(k.kind+"Dead", "Events given up on (dead letters)", k.tag, name)
		paths["/api/"+k.plural+"/{name}/replay"] = replay(k.kind, k.tag)
	}
	paths["/api/webhooks/{name}/deliveries"] = list("webhookDeliveries", "Recent delivery attempts", "webhooks", name)
	paths["/api/functions/{name}/logs"] = list("functionLogs", "Log lines of the function", "functions", append(name,
		queryParam("after", "Lines after this number.", obj{"type": "integer", "minimum": 0}),
		queryParam("limit", "At most this many lines.", obj{"type": "integer", "minimum": 1, "maximum": 1000, "default": 100})))
	paths["/api/functions/{name}/attempts"] = list("functionAttempts", "Recent attempts of the function's event trigger", "functions", name)
	paths["/api/functions/{name}/invoke"] = obj{"post": obj{
		"operationId": "functionInvoke", "summary": "Run the function once with a body", "tags": []string{"functions"}, "parameters": name,
		"requestBody": obj{"required": true, "content": obj{"application/json": obj{"schema": obj{}}}},
		"responses": with(obj{"200": obj{"description": "The function's result: status, headers, body or json.", "content": obj{"application/json": obj{"schema": obj{"type": "object"}}}}},
			errs("400", "401", "403", "404", "413", "415", "500", "503", "504")),
	}}
	paths["/api/automations/{name}/runs"] = list("automationRuns", "Recent runs", "automations", name)
	paths["/api/automations/{name}/failed"] = list("automationFailed", "Runs that failed", "automations", name)
	paths["/api/automations/{name}/run"] = obj{"post": obj{
		"operationId": "automationRun", "summary": "Run a hook automation with the body as its input", "tags": []string{"automations"}, "parameters": name,
		"description": "For automations with hook: true; the automation's allow rule decides who may run it.",
		"requestBody": obj{"required": false, "content": obj{"application/json": obj{"schema": obj{}}}},
		"responses": with(obj{"200": obj{"description": "The run.", "content": obj{"application/json": obj{"schema": obj{"type": "object"}}}}},
			errs("400", "401", "403", "404", "412", "413", "415", "502")),
	}}
}
