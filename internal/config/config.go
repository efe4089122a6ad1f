// Package config holds the server settings: defaults, then environment
// variables, then command-line flags; validated once.
package config

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Config is the server's settings.
type Config struct {
	Project string // project folder; default "."
	Data    string // data folder; default PROJECT/mantle_data
	// Store is where records and the event log live: empty (the default)
	// for the embedded SQLite database in the data folder, or a
	// postgres:// URL for PostgreSQL (add search_path=NAME to use a schema
	// other than public). Signing keys and compiled modules stay in the data
	// folder either way.
	Store string
	// Nats, when set, is the NATS server (JetStream on) that joins this
	// node to the others sharing the PostgreSQL store: nats://host:4222.
	Nats string
	// Cluster names the cluster's stream, subject and lease bucket on the
	// NATS server (default "mantle"); clusters sharing a NATS server need
	// names of their own.
	Cluster string
	// Node names this node in leases and logs; default the host name and
	// process id.
	Node         string
	HTTP         string // listen address; default 127.0.0.1:8090
	AdminToken   string // bearer token that acts as an administrator; empty disables it
	MaxBodyBytes int64  // request body limit; default 1 MiB
	LogLevel     string // debug, info, warn, error
	// RateLimit is requests per second allowed to each signed-in identity,
	// or to each IP address for anonymous callers, with bursts of twice
	// as many; 0 (the default) turns the general limit off. Sign-in and
	// sign-up are always throttled.
	RateLimit float64
	// AccessTTL is the lifetime of access tokens; default 15 minutes.
	AccessTTL time.Duration
	// PublicURL is the URL clients reach the server at, such as
	// https://api.example.com; OIDC callbacks are built from it. Empty:
	// taken from each request's Host.
	PublicURL string
	// Kafka, when set, is the address of the Kafka-protocol listener
	// (read-only change stream), such as 127.0.0.1:9092.
	Kafka string
	// WebhookAllowPrivate lets webhooks call loopback and private
	// addresses; off, such URLs are refused (SSRF guard).
	WebhookAllowPrivate bool
	// WasmCache is the folder of compiled function modules; default
	// DATA/wasm-cache. Modules compiled by `mantle apply` load from it at
	// warm speed.
	WasmCache string
	// BenchNative mounts POST /fn/native/echo, a Go twin of the bench
	// project's echo function, for `mantle bench --workload functions`
	// (MANTLE_BENCH_NATIVE=1).
	BenchNative bool
	// SignInLimit is sign-in attempts per minute per IP address (default
	// 20); an account gets half as many, sign-ups from an IP half as many.
	SignInLimit int
	// ListCacheMB is the SQLite store's list page cache in MiB (default
	// 32, and at most a sixteenth of the memory budget; 0 turns it off). See
	// docs/storage.md, "Caches".
	ListCacheMB int
	// MemoryLimit is the server's memory budget in bytes, for its whole
	// resident memory (default DefaultMemoryLimit, plus what the
	// project's functions take unless MemoryLimitSet): the Go heap's soft
	// limit (GOMEMLIMIT) and the sizes of the caches are derived from it.
	// See docs/storage.md, "Memory".
	MemoryLimit int64
	// MemoryLimitSet reports that MemoryLimit was given (flag, setting or
	// environment): then it is the whole budget, functions included.
	MemoryLimitSet bool
	// Limits are the listeners' timeouts and connection caps.
	Limits
	// Browser holds CORS and sign-up settings for web apps.
	Browser
}

// Environment variables read by Load.
const (
	EnvProject        = "MANTLE_PROJECT"
	EnvData           = "MANTLE_DATA"
	EnvStore          = "MANTLE_STORE"
	EnvNats           = "MANTLE_NATS"
	EnvCluster        = "MANTLE_CLUSTER"
	EnvNode           = "MANTLE_NODE"
	EnvHTTP           = "MANTLE_HTTP"
	EnvAdminToken     = "MANTLE_ADMIN_TOKEN"
	EnvMaxBody        = "MANTLE_MAX_BODY_BYTES"
	EnvLogLevel       = "MANTLE_LOG_LEVEL"
	EnvRateLimit      = "MANTLE_RATE_LIMIT"
	EnvAccessTTL      = "MANTLE_ACCESS_TTL"
	EnvSignIn         = "MANTLE_SIGNIN_LIMIT"
	EnvListCache      = "MANTLE_LIST_CACHE_MB"
	EnvPublicURL      = "MANTLE_PUBLIC_URL"
	EnvKafka          = "MANTLE_KAFKA"
	EnvWasmCache      = "MANTLE_WASM_CACHE"
	EnvBenchNative    = "MANTLE_BENCH_NATIVE"
	EnvWebhookPrivate = "MANTLE_WEBHOOK_ALLOW_PRIVATE"
)

// Default returns the settings before environment and flags.
func Default() Config {
	return Config{Project: ".", HTTP: "127.0.0.1:8090", MaxBodyBytes: 1 << 20, LogLevel: "info", AccessTTL: 15 * time.Minute, SignInLimit: 20, ListCacheMB: 32, MemoryLimit: DefaultMemoryLimit, Limits: DefaultLimits()}
}

// FromEnv overlays the environment variables that are set.
func (c *Config) FromEnv(getenv func(string) string) error {
	set := func(dst *string, key string) {
		if v := getenv(key); v != "" {
			*dst = v
		}
	}
	set(&c.Project, EnvProject)
	set(&c.Data, EnvData)
	set(&c.Store, EnvStore)
	set(&c.Nats, EnvNats)
	set(&c.Cluster, EnvCluster)
	set(&c.Node, EnvNode)
	set(&c.HTTP, EnvHTTP)
	set(&c.AdminToken, EnvAdminToken)
	set(&c.LogLevel, EnvLogLevel)
	set(&c.PublicURL, EnvPublicURL)
	set(&c.Kafka, EnvKafka)
	set(&c.WasmCache, EnvWasmCache)
	c.BenchNative = getenv(EnvBenchNative) == "1"
	if v := getenv(EnvWebhookPrivate); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("%s: %q is not true or false", EnvWebhookPrivate, v)
		}
		c.WebhookAllowPrivate = b
	}
	if v := getenv(EnvMaxBody); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("%s: %q is not a number of bytes", EnvMaxBody, v)
		}
		c.MaxBodyBytes = n
	}
	if v := getenv(EnvRateLimit); v != "" {
		n, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return fmt.Errorf("%s: %q is not a number of requests per second", EnvRateLimit, v)
		}
		c.RateLimit = n
	}
	if v := getenv(EnvSignIn); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("%s: %q is not a number of attempts per minute", EnvSignIn, v)
		}
		c.SignInLimit = n
	}
	if v := getenv(EnvListCache); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("%s: %q is not a number of MiB", EnvListCache, v)
		}
		c.ListCacheMB = n
	}
	if v := getenv(EnvMemoryLimit); v != "" {
		n, err := ParseBytes(v)
		if err != nil {
			return fmt.Errorf("%s: %w", EnvMemoryLimit, err)
		}
		c.MemoryLimit, c.MemoryLimitSet = n, true
	}
	if err := c.Limits.fromEnv(getenv); err != nil {
		return err
	}
	if err := c.Browser.fromEnv(getenv); err != nil {
		return err
	}
	if v := getenv(EnvAccessTTL); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("%s: %q is not a duration such as 15m", EnvAccessTTL, v)
		}
		c.AccessTTL = d
	}
	return nil
}

// Flags registers the flags that override the settings.
func (c *Config) Flags(fs *flag.FlagSet, serve bool) {
	fs.StringVar(&c.Project, "project", c.Project, "project folder (with mantle.yaml)")
	fs.StringVar(&c.Data, "data", c.Data, "data folder (default PROJECT/mantle_data)")
	fs.StringVar(&c.Store, "store", c.Store, "database: empty for SQLite in the data folder, or a postgres:// URL")
	fs.StringVar(&c.Nats, "nats", c.Nats, "NATS server joining the nodes that share a PostgreSQL store, such as nats://127.0.0.1:4222")
	fs.StringVar(&c.Cluster, "cluster", c.Cluster, "the cluster's name on the NATS server (default mantle)")
	fs.StringVar(&c.Node, "node", c.Node, "this node's name in a cluster (default HOST-PID)")
	fs.StringVar(&c.WasmCache, "wasm-cache", c.WasmCache, "folder of compiled function modules (default DATA/wasm-cache)")
	fs.BoolVar(&c.WebhookAllowPrivate, "webhook-allow-private", c.WebhookAllowPrivate, "let webhooks call loopback and private addresses")
	fs.StringVar(&c.PublicURL, "public-url", c.PublicURL, "the URL clients reach the server at (for OIDC callbacks)")
	if serve {
		fs.StringVar(&c.HTTP, "http", c.HTTP, "HTTP listen address")
		fs.Int64Var(&c.MaxBodyBytes, "max-body", c.MaxBodyBytes, "request body limit in bytes")
		fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error")
		fs.Float64Var(&c.RateLimit, "rate-limit", c.RateLimit, "requests per second per identity or IP (0: off)")
		fs.DurationVar(&c.AccessTTL, "access-ttl", c.AccessTTL, "lifetime of access tokens")
		fs.StringVar(&c.Kafka, "kafka", c.Kafka, "serve the log over the Kafka protocol on ADDR, such as 127.0.0.1:9092")
		fs.IntVar(&c.SignInLimit, "signin-limit", c.SignInLimit, "sign-in attempts per minute per IP (an account gets half)")
		fs.IntVar(&c.ListCacheMB, "list-cache", c.ListCacheMB, "list page cache in MiB, SQLite store (0: off)")
		fs.Func("memory-limit", "the server's memory budget, such as 256MiB (default 128MiB plus what the functions take)", func(v string) error {
			n, err := ParseBytes(v)
			c.MemoryLimit, c.MemoryLimitSet = n, true
			return err
		})
		c.Limits.flags(fs)
		c.Browser.flags(fs)
	}
}

// Validate fills derived defaults and checks the settings.
func (c *Config) Validate() error {
	if c.Data == "" {
		c.Data = filepath.Join(c.Project, "mantle_data")
	}
	if c.WasmCache == "" {
		c.WasmCache = filepath.Join(c.Data, "wasm-cache")
	}
	if _, _, err := net.SplitHostPort(c.HTTP); err != nil {
		return fmt.Errorf("--http %q: want HOST:PORT, such as 127.0.0.1:8090", c.HTTP)
	}
	if c.Store != "" && !c.Postgres() {
		return fmt.Errorf("--store %q: want a postgres:// URL, or nothing for SQLite in the data folder", c.Store)
	}
	if c.Nats != "" && !c.Postgres() {
		return fmt.Errorf("--nats joins nodes that share a PostgreSQL store: set --store postgres://… too")
	}
	if c.Cluster != "" && !clusterName.MatchString(c.Cluster) {
		return fmt.Errorf("--cluster %q: use letters, digits, _ and -", c.Cluster)
	}
	if c.Node == "" {
		host, _ := os.Hostname()
		c.Node = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	if c.MaxBodyBytes < 1024 {
		return errors.New("the body limit must be at least 1024 bytes")
	}
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("--public-url %q: want an absolute URL such as https://api.example.com", c.PublicURL)
		}
		c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	}
	if c.ListCacheMB < 0 || c.ListCacheMB > 1<<20 {
		return errors.New("the list cache is 0 (off) or a number of MiB up to 1048576")
	}
	if c.SignInLimit < 2 {
		return errors.New("the sign-in limit must be at least 2 attempts per minute")
	}
	if c.RateLimit < 0 {
		return errors.New("the rate limit must be 0 (off) or more")
	}
	if c.AccessTTL < 30*time.Second || c.AccessTTL > 24*time.Hour {
		return errors.New("the access token lifetime must be between 30s and 24h")
	}
	if c.MemoryLimit < 32<<20 {
		return errors.New("the memory limit must be at least 32MiB")
	}
	if err := c.Limits.validate(); err != nil {
		return err
	}
	if err := c.Browser.validate(); err != nil {
		return err
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log level %q: use debug, info, warn or error", c.LogLevel)
	}
	return nil
}

var clusterName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Postgres reports whether the store is PostgreSQL.
func (c *Config) Postgres() bool {
	return strings.HasPrefix(c.Store, "postgres://") || strings.HasPrefix(c.Store, "postgresql://")
}

// Load applies defaults, the environment and the flags in args.
//
// A settings file (--config FILE or MANTLE_CONFIG) comes between the
// defaults and the environment: lines NAME=VALUE with the environment
// variables' names (MANTLE_STORE=postgres://…), blank lines and # comments.
func Load(fs *flag.FlagSet, args []string, serve bool) (Config, error) {
	c := Default()
	if path := configPath(args); path != "" {
		vals, err := ReadFile(path)
		if err != nil {
			return c, err
		}
		if err := c.FromEnv(func(k string) string { return vals[k] }); err != nil {
			return c, fmt.Errorf("%s: %w", path, err)
		}
	}
	if err := c.FromEnv(os.Getenv); err != nil {
		return c, err
	}
	c.Flags(fs, serve)
	fs.String("config", "", "settings file of NAME=VALUE lines (MANTLE_STORE=…), read before the environment")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	return c, c.Validate()
}

// EnvConfig names the settings file when --config is not given.
const EnvConfig = "MANTLE_CONFIG"

// configPath finds --config in args (before the flags are parsed: the
// file's values come before the flags'), else MANTLE_CONFIG.
func configPath(args []string) string {
	for i, a := range args {
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name != "config" {
			continue
		}
		if hasVal {
			return val
		}
		if i+1 < len(args) {
			return args[i+1]
		}
	}
	return os.Getenv(EnvConfig)
}

// ReadFile reads a settings file: NAME=VALUE lines, # comments, values
// optionally in double quotes. Only MANTLE_ names are allowed, so that a
// typo is an error and not a setting silently ignored.
func ReadFile(path string) (map[string]string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("settings file: %w", err)
	}
	vals := map[string]string{}
	for n, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || !known[k] {
			return nil, fmt.Errorf("%s:%d: want NAME=VALUE with a MANTLE_ setting name (such as MANTLE_STORE=postgres://…), got %q", path, n+1, line)
		}
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			v = v[1 : len(v)-1]
		}
		vals[k] = v
	}
	return vals, nil
}

var known = map[string]bool{
	EnvProject: true, EnvData: true, EnvStore: true, EnvNats: true, EnvCluster: true, EnvNode: true, EnvHTTP: true,
	EnvAdminToken: true, EnvMaxBody: true, EnvLogLevel: true, EnvRateLimit: true, EnvAccessTTL: true, EnvSignIn: true, EnvListCache: true,
	EnvPublicURL: true, EnvKafka: true, EnvWasmCache: true, EnvBenchNative: true, EnvWebhookPrivate: true,
	EnvReadTimeout: true, EnvWriteTimeout: true, EnvIdleTimeout: true, EnvMaxConns: true, EnvMaxConnsPerIP: true,
	EnvQueryTimeout: true, EnvAnonQuery: true, EnvMemoryLimit: true, EnvCORSOrigins: true, EnvCORSCredentials: true, EnvSignupTokens: true,
}
