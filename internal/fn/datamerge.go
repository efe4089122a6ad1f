package fn

import (
	"cmp"
	"encoding/binary"
	"errors"
	"slices"
)

// Go's linker writes a module's initial memory as tens of thousands of
// small data segments, split wherever a few zero bytes can be skipped (the
// 3.4 MB test guest has 38,165 segments for 0.9 MB of data). wazero
// applies each segment on every instantiation, evaluating its offset
// expression and copying it: a fifth of a Go command's cold start went to
// that. mergeData rewrites the data section once, at compile time, so
// that segments separated by small runs of zeros become one segment with
// the zeros written out. The memory an instance starts with is the same
// byte for byte (TestMergeDataKeepsMemory); the module is otherwise
// untouched.
//
// Only the plain case is rewritten: active segments of memory 0 at
// constant i32 offsets that do not overlap, and no data count section
// (which passive segments and memory.init use).
// Anything else is returned as it came.

// maxMergeGap is the longest run of zeros written out to join two
// segments; longer gaps keep their segments apart.
const maxMergeGap = 4096

type dataSegment struct {
	offset uint32
	data   []byte
}

// mergeData returns wasm with its data segments merged, or wasm itself
// when there is nothing to merge or the module is not of the plain kind.
func mergeData(wasm []byte) []byte {
	secs, ok := splitSections(wasm)
	if !ok {
		return wasm
	}
	data := -1
	for i, sec := range secs {
		switch sec.id {
		case sectionDataCount:
			return wasm
		case sectionData:
			data = i
		}
	}
	if data < 0 {
		return wasm
	}
	segs, err := readSegments(secs[data].body)
	if err != nil || len(segs) < 2 {
		return wasm
	}
	merged := joinSegments(segs)
	if len(merged) == len(segs) {
		return wasm
	}
	body := binary.AppendUvarint(nil, uint64(len(merged)))
	for _, s := range merged {
		body = append(body, 0, 0x41) // active, memory 0; i32.const
		body = appendSLEB32(body, int32(s.offset))
		body = append(body, 0x0b) // end
		body = binary.AppendUvarint(body, uint64(len(s.data)))
		body = append(body, s.data...)
	}
	secs[data].body = body
	return joinSections(secs, len(wasm))
}

var errNotPlain = errors.New("not a plain data section")

// readSegments decodes a data section of plain segments that do not
// overlap (so the order they are applied in does not matter) and returns
// them in order of offset.
func readSegments(b []byte) ([]dataSegment, error) {
	count, n := binary.Uvarint(b)
	if n <= 0 || count > uint64(len(b)) {
		return nil, errNotPlain
	}
	b = b[n:]
	segs := make([]dataSegment, 0, count)
	for range count {
		if len(b) < 2 || b[0] != 0 || b[1] != 0x41 {
			return nil, errNotPlain
		}
		off, n := readSLEB32(b[2:])
		if n <= 0 || off < 0 || len(b) < 2+n+1 || b[2+n] != 0x0b {
			return nil, errNotPlain
		}
		b = b[2+n+1:]
		size, n := binary.Uvarint(b)
		if n <= 0 || uint64(len(b)-n) < size {
			return nil, errNotPlain
		}
		segs = append(segs, dataSegment{offset: uint32(off), data: b[n : n+int(size)]})
		b = b[n+int(size):]
	}
	if len(b) != 0 {
		return nil, errNotPlain
	}
	slices.SortStableFunc(segs, func(a, b dataSegment) int { return cmp.Compare(a.offset, b.offset) })
	for i := 1; i < len(segs); i++ {
		if uint64(segs[i-1].offset)+uint64(len(segs[i-1].data)) > uint64(segs[i].offset) {
			return nil, errNotPlain
		}
	}
	return segs, nil
}

// joinSegments joins neighbours at most maxMergeGap apart, into new
// slices (the input's stay as they were).
func joinSegments(segs []dataSegment) []dataSegment {
	var out []dataSegment
	var zeros [maxMergeGap]byte
	for _, s := range segs {
		if len(out) > 0 {
			last := &out[len(out)-1]
			end := uint64(last.offset) + uint64(len(last.data))
			if gap := uint64(s.offset) - end; gap <= maxMergeGap {
				last.data = append(append(last.data, zeros[:gap]...), s.data...)
				continue
			}
		}
		out = append(out, dataSegment{offset: s.offset, data: append([]byte(nil), s.data...)})
	}
	return out
}

// readSLEB32 decodes a signed LEB128 value of at most 5 bytes.
func readSLEB32(b []byte) (int32, int) {
	var v int64
	var shift uint
	for i := 0; i < len(b) && i < 5; i++ {
		c := b[i]
		v |= int64(c&0x7f) << shift
		shift += 7
		if c&0x80 == 0 {
			if shift < 64 && c&0x40 != 0 {
				v |= -1 << shift
			}
			if v < -1<<31 || v > 1<<31-1 {
				return 0, -1
			}
			return int32(v), i + 1
		}
	}
	return 0, -1
}

func appendSLEB32(b []byte, v int32) []byte {
	x := int64(v)
	for {
		c := byte(x & 0x7f)
		x >>= 7
		if x == 0 && c&0x40 == 0 || x == -1 && c&0x40 != 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}
