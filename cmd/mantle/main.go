// Command mantle is a backend in one binary: see `mantle help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/mantlehq/mantle/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
