//go:build wasip1

package mantle

import (
	"errors"
	"fmt"
	"unsafe"
)

// The host functions of the "mantle" import module (ABI 1). Sizes and
// pointers are 32-bit offsets into this module's memory. A negative
// answer is an ABI error: -1 a pointer or length outside memory, -2 too
// large, -3 no such call.

//go:wasmimport mantle input
func mantleInput(ptr unsafe.Pointer, capacity uint32) int32

//go:wasmimport mantle output
func mantleOutput(ptr unsafe.Pointer, n uint32) int32

//go:wasmimport mantle call
func mantleCall(op unsafe.Pointer, opLen uint32, req unsafe.Pointer, reqLen uint32, out unsafe.Pointer, outCap uint32) int32

//go:wasmimport mantle response
func mantleResponse(ptr unsafe.Pointer, capacity uint32) int32

//go:wasmimport mantle log
func mantleLog(level int32, ptr unsafe.Pointer, n uint32)

// mantle_handle is the reactor's entry point: one call per invocation.
//
//go:wasmexport mantle_handle
func mantleHandle() int32 { return int32(handle()) }

// buf is reused between host calls; answers larger than it are fetched
// with a second call.
var buf = make([]byte, 64<<10)

func ptr(b []byte) unsafe.Pointer {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Pointer(&b[0])
}

func abiError(what string, n int32) error {
	switch n {
	case -1:
		return fmt.Errorf("mantle: %s: pointer or length outside memory", what)
	case -2:
		return fmt.Errorf("mantle: %s: too large", what)
	case -3:
		return fmt.Errorf("mantle: %s: the host has no such call", what)
	}
	return fmt.Errorf("mantle: %s: ABI error %d", what, n)
}

func readInput() []byte {
	n := mantleInput(ptr(buf), uint32(len(buf)))
	if n < 0 {
		panic(abiError("input", n))
	}
	if int(n) <= len(buf) {
		return append([]byte(nil), buf[:n]...)
	}
	b := make([]byte, n)
	mantleInput(ptr(b), uint32(n))
	return b
}

func writeOutput(b []byte) error {
	if n := mantleOutput(ptr(b), uint32(len(b))); n < 0 {
		return abiError("output", n)
	}
	return nil
}

func hostCall(op string, req []byte) ([]byte, error) {
	o := []byte(op)
	n := mantleCall(ptr(o), uint32(len(o)), ptr(req), uint32(len(req)), ptr(buf), uint32(len(buf)))
	if n < 0 {
		return nil, abiError(op, n)
	}
	if int(n) <= len(buf) {
		return buf[:n], nil
	}
	b := make([]byte, n)
	if m := mantleResponse(ptr(b), uint32(n)); m != n {
		return nil, errors.New("mantle: " + op + ": the answer changed size")
	}
	return b, nil
}

func hostLog(level int32, msg string) {
	b := []byte(msg)
	mantleLog(level, ptr(b), uint32(len(b)))
}
