package auth

import (
	"context"
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
	"github.com/mantlehq/mantle"
	"github.com/mantlehq/mantle/internal/engine"
	"github.com/mantlehq/mantle/internal/eventlog"
	"github.com/mantlehq/mantle/internal/schema"
	"github.com/mantlehq/mantle/internal/store"
	"golang.org/x/oauth2"
)

// Secret kinds of OIDC sign-in.
const (
	KindOIDCState = "oidc_state" // state → a pending sign-in (single use, 10 minutes)
	KindIdentity  = "identity"   // provider|subject → user id
)

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
// and the path below the listed one).
func (p *oidcProvider) allowedRedirect(u string) bool {
	target, err := url.Parse(u)
	if err != nil || target.User != nil || target.Fragment != "" {
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

// OIDCStart begins a sign-in: it records a single-use state with a nonce
// and a PKCE verifier, and returns the provider's authorization URL.
// callback is this server's callback URL; redirect, if not empty, is the
// app URL to return to and must be one the provider's config allows.
func (s *Service) OIDCStart(ctx context.Context, name, callback, redirect string) (string, error) {
	p, err := s.oidcProvider(name)
	if err != nil {
		return "", err
	}
	if redirect != "" && !p.allowedRedirect(redirect) {
		return "", mantle.Errorf(mantle.Invalid, "auth.oidc_redirect", "redirect %q is not one of the provider's redirects", redirect)
	}
	pr, err := p.discover(ctx)
	if err != nil {
		return "", err
	}
	state, nonce, verifier := randomSecret(), randomSecret(), oauth2.GenerateVerifier()
	raw, _ := json.Marshal(pending{Provider: name, Nonce: nonce, Verifier: verifier, Callback: callback,
		Redirect: redirect, Expires: s.cfg.Now().Add(oidcStateTTL)})
	if err := s.eng.Transact(ctx, func(tx store.Tx) error { return tx.PutSecret(KindOIDCState, state, raw) }); err != nil {
		return "", err
	}
	s.sweepStates(ctx)
	return p.oauth(pr, callback).AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)), nil
}

// sweepStates drops abandoned sign-ins now and then.
func (s *Service) sweepStates(ctx context.Context) {
	if s.starts.Add(1)%100 != 0 {
		return
	}
	all, err := s.eng.Secrets(ctx, KindOIDCState)
	if err != nil {
		return
	}
	now := s.cfg.Now()
	s.eng.Transact(ctx, func(tx store.Tx) error {
		for k, raw := range all {
			var st pending
			if json.Unmarshal(raw, &st) != nil || now.After(st.Expires) {
				tx.DeleteSecret(KindOIDCState, k)
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

// OIDCCallback finishes a sign-in: it takes the state (once), exchanges
// the code with the PKCE verifier, verifies the ID token against the
// provider's keys (issuer, audience, expiry) and the nonce, and signs in
// the user with that verified email, creating or linking the account.
func (s *Service) OIDCCallback(ctx context.Context, name, code, state, ip string) (*OIDCResult, error) {
	p, err := s.oidcProvider(name)
	if err != nil {
		return nil, err
	}
	var st pending
	err = s.eng.Transact(ctx, func(tx store.Tx) error {
		raw, err := tx.Secret(KindOIDCState, state)
		if err != nil {
			return oidcFailed("unknown or used sign-in state; start again")
		}
		if _, err := tx.DeleteSecret(KindOIDCState, state); err != nil {
			return err
		}
		return json.Unmarshal(raw, &st)
	})
	switch {
	case err != nil:
		return nil, err
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
	err = s.eng.Transact(ctx, func(tx store.Tx) error {
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
		func(tx store.Tx, res []engine.Result) error {
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
	err = s.eng.Transact(ctx, func(tx store.Tx) error {
		ended = ended[:0]
		if err := tx.PutSecret(KindIdentity, link, []byte(userID)); err != nil {
			return err
		}
		hadPassword, err := tx.DeleteSecret(KindPassword, userID)
		if err != nil {
			return err
		}
		for sid, raw := range sessions {
			var ss session
			if json.Unmarshal(raw, &ss) != nil || ss.User != userID || !ss.RevokedAt.IsZero() {
				continue
			}
			ss.RevokedAt = now
			raw, _ := json.Marshal(ss)
			if err := tx.PutSecret(KindSession, sid, raw); err != nil {
				return err
			}
			ended = append(ended, sid)
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
