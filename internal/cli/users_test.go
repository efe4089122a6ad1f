package cli_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
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

// A command that fails creates nothing: users create with a weak password
// or a bad email, plan with a mistyped --data, and serve on a port that is
// taken leave no database behind.
func TestFailingCommandsCreateNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "proj")
	if code, _, stderr := run(t, "init", dir); code != 0 {
		t.Fatal(stderr)
	}
	data := filepath.Join(dir, "mantle_data")
	gone := func(what string) {
		t.Helper()
		if _, err := os.Stat(data); !os.IsNotExist(err) {
			t.Errorf("%s left %s behind", what, data)
			os.RemoveAll(data)
		}
	}
	if code, _, stderr := run(t, "users", "create", "--project", dir, "--email", "x@example.com", "--password", "password1"); code != 1 || !strings.Contains(stderr, "common") {
		t.Errorf("a common password: %d %q", code, stderr)
	}
	gone("users create with a common password")
	if code, _, _ := run(t, "users", "create", "--project", dir, "--email", "not an email", "--password", "a fine passphrase"); code != 1 {
		t.Errorf("a bad email: exit %d", code)
	}
	gone("users create with a bad email")
	typo := filepath.Join(t.TempDir(), "mantel_data")
	if code, out, stderr := run(t, "plan", "--project", dir, "--data", typo); code != 0 || !strings.Contains(out, "No database") || !strings.Contains(out, "create collection") {
		t.Errorf("plan on a missing data folder: %d %q %q", code, out, stderr)
	}
	if _, err := os.Stat(typo); !os.IsNotExist(err) {
		t.Errorf("plan created %s", typo)
	}
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	if code, _, stderr := run(t, "serve", "--project", dir, "--http", taken.Addr().String()); code != 1 || !strings.Contains(stderr, "--http") {
		t.Errorf("serve on a taken port: %d %q", code, stderr)
	}
	gone("serve on a taken port")
}

// plan, apply and serve judge a project alike: a webhook or an automation
// step to a loopback address is refused by all three before anything is
// applied, and allowed by all three with --webhook-allow-private.
func TestOneValidationForPlanApplyServe(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "proj")
	if code, _, stderr := run(t, "init", dir); code != 0 {
		t.Fatal(stderr)
	}
	f, _ := os.OpenFile(filepath.Join(dir, "mantle.yaml"), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("\nwebhooks:\n  local:\n    url: http://127.0.0.1:9/hook\nautomations:\n  ping:\n    hook: true\n    do:\n      - webhook: { url: http://localhost:9/x }\n")
	f.Close()
	for _, cmd := range [][]string{{"plan"}, {"apply"}, {"serve", "--http", "127.0.0.1:0"}} {
		code, _, stderr := run(t, append(cmd, "--project", dir)...)
		if code != 1 || !strings.Contains(stderr, "webhook local") || !strings.Contains(stderr, "automation ping step step1") {
			t.Errorf("%s: %d %q", cmd[0], code, stderr)
		}
		if _, err := os.Stat(filepath.Join(dir, "mantle_data")); !os.IsNotExist(err) {
			t.Fatalf("%s left a data folder behind", cmd[0])
		}
	}
	if code, out, stderr := run(t, "apply", "--project", dir, "--webhook-allow-private"); code != 0 {
		t.Errorf("apply --webhook-allow-private: %d %q %q", code, out, stderr)
	}
}
