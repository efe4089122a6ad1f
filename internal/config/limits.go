package config

import (
	"errors"
	"flag"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Connection settings: timeouts and caps that keep idle, slow and
// numerous connections from exhausting the server (see docs/security.md).
const (
	EnvReadTimeout   = "MANTLE_READ_TIMEOUT"
	EnvWriteTimeout  = "MANTLE_WRITE_TIMEOUT"
	EnvIdleTimeout   = "MANTLE_IDLE_TIMEOUT"
	EnvMaxConns      = "MANTLE_MAX_CONNS"
	EnvMaxConnsPerIP = "MANTLE_MAX_CONNS_PER_IP"
	EnvQueryTimeout  = "MANTLE_QUERY_TIMEOUT"
	EnvAnonQuery     = "MANTLE_ANON_QUERY_TIMEOUT"
)

// Limits are the connection settings of the HTTP and Kafka listeners.
type Limits struct {
	// ReadTimeout bounds reading a whole request, body included (a POST
	// whose body never arrives is closed); default 30s.
	ReadTimeout time.Duration
	// WriteTimeout bounds writing a response; default 60s. Streams (SSE,
	// WebSocket) and function routes set their own.
	WriteTimeout time.Duration
	// IdleTimeout closes a keep-alive connection with no request; default 60s.
	IdleTimeout time.Duration
	// MaxConns caps open connections in total (default 10,000, and at most
	// the process's file descriptor limit less a reserve).
	MaxConns int
	// MaxConnsPerIP caps open connections from one client address
	// (default 256); past it a connection is answered 503 and closed.
	MaxConnsPerIP int
	// QueryTimeout bounds a list or events page (default 5s);
	// AnonQueryTimeout an anonymous caller's (default 1s). Past it the
	// statement is interrupted and the answer is 503 query.timeout.
	QueryTimeout, AnonQueryTimeout time.Duration
}

// DefaultLimits returns the connection settings' defaults.
func DefaultLimits() Limits {
	return Limits{ReadTimeout: 30 * time.Second, WriteTimeout: 60 * time.Second, IdleTimeout: 60 * time.Second,
		MaxConns: 10_000, MaxConnsPerIP: 256, QueryTimeout: 5 * time.Second, AnonQueryTimeout: time.Second}
}

func (l *Limits) fromEnv(getenv func(string) string) error {
	for _, d := range []struct {
		env string
		dst *time.Duration
	}{{EnvReadTimeout, &l.ReadTimeout}, {EnvWriteTimeout, &l.WriteTimeout}, {EnvIdleTimeout, &l.IdleTimeout},
		{EnvQueryTimeout, &l.QueryTimeout}, {EnvAnonQuery, &l.AnonQueryTimeout}} {
		if v := getenv(d.env); v != "" {
			x, err := time.ParseDuration(v)
			if err != nil {
				return fmt.Errorf("%s: %q is not a duration such as 30s", d.env, v)
			}
			*d.dst = x
		}
	}
	for _, n := range []struct {
		env string
		dst *int
	}{{EnvMaxConns, &l.MaxConns}, {EnvMaxConnsPerIP, &l.MaxConnsPerIP}} {
		if v := getenv(n.env); v != "" {
			x, err := strconv.Atoi(v)
			if err != nil {
				return fmt.Errorf("%s: %q is not a number of connections", n.env, v)
			}
			*n.dst = x
		}
	}
	return nil
}

func (l *Limits) flags(fs *flag.FlagSet) {
	fs.DurationVar(&l.ReadTimeout, "read-timeout", l.ReadTimeout, "longest time to read a request, body included")
	fs.DurationVar(&l.WriteTimeout, "write-timeout", l.WriteTimeout, "longest time to write a response (streams excepted)")
	fs.DurationVar(&l.IdleTimeout, "idle-timeout", l.IdleTimeout, "close keep-alive connections idle this long")
	fs.IntVar(&l.MaxConns, "max-conns", l.MaxConns, "open connections in total")
	fs.IntVar(&l.MaxConnsPerIP, "max-conns-per-ip", l.MaxConnsPerIP, "open connections from one client address")
	fs.DurationVar(&l.QueryTimeout, "query-timeout", l.QueryTimeout, "longest a list or events query may run")
	fs.DurationVar(&l.AnonQueryTimeout, "anon-query-timeout", l.AnonQueryTimeout, "longest an anonymous caller's query may run")
}

func (l *Limits) validate() error {
	if l.ReadTimeout < 100*time.Millisecond || l.WriteTimeout < 100*time.Millisecond || l.IdleTimeout < 100*time.Millisecond {
		return errors.New("the read, write and idle timeouts must be at least 100ms")
	}
	if l.QueryTimeout < time.Millisecond || l.AnonQueryTimeout < time.Millisecond {
		return errors.New("the query timeouts must be at least 1ms")
	}
	if l.MaxConns < 1 || l.MaxConnsPerIP < 1 || l.MaxConnsPerIP > l.MaxConns {
		return errors.New("the connection caps must be at least 1, and the cap per address at most the total")
	}
	return nil
}

// Browser settings.
const (
	EnvCORSOrigins     = "MANTLE_CORS_ORIGINS"
	EnvCORSCredentials = "MANTLE_CORS_CREDENTIALS"
	EnvSignupTokens    = "MANTLE_SIGNUP_TOKENS"
)

// Browser is what web apps on other origins need.
type Browser struct {
	// CORSOrigins are the origins allowed to call the API from a browser
	// (https://app.example.com; * for any, without credentials). None by
	// default: browsers then allow same-origin calls only.
	CORSOrigins []string
	// CORSCredentials lets those origins send cookies and HTTP auth
	// (Access-Control-Allow-Credentials); it needs explicit origins.
	CORSCredentials bool
	// SignupTokens makes sign-up answer with a session's tokens, as a
	// login does, besides the user.
	SignupTokens bool
}

func (b *Browser) fromEnv(getenv func(string) string) error {
	if v := getenv(EnvCORSOrigins); v != "" {
		b.CORSOrigins = splitComma(v)
	}
	for _, x := range []struct {
		env string
		dst *bool
	}{{EnvCORSCredentials, &b.CORSCredentials}, {EnvSignupTokens, &b.SignupTokens}} {
		if v := getenv(x.env); v != "" {
			on, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("%s: %q is not true or false", x.env, v)
			}
			*x.dst = on
		}
	}
	return nil
}

func (b *Browser) flags(fs *flag.FlagSet) {
	fs.Func("cors-origins", "comma-separated origins allowed to call from browsers (* for any)", func(v string) error {
		b.CORSOrigins = splitComma(v)
		return nil
	})
	fs.BoolVar(&b.CORSCredentials, "cors-credentials", b.CORSCredentials, "allow credentialed cross-origin requests from the listed origins")
	fs.BoolVar(&b.SignupTokens, "signup-tokens", b.SignupTokens, "sign-up answers with tokens, as a login does")
}

func (b *Browser) validate() error {
	for _, o := range b.CORSOrigins {
		if o == "*" {
			if b.CORSCredentials {
				return errors.New("--cors-credentials needs explicit origins, not *")
			}
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			return fmt.Errorf("--cors-origins %q: an origin is scheme://host[:port], such as https://app.example.com", o)
		}
	}
	return nil
}

func splitComma(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSuffix(strings.TrimSpace(p), "/"); p != "" {
			out = append(out, p)
		}
	}
	return out
}
