package config

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSettingsFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mantle.env")
	os.WriteFile(path, []byte(`# the cluster's settings
MANTLE_STORE="postgres://mantle@db:5432/app?sslmode=disable"
MANTLE_NATS=nats://nats:4222
MANTLE_HTTP=127.0.0.1:9000
MANTLE_NODE=from-file
`), 0o600)
	t.Setenv("MANTLE_NODE", "from-env") // the environment overrides the file
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c, err := Load(fs, []string{"--config", path, "--http", "127.0.0.1:9001"}, true) // flags override both
	if err != nil {
		t.Fatal(err)
	}
	if c.Store != "postgres://mantle@db:5432/app?sslmode=disable" || c.Nats != "nats://nats:4222" || c.Node != "from-env" || c.HTTP != "127.0.0.1:9001" {
		t.Fatalf("settings: store %q nats %q node %q http %q", c.Store, c.Nats, c.Node, c.HTTP)
	}

	os.WriteFile(path, []byte("MANTLE_STOER=postgres://x\n"), 0o600)
	fs = flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if _, err := Load(fs, []string{"--config=" + path}, true); err == nil || !strings.Contains(err.Error(), "mantle.env:1") {
		t.Fatalf("a misspelt name: %v", err)
	}
}

func TestListCache(t *testing.T) {
	load := func(env string, args ...string) (Config, error) {
		t.Setenv(EnvListCache, env)
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		return Load(fs, args, true)
	}
	for _, tc := range []struct {
		env  string
		args []string
		want int
	}{
		{"", nil, 32},
		{"0", nil, 0},
		{"64", nil, 64},
		{"64", []string{"--list-cache", "8"}, 8},
	} {
		c, err := load(tc.env, tc.args...)
		if err != nil || c.ListCacheMB != tc.want {
			t.Errorf("env %q args %v: %d MiB, %v; want %d", tc.env, tc.args, c.ListCacheMB, err, tc.want)
		}
	}
	for _, bad := range []string{"-1", "lots"} {
		if _, err := load(bad); err == nil {
			t.Errorf("%s=%s was taken", EnvListCache, bad)
		}
	}
}

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{"1024": 1024, "128MiB": 128 << 20, "2GiB": 2 << 30, "512mb": 512 << 20, "64 M": 64 << 20, "10k": 10 << 10} {
		if got, err := ParseBytes(in); err != nil || got != want {
			t.Errorf("%q: %d %v, want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "lots", "-5MiB", "1.5GiB", "9999999999GiB"} {
		if _, err := ParseBytes(bad); err == nil {
			t.Errorf("%q was accepted", bad)
		}
	}
}
