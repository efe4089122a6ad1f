package fn

import (
	"context"
	"encoding/binary"
	"errors"

	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"
)

// Stopping a guest that loops forever.
//
// A call must end at its timeout even when the guest never returns, and
// Go's scheduler cannot preempt machine code that wazero generated: it
// can only stop a goroutine (for its timers, or the collector's
// stop-the-world) when the guest calls out to Go. wazero's own answer,
// WithCloseOnContextDone, leaves the guest for Go at the head of every
// loop to look at a flag, about 17 ns each time; Go's wasm output enters
// a loop in nearly every function, so a Go guest ran four times slower
// with it (an HTTP echo call 100 µs instead of 22 µs).
//
// interruptible instead rewrites the module once, at compile time: each
// loop header counts down a global of its own, and every interruptEvery
// iterations calls the host function mantle.interrupt, which ends the
// call if its context is done (as WASI's proc_exit does: close the
// module, panic with an exit error) and otherwise returns, having given
// the Go runtime its chance to stop the goroutine. A loop in wasm can
// only repeat through a loop header, so no guest runs longer than
// interruptEvery iterations without checking; recursion ends at wazero's
// stack limit. A module the rewriter does not understand (an opcode it
// does not know, a malformed section) is compiled as it came, with
// WithCloseOnContextDone.
const interruptEvery = 1 << 16

// interruptName is the host function the rewriter imports. It is not
// part of the guest ABI.
const interruptName = "interrupt"

var errRewrite = errors.New("cannot rewrite the module")

// interrupt is mantle.interrupt: it ends the call when its context is
// done.
func interrupt(ctx context.Context, mod api.Module, _ []uint64) {
	err := ctx.Err()
	if err == nil {
		return
	}
	code := sys.ExitCodeContextCanceled
	if errors.Is(err, context.DeadlineExceeded) {
		code = sys.ExitCodeDeadlineExceeded
	}
	mod.CloseWithExitCode(ctx, code)
	panic(sys.NewExitError(code))
}

// interruptible returns wasm rewritten as above, or an error when it
// cannot.
func interruptible(wasm []byte) ([]byte, error) {
	secs, ok := splitSections(wasm)
	if !ok {
		return nil, errRewrite
	}
	find := func(id byte) int {
		for i, s := range secs {
			if s.id == id {
				return i
			}
		}
		return -1
	}
	// insert places a new section before the first of a later kind, in
	// the order the binary format requires.
	order := map[byte]int{1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 13: 6, 6: 7, 7: 8, 8: 9, 9: 10, 12: 11, 10: 12, 11: 13}
	insert := func(id byte) int {
		at := len(secs)
		for i, s := range secs {
			if s.id != sectionCustom && order[s.id] > order[id] {
				at = i
				break
			}
		}
		secs = append(secs[:at], append([]wasmSection{{id: id}}, secs[at:]...)...)
		return at
	}

	// A type () -> () at the end of the type section.
	ti := find(sectionType)
	if ti < 0 {
		ti = insert(sectionType)
	}
	nTypes, body, err := appendToVector(secs[ti].body, []byte{0x60, 0, 0})
	if err != nil {
		return nil, err
	}
	secs[ti].body = body

	// The import of mantle.interrupt after the other imports: defined
	// functions move up by one.
	ii := find(sectionImport)
	if ii < 0 {
		ii = insert(sectionImport)
	}
	nFuncImports, nGlobalImports, err := countImports(secs[ii].body)
	if err != nil {
		return nil, err
	}
	imp := appendName(nil, HostModule)
	imp = appendName(imp, interruptName)
	imp = append(imp, 0)
	imp = binary.AppendUvarint(imp, uint64(nTypes))
	if _, secs[ii].body, err = appendToVector(secs[ii].body, imp); err != nil {
		return nil, err
	}
	r := &rewriter{fn: uint32(nFuncImports)}

	// The countdown global after the other globals (their init
	// expressions may name functions).
	gi := find(sectionGlobal)
	if gi < 0 {
		gi = insert(sectionGlobal)
	}
	nGlobals, globals, err := r.globals(secs[gi].body)
	if err != nil {
		return nil, err
	}
	r.global = uint32(nGlobalImports + nGlobals)
	g := append([]byte{0x7f, 1, 0x41}, appendSLEB32(nil, interruptEvery)...)
	if _, secs[gi].body, err = appendToVector(globals, append(g, 0x0b)); err != nil {
		return nil, err
	}

	for i := range secs {
		s := &secs[i]
		var err error
		switch s.id {
		case sectionExport:
			s.body, err = r.exports(s.body)
		case sectionStart:
			var f uint64
			if f, err = readU32(s.body); err == nil {
				s.body = binary.AppendUvarint(nil, uint64(r.shift(uint32(f))))
			}
		case sectionElem:
			s.body, err = r.elements(s.body)
		case sectionCode:
			s.body, err = r.code(s.body)
		case sectionCustom:
			s.body, err = r.custom(s.body)
		}
		if err != nil {
			return nil, err
		}
	}
	return joinSections(secs, len(wasm)+len(wasm)/8), nil
}

// rewriter moves function indices from fn up by one and counts down
// global at every loop header.
type rewriter struct {
	fn     uint32 // the index of mantle.interrupt, the first one that moves
	global uint32
}

func (r *rewriter) shift(f uint32) uint32 {
	if f >= r.fn {
		return f + 1
	}
	return f
}

// check is what goes after each loop's block type.
func (r *rewriter) check(b []byte) []byte {
	g := binary.AppendUvarint(nil, uint64(r.global))
	b = append(append(b, 0x23), g...) // global.get
	b = append(b, 0x41, 1, 0x6b)      // i32.const 1; i32.sub
	b = append(append(b, 0x24), g...) // global.set
	b = append(append(b, 0x23), g...) // global.get
	b = append(b, 0x45, 0x04, 0x40)   // i32.eqz; if
	b = appendSLEB32(append(b, 0x41), interruptEvery)
	b = append(append(b, 0x24), g...)                       // global.set
	b = binary.AppendUvarint(append(b, 0x10), uint64(r.fn)) // call
	return append(b, 0x0b)                                  // end
}

// appendToVector adds one encoded entry to a vector and returns the
// entry's index.
func appendToVector(vec, entry []byte) (int, []byte, error) {
	n := uint64(0)
	rest := vec
	if len(vec) > 0 {
		var k int
		if n, k = binary.Uvarint(vec); k <= 0 {
			return 0, nil, errRewrite
		}
		rest = vec[k:]
	}
	out := binary.AppendUvarint(nil, n+1)
	out = append(out, rest...)
	return int(n), append(out, entry...), nil
}

func appendName(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}
