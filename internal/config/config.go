// Package config holds the server settings: defaults, then environment
// variables, then command-line flags; validated once.
package config

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
)

// Config is the server's settings.
type Config struct {
	Project      string // project folder; default "."
	Data         string // data folder; default PROJECT/mantle_data
	HTTP         string // listen address; default 127.0.0.1:8090
	AdminToken   string // bearer token that acts as an administrator; empty disables it
	MaxBodyBytes int64  // request body limit; default 1 MiB
	LogLevel     string // debug, info, warn, error
}

// Environment variables read by Load.
const (
	EnvProject    = "MANTLE_PROJECT"
	EnvData       = "MANTLE_DATA"
	EnvHTTP       = "MANTLE_HTTP"
	EnvAdminToken = "MANTLE_ADMIN_TOKEN"
	EnvMaxBody    = "MANTLE_MAX_BODY_BYTES"
	EnvLogLevel   = "MANTLE_LOG_LEVEL"
)

// Default returns the settings before environment and flags.
func Default() Config {
	return Config{Project: ".", HTTP: "127.0.0.1:8090", MaxBodyBytes: 1 << 20, LogLevel: "info"}
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
	set(&c.HTTP, EnvHTTP)
	set(&c.AdminToken, EnvAdminToken)
	set(&c.LogLevel, EnvLogLevel)
	if v := getenv(EnvMaxBody); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("%s: %q is not a number of bytes", EnvMaxBody, v)
		}
		c.MaxBodyBytes = n
	}
	return nil
}

// Flags registers the flags that override the settings.
func (c *Config) Flags(fs *flag.FlagSet, serve bool) {
	fs.StringVar(&c.Project, "project", c.Project, "project folder (with mantle.yaml)")
	fs.StringVar(&c.Data, "data", c.Data, "data folder (default PROJECT/mantle_data)")
	if serve {
		fs.StringVar(&c.HTTP, "http", c.HTTP, "HTTP listen address")
		fs.Int64Var(&c.MaxBodyBytes, "max-body", c.MaxBodyBytes, "request body limit in bytes")
		fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error")
	}
}

// Validate fills derived defaults and checks the settings.
func (c *Config) Validate() error {
	if c.Data == "" {
		c.Data = filepath.Join(c.Project, "mantle_data")
	}
	if _, _, err := net.SplitHostPort(c.HTTP); err != nil {
		return fmt.Errorf("--http %q: want HOST:PORT, such as 127.0.0.1:8090", c.HTTP)
	}
	if c.MaxBodyBytes < 1024 {
		return errors.New("the body limit must be at least 1024 bytes")
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log level %q: use debug, info, warn or error", c.LogLevel)
	}
	return nil
}

// Load applies defaults, the environment and the flags in args.
func Load(fs *flag.FlagSet, args []string, serve bool) (Config, error) {
	c := Default()
	if err := c.FromEnv(os.Getenv); err != nil {
		return c, err
	}
	c.Flags(fs, serve)
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	return c, c.Validate()
}
