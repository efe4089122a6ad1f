package rest

import (
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/mantlehq/mantle"
	"github.com/mantlehq/mantle/internal/auth"
	"github.com/mantlehq/mantle/internal/gateway"
	"github.com/mantlehq/mantle/internal/schema"
)

// clientIP is the address sign-in throttles and rate limits count by: the
// connection's peer. (Behind a proxy every client shares the proxy's
// address; see docs/auth.md.)
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// stringField reads a required string member of a JSON object.
func stringField(obj map[string]json.RawMessage, name string) (string, error) {
	raw, ok := obj[name]
	var s string
	if !ok || json.Unmarshal(raw, &s) != nil {
		return "", mantle.FieldError("auth.invalid_request", name+" is required and must be a string",
			map[string]string{name: "required string"})
	}
	return s, nil
}

func (h *handler) signup(w http.ResponseWriter, r *http.Request) error {
	obj, err := gateway.ReadObject(r)
	if err != nil {
		return err
	}
	pw, err := stringField(obj, "password")
	if err != nil {
		return err
	}
	delete(obj, "password")
	u, err := h.Auth.Signup(r.Context(), auth.SignupInput{Password: pw, Fields: obj, IP: clientIP(r)})
	if err != nil {
		return err
	}
	if h.SignupTokens {
		// As a login would answer, with the user: the app is signed in at once.
		var id struct{ ID string }
		json.Unmarshal(u, &id)
		t, err := h.Auth.StartSession(r.Context(), id.ID, clientIP(r))
		if err != nil {
			return err
		}
		b, err := json.Marshal(t)
		if err != nil {
			return err
		}
		w.Header().Set("Cache-Control", "no-store")
		return writeJSON(w, http.StatusCreated, b)
	}
	return writeJSON(w, http.StatusCreated, append(append([]byte(`{"user":`), u...), '}'))
}

func (h *handler) writeTokens(w http.ResponseWriter, t *auth.Tokens) error {
	b, err := json.Marshal(t)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	return writeJSON(w, http.StatusOK, b)
}

func (h *handler) login(w http.ResponseWriter, r *http.Request) error {
	obj, err := gateway.ReadObject(r)
	if err != nil {
		return err
	}
	email, err := stringField(obj, "email")
	if err != nil {
		return err
	}
	pw, err := stringField(obj, "password")
	if err != nil {
		return err
	}
	t, err := h.Auth.Login(r.Context(), email, pw, clientIP(r))
	if err != nil {
		return err
	}
	return h.writeTokens(w, t)
}

func (h *handler) refresh(w http.ResponseWriter, r *http.Request) error {
	obj, err := gateway.ReadObject(r)
	if err != nil {
		return err
	}
	tok, err := stringField(obj, "refreshToken")
	if err != nil {
		return err
	}
	t, err := h.Auth.Refresh(r.Context(), tok)
	if err != nil {
		return err
	}
	return h.writeTokens(w, t)
}

func (h *handler) logout(w http.ResponseWriter, r *http.Request) error {
	id := mantle.IdentityFrom(r.Context())
	cred := auth.CredentialFrom(r.Context())
	if cred.Kind != "user" {
		return mantle.Errorf(mantle.Unauthenticated, "auth.required", "sign in with a user's access token to sign out")
	}
	if err := h.Auth.Logout(r.Context(), id, cred.Session); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *handler) me(w http.ResponseWriter, r *http.Request) error {
	id := mantle.IdentityFrom(r.Context())
	if auth.CredentialFrom(r.Context()).Kind != "user" {
		if id.Anonymous() {
			return mantle.Errorf(mantle.Unauthenticated, "auth.required", "sign in to see your user")
		}
		return mantle.Errorf(mantle.NotFound, "auth.not_a_user", "these credentials (an API key or the admin token) belong to no user")
	}
	c, rec, err := h.Engine.Get(r.Context(), schema.UsersCollection, id.ID)
	if err != nil {
		return err
	}
	return h.writeRecord(w, http.StatusOK, c, rec)
}

func (h *handler) createKey(w http.ResponseWriter, r *http.Request) error {
	obj, err := gateway.ReadObject(r)
	if err != nil {
		return err
	}
	var in auth.KeyInput
	name, err := stringField(obj, "name")
	if err != nil {
		return err
	}
	in.Name = name
	if raw, ok := obj["roles"]; ok && json.Unmarshal(raw, &in.Roles) != nil {
		return mantle.FieldError("auth.invalid_key", "roles must be a list of strings", map[string]string{"roles": "a list of strings"})
	}
	if raw, ok := obj["expiresAt"]; ok && string(raw) != "null" {
		var t time.Time
		if json.Unmarshal(raw, &t) != nil {
			return mantle.FieldError("auth.invalid_key", "expiresAt must be an RFC 3339 time", map[string]string{"expiresAt": "RFC 3339 time"})
		}
		in.ExpiresAt = &t
	}
	k, err := h.Auth.CreateKey(r.Context(), mantle.IdentityFrom(r.Context()), in)
	if err != nil {
		return err
	}
	b, err := json.Marshal(k)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	return writeJSON(w, http.StatusCreated, b)
}

func (h *handler) listKeys(w http.ResponseWriter, r *http.Request) error {
	keys, err := h.Auth.ListKeys(r.Context(), mantle.IdentityFrom(r.Context()))
	if err != nil {
		return err
	}
	b, err := json.Marshal(map[string]any{"items": keys})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, b)
}

func (h *handler) deleteKey(w http.ResponseWriter, r *http.Request) error {
	if err := h.Auth.DeleteKey(r.Context(), mantle.IdentityFrom(r.Context()), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// callbackURL is this server's OIDC callback for a provider, under the
// public URL. It is never built from the request's Host header, which the
// client chooses: a forged Host would send the provider's code elsewhere.
func (h *handler) callbackURL(provider string) (string, error) {
	if h.PublicURL == "" {
		return "", mantle.Errorf(mantle.Unavailable, "auth.oidc_no_public_url",
			"OIDC sign-in needs the server's public URL (--public-url, MANTLE_PUBLIC_URL)")
	}
	return h.PublicURL + "/api/auth/oidc/" + url.PathEscape(provider) + "/callback", nil
}

func (h *handler) providers(w http.ResponseWriter, r *http.Request) error {
	type p struct {
		Name  string `json:"name"`
		Start string `json:"start"`
	}
	out := []p{}
	for _, n := range h.Auth.OIDCProviders() {
		out = append(out, p{Name: n, Start: "/api/auth/oidc/" + url.PathEscape(n)})
	}
	b, _ := json.Marshal(map[string]any{"providers": out})
	return writeJSON(w, http.StatusOK, b)
}

// oidcStart sends the browser to the provider, with the sealed pending
// sign-in in a cookie that only the callback path receives.
func (h *handler) oidcStart(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("provider")
	callback, err := h.callbackURL(name)
	if err != nil {
		return err
	}
	to, sealed, err := h.Auth.OIDCStart(r.Context(), name, callback, r.URL.Query().Get("redirect"), clientIP(r))
	if err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: auth.OIDCCookie, Value: sealed, Path: "/api/auth/oidc/" + url.PathEscape(name) + "/callback",
		MaxAge: 600, HttpOnly: true, Secure: strings.HasPrefix(h.PublicURL, "https:"), SameSite: http.SameSiteLaxMode})
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, to, http.StatusFound)
	return nil
}

// oidcCallback is where the provider sends the browser back. With a
// redirect the app gets the tokens in its URL's fragment; without, they
// are the JSON answer.
func (h *handler) oidcCallback(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		return mantle.Errorf(mantle.Unauthenticated, "auth.oidc_failed", "the provider answered %s: %s", e, q.Get("error_description"))
	}
	sealed := ""
	if c, err := r.Cookie(auth.OIDCCookie); err == nil {
		sealed = c.Value
	}
	name := r.PathValue("provider")
	// The cookie is spent whatever happens next: a sign-in is tried once.
	http.SetCookie(w, &http.Cookie{Name: auth.OIDCCookie, Path: "/api/auth/oidc/" + url.PathEscape(name) + "/callback", MaxAge: -1,
		HttpOnly: true, Secure: strings.HasPrefix(h.PublicURL, "https:"), SameSite: http.SameSiteLaxMode})
	res, err := h.Auth.OIDCCallback(r.Context(), name, q.Get("code"), q.Get("state"), sealed, clientIP(r))
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	if res.Redirect != "" {
		http.Redirect(w, r, res.RedirectURL(), http.StatusFound)
		return nil
	}
	return h.writeTokens(w, res.Tokens)
}
