package fn

import (
	"context"
	"crypto/sha256"
	"sync"
	"sync/atomic"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// sharedCode is a compiled module in a runtime of its own, shared by every
// Module made from the same bytes with the same memory limit and
// interrupt style: functions that share a module (a project may route
// eight functions to one) compile it, keep its code and its decoded form
// once, and differ only in their instances, names, environments and
// limits. Instances are anonymous, so any number of them live in one
// runtime.
type sharedCode struct {
	key  codeKey
	rt   wazero.Runtime
	code wazero.CompiledModule
	size int64 // what Footprint counts for it
	refs int   // Modules using it; guarded by shares.mu
}

type codeKey struct {
	hash        [32]byte
	pages       uint32
	closeOnDone bool
}

var shares = struct {
	mu    sync.Mutex
	codes map[codeKey]*sharedCode
	// making holds a mutex per key while its module compiles: the second
	// function of a module waits and shares the first one's work. It
	// also keeps wazero 1.12 from handing a runtime a module that another
	// runtime loaded from the file cache but has not finished making
	// (instantiating it panicked; TestConcurrentCompilesOfOneModule).
	making map[codeKey]*sync.Mutex
}{codes: map[codeKey]*sharedCode{}, making: map[codeKey]*sync.Mutex{}}

// compiledCodeFactor is how much compiled machine code and decoded module
// a module's bytes are taken to cost: measured on Go reactors, 3.4 MB of
// WebAssembly became 13.5 MB of machine code and 11 MB of decoded module.
const compiledCodeFactor = 7

// codeBytes and guestBytes are what the loaded functions hold: compiled
// code (estimated) and their instances' linear memories (committed).
var codeBytes, guestBytes atomic.Int64

// Footprint is the memory the loaded functions take outside what the
// server itself needs: their compiled code and decoded modules (estimated
// from the modules' sizes) and the linear memory their instances have
// committed. The server's memory budget grows by it unless set (see
// docs/storage.md, "Memory").
func Footprint() int64 { return codeBytes.Load() + guestBytes.Load() }

// acquireCode returns the shared compiled module for wasm, compiling it
// (through cache) when no Module holds it.
func acquireCode(ctx context.Context, cache wazero.CompilationCache, wasm []byte, pages uint32, closeOnDone bool) (*sharedCode, error) {
	key := codeKey{sha256.Sum256(wasm), pages, closeOnDone}
	shares.mu.Lock()
	mu := shares.making[key]
	if mu == nil {
		mu = &sync.Mutex{}
		shares.making[key] = mu
	}
	shares.mu.Unlock()
	mu.Lock()
	defer mu.Unlock()
	shares.mu.Lock()
	if s := shares.codes[key]; s != nil {
		s.refs++
		shares.mu.Unlock()
		return s, nil
	}
	shares.mu.Unlock()

	cfg := wazero.NewRuntimeConfig().WithCloseOnContextDone(closeOnDone).WithMemoryLimitPages(pages)
	if cache != nil {
		cfg = cfg.WithCompilationCache(cache)
	}
	rt := wazero.NewRuntimeWithConfig(ctx, cfg)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		rt.Close(ctx)
		return nil, err
	}
	if err := instantiateHost(ctx, rt); err != nil {
		rt.Close(ctx)
		return nil, err
	}
	code, err := rt.CompileModule(ctx, wasm)
	if err != nil {
		rt.Close(ctx)
		return nil, err
	}
	s := &sharedCode{key: key, rt: rt, code: code, size: int64(len(wasm)) * compiledCodeFactor, refs: 1}
	codeBytes.Add(s.size)
	shares.mu.Lock()
	shares.codes[key] = s
	shares.mu.Unlock()
	return s, nil
}

// release gives s back; the last Module to do so closes its runtime.
func (s *sharedCode) release(ctx context.Context) error {
	shares.mu.Lock()
	s.refs--
	last := s.refs == 0
	if last {
		delete(shares.codes, s.key) // making keeps its mutex: one may be waiting on it
	}
	shares.mu.Unlock()
	if !last {
		return nil
	}
	codeBytes.Add(-s.size)
	return s.rt.Close(ctx)
}
