package rest_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mantlehq/mantle/internal/apptest"
	"github.com/mantlehq/mantle/internal/auth"
)

// serverKey reads the signing key the server generated into its data
// folder, to forge tokens the way only a holder of the key could.
func serverKey(t *testing.T, s *apptest.Server) (kid string, key ed25519.PrivateKey) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(s.Data, auth.KeysFile))
	if s.App.Config.Postgres() { // kept in the store, shared by the nodes
		raw, err = s.App.Engine.Secret(context.Background(), auth.StoredKeysKind, auth.StoredKeysKey)
	}
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Keys []struct {
			Kid  string
			Seed []byte
		}
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	return f.Keys[0].Kid, ed25519.NewKeyFromSeed(f.Keys[0].Seed)
}

func sign(t *testing.T, method jwt.SigningMethod, kid string, key any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestTokenTampering(t *testing.T) {
	s := apptest.Start(t, ruled)
	id := s.SignUp("ada@example.com", "correct horse")
	access, _ := s.Login("ada@example.com", "correct horse")
	kid, key := serverKey(t, s)
	now := time.Now()
	claims := func(edit func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{"iss": "mantle", "sub": id, "roles": []string{"admin"},
			"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Minute).Unix()}
		if edit != nil {
			edit(c)
		}
		return c
	}
	// A token the server's key signs with our claims is accepted: the
	// forgeries below fail for what they change, not for the claims.
	valid := sign(t, jwt.SigningMethodEdDSA, kid, key, claims(nil))
	if r := s.Do("GET", "/api/keys", nil, bearer(valid)); r.Status != 200 {
		t.Fatalf("a well-signed token: %d %s", r.Status, r.Body)
	}
	parts := strings.Split(access, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var pc map[string]any
	json.Unmarshal(payload, &pc)
	pc["roles"] = []string{"admin"}
	elevated, _ := json.Marshal(pc)
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT","kid":"`+kid+`"}`)) + "." +
		base64.RawURLEncoding.EncodeToString(elevated) + "."
	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	pub := key.Public().(ed25519.PublicKey)

	cases := []struct{ name, token, reason string }{
		{"payload changed, signature kept", parts[0] + "." + base64.RawURLEncoding.EncodeToString(elevated) + "." + parts[2], "auth.invalid_credentials"},
		{"signature flipped", parts[0] + "." + parts[1] + "." + flip(parts[2]), "auth.invalid_credentials"},
		{"alg none", none, "auth.invalid_credentials"},
		{"HS256 keyed with the public key", sign(t, jwt.SigningMethodHS256, kid, []byte(pub), claims(nil)), "auth.invalid_credentials"},
		{"unknown kid", sign(t, jwt.SigningMethodEdDSA, "01jzzzzzzzzzzzzzzzzzzzzzzz", key, claims(nil)), "auth.invalid_credentials"},
		{"no kid", sign(t, jwt.SigningMethodEdDSA, "", key, claims(nil)), "auth.invalid_credentials"},
		{"right kid, another key", sign(t, jwt.SigningMethodEdDSA, kid, otherKey, claims(nil)), "auth.invalid_credentials"},
		{"expired", sign(t, jwt.SigningMethodEdDSA, kid, key, claims(func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Minute).Unix() })), "auth.token_expired"},
		{"no expiry", sign(t, jwt.SigningMethodEdDSA, kid, key, claims(func(c jwt.MapClaims) { delete(c, "exp") })), "auth.invalid_credentials"},
		{"not yet valid", sign(t, jwt.SigningMethodEdDSA, kid, key, claims(func(c jwt.MapClaims) { c["nbf"] = now.Add(time.Hour).Unix() })), "auth.invalid_credentials"},
		{"issued in the future", sign(t, jwt.SigningMethodEdDSA, kid, key, claims(func(c jwt.MapClaims) { c["iat"] = now.Add(time.Hour).Unix() })), "auth.invalid_credentials"},
		{"another issuer", sign(t, jwt.SigningMethodEdDSA, kid, key, claims(func(c jwt.MapClaims) { c["iss"] = "evil" })), "auth.invalid_credentials"},
		{"not a JWT", "hello", "auth.invalid_credentials"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := s.Do("GET", "/api/keys", nil, bearer(tc.token))
			if r.Status != 401 {
				t.Fatalf("status %d: %s", r.Status, r.Body)
			}
			apptest.CheckProblem(t, r, "unauthenticated", tc.reason, nil)
		})
	}
	// A bad token is refused even where anonymous callers are welcome.
	if r := s.Do("GET", "/api/collections/comments/records", nil, bearer(none)); r.Status != 401 {
		t.Errorf("a forged token on a public list: %d", r.Status)
	}
	if r := s.Do("GET", "/api/collections/comments/records", nil, "Authorization: Basic YTpi"); r.Status != 401 {
		t.Errorf("a non-bearer Authorization header: %d", r.Status)
	}
}

func flip(sig string) string {
	b := []byte(sig)
	if b[5] == 'A' {
		b[5] = 'B'
	} else {
		b[5] = 'A'
	}
	return string(b)
}

// Signing keys rotate: the new key signs, tokens of the old one still
// verify.
func TestKeyRotation(t *testing.T) {
	s := apptest.Start(t, ruled)
	s.SignUp("ada@example.com", "correct horse")
	old, _ := s.Login("ada@example.com", "correct horse")
	if err := s.App.Auth.Keys().Rotate(); err != nil {
		t.Fatal(err)
	}
	fresh, _ := s.Login("ada@example.com", "correct horse")
	header := func(tok string) map[string]any {
		raw, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
		var h map[string]any
		json.Unmarshal(raw, &h)
		return h
	}
	if header(old)["kid"] == header(fresh)["kid"] || header(fresh)["kid"] != s.App.Auth.Keys().IDs()[0] {
		t.Errorf("kids: old %v, fresh %v, keyset %v", header(old)["kid"], header(fresh)["kid"], s.App.Auth.Keys().IDs())
	}
	for _, tok := range []string{old, fresh} {
		if r := s.Do("GET", "/api/auth/me", nil, bearer(tok)); r.Status != 200 {
			t.Errorf("after rotation: %d %s", r.Status, r.Body)
		}
	}
}

// A user cannot give themselves roles or someone else's records.
func TestPrivilegeEscalationThroughData(t *testing.T) {
	s := apptest.Start(t, ruled)
	ada, adaAuth := s.User("ada@example.com")
	bob, _ := s.User("bob@example.com")
	s.Run(t, []apptest.Scenario{
		{Name: "set own roles", Method: "PATCH", Path: "/api/collections/users/records/" + ada, Headers: []string{adaAuth},
			Body: `{"roles":["admin"]}`, Status: 403, Reason: "auth.roles_protected", Fields: []string{"roles"}},
		{Name: "set own roles in a batch", Method: "POST", Path: "/api/batch", Headers: []string{adaAuth},
			Body:   `{"ops":[{"op":"update","collection":"users","id":"` + ada + `","data":{"name":"x"}},{"op":"update","collection":"users","id":"` + ada + `","data":{"roles":["admin"]}}]}`,
			Status: 403, Reason: "auth.roles_protected", Fields: []string{"ops[1].roles"}},
		{Name: "create a user with roles", Method: "POST", Path: "/api/collections/users/records", Headers: []string{adaAuth},
			Body: `{"email":"x@example.com","roles":["admin"]}`, Status: 403, Reason: "auth.roles_protected"},
		{Name: "edit another user", Method: "PATCH", Path: "/api/collections/users/records/" + bob, Headers: []string{adaAuth},
			Body: `{"name":"pwned"}`, Status: 404, Reason: "record.not_found"},
		{Name: "edit own name", Method: "PATCH", Path: "/api/collections/users/records/" + ada, Headers: []string{adaAuth},
			Body: `{"name":"Ada"}`, Status: 200, Events: []string{"record.updated users"}},
		{Name: "post as someone else", Method: "POST", Path: "/api/collections/posts/records", Headers: []string{adaAuth},
			Body: `{"title":"forged","author":"` + bob + `"}`, Status: 403, Reason: "policy.denied"},
		{Name: "an administrator grants a role", Method: "PATCH", Path: "/api/collections/users/records/" + bob, Headers: []string{"admin"},
			Body: `{"roles":["editor"]}`, Status: 200, Events: []string{"record.updated users", "auth.roles_changed /auth"},
			Check: func(t *testing.T, r *apptest.Response) {
				evs := s.Do("GET", "/api/events?types=auth.roles_changed", nil, "admin")
				if !strings.Contains(string(evs.Body), `"to":["editor"]`) || !strings.Contains(string(evs.Body), `"actor":"mantle:admin"`) {
					t.Errorf("roles_changed event: %s", evs.Body)
				}
			}},
	})
	r := s.Do("POST", "/api/collections/posts/records", map[string]any{"title": "mine", "author": ada}, adaAuth)
	if r.Status != 201 {
		t.Fatalf("own post: %d %s", r.Status, r.Body)
	}
	post := r.JSON()["id"].(string)
	s.Run(t, []apptest.Scenario{
		{Name: "give a post away", Method: "PATCH", Path: "/api/collections/posts/records/" + post, Headers: []string{adaAuth},
			Body: `{"author":"` + bob + `"}`, Status: 403, Reason: "policy.denied"},
	})
}

// The view and list rules hold on every way of reading.
func TestNoSideDoors(t *testing.T) {
	s := apptest.Start(t, ruled)
	ada, adaAuth := s.User("ada@example.com")
	_, bobAuth := s.User("bob@example.com")
	mk := func(title string, published bool) string {
		r := s.Do("POST", "/api/collections/posts/records", map[string]any{"title": title, "published": published, "author": ada, "views": 7}, adaAuth)
		if r.Status != 201 {
			t.Fatalf("create: %d %s", r.Status, r.Body)
		}
		return r.JSON()["id"].(string)
	}
	public := mk("public", true)
	draft := mk("secret draft", false)
	wasPublic := mk("was public", true)
	seqPublic := s.LastSeq()
	if r := s.Do("PATCH", "/api/collections/posts/records/"+wasPublic, map[string]any{"published": false}, adaAuth); r.Status != 200 {
		t.Fatal(r.Status)
	}
	comment := s.Do("POST", "/api/collections/comments/records", map[string]any{"post": draft, "body": "hi"}, adaAuth)
	if comment.Status != 201 {
		t.Fatalf("comment: %d %s", comment.Status, comment.Body)
	}
	list := func(query string, auth ...string) string {
		r := s.Do("GET", "/api/collections/posts/records?"+query, nil, auth...)
		if r.Status != 200 {
			t.Fatalf("list %s: %d %s", query, r.Status, r.Body)
		}
		return string(r.Body)
	}
	for _, q := range []string{
		"count=true",
		"filter=" + url.QueryEscape(`title == "secret draft"`) + "&count=true",
		"filter=" + url.QueryEscape(`!published`) + "&count=true",
		"filter=" + url.QueryEscape(`author == "`+ada+`" && views == 7`) + "&count=true",
		"sort=-published,title&count=true",
		"fields=title&count=true",
		"limit=1&count=true",
	} {
		body := list(q, bobAuth)
		if strings.Contains(body, "secret draft") || strings.Contains(body, "was public") {
			t.Errorf("%s leaks a hidden post: %s", q, body)
		}
		if strings.Contains(body, `"total":2`) || strings.Contains(body, `"total":3`) {
			t.Errorf("%s counts hidden posts: %s", q, body)
		}
	}
	if body := list("count=true", adaAuth); !strings.Contains(body, `"total":3`) {
		t.Errorf("the author lists her own: %s", body)
	}
	// Cursor pages walk only what the rule admits.
	if body := list("limit=1", bobAuth); !strings.Contains(body, `"nextCursor":null`) {
		t.Errorf("a one-post list has another page for bob: %s", body)
	}
	s.Run(t, []apptest.Scenario{
		{Name: "get a draft", Method: "GET", Path: "/api/collections/posts/records/" + draft, Headers: []string{bobAuth}, Status: 404, Reason: "record.not_found"},
		{Name: "get a draft anonymously", Method: "GET", Path: "/api/collections/posts/records/" + draft, Status: 404, Reason: "record.not_found"},
		{Name: "get a public post", Method: "GET", Path: "/api/collections/posts/records/" + public, Headers: []string{bobAuth}, Status: 200},
		{Name: "time travel to when it was public", Method: "GET", Path: "/api/collections/posts/records/" + wasPublic + "?at=" + itoa(seqPublic),
			Headers: []string{bobAuth}, Status: 404, Reason: "record.not_found"},
		{Name: "time travel to a draft", Method: "GET", Path: "/api/collections/posts/records/" + draft + "?at=" + itoa(s.LastSeq()),
			Headers: []string{bobAuth}, Status: 404, Reason: "record.not_found"},
		{Name: "the author time travels", Method: "GET", Path: "/api/collections/posts/records/" + wasPublic + "?at=" + itoa(seqPublic),
			Headers: []string{adaAuth}, Status: 200, Contains: []string{`"published":true`}},
		{Name: "expand a hidden post", Method: "GET", Path: "/api/collections/comments/records?expand=post", Headers: []string{bobAuth}, Status: 200,
			Check: func(t *testing.T, r *apptest.Response) {
				if strings.Contains(string(r.Body), "secret draft") {
					t.Errorf("expand leaks: %s", r.Body)
				}
			}},
		{Name: "expand it as the author", Method: "GET", Path: "/api/collections/comments/records?expand=post", Headers: []string{adaAuth}, Status: 200,
			Contains: []string{"secret draft"}},
		{Name: "update a hidden post in a batch", Method: "POST", Path: "/api/batch", Headers: []string{bobAuth},
			Body:   `{"ops":[{"op":"create","collection":"comments","data":{"post":"` + public + `","body":"x"}},{"op":"update","collection":"posts","id":"` + draft + `","data":{"title":"pwned"}}]}`,
			Status: 404, Reason: "record.not_found"},
		{Name: "delete a public post of another", Method: "DELETE", Path: "/api/collections/posts/records/" + public, Headers: []string{bobAuth}, Status: 403, Reason: "policy.denied"},
		{Name: "delete a hidden post", Method: "DELETE", Path: "/api/collections/posts/records/" + draft, Headers: []string{bobAuth}, Status: 404, Reason: "record.not_found"},
		{Name: "list other users", Method: "GET", Path: "/api/collections/users/records?count=true", Headers: []string{bobAuth}, Status: 200,
			Contains: []string{`"total":1`, "bob@example.com"}},
	})
	// The events API shows bob only what he may view, and no audit events.
	r := s.Do("GET", "/api/events?limit=1000", nil, bobAuth)
	body := string(r.Body)
	if strings.Contains(body, "secret draft") || strings.Contains(body, `"auth.`) || strings.Contains(body, "ada@example.com") {
		t.Errorf("events leak to bob: %s", body)
	}
	if !strings.Contains(body, `"title":"public"`) {
		t.Errorf("bob misses the public post's event: %s", body)
	}
	if r := s.Do("GET", "/api/events?limit=1000", nil, adaAuth); !strings.Contains(string(r.Body), "secret draft") {
		t.Errorf("ada misses her own draft's event")
	}
	if r := s.Do("GET", "/api/events?limit=1000&types=auth.login", nil, "admin"); !strings.Contains(string(r.Body), `"auth.login"`) {
		t.Errorf("the administrator misses audit events: %s", r.Body)
	}
}

// Strings that reach a query are bound parameters, never SQL text.
func TestSQLInjection(t *testing.T) {
	s := apptest.Start(t, ruled)
	ada, adaAuth := s.User("ada@example.com")
	s.Do("POST", "/api/collections/posts/records", map[string]any{"title": "x", "published": true, "author": ada}, adaAuth)
	hostile := []string{`' OR '1'='1`, `"; DROP TABLE posts; --`, `\' OR 1=1 --`, "x\x00y", `%' OR title LIKE '%`}
	postgres, stored := os.Getenv("MANTLE_TEST_STORE") == "postgres", 6
	for _, h := range hostile {
		for _, q := range []string{
			"filter=" + url.QueryEscape(`title == "`+strings.ReplaceAll(h, `"`, `\"`)+`"`),
			"filter=" + url.QueryEscape(`title.contains("`+strings.ReplaceAll(h, `"`, `\"`)+`")`),
			"sort=" + url.QueryEscape(h),
			"fields=" + url.QueryEscape(h),
			"cursor=" + url.QueryEscape(h),
			"expand=" + url.QueryEscape(h),
		} {
			r := s.Do("GET", "/api/collections/posts/records?"+q, nil, adaAuth)
			if r.Status != 200 && r.Status != 400 {
				t.Errorf("%s: %d %s", q, r.Status, r.Body)
			}
			if r.Status == 200 && strings.Contains(string(r.Body), `"title":"x"`) {
				t.Errorf("%s matched a record it names nothing of: %s", q, r.Body)
			}
		}
		r := s.Do("POST", "/api/auth/login", map[string]string{"email": h, "password": h})
		if r.Status != 401 && r.Status != 400 {
			t.Errorf("login with %q: %d", h, r.Status)
		}
		if r := s.Do("GET", "/api/collections/"+url.PathEscape(h)+"/records", nil, "admin"); r.Status != 404 {
			t.Errorf("collection %q: %d", h, r.Status)
		}
		if r := s.Do("GET", "/api/collections/posts/records/"+url.PathEscape(h), nil, "admin"); r.Status != 404 {
			t.Errorf("record id %q: %d", h, r.Status)
		}
		if r := s.Do("GET", "/api/events?collections="+url.QueryEscape(h), nil, "admin"); r.Status != 404 {
			t.Errorf("events of collection %q: %d %s", h, r.Status, r.Body)
		}
		if r := s.Do("GET", "/api/events?types="+url.QueryEscape(h), nil, "admin"); r.Status != 200 || strings.Contains(string(r.Body), `"seq"`) {
			t.Errorf("events of type %q: %d %s", h, r.Status, r.Body)
		}
		r = s.Do("POST", "/api/collections/posts/records", map[string]any{"title": h, "published": true, "author": ada}, adaAuth)
		if postgres && strings.Contains(h, "\x00") {
			// PostgreSQL's text cannot hold NUL: a precise 400 there.
			if r.Status != 400 || r.JSON()["reason"] != "record.validation" {
				t.Errorf("a NUL title on PostgreSQL: %d %s", r.Status, r.Body)
			}
			stored--
			continue
		}
		if r.Status != 201 {
			t.Errorf("a hostile title is data: %d %s", r.Status, r.Body)
		} else if got := r.JSON()["title"]; got != h {
			t.Errorf("stored %q as %q", h, got)
		}
	}
	if body := string(s.Do("GET", "/api/collections/posts/records?count=true", nil, adaAuth).Body); !strings.Contains(body, fmt.Sprintf(`"total":%d`, stored)) {
		t.Errorf("the table lost or gained rows: %s", body)
	}
}

// Each SSE subscriber sees only the events of records its view rule
// admits, judged on the event's record.
func TestStreamFollowsViewRule(t *testing.T) {
	s := apptest.Start(t, ruled)
	ada, adaAuth := s.User("ada@example.com")
	_, bobAuth := s.User("bob@example.com")
	after := "after=" + itoa(s.LastSeq())
	tok := func(h string) string { return strings.TrimPrefix(h, "Authorization: ") }
	bobs := subscribe(t, s, "collections=posts&"+after, "Authorization", tok(bobAuth))
	adas := subscribe(t, s, "collections=posts&"+after, "Authorization", tok(adaAuth))
	anons := subscribe(t, s, "collections=posts&"+after)
	for _, p := range []struct {
		title     string
		published bool
	}{{"draft 1", false}, {"public 1", true}, {"draft 2", false}, {"public 2", true}} {
		if r := s.Do("POST", "/api/collections/posts/records", map[string]any{"title": p.title, "published": p.published, "author": ada}, adaAuth); r.Status != 201 {
			t.Fatal(r.Status)
		}
	}
	for _, sub := range []struct {
		name string
		ch   <-chan streamEvent
		want []string
	}{
		{"bob", bobs, []string{"public 1", "public 2"}},
		{"anonymous", anons, []string{"public 1", "public 2"}},
		{"ada", adas, []string{"draft 1", "public 1", "draft 2", "public 2"}},
	} {
		for _, want := range sub.want {
			if ev := next(t, sub.ch); ev.title != want {
				t.Errorf("%s got %q, want %q", sub.name, ev.title, want)
			}
		}
	}
}

// The SSE stream takes ?token= (EventSource cannot set headers); other
// endpoints do not.
func TestStreamTokenParam(t *testing.T) {
	s := apptest.Start(t, ruled)
	ada, adaAuth := s.User("ada@example.com")
	token := strings.TrimPrefix(adaAuth, "Authorization: Bearer ")
	ch := subscribe(t, s, "collections=posts&after="+itoa(s.LastSeq())+"&token="+token)
	if r := s.Do("POST", "/api/collections/posts/records", map[string]any{"title": "draft", "author": ada}, adaAuth); r.Status != 201 {
		t.Fatal(r.Status)
	}
	if ev := next(t, ch); ev.title != "draft" {
		t.Errorf("the token's owner got %q", ev.title)
	}
	if r := s.Do("GET", "/api/auth/me?token="+token, nil); r.Status != 401 {
		t.Errorf("?token= outside the stream: %d", r.Status)
	}
}
