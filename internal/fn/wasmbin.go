package fn

import "encoding/binary"

// The module rewrites of this package (mergeData, interruptible) read a
// module as its list of sections and write it back from that list.

// Section ids of the WebAssembly binary format.
const (
	sectionCustom    = 0
	sectionType      = 1
	sectionImport    = 2
	sectionGlobal    = 6
	sectionExport    = 7
	sectionStart     = 8
	sectionElem      = 9
	sectionCode      = 10
	sectionData      = 11
	sectionDataCount = 12
)

type wasmSection struct {
	id   byte
	body []byte
}

// splitSections reads a version-1 module's sections; ok is false for
// anything else or a malformed section header.
func splitSections(wasm []byte) (secs []wasmSection, ok bool) {
	if len(wasm) < 8 || string(wasm[:4]) != "\x00asm" || binary.LittleEndian.Uint32(wasm[4:8]) != 1 {
		return nil, false
	}
	for i := 8; i < len(wasm); {
		size, n := binary.Uvarint(wasm[i+1:])
		if n <= 0 || uint64(len(wasm)-i-1-n) < size {
			return nil, false
		}
		secs = append(secs, wasmSection{wasm[i], wasm[i+1+n : i+1+n+int(size)]})
		i += 1 + n + int(size)
	}
	return secs, true
}

// joinSections writes a module of secs.
func joinSections(secs []wasmSection, sizeHint int) []byte {
	out := make([]byte, 0, sizeHint)
	out = append(out, "\x00asm\x01\x00\x00\x00"...)
	for _, s := range secs {
		out = append(out, s.id)
		out = binary.AppendUvarint(out, uint64(len(s.body)))
		out = append(out, s.body...)
	}
	return out
}
