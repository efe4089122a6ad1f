package fn

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
)

// The Go benchmarks of docs/BENCHMARKS.md ("Functions"): a 3.4 MB Go
// guest (testdata/guest) and a minimal hand-made module.

var benchInput = func() []byte {
	b, _ := json.Marshal(map[string]any{"abi": 1, "function": "guest", "trigger": "invoke", "data": json.RawMessage(`{"do":"noop"}`)})
	return b
}()

func quiet(int, string) {}

// BenchmarkWarmCall is one call of a reused reactor instance.
func BenchmarkWarmCall(b *testing.B) {
	m := compile(b, Reactor, Limits{})
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		if _, err := m.Call(ctx, benchInput, nil, quiet); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkColdStart is a fresh instance and one call: a command. It
// reports the median and the 99th percentile too.
func BenchmarkColdStart(b *testing.B) {
	m := compile(b, Command, Limits{})
	ctx := context.Background()
	var took []time.Duration
	for b.Loop() {
		start := time.Now()
		if _, err := m.Call(ctx, benchInput, nil, quiet); err != nil {
			b.Fatal(err)
		}
		took = append(took, time.Since(start))
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(took[len(took)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkMinimalColdStart is a fresh instance and one call of the
// smallest module of the ABI.
func BenchmarkMinimalColdStart(b *testing.B) {
	m, err := Compile(context.Background(), nil, "minimal", minimal(), nil, Limits{})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close(context.Background())
	ctx := context.Background()
	for b.Loop() {
		if _, err := m.Call(ctx, nil, nil, quiet); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCompile compiles the Go guest without a cache and from a
// warm file cache.
func BenchmarkCompile(b *testing.B) {
	wasm := guest(b, Reactor)
	ctx := context.Background()
	for _, cached := range []bool{false, true} {
		b.Run(fmt.Sprintf("cached=%v", cached), func(b *testing.B) {
			dir := b.TempDir()
			if cached {
				c, _ := wazero.NewCompilationCacheWithDir(dir)
				m, err := Compile(ctx, c, "guest", wasm, nil, Limits{})
				if err != nil {
					b.Fatal(err)
				}
				m.Close(ctx)
				c.Close(ctx)
			}
			for b.Loop() {
				var c wazero.CompilationCache
				if cached {
					c, _ = wazero.NewCompilationCacheWithDir(dir)
				} else {
					c = wazero.NewCompilationCache()
				}
				m, err := Compile(ctx, c, "guest", wasm, nil, Limits{Warm: 1})
				if err != nil {
					b.Fatal(err)
				}
				m.Close(ctx)
				c.Close(ctx)
			}
		})
	}
}

// TestMemoryPerInstance reports the linear memory of a live reactor
// instance after a call (not an assertion: a number for the docs).
func TestMemoryPerInstance(t *testing.T) {
	if os.Getenv("MANTLE_BENCH_REPORT") == "" {
		t.Skip("set MANTLE_BENCH_REPORT=1 to print the memory of an instance")
	}
	m := compile(t, Reactor, Limits{})
	if _, err := m.Call(context.Background(), benchInput, nil, quiet); err != nil {
		t.Fatal(err)
	}
	in := <-m.idle
	t.Logf("a live reactor instance of the Go guest: %d KiB of linear memory", in.mod.Memory().Size()>>10)
	m.idle <- in
	_ = time.Now
}

// BenchmarkEchoGuest is one warm call of the bench project's echo
// function (examples/bench/functions/echo) on an HTTP invocation, as
// `mantle bench --workload functions` sends it.
func BenchmarkEchoGuest(b *testing.B) {
	wasm, err := BuildGo(context.Background(), "../../examples/bench/functions/echo", Reactor)
	if err != nil {
		b.Fatal(err)
	}
	in, _ := json.Marshal(Invocation{ABI: 1, Function: "echo", Trigger: TriggerHTTP, Request: &Request{Method: "POST", Path: "/fn/echo",
		Headers: map[string]string{"Content-Type": "application/json", "User-Agent": "mantle-bench"},
		Body:    `{"account":"acc_1","amount":120.5,"country":"NL","note":"a benchmark payment"}`}})
	for _, gogc := range []string{""} {
		b.Run("GOGC="+gogc, func(b *testing.B) {
			env := map[string]string{}
			if gogc != "" {
				env["GOGC"] = gogc
			}
			m, err := Compile(context.Background(), testCache(b), "echo", wasm, env, Limits{})
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close(context.Background())
			ctx := context.Background()
			for b.Loop() {
				if _, err := m.Call(ctx, in, nil, quiet); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPrepare is the work done on a module's bytes before wazero
// sees them (joining data segments, the interrupt rewrite), which a cache
// of its own cannot save: the module's functions share it
// (prepareOnce).
func BenchmarkPrepare(b *testing.B) {
	wasm := guest(b, Reactor)
	b.SetBytes(int64(len(wasm)))
	for b.Loop() {
		if _, err := interruptible(mergeData(wasm)); err != nil {
			b.Fatal(err)
		}
	}
}
