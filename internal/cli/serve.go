package cli

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime"
	"runtime/debug"

	"github.com/mantlehq/mantle/internal/app"
	"github.com/mantlehq/mantle/internal/config"
	"github.com/mantlehq/mantle/internal/fn"
	"github.com/mantlehq/mantle/internal/store/sqlite"
)

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("serve", stderr)
	cfg, err := config.Load(fs, args, true)
	if err != nil {
		return flagErr(err)
	}
	log := newLogger(stderr, cfg.LogLevel)
	if os.Getenv("GOMAXPROCS") == "" {
		// Requests spend much of their time in short blocking system calls
		// (socket writes, WAL writes, fsync); with twice as many Ps as
		// CPUs, runnable goroutines (the single writer above all) do not
		// wait behind a P held across one. Measured in docs/BENCHMARKS.md.
		runtime.GOMAXPROCS(2 * runtime.NumCPU())
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		// The memory budget bounds the process whatever GOGC lets the
		// heap grow to.
		app.GovernMemory(ctx, cfg, log, fn.Footprint)
	}
	if os.Getenv("GOGC") == "" {
		// The server keeps little live data; collecting less often trades
		// a little memory for less CPU on every request.
		debug.SetGCPercent(400)
	}
	// The ports first: a server that cannot listen changes nothing (no
	// database created, no schema applied).
	ln, err := net.Listen("tcp", cfg.HTTP)
	if err != nil {
		return fmt.Errorf("--http: %w", err)
	}
	defer ln.Close()
	var kln net.Listener
	if cfg.Kafka != "" {
		if kln, err = net.Listen("tcp", cfg.Kafka); err != nil {
			return fmt.Errorf("--kafka: %w", err)
		}
		defer kln.Close()
	}
	p, err := app.LoadProjectFiles(cfg.Project)
	if err != nil {
		return err // a broken project creates nothing either
	}
	if err := app.CheckProject(p, cfg); err != nil {
		return err
	}
	a, err := app.Open(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.Close()
	if err := a.ApplyLoaded(ctx, p); err != nil {
		return err
	}
	if err := a.StartWorkers(ctx); err != nil {
		return err
	}
	if addr := os.Getenv("MANTLE_PPROF_ADDR"); addr != "" {
		// Profiling for operators: net/http/pprof on a separate, local address.
		go http.ListenAndServe(addr, pprofMux(a))
	}
	if kln != nil {
		go func() {
			if err := a.ServeKafka(ctx, kln); err != nil {
				a.Log.Error("kafka listener", "err", err)
			}
		}()
		a.Log.Info("serving the log over the Kafka protocol", "addr", kln.Addr().String())
	}
	fmt.Fprintf(stdout, "Mantle is serving %s on http://%s (data in %s)\n", a.Engine.Schema().Name, ln.Addr(), cfg.Data)
	return a.Serve(ctx, ln)
}

func pprofMux(a *app.App) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/writer", func(w http.ResponseWriter, r *http.Request) {
		ws, ok := a.Store.(interface{ Stats() sqlite.WriterStats })
		if !ok {
			http.Error(w, "the store keeps no writer statistics", http.StatusNotFound)
			return
		}
		s := ws.Stats()
		fmt.Fprintf(w, "batches %d writes %d busy %s commit %s checkpoint holds %d held %s max %s\n",
			s.Batches, s.Writes, s.Busy, s.Commit, s.Holds, s.Held, s.MaxHeld)
	})
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
