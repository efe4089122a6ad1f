package fn

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestInterruptibleGuests: the Go guest is rewritten (not left to
// wazero's check at every loop header, which made it four times slower),
// and a rewritten module that loops forever still lets the collector
// stop the world while it runs, and ends when its call is cancelled.
func TestInterruptibleGuests(t *testing.T) {
	for _, style := range []Style{Reactor, Command} {
		if m := compile(t, style, Limits{}); !m.rewritten {
			t.Fatalf("the Go %s was not rewritten", style)
		}
	}

	// log(0, 0, 0), then loop forever.
	spin := wmodule{
		imports: []wimport{{"mantle", "log", 3, 0}},
		funcs:   []wfunc{{code: cat(i32const(0), i32const(0), i32const(0), callFn(0), []byte{0x03, 0x40, 0x0c, 0x00, 0x0b})}},
		exports: map[string]int{"_start": 1},
		memMin:  1,
	}.bytes()
	m, err := compileBytes(t, spin, Limits{})
	if err != nil || !m.rewritten {
		t.Fatalf("%v; rewritten: %v", err, m != nil && m.rewritten)
	}
	ctx, cancel := context.WithCancel(context.Background())
	looping, done := make(chan struct{}), make(chan error)
	go func() {
		_, err := m.Call(ctx, nil, nil, func(int, string) { close(looping) })
		done <- err
	}()
	<-looping
	collected := make(chan struct{})
	go func() {
		runtime.GC() // stops the world: the looping goroutine must yield
		close(collected)
	}()
	select {
	case <-collected:
	case err := <-done:
		t.Fatalf("the call ended (%v) before the collector could stop it", err)
	}
	cancel()
	var f *Failure
	if err := <-done; !errors.As(err, &f) || f.Kind != "closed" {
		t.Fatalf("cancelled call: %v", err)
	}
}

// TestInterruptibleKeepsModules: the rewriter leaves what it does not
// know alone, and its output of the Go guest keeps every export.
func TestInterruptibleKeepsModules(t *testing.T) {
	for name, wasm := range map[string][]byte{
		"not wasm":       []byte("hello"),
		"version 2":      []byte("\x00asm\x02\x00\x00\x00"),
		"truncated":      minimal()[:30],
		"unknown opcode": wmodule{funcs: []wfunc{{code: []byte{0xff}}}, exports: map[string]int{"_start": 0}, memMin: 1}.bytes(),
	} {
		if _, err := interruptible(wasm); err == nil {
			t.Errorf("%s: rewritten", name)
		}
	}
	out, err := interruptible(minimal())
	if err != nil || bytes.Equal(out, minimal()) {
		t.Fatalf("minimal: %v", err)
	}
	m, err := compileBytes(t, minimal(), Limits{})
	if err != nil || !m.rewritten {
		t.Fatalf("minimal: %v", err)
	}
	if out, err := m.Call(context.Background(), nil, nil, func(int, string) {}); err != nil || string(out) != "{}" {
		t.Fatalf("minimal, rewritten: %q %v", out, err)
	}
}

func FuzzInterruptible(f *testing.F) {
	f.Add(minimal())
	f.Add(wmodule{funcs: []wfunc{{code: []byte{0x03, 0x40, 0x0c, 0x00, 0x0b}}}, exports: map[string]int{"_start": 0}, memMin: 1}.bytes())
	f.Fuzz(func(t *testing.T, wasm []byte) {
		interruptible(wasm) // must not panic, whatever the bytes
	})
}

// TestLoopingInitialize: a reactor whose _initialize never returns fails
// its load at the function's timeout instead of hanging it.
func TestLoopingInitialize(t *testing.T) {
	spin := wmodule{
		funcs: []wfunc{
			{code: []byte{0x03, 0x40, 0x0c, 0x00, 0x0b}}, // _initialize: loop forever
			{results: 1, code: cat(i32const(0))},         // mantle_handle
		},
		exports: map[string]int{"_initialize": 0, "mantle_handle": 1},
		memMin:  1,
	}.bytes()
	_, err := compileBytes(t, spin, Limits{Timeout: 200 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "instantiate") {
		t.Fatalf("loading a reactor that never initialises: %v", err)
	}
}
