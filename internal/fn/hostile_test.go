package fn

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// minimal is a command that writes {} as its output through the host:
// the smallest module of the ABI.
func minimal() []byte {
	// memory[0..2] = "{}" (i32.store16 of 0x7d7b), then output(0, 2).
	return wmodule{
		imports: []wimport{{"mantle", "output", 2, 1}},
		funcs: []wfunc{{code: cat(i32const(0), i32const(0x7d7b), []byte{0x3b, 0x01, 0x00}, // i32.store16 align=1 offset=0
			i32const(0), i32const(2), callFn(0), []byte{opDrop})}},
		exports: map[string]int{"_start": 1},
		memMin:  1,
	}.bytes()
}

func compileBytes(t *testing.T, wasm []byte, l Limits) (*Module, error) {
	t.Helper()
	m, err := Compile(context.Background(), nil, "hostile", wasm, nil, l)
	if err == nil {
		t.Cleanup(func() { m.Close(context.Background()) })
	}
	return m, err
}

func TestMinimalModule(t *testing.T) {
	m, err := compileBytes(t, minimal(), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	out, err := m.Call(context.Background(), []byte(`{}`), nil, func(int, string) {})
	if err != nil || string(out) != "{}" {
		t.Fatalf("%q %v", out, err)
	}
}

func TestRefusedModules(t *testing.T) {
	start := map[string]int{"_start": 0}
	for _, tc := range []struct {
		name string
		wasm []byte
		want string
	}{
		{"not wasm", []byte("hello"), "not a valid WebAssembly module"},
		{"huge memory", wmodule{funcs: []wfunc{{}}, exports: start, memMin: 65536}.bytes(), "over limit of 1024 pages (64 Mi)"},
		{"unknown host call", wmodule{imports: []wimport{{"mantle", "shell", 0, 0}}, funcs: []wfunc{{}}, exports: map[string]int{"_start": 1}, memMin: 1}.bytes(), "imports mantle.shell"},
		{"wrong signature", wmodule{imports: []wimport{{"mantle", "log", 1, 0}}, funcs: []wfunc{{}}, exports: map[string]int{"_start": 1}, memMin: 1}.bytes(), "wrong signature"},
		{"other module", wmodule{imports: []wimport{{"env", "system", 0, 0}}, funcs: []wfunc{{}}, exports: map[string]int{"_start": 1}, memMin: 1}.bytes(), `imports from module "env"`},
		{"no entry point", wmodule{funcs: []wfunc{{}}, exports: map[string]int{"main": 0}, memMin: 1}.bytes(), "exports neither"},
		{"bad handle", wmodule{funcs: []wfunc{{params: 1}}, exports: map[string]int{"mantle_handle": 0}, memMin: 1}.bytes(), "wrong signature"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := compileBytes(t, tc.wasm, Limits{MemoryBytes: 64 << 20})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%v, want an error with %q", err, tc.want)
			}
		})
	}
}

func TestHostileCalls(t *testing.T) {
	// garbage: every host function with pointers far outside memory.
	garbage := wmodule{
		imports: []wimport{{"mantle", "call", 6, 1}, {"mantle", "output", 2, 1}, {"mantle", "input", 2, 1}, {"mantle", "log", 3, 0}, {"mantle", "response", 2, 1}},
		funcs: []wfunc{{code: cat(
			i32const(-16), i32const(100), i32const(0), i32const(10), i32const(0), i32const(0), callFn(0), []byte{opDrop},
			i32const(0), i32const(10), i32const(-1), i32const(-1), i32const(0), i32const(0), callFn(0), []byte{opDrop},
			i32const(0), i32const(5), i32const(0), i32const(5), i32const(-100), i32const(1000), callFn(0), []byte{opDrop},
			i32const(-1), i32const(10), callFn(1), []byte{opDrop},
			i32const(0), i32const(-1), callFn(1), []byte{opDrop},
			i32const(-8), i32const(100), callFn(2), []byte{opDrop},
			i32const(2), i32const(-4), i32const(1000), callFn(3),
			i32const(-8), i32const(100), callFn(4), []byte{opDrop},
		)}},
		exports: map[string]int{"_start": 5},
		memMin:  1,
	}.bytes()
	recursion := wmodule{funcs: []wfunc{{code: callFn(0)}}, exports: map[string]int{"_start": 0}, memMin: 1}.bytes()
	loop := wmodule{funcs: []wfunc{{code: []byte{0x03, 0x40, 0x0c, 0x00, 0x0b}}}, exports: map[string]int{"_start": 0}, memMin: 1}.bytes()
	grow := wmodule{funcs: []wfunc{{code: cat(i32const(60000), []byte{0x40, 0x00, opDrop})}}, exports: map[string]int{"_start": 0}, memMin: 1}.bytes()

	host := &fakeHost{}
	for _, tc := range []struct {
		name, kind, log string
		wasm            []byte
		timeout         time.Duration
	}{
		{"garbage pointers", "", "outside memory", garbage, time.Minute},
		{"unbounded recursion", "trap", "", recursion, time.Minute}, // the race detector makes it slow
		{"infinite loop", "timeout", "", loop, 500 * time.Millisecond},
		{"memory.grow past the limit", "", "", grow, time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := compileBytes(t, tc.wasm, Limits{Timeout: tc.timeout, MemoryBytes: 16 << 20})
			if err != nil {
				t.Fatal(err)
			}
			logs := &logLines{}
			_, err = m.Call(context.Background(), []byte(`{}`), host, logs.add)
			var f *Failure
			if tc.kind != "" && (!errors.As(err, &f) || f.Kind != tc.kind) {
				t.Fatalf("%v, want a %s failure", err, tc.kind)
			}
			if tc.kind == "" && err != nil {
				t.Fatalf("%v, want the host to refuse each call and the module to finish", err)
			}
			if !strings.Contains(logs.text(), tc.log) {
				t.Fatalf("log %q, want %q", logs.text(), tc.log)
			}
			// The runtime still runs a good module afterwards.
			good, err := compileBytes(t, minimal(), Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if out, err := good.Call(context.Background(), nil, nil, func(int, string) {}); err != nil || string(out) != "{}" {
				t.Fatalf("after: %q %v", out, err)
			}
		})
	}
}

// FuzzHostCallABI calls the host's call, output, input and response
// functions with any pointers and lengths: each must answer a code or
// copy within memory, never fail the guest or crash the host.
func FuzzHostCallABI(f *testing.F) {
	// f(a, b, c, d, e, g) = call(a, b, c, d, e, g) + output(a, b) + input(e, g) + response(c, d)
	wasm := wmodule{
		imports: []wimport{{"mantle", "call", 6, 1}, {"mantle", "output", 2, 1}, {"mantle", "input", 2, 1}, {"mantle", "response", 2, 1}},
		funcs: []wfunc{{params: 6, results: 1, code: cat(
			localGet(0), localGet(1), localGet(2), localGet(3), localGet(4), localGet(5), callFn(0),
			localGet(0), localGet(1), callFn(1), []byte{0x6a}, // i32.add
			localGet(4), localGet(5), callFn(2), []byte{0x6a},
			localGet(2), localGet(3), callFn(3), []byte{0x6a})}},
		exports: map[string]int{"f": 4},
		memMin:  1,
	}.bytes()
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	if err := instantiateHost(ctx, rt); err != nil {
		f.Fatal(err)
	}
	mod, err := rt.Instantiate(ctx, wasm)
	if err != nil {
		f.Fatal(err)
	}
	fn := mod.ExportedFunction("f")
	// Memory starts with a host call's name, so that some inputs reach
	// the host: "records.get" at 0.
	mod.Memory().Write(0, []byte("records.get"))
	f.Add(int32(0), int32(11), int32(0), int32(2), int32(100), int32(1000))
	f.Add(int32(0), int32(11), int32(65530), int32(100), int32(0), int32(65536))
	f.Add(int32(-1), int32(-1), int32(-1), int32(-1), int32(-1), int32(-1))
	f.Add(int32(0), int32(0), int32(65535), int32(1), int32(65535), int32(2))
	f.Fuzz(func(t *testing.T, a, b, c, d, e, g int32) {
		st := &call{input: []byte(`{"x":1}`), maxOutput: 1 << 10, host: &fakeHost{}, log: func(int, string) {}}
		cctx := context.WithValue(ctx, callKey{}, st)
		if _, err := fn.Call(cctx, api.EncodeI32(a), api.EncodeI32(b), api.EncodeI32(c), api.EncodeI32(d), api.EncodeI32(e), api.EncodeI32(g)); err != nil {
			t.Fatalf("the host functions failed the guest: %v", err)
		}
		if len(st.output) > st.maxOutput {
			t.Fatalf("output of %d bytes over the limit", len(st.output))
		}
	})
}

// TestConcurrentCompilesOfOneModule loads one module in several runtimes
// at once from a filled file cache, as Load does for functions that share
// a module: each must come out whole and run (wazero published a module
// loaded from its file cache before finishing it; see acquireCode).
func TestConcurrentCompilesOfOneModule(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	fill, err := wazero.NewCompilationCacheWithDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Compile(ctx, fill, "first", minimal(), nil, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	m.Close(ctx)
	fill.Close(ctx)
	for round := range 10 {
		cache, err := wazero.NewCompilationCacheWithDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				m, err := Compile(ctx, cache, "same", minimal(), nil, Limits{})
				if err != nil {
					t.Error(err)
					return
				}
				defer m.Close(ctx)
				if out, err := m.Call(ctx, []byte(`{}`), nil, func(int, string) {}); err != nil || string(out) != "{}" {
					t.Errorf("round %d: %q %v", round, out, err)
				}
			})
		}
		wg.Wait()
		cache.Close(ctx)
	}
}
