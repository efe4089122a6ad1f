package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/mantlehq/mantle/internal/app"
	"github.com/mantlehq/mantle/internal/automation"
	"github.com/mantlehq/mantle/internal/config"
	"github.com/mantlehq/mantle/internal/engine"
	"github.com/mantlehq/mantle/internal/fn"
	"github.com/mantlehq/mantle/internal/plan"
	"github.com/mantlehq/mantle/internal/schema"
	"github.com/mantlehq/mantle/internal/store"
	"github.com/mantlehq/mantle/internal/store/sqlite"
)

// openEngine opens the data folder for a one-shot command.
func openEngine(ctx context.Context, cfg config.Config, lock bool) (store.Store, *engine.Engine, error) {
	st, err := app.OpenStore(ctx, cfg, lock, nil)
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
	p, err := app.LoadProjectFiles(cfg.Project)
	if err != nil {
		return err
	}
	if err := app.CheckProject(p, cfg); err != nil {
		return err
	}
	if !cfg.Postgres() && !exists(filepath.Join(cfg.Data, sqlite.FileName)) {
		// plan only reads: a mistyped --data must not create a database.
		// The plan is against an empty one, which is what apply would make.
		fmt.Fprintf(stdout, "No database in %s yet: the plan starts from an empty one (apply or serve creates it).\n\n", cfg.Data)
		fmt.Fprint(stdout, plan.New(nil, p.Schema))
		if err := checkAutomations(p.Automations, stdout); err != nil {
			return err
		}
		if !exists(cfg.WasmCache) { // compile to a scratch folder, not into a data folder that does not exist
			tmp, err := os.MkdirTemp("", "mantle-plan-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(tmp)
			cfg.WasmCache = tmp
		}
		return checkFunctions(ctx, cfg, p.Functions, stdout)
	}
	st, eng, err := openEngine(ctx, cfg, false)
	if err != nil {
		return err
	}
	defer st.Close()
	fmt.Fprint(stdout, eng.Plan(p.Schema))
	if err := checkAutomations(p.Automations, stdout); err != nil {
		return err
	}
	return checkFunctions(ctx, cfg, p.Functions, stdout)
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// checkAutomations compiles the automations' expressions.
func checkAutomations(defs []schema.Automation, stdout io.Writer) error {
	if len(defs) == 0 {
		return nil
	}
	if err := automation.Check(defs); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nAutomations: %d, every expression compiles.\n", len(defs))
	return nil
}

// checkFunctions builds and compiles the project's functions into the
// data folder's cache (so that serve loads them at warm speed) and checks
// that they speak the ABI; a function that would not load fails the
// command.
func checkFunctions(ctx context.Context, cfg config.Config, defs []schema.Function, stdout io.Writer) error {
	if len(defs) == 0 {
		return nil
	}
	errs := fn.Validate(ctx, cfg.Project, cfg.WasmCache, defs)
	fmt.Fprintf(stdout, "\nFunctions:\n")
	for _, d := range defs {
		if err := errs[d.Name]; err != nil {
			fmt.Fprintf(stdout, "  ✗ %s: %v\n", d.Name, err)
			continue
		}
		var triggers []string
		if d.HTTP != nil {
			triggers = append(triggers, d.HTTP.Method+" "+d.HTTP.Path)
		}
		for _, t := range d.On {
			triggers = append(triggers, "on "+t.String())
		}
		if d.Cron != "" {
			triggers = append(triggers, "cron "+d.Cron)
		}
		if len(triggers) == 0 {
			triggers = append(triggers, "invoked by automations or mantle fn invoke")
		}
		fmt.Fprintf(stdout, "  ✓ %s (%s)\n", d.Name, strings.Join(triggers, ", "))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%d of %d functions would not load", len(errs), len(defs))
	}
	return nil
}

func apply(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("apply", stderr)
	destructive := fs.Bool("allow-destructive", false, "also run steps that lose data")
	cfg, err := config.Load(fs, args, false)
	if err != nil {
		return flagErr(err)
	}
	p, err := app.LoadProjectFiles(cfg.Project)
	if err != nil {
		return err
	}
	if err := app.CheckProject(p, cfg); err != nil {
		return err
	}
	s := p.Schema
	if err := checkAutomations(p.Automations, stdout); err != nil {
		return err
	}
	if err := checkFunctions(ctx, cfg, p.Functions, stdout); err != nil {
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
