// Package auth is who the caller is: users with argon2id passwords,
// short-lived signed access tokens (EdDSA JWTs with key rotation),
// rotating refresh tokens with reuse detection, API keys, the admin
// token, and sign-in throttling. What a caller may do is the policy
// package's business; auth only establishes the mantle.Identity.
//
// Secrets (password hashes, refresh-token families, API keys) are stored
// hashed in the store's secrets table, beside the records and in the same
// transactions as the audit events (auth.*) that record their changes,
// but never in the event log themselves.
package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mantlehq/mantle"
	"github.com/mantlehq/mantle/internal/engine"
)

// Secret kinds in the store.
const (
	KindPassword = "password" // user id → argon2id hash
	KindSession  = "session"  // family id → session (refresh tokens)
	KindAPIKey   = "apikey"   // key id → apiKey
)

// Config tunes the service. Zero values take the defaults.
type Config struct {
	AccessTTL  time.Duration // access token lifetime; default 15 minutes
	RefreshTTL time.Duration // refresh token (session) lifetime; default 30 days
	// AdminToken, when set, is a bearer token that acts as an
	// administrator (for bootstrap and operations).
	AdminToken string
	// Throttle limits sign-in attempts; zero values take the defaults.
	Throttle ThrottleConfig
	Now      func() time.Time
}

// Service authenticates callers and runs the auth endpoints.
type Service struct {
	eng  *engine.Engine
	keys *Keyset
	cfg  Config

	throttle *throttles
	revoked  sync.Map // session id → time.Time it was revoked
	epochs   sync.Map // user id → time.Time before which its credentials are void
	watching watchers // streams' holds on credentials (see Watch)
	apiKeys  sync.Map // key id → *apiKey, a read-through cache
	verified verified // access tokens whose signature was checked

	oidcMu  sync.RWMutex
	oidc    map[string]*oidcProvider
	signins atomic.Int64 // sessions started, to sweep dead sessions now and then
}

// New returns a service over the engine, signing with keys.
func New(ctx context.Context, eng *engine.Engine, keys *Keyset, cfg Config) (*Service, error) {
	if cfg.AccessTTL <= 0 {
		cfg.AccessTTL = 15 * time.Minute
	}
	if cfg.RefreshTTL <= 0 {
		cfg.RefreshTTL = 30 * 24 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return time.Now().UTC() }
	}
	s := &Service{eng: eng, keys: keys, cfg: cfg, throttle: newThrottles(cfg.Throttle)}
	if err := s.loadEpochs(ctx); err != nil {
		return nil, err
	}
	if err := s.loadRevoked(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Keys returns the signing keys.
func (s *Service) Keys() *Keyset { return s.keys }

// AdminID is the identity of the admin secret (MANTLE_ADMIN_TOKEN), the
// actor of what it does. The colon keeps it out of the record ids' alphabet,
// so no user, key or record can ever have it; the other system identities
// (fn:NAME, automation:NAME, webhook:NAME) share that form.
const AdminID = "mantle:admin"

// Credential says how a caller authenticated.
type Credential struct {
	Kind    string    // "user", "apikey" or "admin"; empty when anonymous
	Subject string    // the user or the API key
	Session string    // the session (refresh-token family) of a user's token
	Issued  time.Time // when a user's token was issued
	Expires time.Time // when the credential stops working; zero: never
}

type credentialKey struct{}

// WithCredential returns a context that carries the caller's credential.
func WithCredential(ctx context.Context, c Credential) context.Context {
	return context.WithValue(ctx, credentialKey{}, c)
}

// CredentialFrom returns the caller's credential.
func CredentialFrom(ctx context.Context) Credential {
	c, _ := ctx.Value(credentialKey{}).(Credential)
	return c
}

// RequestHeader returns the credential a request carries, as an
// Authorization header value: the header itself, or, when allowQuery and
// there is no header, ?token= as a bearer token, for clients that cannot
// set headers (EventSource, browser WebSockets).
func RequestHeader(r *http.Request, allowQuery bool) string {
	header := r.Header.Get("Authorization")
	if t := r.URL.Query().Get("token"); header == "" && t != "" && allowQuery {
		header = "Bearer " + t
	}
	return header
}

var errInvalid = mantle.Errorf(mantle.Unauthenticated, "auth.invalid_credentials", "the credentials are not valid")

// Authenticate reads the value of an Authorization header. No header is
// an anonymous caller; a header that does not carry valid credentials is
// unauthenticated, so that a client with an expired token learns to
// refresh it rather than silently seeing less.
func (s *Service) Authenticate(ctx context.Context, header string) (mantle.Identity, Credential, error) {
	if header == "" {
		return mantle.Identity{}, Credential{}, nil
	}
	token, ok := strings.CutPrefix(header, "Bearer ")
	if !ok || token == "" {
		return mantle.Identity{}, Credential{}, mantle.Errorf(mantle.Unauthenticated, "auth.invalid_credentials",
			"the Authorization header must be `Bearer <access token or API key>`")
	}
	if s.cfg.AdminToken != "" && subtle.ConstantTimeCompare([]byte(token), []byte(s.cfg.AdminToken)) == 1 {
		return mantle.Identity{ID: AdminID, Roles: []string{"admin"}}, Credential{Kind: "admin"}, nil
	}
	if strings.HasPrefix(token, apiKeyPrefix) {
		id, exp, err := s.verifyAPIKey(ctx, token)
		return id, Credential{Kind: "apikey", Subject: id.ID, Expires: exp}, err
	}
	c, err := s.verifyAccess(token)
	if err != nil {
		return mantle.Identity{}, Credential{}, err
	}
	if c.SID != "" {
		if _, gone := s.revoked.Load(c.SID); gone {
			return mantle.Identity{}, Credential{}, mantle.Errorf(mantle.Unauthenticated, "auth.token_revoked", "this session was signed out; sign in again")
		}
	}
	issued := c.issued()
	if s.stale(c.Subject, issued) {
		return mantle.Identity{}, Credential{}, mantle.Errorf(mantle.Unauthenticated, "auth.token_stale",
			"the user's roles, password or account changed after this token was issued; refresh it or sign in again")
	}
	return mantle.Identity{ID: c.Subject, Email: c.Email, Roles: c.Roles},
		Credential{Kind: "user", Subject: c.Subject, Session: c.SID, Issued: issued, Expires: c.ExpiresAt.Time}, nil
}

// hashSecret is how refresh tokens and API keys are stored: they are
// random 256-bit values, so one SHA-256 (unlike a password) is enough.
func hashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

func sameHash(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }
