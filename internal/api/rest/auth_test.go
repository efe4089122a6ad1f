package rest_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/mantlehq/mantle/internal/apptest"
	"github.com/mantlehq/mantle/internal/config"
)

// ruled is a project whose rules are those of API.md's example.
const ruled = `
name: ruled
collections:
  posts:
    fields:
      title:     { type: text, required: true }
      views:     { type: number }
      published: { type: bool }
      author:    { type: relation, collection: users }
    rules:
      list:   "published || record.author == auth.id"
      view:   "published || record.author == auth.id"
      create: "auth.id != '' && data.author == auth.id"
      update: "record.author == auth.id && (!has(data.author) || data.author == auth.id)"
      delete: "record.author == auth.id"
  comments:
    fields:
      post: { type: relation, collection: posts, required: true }
      body: { type: text }
    rules:
      list: "true"
      view: "true"
      create: "auth.id != ''"
`

func bearer(token string) string { return "Authorization: Bearer " + token }

func TestSignupLoginRefreshLogout(t *testing.T) {
	s := apptest.Start(t, ruled)
	var userID, access, refresh, access2, refresh2 string
	s.Run(t, []apptest.Scenario{
		{Name: "signup", Method: "POST", Path: "/api/auth/signup",
			Body: `{"email":" Ada@Example.com ","password":"correct horse","name":"Ada"}`, Status: 201,
			Contains: []string{`"user":{`, `"email":"ada@example.com"`, `"name":"Ada"`, `"roles":null`},
			Events:   []string{"record.created users", "auth.signup /auth"},
			Check: func(t *testing.T, r *apptest.Response) {
				if strings.Contains(string(r.Body), "argon2") || strings.Contains(string(r.Body), "correct horse") {
					t.Error("the answer leaks the password or its hash")
				}
				var out struct{ User struct{ ID string } }
				json.Unmarshal(r.Body, &out)
				userID = out.User.ID
			}},
		{Name: "signup again", Method: "POST", Path: "/api/auth/signup",
			Body: `{"email":"ada@example.com","password":"another one"}`, Status: 409, Code: "conflict", Reason: "auth.email_taken"},
		{Name: "signup short password", Method: "POST", Path: "/api/auth/signup",
			Body: `{"email":"b@example.com","password":"1234567"}`, Status: 400, Reason: "auth.weak_password", Fields: []string{"password"}},
		{Name: "signup bad email", Method: "POST", Path: "/api/auth/signup",
			Body: `{"email":"not an email","password":"12345678"}`, Status: 400, Reason: "auth.invalid_email", Fields: []string{"email"}},
		{Name: "signup choosing roles", Method: "POST", Path: "/api/auth/signup",
			Body: `{"email":"c@example.com","password":"12345678","roles":["admin"]}`, Status: 403, Code: "permission_denied", Reason: "auth.roles_protected"},
		{Name: "signup unknown field", Method: "POST", Path: "/api/auth/signup",
			Body: `{"email":"d@example.com","password":"a fine passphrase","bogus":1}`, Status: 400, Reason: "record.validation", Fields: []string{"bogus"}},
		{Name: "signup without password", Method: "POST", Path: "/api/auth/signup",
			Body: `{"email":"e@example.com"}`, Status: 400, Reason: "auth.invalid_request", Fields: []string{"password"}},
		{Name: "login", Method: "POST", Path: "/api/auth/login", Body: `{"email":"ADA@example.com","password":"correct horse"}`, Status: 200,
			Contains: []string{`"accessToken":"`, `"refreshToken":"mr_`, `"expiresIn":900`, `"email":"ada@example.com"`},
			Events:   []string{"auth.login /auth"},
			Check: func(t *testing.T, r *apptest.Response) {
				var out struct{ AccessToken, RefreshToken string }
				json.Unmarshal(r.Body, &out)
				access, refresh = out.AccessToken, out.RefreshToken
				if r.Header.Get("Cache-Control") != "no-store" {
					t.Error("tokens must not be cached")
				}
			}},
	})
	s.Run(t, []apptest.Scenario{
		{Name: "me", Method: "GET", Path: "/api/auth/me", Headers: []string{bearer(access)}, Status: 200,
			Contains: []string{`"id":"` + userID + `"`}},
		{Name: "me anonymous", Method: "GET", Path: "/api/auth/me", Status: 401, Reason: "auth.required"},
		{Name: "me with the admin secret", Method: "GET", Path: "/api/auth/me", Headers: []string{"admin"}, Status: 404, Reason: "auth.not_a_user"},
		{Name: "refresh", Method: "POST", Path: "/api/auth/refresh", Body: map[string]string{"refreshToken": refresh}, Status: 200,
			Contains: []string{`"refreshToken":"mr_`},
			Check: func(t *testing.T, r *apptest.Response) {
				var out struct{ AccessToken, RefreshToken string }
				json.Unmarshal(r.Body, &out)
				access2, refresh2 = out.AccessToken, out.RefreshToken
				if refresh2 == refresh {
					t.Error("the refresh token did not rotate")
				}
			}},
	})
	s.Run(t, []apptest.Scenario{
		{Name: "the new access token works", Method: "GET", Path: "/api/auth/me", Headers: []string{bearer(access2)}, Status: 200},
		{Name: "logout", Method: "POST", Path: "/api/auth/logout", Headers: []string{bearer(access2)}, Status: 204,
			Events: []string{"auth.logout /auth"}},
		{Name: "access token after logout", Method: "GET", Path: "/api/auth/me", Headers: []string{bearer(access2)}, Status: 401, Reason: "auth.token_revoked"},
		{Name: "the older access token of the session too", Method: "GET", Path: "/api/auth/me", Headers: []string{bearer(access)}, Status: 401, Reason: "auth.token_revoked"},
		{Name: "refresh after logout", Method: "POST", Path: "/api/auth/refresh", Body: map[string]string{"refreshToken": refresh2}, Status: 401, Reason: "auth.invalid_refresh_token"},
		{Name: "logout anonymous", Method: "POST", Path: "/api/auth/logout", Status: 401, Reason: "auth.required"},
	})
}

// A wrong password and an unknown email are indistinguishable.
func TestLoginFailuresLookAlike(t *testing.T) {
	s := apptest.Start(t, ruled)
	s.SignUp("ada@example.com", "correct horse")
	var bodies []map[string]any
	for _, body := range []string{`{"email":"ada@example.com","password":"wrong horse"}`, `{"email":"nobody@example.com","password":"wrong horse"}`} {
		s.Run(t, []apptest.Scenario{{Name: "login", Method: "POST", Path: "/api/auth/login", Body: body, Status: 401,
			Code: "unauthenticated", Reason: "auth.invalid_credentials", Events: []string{"auth.login_failed /auth"},
			Check: func(t *testing.T, r *apptest.Response) {
				m := r.JSON()
				delete(m, "requestId")
				bodies = append(bodies, m)
			}}})
	}
	a, _ := json.Marshal(bodies[0])
	b, _ := json.Marshal(bodies[1])
	if string(a) != string(b) {
		t.Errorf("the answers differ:\n%s\n%s", a, b)
	}
}

// Presenting a spent refresh token revokes the whole session family: the
// thief's and the victim's tokens alike.
func TestRefreshReuseRevokesFamily(t *testing.T) {
	s := apptest.Start(t, ruled)
	s.SignUp("ada@example.com", "correct horse")
	_, stolen := s.Login("ada@example.com", "correct horse")
	r := s.Do("POST", "/api/auth/refresh", map[string]string{"refreshToken": stolen})
	var pair struct{ AccessToken, RefreshToken string }
	json.Unmarshal(r.Body, &pair)
	if r.Status != 200 {
		t.Fatalf("refresh: %d %s", r.Status, r.Body)
	}
	s.Run(t, []apptest.Scenario{
		{Name: "reuse of the spent token", Method: "POST", Path: "/api/auth/refresh", Body: map[string]string{"refreshToken": stolen},
			Status: 401, Reason: "auth.refresh_token_reused", Events: []string{"auth.refresh_reused /auth"}},
		{Name: "the current refresh token is revoked too", Method: "POST", Path: "/api/auth/refresh", Body: map[string]string{"refreshToken": pair.RefreshToken},
			Status: 401, Reason: "auth.invalid_refresh_token"},
		{Name: "and the session's access token", Method: "GET", Path: "/api/auth/me", Headers: []string{bearer(pair.AccessToken)},
			Status: 401, Reason: "auth.token_revoked"},
		{Name: "a made-up token is not reuse", Method: "POST", Path: "/api/auth/refresh",
			Body: map[string]string{"refreshToken": "mr_01jxxxxxxxxxxxxxxxxxxxxxxx_made-up"}, Status: 401, Reason: "auth.invalid_refresh_token"},
		{Name: "garbage", Method: "POST", Path: "/api/auth/refresh", Body: `{"refreshToken":42}`, Status: 400, Reason: "auth.invalid_request"},
	})
}

func TestAPIKeys(t *testing.T) {
	s := apptest.Start(t, ruled)
	_, user := s.User("ada@example.com")
	var id, key string
	s.Run(t, []apptest.Scenario{
		{Name: "anonymous may not create keys", Method: "POST", Path: "/api/keys", Body: `{"name":"ci"}`, Status: 401, Reason: "auth.required"},
		{Name: "users may not create keys", Method: "POST", Path: "/api/keys", Body: `{"name":"ci"}`, Headers: []string{user}, Status: 403, Reason: "policy.denied"},
		{Name: "expiry in the past", Method: "POST", Path: "/api/keys", Body: `{"name":"ci","expiresAt":"2001-01-01T00:00:00Z"}`, Headers: []string{"admin"},
			Status: 400, Reason: "auth.invalid_key", Fields: []string{"expiresAt"}},
		{Name: "create", Method: "POST", Path: "/api/keys", Body: `{"name":"ci","roles":["admin"]}`, Headers: []string{"admin"}, Status: 201,
			Contains: []string{`"key":"mk_`, `"roles":["admin"]`}, Events: []string{"auth.key_created /auth"},
			Check: func(t *testing.T, r *apptest.Response) {
				var out struct{ ID, Key string }
				json.Unmarshal(r.Body, &out)
				id, key = out.ID, out.Key
			}},
	})
	s.Run(t, []apptest.Scenario{
		{Name: "the key acts with its roles", Method: "GET", Path: "/api/keys", Headers: []string{bearer(key)}, Status: 200,
			Contains: []string{`"id":"` + id + `"`, `"name":"ci"`},
			Check: func(t *testing.T, r *apptest.Response) {
				if strings.Contains(string(r.Body), key[len(key)-20:]) || strings.Contains(string(r.Body), "hash") {
					t.Error("the list shows the key's secret or hash")
				}
			}},
		{Name: "a key with a wrong secret", Method: "GET", Path: "/api/keys", Headers: []string{bearer(key[:len(key)-2] + "xx")}, Status: 401, Reason: "auth.invalid_credentials"},
		{Name: "revoke", Method: "DELETE", Path: "/api/keys/" + id, Headers: []string{"admin"}, Status: 204, Events: []string{"auth.key_revoked /auth"}},
		{Name: "a revoked key", Method: "GET", Path: "/api/keys", Headers: []string{bearer(key)}, Status: 401, Reason: "auth.invalid_credentials"},
		{Name: "revoke again", Method: "DELETE", Path: "/api/keys/" + id, Headers: []string{"admin"}, Status: 404, Reason: "auth.key_not_found"},
	})
}

// Sign-in is throttled per address, and per account from each address:
// guessing from one address is stopped, and the account's owner, at
// another address, still signs in (slowed down, never locked out).
func TestSignInThrottle(t *testing.T) {
	s := apptest.StartConfig(t, ruled, func(c *config.Config) { c.SignInLimit = 6 }) // 3 per account and address
	s.SignUp("a@example.com", "correct horse")
	try := func(from, email, password string, status int) {
		t.Helper()
		r := loginFrom(t, s, from, email, password)
		if r.Status != status {
			t.Fatalf("login %s from %s: %d, want %d: %s", email, from, r.Status, status, r.Body)
		}
		if status == 429 {
			apptest.CheckProblem(t, r, "rate_limited", "auth.throttled", nil)
			if ra := r.Header.Get("Retry-After"); ra == "" || ra == "0" {
				t.Errorf("Retry-After %q", ra)
			}
		}
	}
	for i := 0; i < 3; i++ {
		try("127.0.0.1", "a@example.com", "wrong password", 401)
	}
	try("127.0.0.1", "a@example.com", "wrong password", 429) // the account's limit from this address
	try("127.0.0.1", "b@example.com", "wrong password", 401) // another account from the same address still gets through
	try("127.0.0.1", "b@example.com", "wrong password", 401)
	try("127.0.0.1", "c@example.com", "wrong password", 429) // the address's limit: 6 attempts
	// An attacker rotating addresses uses up the account's overall
	// allowance (15 a minute here) ...
	for i := 0; i < 12; i++ {
		try(fmt.Sprintf("127.0.1.%d", i/3+1), "a@example.com", "wrong password", 401)
	}
	// ... and the owner, from an address of their own, still signs in.
	try("127.0.2.1", "a@example.com", "correct horse", 200)
}

// loginFrom signs in from a loopback address of the caller's choosing.
func loginFrom(t *testing.T, s *apptest.Server, from, email, password string) *apptest.Response {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	defer c.CloseIdleConnections()
	body, _ := json.Marshal(map[string]string{"email": email, "password": password})
	resp, err := c.Post(s.URL+"/api/auth/login", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return &apptest.Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// The general rate limit counts per identity, or per IP when anonymous.
func TestGeneralRateLimit(t *testing.T) {
	s := apptest.StartConfig(t, ruled, func(c *config.Config) { c.RateLimit = 0.1 }) // bursts of 1
	r := s.Do("GET", "/api/health", nil)
	if r.Status != 200 {
		t.Fatalf("first request: %d", r.Status)
	}
	r = s.Do("GET", "/api/health", nil)
	if r.Status != 429 || r.Header.Get("Retry-After") == "" {
		t.Fatalf("second anonymous request: %d %q", r.Status, r.Header.Get("Retry-After"))
	}
	apptest.CheckProblem(t, r, "rate_limited", "rate_limited", nil)
	// The admin is another identity with its own bucket.
	if r := s.Do("GET", "/api/health", nil, "admin"); r.Status != 200 {
		t.Errorf("the admin's first request: %d", r.Status)
	}
}

// Nobody chooses a user id: not at sign-up, not through the records API,
// not an administrator. The admin secret acts as an identity no user can
// have.
func TestUserIDsAreTheServers(t *testing.T) {
	s := apptest.Start(t, ruled)
	for _, id := range []string{"admin", "mantle:admin", "victim01"} {
		r := s.Do("POST", "/api/auth/signup", map[string]any{"id": id, "email": "e-" + strings.ReplaceAll(id, ":", "") + "@example.com", "password": "correct horse"})
		if r.Status != 400 || (id != "mantle:admin" && r.JSON()["reason"] != "record.id_not_allowed") {
			t.Errorf("signup with id %q: %d %s", id, r.Status, r.Body)
		}
	}
	if r := s.Do("POST", "/api/collections/users/records", map[string]any{"id": "admin", "email": "x@example.com"}, "admin"); r.Status != 400 {
		t.Errorf("an administrator chose a user id: %d %s", r.Status, r.Body)
	}
	// A deleted user's id stays gone: a new account with the same email gets a new id.
	old := s.SignUp("carol@example.com", "correct horse")
	if r := s.Do("DELETE", "/api/collections/users/records/"+old, nil, "admin"); r.Status != 204 {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	if again := s.SignUp("carol@example.com", "correct horse"); again == old || again == "" {
		t.Errorf("the new account has id %q, the deleted one had %q", again, old)
	}
	// The admin secret's writes carry its reserved identity.
	r := s.Do("GET", "/api/events?types=record.deleted", nil, "admin")
	if !strings.Contains(string(r.Body), `"actor":"mantle:admin"`) {
		t.Errorf("the admin secret's actor: %s", r.Body)
	}
}

// A user's email and roles are checked and normalised on every path that
// writes them, not only at sign-up.
func TestUserFieldsValidated(t *testing.T) {
	s := apptest.Start(t, ruled)
	s.SignUp("carol@example.com", "correct horse")
	dave, daveAuth := s.User("dave@example.com")
	patch := func(body map[string]any, who string) *apptest.Response {
		return s.Do("PATCH", "/api/collections/users/records/"+dave, body, who)
	}
	if r := patch(map[string]any{"email": "Not An Email"}, daveAuth); r.Status != 400 || !strings.Contains(string(r.Body), `"email"`) {
		t.Errorf("a malformed email: %d %s", r.Status, r.Body)
	}
	if r := patch(map[string]any{"email": " Carol@Example.com "}, daveAuth); r.Status != 409 {
		t.Errorf("another user's email in other case: %d %s", r.Status, r.Body)
	}
	if r := patch(map[string]any{"email": " Dave.New@Example.COM "}, daveAuth); r.Status != 200 || r.JSON()["email"] != "dave.new@example.com" {
		t.Errorf("a new email is stored normalised: %d %s", r.Status, r.Body)
	}
	s.Login("DAVE.NEW@example.com", "password-dave@example.com") // sign-in folds case too
	if r := s.Do("POST", "/api/collections/users/records", map[string]any{"email": "CAROL@example.com"}, "admin"); r.Status != 409 {
		t.Errorf("an administrator created a second carol: %d %s", r.Status, r.Body)
	}
	for _, roles := range []any{map[string]any{"evil": 1}, "admin", []any{1}, []any{""}, []any{"a b"}} {
		if r := patch(map[string]any{"roles": roles}, "admin"); r.Status != 400 || !strings.Contains(string(r.Body), `"roles"`) {
			t.Errorf("roles %v: %d %s", roles, r.Status, r.Body)
		}
	}
	if r := patch(map[string]any{"roles": []string{"editor", "billing", "editor"}}, "admin"); r.Status != 200 || fmt.Sprint(r.JSON()["roles"]) != "[billing editor]" {
		t.Errorf("roles are kept as a sorted set: %d %s", r.Status, r.Body)
	}
}

// Sign-up refuses common and blank passwords with the field named.
func TestWeakPasswordsRefused(t *testing.T) {
	s := apptest.Start(t, ruled)
	for i, pw := range []string{"password1", "Qwerty123", "         ", "1234567890"} {
		r := s.Do("POST", "/api/auth/signup", map[string]any{"email": fmt.Sprintf("w%d@example.com", i), "password": pw})
		apptest.CheckProblem(t, r, "invalid", "auth.weak_password", []string{"password"})
	}
}
