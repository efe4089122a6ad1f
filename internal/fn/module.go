package fn

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"
)

// Style is how a module is run.
type Style string

// Styles.
const (
	// Reactor modules export _initialize and mantle_handle; an instance
	// is initialised once and serves many calls, one at a time.
	Reactor Style = "reactor"
	// Command modules export _start; every call instantiates the module
	// afresh and runs main.
	Command Style = "command"
)

// Limits bound one function.
type Limits struct {
	Timeout      time.Duration // one call; default 10s
	MemoryBytes  uint64        // linear memory of one instance; default 64 MiB
	MaxOutput    int           // the result; default 1 MiB
	MaxInstances int           // instances running at once; default 4
	Warm         int           // reactor instances kept ready; default 1
}

func (l Limits) withDefaults() Limits {
	if l.Timeout <= 0 {
		l.Timeout = 10 * time.Second
	}
	if l.MemoryBytes == 0 {
		l.MemoryBytes = 64 << 20
	}
	if l.MaxOutput <= 0 {
		l.MaxOutput = 1 << 20
	}
	if l.MaxInstances <= 0 {
		l.MaxInstances = 4
	}
	if l.Warm <= 0 {
		l.Warm = 1
	}
	l.Warm = min(l.Warm, l.MaxInstances)
	return l
}

// Module is a compiled function module with its runtime and, for a
// reactor, its pool of ready instances. It is safe for concurrent use.
type Module struct {
	name   string
	style  Style
	limits Limits
	env    map[string]string
	shared *sharedCode // rt and code, shared with the Modules made from the same bytes
	rt     wazero.Runtime
	code   wazero.CompiledModule
	// rewritten: the module counts its loops and calls mantle.interrupt
	// (interruptible); otherwise wazero checks at every loop header.
	rewritten bool

	slots  chan struct{}  // MaxInstances tokens: one per running call
	idle   chan *instance // ready reactor instances
	mu     sync.Mutex     // guards closed
	closed bool
}

// instance is one instantiated reactor and its stdio, which it writes to
// the log of whichever call it is serving.
type instance struct {
	mod    api.Module
	handle api.Function
	stdio  *stdio
}

// Failure is a call that did not complete: Kind is "timeout", "trap",
// "error" (the function reported one), "output_too_large" or "closed".
type Failure struct {
	Kind    string
	Message string
}

// Error implements error.
func (f *Failure) Error() string { return "function " + f.Kind + ": " + f.Message }

// Compile compiles wasm (using cache, shared by every module) and checks
// that it speaks the ABI. The module is ready to call when Compile
// returns: a reactor has its warm instances. Modules compiled from the
// same bytes with the same memory limit share their compiled code.
func Compile(ctx context.Context, cache wazero.CompilationCache, name string, wasm []byte, env map[string]string, l Limits) (*Module, error) {
	return compilePrepared(ctx, cache, name, prepare(wasm), env, l)
}

// prepared is a module made ready to compile: its data segments merged
// and, when interruptible can, rewritten to count its loops and calls.
type prepared struct {
	merged    []byte
	rewritten []byte // nil: not rewritable
}

func prepare(wasm []byte) prepared {
	p := prepared{merged: mergeData(wasm)}
	if rewritten, err := interruptible(p.merged); err == nil {
		p.rewritten = rewritten
	}
	return p
}

func compilePrepared(ctx context.Context, cache wazero.CompilationCache, name string, p prepared, env map[string]string, l Limits) (*Module, error) {
	l = l.withDefaults()
	if p.rewritten != nil {
		m, err := compileIn(ctx, cache, name, p.rewritten, env, l, false)
		if !errors.Is(err, errInvalid) {
			return m, err
		}
		// wazero refused the rewritten module: the module as it came says
		// why, or runs with wazero's checks.
	}
	return compileIn(ctx, cache, name, p.merged, env, l, true)
}

// errInvalid is the error of a module wazero does not compile.
var errInvalid = errors.New("not a valid WebAssembly module")

// compileIn compiles wasm in a runtime of its own; closeOnDone has wazero
// check at every loop header whether the call's context is done (for a
// module that interruptible could not rewrite).
func compileIn(ctx context.Context, cache wazero.CompilationCache, name string, wasm []byte, env map[string]string, l Limits, closeOnDone bool) (*Module, error) {
	pages := uint32(min(l.MemoryBytes/65536, 65536))
	shared, err := acquireCode(ctx, cache, wasm, pages, closeOnDone)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errInvalid, err)
	}
	fail := func(err error) (*Module, error) {
		shared.release(ctx)
		return nil, err
	}
	code := shared.code
	style, err := check(code, l)
	if err != nil {
		return fail(err)
	}
	m := &Module{name: name, style: style, limits: l, env: env, shared: shared, rt: shared.rt, code: code, rewritten: !closeOnDone,
		slots: make(chan struct{}, l.MaxInstances), idle: make(chan *instance, l.MaxInstances)}
	if style == Reactor {
		// A guest's _initialize gets the call timeout too: one that never
		// returns fails the load instead of hanging it.
		ictx, cancel := context.WithTimeout(ctx, l.Timeout)
		defer cancel()
		for range l.Warm {
			in, err := m.instantiate(ictx, nil)
			if err != nil {
				return fail(fmt.Errorf("instantiate: %w", err))
			}
			m.idle <- in
		}
	}
	return m, nil
}

// check reads the module's imports and exports: imports only from WASI
// and the host module with the right signatures, and the exports of a
// reactor or a command.
func check(code wazero.CompiledModule, l Limits) (Style, error) {
	for _, f := range code.ImportedFunctions() {
		mod, name, _ := f.Import()
		switch mod {
		case wasi_snapshot_preview1.ModuleName:
		case HostModule:
			sig, ok := hostFuncs[name]
			if !ok {
				return "", fmt.Errorf("imports %s.%s, which ABI %d does not have (it has %s)", mod, name, ABIVersion, strings.Join(hostNames(), ", "))
			}
			if !slices.Equal(f.ParamTypes(), sig.params) || !slices.Equal(f.ResultTypes(), sig.results) {
				return "", fmt.Errorf("imports %s.%s with the wrong signature", mod, name)
			}
		default:
			return "", fmt.Errorf("imports from module %q; only %s and %s are provided", mod, HostModule, wasi_snapshot_preview1.ModuleName)
		}
	}
	for _, m := range code.ImportedMemories() {
		mod, name, _ := m.Import()
		return "", fmt.Errorf("imports memory %s.%s; a function module defines its own", mod, name)
	}
	for _, m := range code.ExportedMemories() {
		if uint64(m.Min())*65536 > l.MemoryBytes {
			return "", fmt.Errorf("asks for %d MiB of memory at start; the limit is %d MiB", uint64(m.Min())*65536>>20, l.MemoryBytes>>20)
		}
	}
	ex := code.ExportedFunctions()
	if _, ok := ex["_start"]; ok { // a command (Go exports mantle_handle in both styles)
		return Command, nil
	}
	if h, ok := ex["mantle_handle"]; ok {
		if len(h.ParamTypes()) != 0 || !slices.Equal(h.ResultTypes(), []api.ValueType{i32}) {
			return "", errors.New("exports mantle_handle with the wrong signature; it takes nothing and returns an i32")
		}
		return Reactor, nil
	}
	return "", errors.New("exports neither mantle_handle (a reactor) nor _start (a command); see docs/functions.md")
}

func hostNames() []string {
	names := make([]string, 0, len(hostFuncs))
	for n := range hostFuncs {
		if n != interruptName {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names
}

// Style reports whether the module is a reactor or a command.
func (m *Module) Style() Style { return m.style }

// Limits returns the module's limits, defaults filled in.
func (m *Module) Limits() Limits { return m.limits }

func (m *Module) config(io *stdio, input []byte) wazero.ModuleConfig {
	cfg := wazero.NewModuleConfig().WithName("").WithArgs(m.name).
		WithStdout(io.out()).WithStderr(io.err()).
		WithSysWalltime().WithSysNanotime().WithSysNanosleep().WithRandSource(crand.Reader)
	for k, v := range m.env {
		cfg = cfg.WithEnv(k, v)
	}
	if m.style == Reactor {
		return cfg.WithStartFunctions("_initialize")
	}
	return cfg.WithStdin(bytes.NewReader(input))
}

// instantiate makes a reactor instance and runs its _initialize. c, when
// not nil, receives what it writes.
func (m *Module) instantiate(ctx context.Context, c *call) (*instance, error) {
	io := &stdio{cur: c}
	mod, err := m.rt.InstantiateModule(withMemory(ctx), m.code, m.config(io, nil))
	if err != nil {
		return nil, err
	}
	return &instance{mod: mod, handle: mod.ExportedFunction("mantle_handle"), stdio: io}, nil
}

// Call runs the module on input (the invocation JSON) with host answering
// its host calls and log receiving its log lines and stdio. It returns
// the output (the result JSON); a call that did not complete is a
// *Failure.
func (m *Module) Call(ctx context.Context, input []byte, host Host, log func(level int, msg string)) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, m.limits.Timeout)
	defer cancel()
	select {
	case m.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, m.ctxFailure(ctx, "waiting for a free instance")
	}
	defer func() { <-m.slots }()
	c := &call{input: input, maxOutput: m.limits.MaxOutput, host: host, log: log}
	ctx = context.WithValue(ctx, callKey{}, c)
	if m.style == Command {
		return m.runCommand(ctx, c)
	}
	return m.runReactor(ctx, c)
}

func (m *Module) runReactor(ctx context.Context, c *call) ([]byte, error) {
	var in *instance
	select {
	case in = <-m.idle:
		in.stdio.set(c)
	default:
		var err error
		if in, err = m.instantiate(ctx, c); err != nil {
			return nil, m.failure(ctx, c, err)
		}
	}
	res, err := in.handle.Call(ctx)
	in.stdio.set(nil)
	c.flushStdio(in.stdio)
	if err != nil || res[0] == 2 { // a trap, or a panic the guest caught: do not trust it again
		in.mod.Close(context.Background())
		if err != nil {
			return nil, m.failure(ctx, c, err)
		}
		return nil, guestFailure(c)
	}
	m.release(in)
	if res[0] != 0 {
		return nil, guestFailure(c)
	}
	return c.output, nil
}

func (m *Module) release(in *instance) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		in.mod.Close(context.Background())
		return
	}
	select {
	case m.idle <- in:
	default:
		in.mod.Close(context.Background())
	}
}

func (m *Module) runCommand(ctx context.Context, c *call) ([]byte, error) {
	io := &stdio{cur: c, capture: true, max: m.limits.MaxOutput}
	mod, err := m.rt.InstantiateModule(withMemory(ctx), m.code, m.config(io, c.input))
	if mod != nil {
		mod.Close(context.Background())
	}
	c.flushStdio(io)
	var exit *sys.ExitError
	if errors.As(err, &exit) && exit.ExitCode() != sys.ExitCodeDeadlineExceeded && exit.ExitCode() != sys.ExitCodeContextCanceled {
		return nil, guestFailure(c)
	}
	if err != nil {
		return nil, m.failure(ctx, c, err)
	}
	if !c.outputSet {
		if io.over {
			return nil, &Failure{Kind: "output_too_large", Message: fmt.Sprintf("stdout is over the limit of %d bytes", m.limits.MaxOutput)}
		}
		c.output = io.stdout.Bytes()
	}
	return c.output, nil
}

// guestFailure is a call the guest itself failed: its output is
// {"error": message} when it wrote one.
func guestFailure(c *call) error {
	msg := "the function failed"
	if e := errorMessage(c.output); e != "" {
		msg = e
	}
	return &Failure{Kind: "error", Message: msg}
}

func (m *Module) ctxFailure(ctx context.Context, what string) error {
	if errors.Is(context.Cause(ctx), context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return &Failure{Kind: "timeout", Message: fmt.Sprintf("no answer within %s (%s)", m.limits.Timeout, what)}
	}
	return &Failure{Kind: "closed", Message: "the call was cancelled"}
}

// failure turns a wazero error into a Failure.
func (m *Module) failure(ctx context.Context, c *call, err error) error {
	if ctx.Err() != nil {
		return m.ctxFailure(ctx, "stopped")
	}
	msg := err.Error()
	if i := strings.Index(msg, "\nwasm stack trace:"); i >= 0 {
		c.log(LevelError, msg) // the whole trace to the function log
		msg = msg[:i]
	}
	return &Failure{Kind: "trap", Message: msg}
}

// Close stops the module: idle instances are closed at once, busy ones
// when their call returns; the compiled code goes with the last Module
// that shares it.
func (m *Module) Close(ctx context.Context) error {
	m.mu.Lock()
	was := m.closed
	m.closed = true
	m.mu.Unlock()
	if was {
		return nil
	}
	for {
		select {
		case in := <-m.idle:
			in.mod.Close(ctx)
		default:
			return m.shared.release(ctx)
		}
	}
}
