package rest_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"

	"github.com/mantlehq/mantle/internal/apptest"
	"github.com/mantlehq/mantle/internal/config"
)

// oidcSetup starts Mantle with an OIDC provider named zitadel, and the
// zitadel/oidc example OpenID Provider (a certified library's reference
// server) with a client registered for Mantle's callback.
func oidcSetup(t *testing.T) (s *apptest.Server, issuer string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer = "http://" + ln.Addr().String() + "/"
	t.Setenv("MANTLE_OIDC_ZITADEL_SECRET", "the-client-secret")
	s = apptest.Start(t, ruled+fmt.Sprintf(`
auth:
  oidc:
    zitadel:
      issuer: %s
      clientId: mantle-web
      scopes: [email, profile]
      redirects: [http://app.example/done]
`, issuer))
	clients := map[string]*storage.Client{
		"mantle-web": storage.WebClient("mantle-web", "the-client-secret", s.URL+"/api/auth/oidc/zitadel/callback"),
	}
	op := exampleop.SetupServer(issuer, storage.NewStorageWithClients(storage.NewUserStore(issuer), clients), nil, false)
	srv := &http.Server{Handler: op}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return s, issuer
}

// browser follows redirects with cookies, like a browser, and stops at
// the app (app.example), which does not exist.
func browser(t *testing.T) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if req.URL.Host == "app.example" {
			return http.ErrUseLastResponse
		}
		return nil
	}}
}

// signIn runs the whole browser flow and returns the URL the app is sent
// to, and the query the provider sent to Mantle's callback.
func signIn(t *testing.T, s *apptest.Server, issuer, username string) (app *url.URL, callback string) {
	t.Helper()
	b := browser(t)
	var seen string
	b.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if strings.Contains(req.URL.Path, "/api/auth/oidc/zitadel/callback") {
			seen = req.URL.RawQuery
		}
		if req.URL.Host == "app.example" {
			return http.ErrUseLastResponse
		}
		return nil
	}
	resp, err := b.Get(s.URL + "/api/auth/oidc/zitadel?redirect=" + url.QueryEscape("http://app.example/done"))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Request.URL.Path, "/login/username") {
		t.Fatalf("expected the provider's login page, got %d at %s", resp.StatusCode, resp.Request.URL)
	}
	id := resp.Request.URL.Query().Get("authRequestID")
	resp, err = b.PostForm(strings.TrimSuffix(issuer, "/")+"/login/username", url.Values{"id": {id}, "username": {username}, "password": {"verysecure"}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("after the login form: %d at %s: %s", resp.StatusCode, resp.Request.URL, body)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Host != "app.example" {
		t.Fatalf("Mantle sent the browser to %q", resp.Header.Get("Location"))
	}
	return loc, seen
}

func TestOIDCSignIn(t *testing.T) {
	s, issuer := oidcSetup(t)
	if r := s.Do("GET", "/api/auth/providers", nil); r.Status != 200 || !strings.Contains(string(r.Body), `"name":"zitadel"`) {
		t.Fatalf("providers: %d %s", r.Status, r.Body)
	}
	before := s.LastSeq()
	app, callback := signIn(t, s, issuer, "test-user@127.0.0.1")
	frag, _ := url.ParseQuery(app.Fragment)
	access, refresh := frag.Get("access_token"), frag.Get("refresh_token")
	if access == "" || !strings.HasPrefix(refresh, "mr_") || app.Path != "/done" {
		t.Fatalf("the app got %s", app)
	}
	me := s.Do("GET", "/api/auth/me", nil, bearer(access))
	if me.Status != 200 || !strings.Contains(string(me.Body), `"email":"test-user@zitadel.ch"`) || !strings.Contains(string(me.Body), `"name":"Test User"`) {
		t.Fatalf("me: %d %s", me.Status, me.Body)
	}
	userID := me.JSON()["id"].(string)
	if got, want := s.EventsAfter(before), []string{"record.created users", "auth.signup /auth", "auth.login /auth"}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("events %q, want %q", got, want)
	}
	// The callback cannot be replayed: its state was single-use.
	r := s.Do("GET", "/api/auth/oidc/zitadel/callback?"+callback, nil)
	if r.Status != 401 {
		t.Errorf("replayed callback: %d %s", r.Status, r.Body)
	}
	apptest.CheckProblem(t, r, "unauthenticated", "auth.oidc_failed", nil)
	// Signing in again finds the same, linked user.
	app, _ = signIn(t, s, issuer, "test-user@127.0.0.1")
	frag, _ = url.ParseQuery(app.Fragment)
	if again := s.Do("GET", "/api/auth/me", nil, bearer(frag.Get("access_token"))); again.JSON()["id"] != userID {
		t.Errorf("second sign-in: %s, want user %s", again.Body, userID)
	}
	if r := s.Do("GET", "/api/collections/users/records?count=true", nil, "admin"); !strings.Contains(string(r.Body), `"total":1`) {
		t.Errorf("a second sign-in created another user: %s", r.Body)
	}
}

// An account that signed up with a password is linked by its verified
// email, not duplicated; and since Mantle never verified that email, the
// password and its sessions end (an attacker who signed up with the
// victim's address first must not keep a way in).
func TestOIDCLinksByVerifiedEmail(t *testing.T) {
	s, issuer := oidcSetup(t)
	id := s.SignUp("test-user2@zitadel.ch", "attacker's password")
	squatter, _ := s.Login("test-user2@zitadel.ch", "attacker's password")
	before := s.LastSeq()
	app, _ := signIn(t, s, issuer, "test-user2")
	frag, _ := url.ParseQuery(app.Fragment)
	if me := s.Do("GET", "/api/auth/me", nil, bearer(frag.Get("access_token"))); me.JSON()["id"] != id {
		t.Errorf("me: %s, want the password account %s", me.Body, id)
	}
	if got := strings.Join(s.EventsAfter(before), ","); got != "auth.identity_linked /auth,auth.login /auth" {
		t.Errorf("events: %s", got)
	}
	if r := s.Do("POST", "/api/auth/login", map[string]string{"email": "test-user2@zitadel.ch", "password": "attacker's password"}); r.Status != 401 {
		t.Errorf("the old password still signs in: %d", r.Status)
	}
	if r := s.Do("GET", "/api/auth/me", nil, bearer(squatter)); r.Status != 401 {
		t.Errorf("the old session still works: %d", r.Status)
	}
}

func TestOIDCRefusals(t *testing.T) {
	s, _ := oidcSetup(t)
	s.Run(t, []apptest.Scenario{
		{Name: "unknown provider", Method: "GET", Path: "/api/auth/oidc/nope", Status: 404, Reason: "auth.oidc_unknown_provider"},
		{Name: "a redirect that is not allowed", Method: "GET", Path: "/api/auth/oidc/zitadel?redirect=" + url.QueryEscape("https://evil.example/steal"),
			Status: 400, Reason: "auth.oidc_redirect"},
		{Name: "a redirect outside the allowed path", Method: "GET", Path: "/api/auth/oidc/zitadel?redirect=" + url.QueryEscape("http://app.example/donex"),
			Status: 400, Reason: "auth.oidc_redirect"},
		{Name: "a made-up state", Method: "GET", Path: "/api/auth/oidc/zitadel/callback?code=x&state=made-up", Status: 401, Reason: "auth.oidc_failed"},
		{Name: "the provider's error", Method: "GET", Path: "/api/auth/oidc/zitadel/callback?error=access_denied", Status: 401, Reason: "auth.oidc_failed"},
	})
	// A state from a real start, with a code the provider never issued.
	b := browser(t)
	b.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := b.Get(s.URL + "/api/auth/oidc/zitadel")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	auth, _ := url.Parse(resp.Header.Get("Location"))
	q := auth.Query()
	if q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("nonce") == "" || q.Get("state") == "" {
		t.Errorf("the authorization request lacks PKCE, nonce or state: %s", auth)
	}
	r := s.Do("GET", "/api/auth/oidc/zitadel/callback?code=forged&state="+url.QueryEscape(q.Get("state")), nil)
	if r.Status != 401 {
		t.Errorf("a forged code: %d %s", r.Status, r.Body)
	}
	apptest.CheckProblem(t, r, "unauthenticated", "auth.oidc_failed", nil)
}

// Starting sign-ins stores nothing on the server, is throttled per
// address, and refuses long or unclean redirects; the provider is always
// given the public callback URL, whatever Host the client sends.
func TestOIDCStartIsBounded(t *testing.T) {
	s, _ := oidcSetup(t)
	noFollow := browser(t)
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	start := func(redirect, host string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", s.URL+"/api/auth/oidc/zitadel?redirect="+url.QueryEscape(redirect), nil)
		if host != "" {
			req.Host = host
		}
		resp, err := noFollow.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	for _, bad := range []string{"http://app.example/done/../evil", "http://app.example/done/%2e%2e/evil", "http://app.example/done/%2Fevil",
		"http://app.example/done//x", "http://app.example/done/./x", `http://app.example/done\..\evil`,
		"http://app.example/done/" + strings.Repeat("a", 2048)} {
		if resp := start(bad, ""); resp.StatusCode != 400 {
			t.Errorf("redirect %.60q: %d", bad, resp.StatusCode)
		}
	}
	resp := start("http://app.example/done/sub/page", "evil.example")
	if resp.StatusCode != 302 {
		t.Fatalf("a good start: %d", resp.StatusCode)
	}
	auth, _ := url.Parse(resp.Header.Get("Location"))
	if got := auth.Query().Get("redirect_uri"); got != s.URL+"/api/auth/oidc/zitadel/callback" {
		t.Errorf("redirect_uri %q built from the Host header", got)
	}
	cookie := resp.Header.Get("Set-Cookie")
	if !strings.Contains(cookie, "HttpOnly") || !strings.Contains(cookie, "SameSite=Lax") || !strings.Contains(cookie, "Path=/api/auth/oidc/zitadel/callback") {
		t.Errorf("the pending sign-in's cookie: %s", cookie)
	}
	for i := 0; i < 50; i++ {
		start("http://app.example/done", "")
	}
	if n, err := s.App.Engine.Secrets(context.Background(), "oidc_state"); err != nil || len(n) != 0 {
		t.Errorf("the server kept %d pending sign-ins (%v)", len(n), err)
	}
}

// Starts are throttled per address like sign-ins.
func TestOIDCStartThrottled(t *testing.T) {
	_, issuer := oidcSetup(t)
	limited := apptest.StartConfig(t, ruled+`
auth:
  oidc:
    zitadel:
      issuer: `+issuer+`
      clientId: mantle-web
`, func(c *config.Config) { c.SignInLimit = 4 })
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	codes := map[int]int{}
	for i := 0; i < 8; i++ {
		resp, err := noFollow.Get(limited.URL + "/api/auth/oidc/zitadel")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		codes[resp.StatusCode]++
	}
	if codes[429] != 4 || codes[302] != 4 {
		t.Errorf("answers to 8 starts with a limit of 4: %v", codes)
	}
}

// A server with OIDC providers refuses to start without a public URL.
func TestOIDCNeedsPublicURL(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "mantle.yaml"), []byte(ruled+`
auth:
  oidc:
    p:
      issuer: https://accounts.example.com
      clientId: x
`), 0o644)
	err := apptest.TryStartDir(t, dir, filepath.Join(dir, "data"), func(c *config.Config) { c.PublicURL = "" })
	if err == nil || !strings.Contains(err.Error(), "--public-url") {
		t.Errorf("started without a public URL: %v", err)
	}
}
