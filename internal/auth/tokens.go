package auth

import (
	"errors"
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
	jwt.RegisteredClaims
}

// issueAccess signs an access token for a user of a session.
func (s *Service) issueAccess(u user, sid string) (string, error) {
	k := s.keys.current()
	now := s.cfg.Now()
	c := Claims{Email: u.Email, Roles: u.Roles, SID: sid, RegisteredClaims: jwt.RegisteredClaims{
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

// verifyAccess checks an access token: EdDSA only (so neither "none" nor
// an HMAC keyed with the public key can pass), a kid of the keyset, our
// issuer, and exp, nbf and iat against the clock.
func (s *Service) verifyAccess(token string) (*Claims, error) {
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
