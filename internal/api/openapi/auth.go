package openapi

func authBody(schema obj) obj {
	return obj{"required": true, "content": obj{"application/json": obj{"schema": schema}}}
}

func jsonAnswer(desc string, schema obj) obj {
	return obj{"description": desc, "content": obj{"application/json": obj{"schema": schema}}}
}

func strProps(names ...string) obj {
	p := obj{}
	for _, n := range names {
		p[n] = obj{"type": "string"}
	}
	return p
}

func authPaths(paths obj, schemas obj) {
	schemas["Tokens"] = obj{
		"type": "object", "required": []string{"accessToken", "refreshToken", "expiresIn", "user"},
		"properties": obj{
			"accessToken":  obj{"type": "string", "description": "An EdDSA JWT; send it as Authorization: Bearer."},
			"refreshToken": obj{"type": "string", "description": "Single use: each refresh returns a new one."},
			"expiresIn":    obj{"type": "integer", "description": "Seconds until the access token expires."},
			"user":         ref("usersRecord"),
		},
	}
	schemas["APIKey"] = obj{
		"type": "object", "required": []string{"id", "name", "roles", "createdAt", "expiresAt"},
		"properties": obj{
			"id": obj{"type": "string"}, "name": obj{"type": "string"},
			"roles":     obj{"type": "array", "items": obj{"type": "string"}},
			"createdAt": obj{"type": "string", "format": "date-time"},
			"createdBy": obj{"type": "string"},
			"expiresAt": obj{"type": []string{"string", "null"}, "format": "date-time"},
		},
	}
	public := []obj{{}}
	paths["/api/auth/signup"] = obj{"post": obj{
		"operationId": "signup", "summary": "Create an account", "tags": []string{"auth"}, "security": public,
		"description": "Throttled per IP address and per email (429 with Retry-After). Members other than password are fields of users; roles is refused.",
		"requestBody": authBody(obj{"type": "object", "required": []string{"email", "password"},
			"properties": obj{"email": obj{"type": "string", "format": "email"}, "password": obj{"type": "string", "minLength": 8}}}),
		"responses": with(obj{"201": jsonAnswer("The new user.", obj{"type": "object", "required": []string{"user"}, "properties": obj{"user": ref("usersRecord")}}),
			"429": obj{"$ref": "#/components/responses/RateLimited"}}, errs("400", "403", "409", "413", "415")),
	}}
	paths["/api/auth/login"] = obj{"post": obj{
		"operationId": "login", "summary": "Sign in with email and password", "tags": []string{"auth"}, "security": public,
		"description": "A wrong password and an unknown email get the same 401. Throttled per IP address and per account.",
		"requestBody": authBody(obj{"type": "object", "required": []string{"email", "password"}, "properties": strProps("email", "password")}),
		"responses": with(obj{"200": jsonAnswer("A token pair.", ref("Tokens")),
			"429": obj{"$ref": "#/components/responses/RateLimited"}}, errs("400", "401", "413", "415")),
	}}
	paths["/api/auth/refresh"] = obj{"post": obj{
		"operationId": "refresh", "summary": "Trade a refresh token for a new pair", "tags": []string{"auth"}, "security": public,
		"description": "The old refresh token stops working; presenting it again revokes the whole session.",
		"requestBody": authBody(obj{"type": "object", "required": []string{"refreshToken"}, "properties": strProps("refreshToken")}),
		"responses":   with(obj{"200": jsonAnswer("A new token pair.", ref("Tokens"))}, errs("400", "401", "413", "415")),
	}}
	paths["/api/auth/logout"] = obj{"post": obj{
		"operationId": "logout", "summary": "End the session of the access token", "tags": []string{"auth"},
		"responses": with(obj{"204": obj{"description": "Signed out."}}, errs("401")),
	}}
	paths["/api/auth/me"] = obj{"get": obj{
		"operationId": "me", "summary": "The signed-in user", "tags": []string{"auth"},
		"responses": with(obj{"200": jsonAnswer("The user.", ref("usersRecord"))}, errs("401", "404")),
	}}
	paths["/api/keys"] = obj{
		"post": obj{
			"operationId": "createKey", "summary": "Create an API key (administrators)", "tags": []string{"auth"},
			"requestBody": authBody(obj{"type": "object", "required": []string{"name"}, "properties": obj{
				"name": obj{"type": "string"}, "roles": obj{"type": "array", "items": obj{"type": "string"}},
				"expiresAt": obj{"type": []string{"string", "null"}, "format": "date-time"}}}),
			"responses": with(obj{"201": jsonAnswer("The key, shown this once.", with(obj{}, obj{
				"type": "object", "required": []string{"id", "key", "name", "roles", "expiresAt"},
				"properties": obj{"id": obj{"type": "string"}, "key": obj{"type": "string"}, "name": obj{"type": "string"},
					"roles": obj{"type": "array", "items": obj{"type": "string"}}, "expiresAt": obj{"type": []string{"string", "null"}, "format": "date-time"}},
			}))}, errs("400", "401", "403", "413", "415")),
		},
		"get": obj{
			"operationId": "listKeys", "summary": "List API keys (administrators)", "tags": []string{"auth"},
			"responses": with(obj{"200": jsonAnswer("The keys, without their secrets.", obj{"type": "object", "required": []string{"items"},
				"properties": obj{"items": obj{"type": "array", "items": ref("APIKey")}}})}, errs("401", "403")),
		},
	}
	paths["/api/auth/providers"] = obj{"get": obj{
		"operationId": "authProviders", "summary": "The OpenID Connect providers users may sign in with", "tags": []string{"auth"}, "security": public,
		"responses": with(obj{"200": jsonAnswer("The providers.", obj{"type": "object", "required": []string{"providers"},
			"properties": obj{"providers": obj{"type": "array", "items": obj{"type": "object", "required": []string{"name", "start"},
				"properties": strProps("name", "start")}}}})}, errs("401")),
	}}
	provider := obj{"name": "provider", "in": "path", "required": true, "description": "The provider's name in the project file.", "schema": obj{"type": "string"}}
	paths["/api/auth/oidc/{provider}"] = obj{"get": obj{
		"operationId": "oidcStart", "summary": "Start signing in with an OpenID Connect provider", "tags": []string{"auth"}, "security": public,
		"description": "Redirects the browser to the provider (authorization code flow with PKCE S256, state and nonce).",
		"parameters":  []obj{provider, queryParam("redirect", "The app URL to return to with the tokens; one of the provider's redirects.", obj{"type": "string"})},
		"responses":   with(obj{"302": obj{"description": "To the provider's authorization endpoint."}}, errs("400", "401", "404")),
	}}
	paths["/api/auth/oidc/{provider}/callback"] = obj{"get": obj{
		"operationId": "oidcCallback", "summary": "Where the provider returns the browser", "tags": []string{"auth"}, "security": public,
		"parameters": []obj{provider, queryParam("code", "The authorization code.", obj{"type": "string"}), queryParam("state", "The state of the sign-in.", obj{"type": "string"})},
		"responses": with(obj{
			"200": jsonAnswer("A token pair, when the sign-in named no redirect.", ref("Tokens")),
			"302": obj{"description": "To the app's redirect, with the tokens in the URL fragment."},
		}, errs("401", "403", "404")),
	}}
	paths["/api/keys/{keyId}"] = obj{"delete": obj{
		"operationId": "deleteKey", "summary": "Revoke an API key (administrators)", "tags": []string{"auth"},
		"parameters": []obj{{"name": "keyId", "in": "path", "required": true, "description": "The key id.", "schema": obj{"type": "string"}}},
		"responses":  with(obj{"204": obj{"description": "Revoked."}}, errs("401", "403", "404")),
	}}
}
