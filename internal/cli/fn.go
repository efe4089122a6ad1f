package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/mantlehq/mantle"
	"github.com/mantlehq/mantle/internal/app"
	"github.com/mantlehq/mantle/internal/config"
	"github.com/mantlehq/mantle/internal/fn"
	"github.com/mantlehq/mantle/internal/schema"
)

// fnCmd is `mantle fn invoke NAME --data JSON`: run a function once, on
// the data folder (server stopped), or through a running server with
// --url and --token.
func fnCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) < 2 || args[0] != "invoke" || strings.HasPrefix(args[1], "-") {
		fmt.Fprintln(stderr, "usage: mantle fn invoke NAME [--data JSON] [--project DIR --data-dir DIR | --url URL --token TOKEN]")
		return errUsage
	}
	name := args[1]
	// --data is the invocation's data here, so the data folder is
	// --data-dir (or MANTLE_DATA).
	fs := newFlags("fn invoke", stderr)
	cfg := config.Default()
	if err := cfg.FromEnv(os.Getenv); err != nil {
		return err
	}
	fs.StringVar(&cfg.Project, "project", cfg.Project, "project folder (with mantle.yaml)")
	fs.StringVar(&cfg.Data, "data-dir", cfg.Data, "data folder (default PROJECT/mantle_data); the server must be stopped")
	data := fs.String("data", "null", "the invocation's data, JSON")
	url := fs.String("url", "", "a running server to invoke through (POST /api/functions/NAME/invoke); empty: run here, on the data folder")
	token := fs.String("token", "", "with --url: an administrator's bearer token (default $MANTLE_ADMIN_TOKEN)")
	if err := fs.Parse(args[2:]); err != nil {
		return flagErr(err)
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	if !json.Valid([]byte(*data)) {
		return fmt.Errorf("--data is not JSON")
	}
	if *url != "" {
		if *token == "" {
			*token = cfg.AdminToken
		}
		return invokeRemote(ctx, *url, *token, name, []byte(*data), stdout)
	}
	return invokeLocal(ctx, cfg, name, []byte(*data), stdout, stderr)
}

func invokeRemote(ctx context.Context, base, token, name string, data []byte, stdout io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(base, "/")+"/api/functions/"+name+"/invoke", bytes.NewReader(data))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(body))
	}
	stdout.Write(body)
	return nil
}

// invokeLocal opens the data folder as serve does (applying safe schema
// steps), loads the one function and runs it as an administrator,
// printing its result and then its log.
func invokeLocal(ctx context.Context, cfg config.Config, name string, data []byte, stdout, stderr io.Writer) error {
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	a, err := app.Open(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.Close()
	if err := a.ApplyProject(ctx); err != nil {
		return err
	}
	found := false
	for _, d := range a.Functions() {
		if d.Name == name {
			found = true
			if err := a.Funcs.Load(ctx, []schema.Function{d}); err != nil {
				return err
			}
		}
	}
	if !found {
		return fmt.Errorf("the project has no function %q", name)
	}
	start := time.Now()
	res, err := a.Funcs.Invoke(mantle.WithIdentity(ctx, mantle.Identity{ID: "mantle:cli", Roles: []string{"admin"}}), name, data)
	elapsed := time.Since(start)
	if lines, lerr := a.Funcs.Logs(name, 0, 1000); lerr == nil {
		for _, l := range lines {
			fmt.Fprintf(stderr, "%s %-5s %s\n", l.Time.Format("15:04:05.000"), l.Level, l.Message)
		}
	}
	if err != nil {
		return errors.Join(fmt.Errorf("after %s", elapsed.Round(time.Microsecond)), fn.HTTPError(name, err))
	}
	b, _ := json.MarshalIndent(res, "", "  ")
	fmt.Fprintf(stdout, "%s\n", b)
	fmt.Fprintf(stderr, "ran in %s\n", elapsed.Round(time.Microsecond))
	return nil
}
