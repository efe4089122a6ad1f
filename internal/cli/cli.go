// Package cli implements the mantle command line: one file per
// subcommand.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
)

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"serve", "apply safe schema changes, then serve the API", serve},
		{"init", "write a new project folder with a commented example", initProject},
		{"plan", "print the steps that bring the database to the project files", planCmd},
		{"apply", "run those steps (destructive ones need --allow-destructive)", apply},
		{"users", "create a user, such as the first administrator (server stopped)", usersCmd},
		{"keys", "rotate the token signing keys (server stopped)", keysCmd},
		{"replay", "rebuild a data folder from its event log alone", replayCmd},
		{"fn", "invoke a function once: fn invoke NAME --data JSON", fnCmd},
		{"bench", "load a running server and report requests/s and latency", benchCmd},
	}
}

// errUsage marks an error whose usage text was already printed.
var errUsage = errors.New("usage")

// Main runs the command line and returns the process exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name == args[0] {
			err := c.run(ctx, args[1:], stdout, stderr)
			switch {
			case err == nil:
				return 0
			case errors.Is(err, flag.ErrHelp):
				return 0
			case errors.Is(err, errUsage):
				return 2
			}
			fmt.Fprintf(stderr, "mantle %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "mantle: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	var b strings.Builder
	b.WriteString("Mantle: a backend in one binary.\n\nUsage: mantle COMMAND [flags]\n\nCommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(&b, "  %-8s %s\n", c.name, c.summary)
	}
	b.WriteString("\nRun `mantle COMMAND -h` for a command's flags.\n")
	io.WriteString(w, b.String())
}

func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("mantle "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	l.UnmarshalText([]byte(level))
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}

// flagErr turns a flag parse error into errUsage (the flag package has
// already printed it).
func flagErr(err error) error {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return err
	}
	if strings.Contains(err.Error(), "flag provided but not defined") || strings.Contains(err.Error(), "invalid value") {
		return errUsage
	}
	return err
}
