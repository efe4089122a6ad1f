package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/mantlehq/mantle/internal/app"
	"github.com/mantlehq/mantle/internal/auth"
	"github.com/mantlehq/mantle/internal/config"
)

// usersCmd manages users from the command line, for the first
// administrator above all. It opens the data folder itself, so the
// server must be stopped.
func usersCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "create" {
		fmt.Fprintln(stderr, "usage: mantle users create --email EMAIL (--password PW | --password-stdin) [--role admin]...")
		return errUsage
	}
	fs := newFlags("users create", stderr)
	email := fs.String("email", "", "the user's email address")
	password := fs.String("password", "", "the password (prefer --password-stdin: flags end up in shell history)")
	fromStdin := fs.Bool("password-stdin", false, "read the password from the first line of standard input")
	var roles multiFlag
	fs.Var(&roles, "role", "a role to give the user, such as admin (repeatable)")
	cfg, err := config.Load(fs, args[1:], false)
	if err != nil {
		return flagErr(err)
	}
	if *fromStdin {
		line, err := bufio.NewReader(os.Stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		*password = strings.TrimRight(line, "\r\n")
	}
	if *email == "" || *password == "" {
		fmt.Fprintln(stderr, "usage: mantle users create --email EMAIL (--password PW | --password-stdin) [--role admin]...")
		return errUsage
	}
	// Check what can be checked before touching the data folder: a command
	// that fails creates nothing (no database, no migrated schema).
	if _, err := auth.NormalizeEmail(*email); err != nil {
		return err
	}
	if err := auth.CheckPassword(*password); err != nil {
		return err
	}
	if _, err := app.LoadProjectFiles(cfg.Project); err != nil {
		return err
	}
	a, err := app.Open(ctx, cfg, newLogger(stderr, "warn"))
	if err != nil {
		return err
	}
	defer a.Close()
	if err := a.ApplyProject(ctx); err != nil {
		return err
	}
	u, err := a.Auth.CreateUser(ctx, *email, *password, roles)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Created user %s\n", u)
	return nil
}

// keysCmd rotates the token signing keys.
func keysCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "rotate" {
		fmt.Fprintln(stderr, "usage: mantle keys rotate [--data DIR]")
		return errUsage
	}
	fs := newFlags("keys rotate", stderr)
	cfg, err := config.Load(fs, args[1:], false)
	if err != nil {
		return flagErr(err)
	}
	a, err := app.Open(ctx, cfg, newLogger(stderr, "warn"))
	if err != nil {
		return err
	}
	defer a.Close()
	if err := a.Auth.Keys().Rotate(); err != nil {
		return err
	}
	ids := a.Auth.Keys().IDs()
	fmt.Fprintf(stdout, "New signing key %s; older keys still verify: %s\n", ids[0], strings.Join(ids[1:], ", "))
	return nil
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }
