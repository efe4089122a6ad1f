package auth

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/mantlehq/mantle"
	"github.com/mantlehq/mantle/internal/engine"
	"github.com/mantlehq/mantle/internal/eventlog"
	"github.com/mantlehq/mantle/internal/gateway"
	"github.com/mantlehq/mantle/internal/schema"
)

// KindIdentity is the secret kind of OIDC identity links: provider|subject
// → user id.
const KindIdentity = "identity"

// KindOIDCState was the secret kind of pending sign-ins, before they moved
// into a sealed cookie; rows of it left by older versions are swept at
// start.
const KindOIDCState = "oidc_state"

// MaxRedirectLength bounds the app URL a sign-in returns to.
const MaxRedirectLength = 2048

// OIDCCookie is the cookie that carries a pending sign-in, sealed, from
// its start to the provider's callback: the server keeps nothing per
// started sign-in, and the sign-in is bound to the browser that started
// it (a callback URL sent to someone else signs nobody in).
const OIDCCookie = "mantle_oidc"

// oidcStateTTL is how long a user has to finish signing in at the
// provider.
const oidcStateTTL = 10 * time.Minute

// oidcProvider is a configured provider; discovery runs on first use, so
// that a provider that is down does not stop the server from starting.
type oidcProvider struct {
	cfg    schema.OIDCProvider
	secret string

	mu       sync.Mutex
	provider *oidc.Provider
}

// pending is a sign-in between its start and the provider's callback.
type pending struct {
	State    string    `json:"state"` // also the state parameter
	Provider string    `json:"provider"`
	Nonce    string    `json:"nonce"`
	Verifier string    `json:"verifier"` // the PKCE code verifier
	Callback string    `json:"callback"` // our redirect_uri, sent again at the exchange
	Redirect string    `json:"redirect,omitempty"`
	Expires  time.Time `json:"expires"`
}

// OIDCSecret finds the client secret of a provider: the environment
// variable MANTLE_OIDC_<NAME>_SECRET, else the file oidc-<name>.secret in
// the data folder. Empty means a public client (PKCE only).
func OIDCSecret(dataDir, name string) string {
	if v := os.Getenv("MANTLE_OIDC_" + strings.ToUpper(name) + "_SECRET"); v != "" {
		return v
	}
	b, err := os.ReadFile(filepath.Join(dataDir, "oidc-"+name+".secret"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// SetOIDC replaces the configured providers; secret finds each one's
// client secret.
func (s *Service) SetOIDC(providers []schema.OIDCProvider, secret func(name string) string) {
	m := map[string]*oidcProvider{}
	for _, p := range providers {
		m[p.Name] = &oidcProvider{cfg: p, secret: secret(p.Name)}
	}
	s.oidcMu.Lock()
	s.oidc = m
	s.oidcMu.Unlock()
}

// OIDCProviders lists the names of the configured providers.
func (s *Service) OIDCProviders() []string {
	s.oidcMu.RLock()
	defer s.oidcMu.RUnlock()
	names := make([]string, 0, len(s.oidc))
	for n := range s.oidc {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func (s *Service) oidcProvider(name string) (*oidcProvider, error) {
	s.oidcMu.RLock()
	p := s.oidc[name]
	s.oidcMu.RUnlock()
	if p == nil {
		return nil, mantle.Errorf(mantle.NotFound, "auth.oidc_unknown_provider", "no sign-in provider %q is configured", name)
	}
	return p, nil
}

// httpClient is used for discovery, the code exchange, JWKS and userinfo.
var httpClient = &http.Client{Timeout: 10 * time.Second}

func (p *oidcProvider) discover(ctx context.Context) (*oidc.Provider, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.provider != nil {
		return p.provider, nil
	}
	pr, err := oidc.NewProvider(oidc.ClientContext(context.WithoutCancel(ctx), httpClient), p.cfg.Issuer)
	if err != nil {
		return nil, mantle.Errorf(mantle.Unavailable, "auth.oidc_unavailable", "the sign-in provider %q cannot be reached: %v", p.cfg.Name, err)
	}
	p.provider = pr
	return pr, nil
}

func (p *oidcProvider) oauth(pr *oidc.Provider, callback string) *oauth2.Config {
	scopes := p.cfg.Scopes
	if len(scopes) == 0 {
		scopes = []string{"email", "profile"}
	}
	return &oauth2.Config{ClientID: p.cfg.ClientID, ClientSecret: p.secret, Endpoint: pr.Endpoint(),
		RedirectURL: callback, Scopes: append([]string{oidc.ScopeOpenID}, scopes...)}
}

// allowedRedirect reports whether the app may be sent to u after sign-in:
// u must start with one of the provider's redirects (same scheme and host,
// and the path below the listed one). The path must already be clean (no
// "." or ".." segments, no empty segments, no escaped bytes in it, no
// backslash), so /app/../evil cannot pass as being under /app.
func (p *oidcProvider) allowedRedirect(u string) bool {
	if len(u) > MaxRedirectLength || strings.ContainsAny(u, "\\\x00\r\n\t") {
		return false
	}
	target, err := url.Parse(u)
	if err != nil || target.User != nil || target.Fragment != "" || target.Opaque != "" || target.RawPath != "" {
		return false
	}
	if target.Path != "" && gateway.CleanPath(target.Path) != target.Path {
		return false
	}
	for _, r := range p.cfg.Redirects {
		base, err := url.Parse(r)
		if err != nil {
			continue
		}
		if target.Scheme == base.Scheme && target.Host == base.Host &&
			(target.Path == base.Path || strings.HasPrefix(target.Path, strings.TrimSuffix(base.Path, "/")+"/")) {
			return true
		}
	}
	return false
}

// OIDCStart begins a sign-in from the address ip: it makes a state, a
// nonce and a PKCE verifier, and returns the provider's authorization URL
// and the sealed pending sign-in for the OIDCCookie. Starts are throttled
// per address like sign-ins. callback is this server's callback URL (from
// the public URL, never from the request); redirect, if not empty, is the
// app URL to return to and must be one the provider's config allows.
func (s *Service) OIDCStart(ctx context.Context, name, callback, redirect, ip string) (authURL, cookie string, err error) {
	p, err := s.oidcProvider(name)
	if err != nil {
		return "", "", err
	}
	if err := s.throttle.check("sign-in", s.throttle.oidcIP, ip); err != nil {
		return "", "", err
	}
	if redirect != "" && !p.allowedRedirect(redirect) {
		return "", "", mantle.Errorf(mantle.Invalid, "auth.oidc_redirect", "redirect %.200q is not under one of the provider's redirects (a clean path of at most %d bytes)", redirect, MaxRedirectLength)
	}
	pr, err := p.discover(ctx)
	if err != nil {
		return "", "", err
	}
	st := pending{State: randomSecret(), Provider: name, Nonce: randomSecret(), Verifier: oauth2.GenerateVerifier(), Callback: callback,
		Redirect: redirect, Expires: s.cfg.Now().Add(oidcStateTTL)}
	raw, _ := json.Marshal(st)
	if cookie, err = s.keys.seal(OIDCCookie, raw); err != nil {
		return "", "", err
	}
	return p.oauth(pr, callback).AuthCodeURL(st.State, oidc.Nonce(st.Nonce), oauth2.S256ChallengeOption(st.Verifier)), cookie, nil
}

// SweepOIDCStates deletes the pending sign-ins that older versions kept in
// the store.
func (s *Service) SweepOIDCStates(ctx context.Context) error {
	all, err := s.eng.Secrets(ctx, KindOIDCState)
	if err != nil || len(all) == 0 {
		return err
	}
	return s.eng.Transact(ctx, func(tx engine.SystemTx) error {
		for k := range all {
			if _, err := tx.DeleteSecret(KindOIDCState, k); err != nil {
				return err
			}
		}
		return nil
	})
}

func oidcFailed(format string, args ...any) error {
	return mantle.Errorf(mantle.Unauthenticated, "auth.oidc_failed", format, args...)
}

// OIDCResult is a finished sign-in.
type OIDCResult struct {
	Tokens   *Tokens
	Redirect string // the app URL to return to, if the sign-in named one
}

// OIDCCallback finishes a sign-in: it opens the sealed pending sign-in of
// the browser's cookie, checks the state against it, exchanges
// the code with the PKCE verifier, verifies the ID token against the
// provider's keys (issuer, audience, expiry) and the nonce, and signs in
// the user with that verified email, creating or linking the account.
func (s *Service) OIDCCallback(ctx context.Context, name, code, state, sealed, ip string) (*OIDCResult, error) {
	p, err := s.oidcProvider(name)
	if err != nil {
		return nil, err
	}
	var st pending
	raw, err := s.keys.open(OIDCCookie, sealed)
	if sealed == "" || err != nil || json.Unmarshal(raw, &st) != nil {
		return nil, oidcFailed("no sign-in was started in this browser (its cookie is missing or altered); start again")
	}
	switch {
	case subtle.ConstantTimeCompare([]byte(st.State), []byte(state)) != 1:
		return nil, oidcFailed("the state does not match the sign-in this browser started; start again")
	case st.Provider != name:
		return nil, oidcFailed("the sign-in was started with another provider")
	case s.cfg.Now().After(st.Expires):
		return nil, oidcFailed("the sign-in took longer than %s; start again", oidcStateTTL)
	case code == "":
		return nil, oidcFailed("the provider sent no code")
	}
	pr, err := p.discover(ctx)
	if err != nil {
		return nil, err
	}
	hctx := oidc.ClientContext(ctx, httpClient)
	tok, err := p.oauth(pr, st.Callback).Exchange(hctx, code, oauth2.VerifierOption(st.Verifier))
	if err != nil {
		return nil, oidcFailed("the provider refused the code: %v", err)
	}
	rawID, _ := tok.Extra("id_token").(string)
	if rawID == "" {
		return nil, oidcFailed("the provider sent no ID token")
	}
	idt, err := pr.Verifier(&oidc.Config{ClientID: p.cfg.ClientID, Now: s.cfg.Now}).Verify(hctx, rawID)
	if err != nil {
		return nil, oidcFailed("the ID token is not valid: %v", err)
	}
	if idt.Nonce != st.Nonce {
		return nil, oidcFailed("the ID token's nonce does not match this sign-in")
	}
	who, err := claimsOf(hctx, pr, idt, tok)
	if err != nil {
		return nil, err
	}
	if who.Email == "" || !who.verified {
		return nil, mantle.Errorf(mantle.PermissionDenied, "auth.oidc_email_unverified",
			"the provider did not vouch for an email address; verify it there and sign in again")
	}
	u, err := s.oidcUser(ctx, name, idt.Subject, who, ip)
	if err != nil {
		return nil, err
	}
	var sid, refresh string
	err = s.eng.Transact(ctx, func(tx engine.SystemTx) error {
		var err error
		if sid, refresh, err = s.newSession(tx, u.ID); err != nil {
			return err
		}
		data, _ := json.Marshal(map[string]string{"user": u.ID, "session": sid, "ip": ip, "provider": name})
		return tx.Append(&eventlog.Event{Type: eventlog.AuthLogin, Subject: u.ID, Actor: u.ID, Time: s.cfg.Now(), Data: data})
	})
	if err != nil {
		return nil, err
	}
	s.signedIn(ctx)
	t, err := s.tokens(u, sid, refresh)
	if err != nil {
		return nil, err
	}
	return &OIDCResult{Tokens: t, Redirect: st.Redirect}, nil
}

// person is what the provider says about the user.
type person struct {
	Email    string
	Name     string
	verified bool
}

// claimsOf reads email, email_verified and name from the ID token, or,
// when it carries no email, from the userinfo endpoint (for the same
// subject).
func claimsOf(ctx context.Context, pr *oidc.Provider, idt *oidc.IDToken, tok *oauth2.Token) (person, error) {
	var c struct {
		Email         string `json:"email"`
		EmailVerified any    `json:"email_verified"`
		Name          string `json:"name"`
	}
	if err := idt.Claims(&c); err != nil {
		return person{}, oidcFailed("the ID token's claims: %v", err)
	}
	if c.Email == "" {
		ui, err := pr.UserInfo(ctx, oauth2.StaticTokenSource(tok))
		if err != nil {
			return person{}, oidcFailed("the provider's userinfo: %v", err)
		}
		if ui.Subject != idt.Subject {
			return person{}, oidcFailed("userinfo is about another subject")
		}
		if err := ui.Claims(&c); err != nil {
			return person{}, oidcFailed("the userinfo claims: %v", err)
		}
	}
	verified := c.EmailVerified == true || c.EmailVerified == "true"
	email, err := NormalizeEmail(c.Email)
	if err != nil {
		return person{}, nil
	}
	return person{Email: email, Name: c.Name, verified: verified}, nil
}

// oidcUser finds the user linked to provider|subject, else links the user
// with the verified email, else creates one.
func (s *Service) oidcUser(ctx context.Context, provider, subject string, who person, ip string) (user, error) {
	link := provider + "|" + subject
	if raw, err := s.eng.Secret(ctx, KindIdentity, link); err == nil {
		return s.loadUser(ctx, string(raw))
	}
	if r, err := s.eng.FindBy(ctx, schema.UsersCollection, "email", who.Email); err == nil {
		if err := s.link(ctx, provider, link, r.ID); err != nil {
			return user{}, err
		}
		return s.loadUser(ctx, r.ID)
	} else if mantle.ErrorCode(err) != mantle.NotFound {
		return user{}, err
	}
	fields := map[string]json.RawMessage{}
	fields["email"], _ = json.Marshal(who.Email)
	if c, err := s.eng.Collection(schema.UsersCollection); err == nil && c.Field("name") != nil && who.Name != "" {
		fields["name"], _ = json.Marshal(who.Name)
	}
	res, err := s.eng.WriteWith(ctx, []engine.Op{{Kind: engine.Create, Collection: schema.UsersCollection, Data: fields, Trusted: true}},
		func(tx engine.SystemTx, res []engine.Result) error {
			id := res[0].Record.ID
			if err := tx.PutSecret(KindIdentity, link, []byte(id)); err != nil {
				return err
			}
			data, _ := json.Marshal(map[string]string{"user": id, "email": who.Email, "ip": ip, "provider": provider})
			return tx.Append(&eventlog.Event{Type: eventlog.AuthSignup, Subject: id, Actor: id, Time: res[0].Record.CreatedAt, Data: data})
		})
	if err != nil {
		if me := mantle.AsError(err); me != nil && me.Code == mantle.Conflict {
			return user{}, errors.New("a user with this email appeared during sign-in; try again")
		}
		return user{}, err
	}
	c, _ := s.eng.Collection(schema.UsersCollection)
	return userOf(c, res[0].Record), nil
}

// link attaches a provider's subject to an existing user found by the
// verified email. Mantle does not verify the emails of password sign-ups,
// so whoever set that account's password may not own the address (an
// attacker can sign up with a victim's email first and wait): linking
// therefore removes the password and ends the account's sessions. The
// provider has just proved who owns the email; a password can be set
// again from there.
func (s *Service) link(ctx context.Context, provider, link, userID string) error {
	sessions, err := s.eng.Secrets(ctx, KindSession)
	if err != nil {
		return err
	}
	now := s.cfg.Now()
	var ended []string
	err = s.eng.Transact(ctx, func(tx engine.SystemTx) error {
		ended = ended[:0]
		if err := tx.PutSecret(KindIdentity, link, []byte(userID)); err != nil {
			return err
		}
		hadPassword, err := tx.DeleteSecret(KindPassword, userID)
		if err != nil {
			return err
		}
		if ended, err = endSessions(tx, sessions, userID, now); err != nil {
			return err
		}
		data, _ := json.Marshal(map[string]any{"user": userID, "provider": provider, "passwordRemoved": hadPassword, "sessionsEnded": len(ended)})
		return tx.Append(&eventlog.Event{Type: eventlog.AuthIdentityLinked, Subject: userID, Actor: userID, Time: now, Data: data})
	})
	if err != nil {
		return err
	}
	for _, sid := range ended {
		s.revoke(sid, now)
	}
	return nil
}

// fragment renders tokens for the app's redirect URL, in the fragment so
// they never reach a server log.
func (t *Tokens) fragment() string {
	v := url.Values{}
	v.Set("access_token", t.AccessToken)
	v.Set("refresh_token", t.RefreshToken)
	v.Set("expires_in", fmt.Sprint(t.ExpiresIn))
	v.Set("token_type", "bearer")
	return v.Encode()
}

// RedirectURL is the app URL with the tokens in its fragment.
func (r *OIDCResult) RedirectURL() string { return r.Redirect + "#" + r.Tokens.fragment() }
