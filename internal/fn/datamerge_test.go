package fn

import (
	"bytes"
	"context"
	"encoding/binary"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// TestMergeDataKeepsMemory instantiates the Go guest as built and with
// its data segments merged, without running its start function, and
// compares the two memories byte for byte.
func TestMergeDataKeepsMemory(t *testing.T) {
	for _, style := range []Style{Reactor, Command} {
		wasm := guest(t, style)
		merged := mergeData(wasm)
		before, _ := readSegments(dataSection(t, wasm))
		after, err := readSegments(dataSection(t, merged))
		if err != nil || len(after) == 0 || len(after)*100 > len(before) {
			t.Fatalf("%s: %d segments became %d (%v)", style, len(before), len(after), err)
		}
		if a, b := initialMemory(t, wasm), initialMemory(t, merged); !bytes.Equal(a, b) {
			t.Fatalf("%s: the merged module starts with other memory (%d vs %d bytes)", style, len(a), len(b))
		}
	}
}

// TestMergeDataLeavesOthersAlone: modules of another kind come back as
// they were.
func TestMergeDataLeavesOthersAlone(t *testing.T) {
	seg := func(off byte, data string) []byte {
		return append([]byte{0, 0x41, off, 0x0b, byte(len(data))}, data...)
	}
	module := func(sections ...[]byte) []byte {
		b := []byte("\x00asm\x01\x00\x00\x00\x05\x03\x01\x00\x01") // one memory of one page
		for _, s := range sections {
			b = append(b, s...)
		}
		return b
	}
	data := func(segs ...[]byte) []byte {
		body := []byte{byte(len(segs))}
		for _, s := range segs {
			body = append(body, s...)
		}
		return append([]byte{sectionData, byte(len(body))}, body...)
	}
	plain := module(data(seg(4, "cd"), seg(0, "ab"))) // in any order
	if got := mergeData(plain); bytes.Equal(got, plain) || initialMemoryOf(t, got)[5] != 'd' || !bytes.Equal(initialMemoryOf(t, got)[:6], []byte("ab\x00\x00cd")) {
		t.Fatalf("plain segments were not merged right: % x", got)
	}
	for name, wasm := range map[string][]byte{
		"overlapping": module(data(seg(0, "abcd"), seg(2, "xy"))),
		"passive":     module(data([]byte{1, 2, 'a', 'b'}, seg(0, "cd"))),
		"data count":  module([]byte{sectionDataCount, 1, 2}, data(seg(0, "ab"), seg(4, "cd"))),
		"one segment": module(data(seg(0, "ab"))),
		"truncated":   module(data(seg(0, "ab"), seg(4, "cd")))[:20],
		"not wasm":    []byte("hello, world"),
		"far apart":   module(data(seg(0, "ab"), []byte{0, 0x41, 0x80, 0xc0, 0x00, 0x0b, 2, 'c', 'd'})),
	} {
		if got := mergeData(wasm); !bytes.Equal(got, wasm) {
			t.Errorf("%s: changed to % x", name, got)
		}
	}
}

func FuzzMergeData(f *testing.F) {
	f.Add([]byte("\x00asm\x01\x00\x00\x00\x05\x03\x01\x00\x01\x0b\x0d\x02\x00\x41\x00\x0b\x02ab\x00\x41\x04\x0b\x02cd"))
	f.Fuzz(func(t *testing.T, wasm []byte) {
		mergeData(wasm) // must not panic, whatever the bytes
	})
}

func dataSection(t *testing.T, wasm []byte) []byte {
	t.Helper()
	for i := 8; i < len(wasm); {
		size, n := binary.Uvarint(wasm[i+1:])
		if wasm[i] == sectionData {
			return wasm[i+1+n : i+1+n+int(size)]
		}
		i += 1 + n + int(size)
	}
	t.Fatal("no data section")
	return nil
}

// initialMemory is the memory of a guest instance before its start
// function runs.
func initialMemory(t *testing.T, wasm []byte) []byte {
	t.Helper()
	ctx := context.Background()
	// The interpreter: nothing runs, and compiling for it is quick.
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	defer rt.Close(ctx)
	wasi_snapshot_preview1.MustInstantiate(ctx, rt)
	if err := instantiateHost(ctx, rt); err != nil {
		t.Fatal(err)
	}
	mod, err := rt.InstantiateWithConfig(ctx, wasm, wazero.NewModuleConfig().WithStartFunctions())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := mod.Memory().Read(0, mod.Memory().Size())
	return bytes.Clone(b)
}

func initialMemoryOf(t *testing.T, wasm []byte) []byte { return initialMemory(t, wasm) }
