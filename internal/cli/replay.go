package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/mantlehq/mantle/internal/app"
	"github.com/mantlehq/mantle/internal/auth"
	"github.com/mantlehq/mantle/internal/replay"
	"github.com/mantlehq/mantle/internal/store/sqlite"
)

func replayCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("replay", stderr)
	data := fs.String("data", "mantle_data", "the data folder whose event log is read")
	into := fs.String("into", "", "a new, empty data folder to rebuild")
	if err := fs.Parse(args); err != nil {
		return flagErr(err)
	}
	if *into == "" {
		fmt.Fprintln(stderr, "usage: mantle replay --data DIR --into NEWDIR")
		return errUsage
	}
	if _, err := os.Stat(filepath.Join(*data, sqlite.FileName)); err != nil {
		return fmt.Errorf("no database in %s", *data)
	}
	if _, err := os.Stat(filepath.Join(*into, sqlite.FileName)); !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s already has a database; replay into a new folder", *into)
	}
	src, err := sqlite.Open(ctx, *data, sqlite.Options{NoLock: true})
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := sqlite.Open(ctx, *into, sqlite.Options{})
	if err != nil {
		return err
	}
	defer dst.Close()
	n, err := replay.Run(ctx, src, dst)
	if err != nil {
		return err
	}
	var kinds []string
	for _, k := range app.StateKinds() {
		if k.Copy {
			kinds = append(kinds, k.Name)
		}
	}
	secrets, err := replay.CopySecrets(ctx, src, dst, kinds)
	if err != nil {
		return err
	}
	if keys, err := os.ReadFile(filepath.Join(*data, auth.KeysFile)); err == nil {
		if err := os.WriteFile(filepath.Join(*into, auth.KeysFile), keys, 0o600); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "Replayed %d events from %s into %s, and copied %d secrets and the signing keys.\n", n, *data, *into, secrets)
	return nil
}
