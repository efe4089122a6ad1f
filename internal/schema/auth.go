package schema

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
