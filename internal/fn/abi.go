package fn

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// ABIVersion is the version of the host ABI: the "mantle" import module
// and the invocation and result JSON (docs/functions.md).
const ABIVersion = 1

// HostModule is the name of the import module of host calls.
const HostModule = "mantle"

// ABI error answers of the host functions (negative i32).
const (
	errMemory   = -1 // a pointer or length outside the guest's memory
	errTooLarge = -2 // over the output or request limit
	errNoCall   = -3 // no host call of that name
)

// maxHostRequest bounds one host call's request.
const maxHostRequest = 4 << 20

// maxLogLine bounds one log line; longer ones are cut.
const maxLogLine = 16 << 10

// hostFuncs are the functions of the "mantle" module with their
// signatures; a module importing anything else from it is refused.
var hostFuncs = map[string]struct{ params, results []api.ValueType }{
	"input":    {[]api.ValueType{i32, i32}, []api.ValueType{i32}},
	"output":   {[]api.ValueType{i32, i32}, []api.ValueType{i32}},
	"call":     {[]api.ValueType{i32, i32, i32, i32, i32, i32}, []api.ValueType{i32}},
	"response": {[]api.ValueType{i32, i32}, []api.ValueType{i32}},
	"log":      {[]api.ValueType{i32, i32, i32}, nil},
	// Not part of the ABI: the import interruptible adds.
	interruptName: {nil, nil},
}

const i32 = api.ValueTypeI32

// Host answers a function's host calls (records, events, outbound HTTP).
type Host interface {
	// Call runs host call op with its JSON request and returns the JSON
	// answer: {"data": …} or {"error": {"status", "reason", "detail"}}.
	// ok is false when there is no call of that name.
	Call(ctx context.Context, op string, req []byte) (answer []byte, ok bool)
}

// call is the state of one invocation, reached by the host functions
// through the context of the guest call.
type call struct {
	input     []byte
	output    []byte
	outputSet bool
	maxOutput int
	resp      []byte
	host      Host
	log       func(level int, msg string)
	abiErrors int // ABI errors the guest made (logged)
}

type callKey struct{}

func callOf(ctx context.Context) *call {
	c, _ := ctx.Value(callKey{}).(*call)
	return c
}

// Problem answers a host call with an error envelope.
func Problem(status int, reason, detail string) []byte {
	b, _ := json.Marshal(map[string]any{"error": map[string]any{"status": status, "reason": reason, "detail": detail}})
	return b
}

// instantiateHost defines the "mantle" module in rt.
func instantiateHost(ctx context.Context, rt wazero.Runtime) error {
	b := rt.NewHostModuleBuilder(HostModule)
	def := func(name string, f api.GoModuleFunc) {
		sig := hostFuncs[name]
		b.NewFunctionBuilder().WithGoModuleFunction(f, sig.params, sig.results).Export(name)
	}
	// copyOut writes src into guest memory at ptr (up to capacity bytes)
	// and answers its full size.
	copyOut := func(mod api.Module, stack []uint64, src []byte) {
		ptr, capacity := api.DecodeU32(stack[0]), api.DecodeU32(stack[1])
		if int(capacity) >= len(src) && !mod.Memory().Write(ptr, src) {
			stack[0] = api.EncodeI32(errMemory)
			return
		}
		stack[0] = api.EncodeI32(int32(len(src)))
	}
	def("input", func(ctx context.Context, mod api.Module, stack []uint64) {
		c := callOf(ctx)
		if c == nil {
			stack[0] = api.EncodeI32(0)
			return
		}
		copyOut(mod, stack, c.input)
	})
	def("response", func(ctx context.Context, mod api.Module, stack []uint64) {
		c := callOf(ctx)
		if c == nil {
			stack[0] = api.EncodeI32(0)
			return
		}
		copyOut(mod, stack, c.resp)
	})
	def("output", func(ctx context.Context, mod api.Module, stack []uint64) {
		c := callOf(ctx)
		ptr, n := api.DecodeU32(stack[0]), api.DecodeU32(stack[1])
		if c == nil {
			stack[0] = api.EncodeI32(0)
			return
		}
		if int(n) > c.maxOutput {
			c.guestError("output of %d bytes is over the limit of %d", n, c.maxOutput)
			stack[0] = api.EncodeI32(errTooLarge)
			return
		}
		b, ok := mod.Memory().Read(ptr, n)
		if !ok {
			c.guestError("output: pointer %d length %d is outside memory", ptr, n)
			stack[0] = api.EncodeI32(errMemory)
			return
		}
		c.output, c.outputSet = append(c.output[:0], b...), true
		stack[0] = 0
	})
	def("call", func(ctx context.Context, mod api.Module, stack []uint64) {
		c := callOf(ctx)
		opPtr, opLen := api.DecodeU32(stack[0]), api.DecodeU32(stack[1])
		reqPtr, reqLen := api.DecodeU32(stack[2]), api.DecodeU32(stack[3])
		outPtr, outCap := api.DecodeU32(stack[4]), api.DecodeU32(stack[5])
		if c == nil || c.host == nil {
			stack[0] = api.EncodeI32(errNoCall)
			return
		}
		if opLen > 64 || reqLen > maxHostRequest {
			c.guestError("call: name of %d bytes or request of %d bytes is too large", opLen, reqLen)
			stack[0] = api.EncodeI32(errTooLarge)
			return
		}
		op, ok1 := mod.Memory().Read(opPtr, opLen)
		req, ok2 := mod.Memory().Read(reqPtr, reqLen)
		if !ok1 || !ok2 {
			c.guestError("call: a pointer or length is outside memory")
			stack[0] = api.EncodeI32(errMemory)
			return
		}
		resp, ok := c.host.Call(ctx, string(op), append([]byte(nil), req...))
		if !ok {
			c.guestError("call: no host call %q", sanitize(op))
			stack[0] = api.EncodeI32(errNoCall)
			return
		}
		c.resp = resp
		stack[0], stack[1] = api.EncodeU32(outPtr), api.EncodeU32(outCap)
		copyOut(mod, stack, resp)
	})
	def("log", func(ctx context.Context, mod api.Module, stack []uint64) {
		c := callOf(ctx)
		level, ptr, n := int(api.DecodeI32(stack[0])), api.DecodeU32(stack[1]), api.DecodeU32(stack[2])
		if c == nil {
			return
		}
		b, ok := mod.Memory().Read(ptr, min(n, maxLogLine))
		if !ok {
			c.guestError("log: pointer %d length %d is outside memory", ptr, n)
			return
		}
		c.log(min(max(level, 0), 3), sanitize(b))
	})
	def(interruptName, interrupt)
	_, err := b.Instantiate(ctx)
	return err
}

func (c *call) guestError(format string, args ...any) {
	c.abiErrors++
	c.log(LevelError, "ABI: "+fmt.Sprintf(format, args...))
}

// sanitize makes guest bytes safe to log: valid UTF-8, no control bytes
// but newlines and tabs.
func sanitize(b []byte) string {
	s := strings.ToValidUTF8(string(b), "\uFFFD")
	return strings.Map(func(r rune) rune {
		if r < 0x20 && r != '\n' && r != '\t' || r == 0x7f || r == utf8.RuneError {
			return '\uFFFD'
		}
		return r
	}, s)
}
