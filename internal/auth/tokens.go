package auth

import (
	"errors"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/mantlehq/mantle"
)

// Issuer is the iss claim of Mantle's access tokens.
const Issuer = "mantle"

// leeway tolerates clock skew between nodes when checking exp and nbf.
const leeway = 5 * time.Second

// Claims are the claims of an access token.
type Claims struct {
	Email string   `json:"email,omitempty"`
	Roles []string `json:"roles"`
	SID   string   `json:"sid,omitempty"` // the session, so logout can end it
	// IssuedMs is iat in milliseconds: a change of the user's roles or
	// password voids the tokens issued before it, to the millisecond.
	IssuedMs int64 `json:"iat_ms,omitempty"`
	jwt.RegisteredClaims
	kid string // the key that signed it
}

// issueAccess signs an access token for a user of a session.
func (s *Service) issueAccess(u user, sid string) (string, error) {
	k := s.keys.current()
	now := s.cfg.Now()
	c := Claims{Email: u.Email, Roles: u.Roles, SID: sid, IssuedMs: now.UnixMilli(), RegisteredClaims: jwt.RegisteredClaims{
		Issuer:    Issuer,
		Subject:   u.ID,
		IssuedAt:  jwt.NewNumericDate(now),
		NotBefore: jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(s.cfg.AccessTTL)),
		ID:        mantle.NewID(),
	}}
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
	t.Header["kid"] = k.ID
	return t.SignedString(k.private)
}

// issued is when the token was issued, to the millisecond when it says.
func (c *Claims) issued() time.Time {
	if c.IssuedMs > 0 {
		return time.UnixMilli(c.IssuedMs)
	}
	if c.IssuedAt != nil {
		return c.IssuedAt.Time
	}
	return time.Time{}
}

// verified remembers tokens whose signature checked out, so that a
// client's next requests with the same token skip the Ed25519
// verification (about 50µs, as much as serving a cached get). The key is
// the whole token, signature included, so a changed token never hits;
// the time claims are checked again on every hit.
type verified struct {
	mu sync.Mutex
	m  map[string]*Claims
}

// maxVerified bounds the cache; when full it starts over.
const maxVerified = 10_000

func (v *verified) get(token string) *Claims {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.m[token]
}

func (v *verified) put(token string, c *Claims) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.m == nil || len(v.m) >= maxVerified {
		v.m = make(map[string]*Claims, 1024)
	}
	v.m[token] = c
}

// verifyAccess checks an access token: EdDSA only (so neither "none" nor
// an HMAC keyed with the public key can pass), a kid of the keyset, our
// issuer, and exp, nbf and iat against the clock.
func (s *Service) verifyAccess(token string) (*Claims, error) {
	if c := s.verified.get(token); c != nil {
		now := s.cfg.Now()
		switch {
		case s.keys.verifier(c.kid) == nil: // its key was rotated out
			return nil, errInvalid
		case now.After(c.ExpiresAt.Add(leeway)):
			return nil, mantle.Errorf(mantle.Unauthenticated, "auth.token_expired", "the access token has expired; refresh it")
		case c.NotBefore != nil && now.Add(leeway).Before(c.NotBefore.Time):
			return nil, errInvalid
		}
		return c, nil
	}
	c, err := s.parseAccess(token)
	if err == nil {
		s.verified.put(token, c)
	}
	return c, err
}

// parseAccess verifies a token's signature and claims.
func (s *Service) parseAccess(token string) (*Claims, error) {
	p := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithIssuer(Issuer),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(leeway),
		jwt.WithTimeFunc(s.cfg.Now),
	)
	var c Claims
	_, err := p.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		c.kid = kid
		if pk := s.keys.verifier(kid); pk != nil {
			return pk, nil
		}
		return nil, errors.New("unknown kid")
	})
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return nil, mantle.Errorf(mantle.Unauthenticated, "auth.token_expired", "the access token has expired; refresh it")
	case err != nil:
		return nil, mantle.Errorf(mantle.Unauthenticated, "auth.invalid_credentials", "the access token is not valid")
	case c.Subject == "":
		return nil, errInvalid
	}
	return &c, nil
}
