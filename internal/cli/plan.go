package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/mantlehq/mantle/internal/app"
	"github.com/mantlehq/mantle/internal/config"
	"github.com/mantlehq/mantle/internal/engine"
	"github.com/mantlehq/mantle/internal/store/sqlite"
)

// openEngine opens the data folder for a one-shot command.
func openEngine(ctx context.Context, cfg config.Config, lock bool) (*sqlite.DB, *engine.Engine, error) {
	st, err := sqlite.Open(ctx, cfg.Data, sqlite.Options{NoLock: !lock})
	if err != nil {
		return nil, nil, err
	}
	eng, err := engine.New(ctx, st)
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	return st, eng, nil
}

func planCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("plan", stderr)
	cfg, err := config.Load(fs, args, false)
	if err != nil {
		return flagErr(err)
	}
	s, err := app.LoadProject(cfg.Project)
	if err != nil {
		return err
	}
	st, eng, err := openEngine(ctx, cfg, false)
	if err != nil {
		return err
	}
	defer st.Close()
	fmt.Fprint(stdout, eng.Plan(s))
	return nil
}

func apply(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("apply", stderr)
	destructive := fs.Bool("allow-destructive", false, "also run steps that lose data")
	cfg, err := config.Load(fs, args, false)
	if err != nil {
		return flagErr(err)
	}
	s, err := app.LoadProject(cfg.Project)
	if err != nil {
		return err
	}
	st, eng, err := openEngine(ctx, cfg, true)
	if err != nil {
		return err
	}
	defer st.Close()
	mode := engine.RefuseDestructive
	if *destructive {
		mode = engine.AllowDestructive
	}
	ran, _, err := eng.Apply(ctx, s, mode)
	if err != nil {
		fmt.Fprint(stderr, eng.Plan(s))
		return err
	}
	if ran == nil {
		fmt.Fprintln(stdout, "No changes: the database matches the project files.")
		return nil
	}
	fmt.Fprint(stdout, ran)
	fmt.Fprintln(stdout, "Applied.")
	return nil
}
