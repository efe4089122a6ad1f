package fn

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/mantlehq/mantle/internal/schema"
)

// Eight functions that name one module (two of them with another memory
// limit) share two compiled copies of it, not eight; closing one leaves
// the others running, and the last one to go frees the code.
func TestFunctionsShareTheirModule(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "m.wasm"), minimal(), 0o644); err != nil {
		t.Fatal(err)
	}
	var defs []schema.Function
	for i := range 8 {
		d := schema.Function{Name: fmt.Sprintf("f%d", i), Module: "m.wasm", Allow: "true",
			HTTP: &schema.Route{Method: "POST", Path: fmt.Sprintf("/fn/f%d", i)}}
		if i >= 6 {
			d.MemoryBytes = 2 << 20
		}
		defs = append(defs, d)
	}
	ctx := context.Background()
	m := New(Options{ProjectDir: dir, Log: slog.New(slog.DiscardHandler)})
	before := codeBytes.Load()
	if err := m.Load(ctx, defs); err != nil {
		t.Fatal(err)
	}
	codes := map[*sharedCode]int{}
	for _, f := range m.list() {
		if f.mod == nil {
			t.Fatalf("%s: %v", f.def.Name, f.loadErr)
		}
		codes[f.mod.shared]++
	}
	if len(codes) != 2 {
		t.Fatalf("8 functions on one module with two memory limits compiled %d copies, want 2", len(codes))
	}
	for s, n := range codes {
		if s.refs != n {
			t.Errorf("a shared module counts %d users, has %d", s.refs, n)
		}
	}
	if got := codeBytes.Load() - before; got <= 0 || got > 2*int64(len(minimal()))*compiledCodeFactor*2 {
		t.Errorf("footprint of the code grew by %d", got)
	}
	f0 := m.funcs["f0"]
	f0.mod.Close(ctx)
	f0.mod.Close(ctx) // twice: must not give the shared code back twice
	out, err := m.funcs["f1"].mod.Call(ctx, []byte(`{}`), nil, func(int, string) {})
	if err != nil || string(out) != "{}" {
		t.Fatalf("after another function closed, a call answered %q, %v", out, err)
	}
	m.Close()
	if got := codeBytes.Load(); got != before {
		t.Errorf("after Close the code footprint is %d, was %d before", got, before)
	}
}
