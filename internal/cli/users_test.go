package cli_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mantlehq/mantle/internal/app"
	"github.com/mantlehq/mantle/internal/config"
)

// users create makes the first administrator, who can then sign in; the
// replayed copy of the data folder keeps the password and the keys.
func TestUsersCreateAndReplay(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "proj")
	if code, _, stderr := run(t, "init", dir); code != 0 {
		t.Fatal(stderr)
	}
	code, out, stderr := run(t, "users", "create", "--project", dir, "--email", "Root@Example.com", "--password", "s3cret-pass", "--role", "admin")
	if code != 0 || !strings.Contains(out, `"email":"root@example.com"`) || !strings.Contains(out, `"roles":["admin"]`) {
		t.Fatalf("users create: %d %q %q", code, out, stderr)
	}
	if code, _, stderr := run(t, "users", "create", "--project", dir, "--email", "x@example.com", "--password", "short"); code != 1 || !strings.Contains(stderr, "at least 8") {
		t.Errorf("a short password: %d %q", code, stderr)
	}
	if code, _, _ := run(t, "users", "create", "--project", dir, "--email", "root@example.com", "--password", "another-pass"); code != 1 {
		t.Errorf("a taken email: exit %d", code)
	}
	if code, out, stderr := run(t, "keys", "rotate", "--project", dir); code != 0 || !strings.Contains(out, "New signing key") {
		t.Errorf("keys rotate: %d %q %q", code, out, stderr)
	}
	into := filepath.Join(t.TempDir(), "copy")
	if code, out, stderr := run(t, "replay", "--data", filepath.Join(dir, "mantle_data"), "--into", into); code != 0 || !strings.Contains(out, "secrets") {
		t.Fatalf("replay: %d %q %q", code, out, stderr)
	}
	for _, data := range []string{filepath.Join(dir, "mantle_data"), into} {
		cfg := config.Default()
		cfg.Project, cfg.Data = dir, data
		cfg.Validate()
		a, err := app.Open(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		tok, err := a.Auth.Login(context.Background(), "root@example.com", "s3cret-pass", "127.0.0.1")
		if err != nil {
			t.Errorf("%s: login: %v", data, err)
		} else if id, _, err := a.Auth.Authenticate(context.Background(), "Bearer "+tok.AccessToken); err != nil || !id.IsAdmin() {
			t.Errorf("%s: the token: %+v %v", data, id, err)
		}
		a.Close()
	}
}
