package fn

import "encoding/binary"

// The decoding half of interruptible: a reader over the binary format
// that copies what it does not change.

type reader struct {
	b   []byte
	err bool
}

func (d *reader) u32() uint32 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 || v > 1<<32-1 {
		d.err, d.b = true, nil
		return 0
	}
	d.b = d.b[n:]
	return uint32(v)
}

// leb skips a LEB128 number of any sign and width.
func (d *reader) leb() {
	for i, c := range d.b {
		if c&0x80 == 0 {
			d.b = d.b[i+1:]
			return
		}
	}
	d.err, d.b = true, nil
}

func (d *reader) byte1() byte {
	if len(d.b) == 0 {
		d.err = true
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *reader) skip(n int) {
	if len(d.b) < n {
		d.err, d.b = true, nil
		return
	}
	d.b = d.b[n:]
}

func (d *reader) name() {
	d.skip(int(d.u32()))
}

func (d *reader) limits() {
	flags := d.byte1()
	d.leb()
	if flags&1 != 0 {
		d.leb()
	}
}

// done answers out if the whole of d was read without error.
func (d *reader) done(out []byte) ([]byte, error) {
	if d.err || len(d.b) != 0 {
		return nil, errRewrite
	}
	return out, nil
}

func readU32(b []byte) (uint64, error) {
	d := reader{b: b}
	v := d.u32()
	if d.err || len(d.b) != 0 {
		return 0, errRewrite
	}
	return uint64(v), nil
}

// countImports counts the function and global imports.
func countImports(b []byte) (funcs, globals int, err error) {
	if len(b) == 0 {
		return 0, 0, nil
	}
	d := reader{b: b}
	for range d.u32() {
		d.name()
		d.name()
		switch d.byte1() {
		case 0: // function
			d.u32()
			funcs++
		case 1: // table
			d.byte1()
			d.limits()
		case 2: // memory
			d.limits()
		case 3: // global
			d.byte1()
			d.byte1()
			globals++
		case 4: // tag
			d.byte1()
			d.u32()
		default:
			return 0, 0, errRewrite
		}
		if d.err {
			return 0, 0, errRewrite
		}
	}
	if d.err || len(d.b) != 0 {
		return 0, 0, errRewrite
	}
	return funcs, globals, nil
}

// globals copies the global section with function indices moved.
func (r *rewriter) globals(b []byte) (int, []byte, error) {
	if len(b) == 0 {
		return 0, nil, nil
	}
	d := reader{b: b}
	n := d.u32()
	out := binary.AppendUvarint(nil, uint64(n))
	for range n {
		if len(d.b) < 2 {
			return 0, nil, errRewrite
		}
		out = append(out, d.b[:2]...) // value type, mutability
		d.skip(2)
		var err error
		if out, err = r.expr(&d, out, false); err != nil {
			return 0, nil, err
		}
	}
	if d.err || len(d.b) != 0 {
		return 0, nil, errRewrite
	}
	return int(n), out, nil
}

func (r *rewriter) exports(b []byte) ([]byte, error) {
	d := reader{b: b}
	n := d.u32()
	out := binary.AppendUvarint(nil, uint64(n))
	for range n {
		start := d.b
		d.name()
		if d.err {
			return nil, errRewrite
		}
		out = append(out, start[:len(start)-len(d.b)]...)
		kind := d.byte1()
		idx := d.u32()
		if kind == 0 {
			idx = r.shift(idx)
		}
		out = binary.AppendUvarint(append(out, kind), uint64(idx))
	}
	return d.done(out)
}

func (r *rewriter) elements(b []byte) ([]byte, error) {
	d := reader{b: b}
	n := d.u32()
	out := binary.AppendUvarint(nil, uint64(n))
	var err error
	for range n {
		flags := d.u32()
		out = binary.AppendUvarint(out, uint64(flags))
		if flags > 7 {
			return nil, errRewrite
		}
		if flags&3 == 2 { // table index
			out = binary.AppendUvarint(out, uint64(d.u32()))
		}
		if flags&1 == 0 { // active: offset
			if out, err = r.expr(&d, out, false); err != nil {
				return nil, err
			}
		}
		if flags&3 != 0 { // element kind or reference type
			out = append(out, d.byte1())
		}
		count := d.u32()
		out = binary.AppendUvarint(out, uint64(count))
		for range count {
			if flags&4 == 0 {
				out = binary.AppendUvarint(out, uint64(r.shift(d.u32())))
			} else if out, err = r.expr(&d, out, false); err != nil {
				return nil, err
			}
		}
		if d.err {
			return nil, errRewrite
		}
	}
	return d.done(out)
}

func (r *rewriter) code(b []byte) ([]byte, error) {
	d := reader{b: b}
	n := d.u32()
	out := binary.AppendUvarint(make([]byte, 0, len(b)+len(b)/8), uint64(n))
	var body []byte
	for range n {
		size := d.u32()
		if d.err || uint64(len(d.b)) < uint64(size) {
			return nil, errRewrite
		}
		f := reader{b: d.b[:size]}
		d.skip(int(size))
		start := f.b
		for range f.u32() { // locals
			f.u32()
			f.byte1()
		}
		if f.err {
			return nil, errRewrite
		}
		body = append(body[:0], start[:len(start)-len(f.b)]...)
		var err error
		if body, err = r.expr(&f, body, true); err != nil {
			return nil, err
		}
		out = binary.AppendUvarint(out, uint64(len(body)))
		out = append(out, body...)
	}
	return d.done(out)
}

// custom moves the function indices of the "name" section; other custom
// sections are kept as they are.
func (r *rewriter) custom(b []byte) ([]byte, error) {
	d := reader{b: b}
	if n := d.u32(); d.err || n != 4 || len(d.b) < 4 || string(d.b[:4]) != "name" {
		return b, nil
	}
	d.skip(4)
	out := append([]byte(nil), b[:len(b)-len(d.b)]...)
	for len(d.b) > 0 {
		id := d.byte1()
		size := d.u32()
		if d.err || uint64(len(d.b)) < uint64(size) {
			return nil, errRewrite
		}
		sub := reader{b: d.b[:size]}
		d.skip(int(size))
		var body []byte
		switch id {
		case 1, 2, 3: // function names; local and label names by function
			n := sub.u32()
			body = binary.AppendUvarint(nil, uint64(n))
			for range n {
				body = binary.AppendUvarint(body, uint64(r.shift(sub.u32())))
				start := sub.b
				if id == 1 {
					sub.name()
				} else {
					for range sub.u32() {
						sub.u32()
						sub.name()
					}
				}
				if sub.err {
					return nil, errRewrite
				}
				body = append(body, start[:len(start)-len(sub.b)]...)
			}
		default:
			body = sub.b
		}
		out = append(out, id)
		out = binary.AppendUvarint(out, uint64(len(body)))
		out = append(out, body...)
	}
	return out, nil
}

// expr copies instructions to out up to the end of the expression (a
// function body to the end of d when body is set), moving function
// indices and putting the countdown after every loop header.
func (r *rewriter) expr(d *reader, out []byte, body bool) ([]byte, error) {
	depth := 0
	for !d.err {
		if len(d.b) == 0 {
			if body && depth < 0 {
				return out, nil
			}
			return nil, errRewrite
		}
		if depth < 0 {
			return nil, errRewrite // bytes after the final end
		}
		start := d.b
		op := d.byte1()
		switch {
		case op == 0x02 || op == 0x03 || op == 0x04: // block, loop, if
			d.blockType()
			depth++
			out = append(out, start[:len(start)-len(d.b)]...)
			if op == 0x03 {
				out = r.check(out)
			}
			continue
		case op == 0x0b: // end
			depth--
			out = append(out, op)
			if depth < 0 && !body {
				return out, nil
			}
			continue
		case op == 0x10 || op == 0x12 || op == 0xd2: // call, return_call, ref.func
			out = binary.AppendUvarint(append(out, op), uint64(r.shift(d.u32())))
			continue
		case op == 0x1f: // try_table
			d.blockType()
			for range d.u32() {
				if k := d.byte1(); k <= 1 {
					d.u32()
				}
				d.u32()
			}
			depth++
		case op == 0x06: // try (legacy exceptions)
			d.blockType()
			depth++
		case op == 0x0c || op == 0x0d || op == 0xd5 || op == 0xd6 || op == 0x09: // br, br_if, br_on_null, br_on_non_null, rethrow
			d.u32()
		case op >= 0x20 && op <= 0x26: // local.get/set/tee, global.get/set, table.get/set
			d.u32()
		case op == 0x07 || op == 0x08 || op == 0x14: // catch, throw, call_ref
			d.u32()
		case op == 0x18: // delegate: ends a try
			d.u32()
			depth--
		case op == 0x19 || op == 0x0a: // catch_all, throw_ref
		case op == 0x0e: // br_table
			for range d.u32() {
				d.u32()
			}
			d.u32()
		case op == 0x11 || op == 0x13: // call_indirect, return_call_indirect
			d.u32()
			d.u32()
		case op == 0x1c: // select t*
			for range d.u32() {
				d.byte1()
			}
		case op == 0xd0: // ref.null
			d.byte1()
		case op >= 0x28 && op <= 0x3e: // loads and stores
			d.memarg()
		case op == 0x3f || op == 0x40: // memory.size, memory.grow
			d.u32()
		case op == 0x41 || op == 0x42: // i32.const, i64.const
			d.leb()
		case op == 0x43:
			d.skip(4)
		case op == 0x44:
			d.skip(8)
		case op == 0x00 || op == 0x01 || op == 0x05 || op == 0x0f || op == 0x1a || op == 0x1b ||
			(op >= 0x45 && op <= 0xc4) || op == 0xd1 || op == 0xd3 || op == 0xd4:
			// no immediate
		case op == 0xfc:
			miscImmediates(d)
		case op == 0xfd:
			simdImmediates(d)
		case op == 0xfe:
			if d.u32() == 3 { // atomic.fence
				d.byte1()
			} else {
				d.memarg()
			}
		default:
			return nil, errRewrite
		}
		out = append(out, start[:len(start)-len(d.b)]...)
	}
	return nil, errRewrite
}

func (d *reader) blockType() {
	if len(d.b) > 0 && (d.b[0] == 0x40 || d.b[0] >= 0x6f && d.b[0] <= 0x7f) {
		d.byte1()
		return
	}
	d.leb() // a type index, as a signed 33-bit number
}

func (d *reader) memarg() {
	align := d.u32()
	if align&0x40 != 0 { // multi-memory: a memory index follows
		d.u32()
	}
	d.leb() // offset (memory64 allows 64 bits)
}

func miscImmediates(d *reader) {
	switch sub := d.u32(); {
	case sub <= 7: // saturating truncations
	case sub == 8 || sub == 12 || sub == 14: // memory.init, table.init, table.copy
		d.u32()
		d.u32()
	case sub == 10: // memory.copy
		d.u32()
		d.u32()
	case sub == 9 || sub == 11 || sub == 13 || sub == 15 || sub == 16 || sub == 17:
		d.u32()
	default:
		d.err = true
	}
}

func simdImmediates(d *reader) {
	sub := d.u32()
	switch {
	case sub <= 11 || sub == 92 || sub == 93: // loads and stores
		d.memarg()
	case sub == 12 || sub == 13: // v128.const, i8x16.shuffle
		d.skip(16)
	case sub >= 21 && sub <= 34: // extract and replace lane
		d.byte1()
	case sub >= 84 && sub <= 91: // load and store lane
		d.memarg()
		d.byte1()
	case sub <= 0x113:
	default:
		d.err = true
	}
}
