package schema

import "time"

// OIDCProvider is an OpenID Connect provider users may sign in with,
// declared in the project file. Its client secret is not here: it comes
// from the environment (MANTLE_OIDC_<NAME>_SECRET) or the data folder.
type OIDCProvider struct {
	Name      string   `json:"name"`
	Issuer    string   `json:"issuer"`    // the issuer URL; discovery is ISSUER/.well-known/openid-configuration
	ClientID  string   `json:"clientId"`  // as registered with the provider
	Scopes    []string `json:"scopes"`    // beyond openid; default email and profile
	Redirects []string `json:"redirects"` // app URLs a sign-in may return to, with the tokens
}

// Webhook is a delivery of events to a URL, declared in the project file.
// Its signing secret is not here: it comes from the environment
// (MANTLE_WEBHOOK_<NAME>_SECRET) or the data folder.
type Webhook struct {
	Name        string        `json:"name"`
	URL         string        `json:"url"`
	Collections []string      `json:"collections,omitempty"` // empty: all
	Types       []string      `json:"types,omitempty"`       // empty: all
	Filter      string        `json:"filter,omitempty"`      // CEL over the record
	MaxAttempts int           `json:"maxAttempts"`           // then the event is a dead letter; default 10
	RetryMin    time.Duration `json:"retryMin"`              // first backoff; default 1s
	RetryMax    time.Duration `json:"retryMax"`              // backoff cap; default 10m
}
