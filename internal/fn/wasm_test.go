package fn

// A tiny WebAssembly assembler for tests: hand-made hostile and minimal
// modules, without a toolchain. Only what the tests need: functions of
// i32s, imports of functions, one memory, exports of functions.

type wfunc struct {
	params, results int    // counts of i32
	locals          int    // i32 locals
	code            []byte // the body's instructions, without the final end
}

type wimport struct {
	module, name    string
	params, results int
}

type wmodule struct {
	imports  []wimport
	funcs    []wfunc
	exports  map[string]int // name → function index (imports first)
	memMin   uint32
	noMemory bool
}

func uleb(n uint64) []byte {
	var b []byte
	for {
		c := byte(n & 0x7f)
		n >>= 7
		if n != 0 {
			b = append(b, c|0x80)
			continue
		}
		return append(b, c)
	}
}

func sleb(n int64) []byte {
	var b []byte
	for {
		c := byte(n & 0x7f)
		n >>= 7
		if (n == 0 && c&0x40 == 0) || (n == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

func wstr(s string) []byte { return append(uleb(uint64(len(s))), s...) }

func section(id byte, body []byte) []byte {
	return append(append([]byte{id}, uleb(uint64(len(body)))...), body...)
}

func vec(items [][]byte) []byte {
	b := uleb(uint64(len(items)))
	for _, it := range items {
		b = append(b, it...)
	}
	return b
}

func functype(params, results int) []byte {
	b := []byte{0x60}
	b = append(b, uleb(uint64(params))...)
	for range params {
		b = append(b, 0x7f)
	}
	b = append(b, uleb(uint64(results))...)
	for range results {
		b = append(b, 0x7f)
	}
	return b
}

func (m wmodule) bytes() []byte {
	out := []byte{0, 'a', 's', 'm', 1, 0, 0, 0}
	var types, imports, funcs, codes, exports [][]byte
	for _, im := range m.imports {
		imports = append(imports, append(append(wstr(im.module), wstr(im.name)...), append([]byte{0x00}, uleb(uint64(len(types)))...)...))
		types = append(types, functype(im.params, im.results))
	}
	for _, f := range m.funcs {
		funcs = append(funcs, uleb(uint64(len(types))))
		types = append(types, functype(f.params, f.results))
		var body []byte
		if f.locals > 0 {
			body = append(body, 1)
			body = append(body, uleb(uint64(f.locals))...)
			body = append(body, 0x7f)
		} else {
			body = append(body, 0)
		}
		body = append(append(body, f.code...), 0x0b)
		codes = append(codes, append(uleb(uint64(len(body))), body...))
	}
	for name, idx := range m.exports {
		exports = append(exports, append(append(wstr(name), 0x00), uleb(uint64(idx))...))
	}
	if !m.noMemory {
		exports = append(exports, append(append(wstr("memory"), 0x02), 0))
	}
	out = append(out, section(1, vec(types))...)
	if len(imports) > 0 {
		out = append(out, section(2, vec(imports))...)
	}
	out = append(out, section(3, vec(funcs))...)
	if !m.noMemory {
		out = append(out, section(5, vec([][]byte{append([]byte{0x00}, uleb(uint64(m.memMin))...)}))...)
	}
	out = append(out, section(7, vec(exports))...)
	out = append(out, section(10, vec(codes))...)
	return out
}

// Instructions.
func i32const(n int32) []byte { return append([]byte{0x41}, sleb(int64(n))...) }
func localGet(i int) []byte   { return append([]byte{0x20}, uleb(uint64(i))...) }
func callFn(i int) []byte     { return append([]byte{0x10}, uleb(uint64(i))...) }

const (
	opDrop = 0x1a
)

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}
