package wasmopt

import (
	"encoding/binary"
	"errors"
	"strings"
)

// The import InsertInterruptChecks adds: a function () -> i32 that the
// engine provides. It either stops the guest (its run's context ended) or
// returns the number of steps until the next call (at least 1).
const (
	InterruptModule = "edgehost_interrupt"
	InterruptName   = "check"
)

// InterruptVersion names the output of InsertInterruptChecks: a cache of
// its results keys them by it. It changes whenever the rewrite's output
// for some module does.
const InterruptVersion = "interrupt-v1"

// InsertInterruptChecks makes wasm call the InterruptModule.InterruptName
// import every so many steps, a step being a function entry or a loop
// iteration (the places where wasmtime checks its epoch and wazero its
// context): a mutable i32 global the rewrite adds counts down at each
// step, and when it is 0 the import is called and its result stored
// there. The first call comes at the first step. A guest that never
// returns to the host is thus stopped within budget steps of its
// deadline, at the cost of a few instructions per step instead of the
// call into Go that wazero's WithCloseOnContextDone makes at every loop
// iteration (most of a TinyGo guest's start-up: its allocator scans its
// heap in a loop).
//
// Function indices shift by one (the import comes after the module's
// own); calls, ref.func, exports, the start function, element segments
// and the name section follow. DWARF sections (.debug_*) are dropped: they
// describe the old code offsets.
//
// ok is false (and wasm returned as is) when the module already imports
// from InterruptModule or holds an instruction or section this rewrite
// does not know; err is non-nil only for a malformed module.
func InsertInterruptChecks(wasm []byte) (out []byte, ok bool, err error) {
	out, ok, _, err = insertInterruptChecks(wasm)
	return out, ok, err
}

// insertInterruptChecks is InsertInterruptChecks; changes reports whether
// a function of wasm holds an instruction changesState names.
func insertInterruptChecks(wasm []byte) (out []byte, ok, changes bool, err error) {
	rw := &rewriter{}
	out, ok, err = rw.insertChecks(wasm)
	return out, ok, rw.changes, err
}

func (rw *rewriter) insertChecks(wasm []byte) (out []byte, ok bool, err error) {
	if len(wasm) < 8 || string(wasm[:4]) != "\x00asm" {
		return nil, false, errors.New("wasmopt: not a wasm module")
	}
	type section struct {
		id   byte
		body []byte
	}
	var secs []section
	for pos := 8; pos < len(wasm); {
		id := wasm[pos]
		size, n := binary.Uvarint(wasm[pos+1:])
		if n <= 0 {
			return nil, false, errors.New("wasmopt: bad section size")
		}
		body := pos + 1 + n
		end := body + int(size)
		if end > len(wasm) || end < body {
			return nil, false, errors.New("wasmopt: section past the end")
		}
		secs = append(secs, section{id, wasm[body:end]})
		pos = end
	}
	// First pass: counts the rewrite needs.
	var nTypes, nGlobals uint32
	hasType, hasImport, hasGlobal := false, false, false
	for _, s := range secs {
		switch s.id {
		case 1:
			hasType = true
			c, n := binary.Uvarint(s.body)
			if n <= 0 || c > 1e6 {
				return wasm, false, nil
			}
			nTypes = uint32(c)
		case 2:
			hasImport = true
			funcs, globals, own, good := countImports(s.body)
			if !good {
				return wasm, false, nil
			}
			if own {
				return wasm, false, nil
			}
			rw.nImp, rw.nImpGlobals = funcs, globals
		case 6:
			hasGlobal = true
			c, n := binary.Uvarint(s.body)
			if n <= 0 || c > 1e6 {
				return wasm, false, nil
			}
			nGlobals = uint32(c)
		case 0, 3, 4, 5, 7, 8, 9, 10, 11, 12:
		default:
			return wasm, false, nil // tags (exceptions) or unknown sections
		}
	}
	if !hasType {
		return wasm, false, nil
	}
	rw.global = rw.nImpGlobals + nGlobals
	checkType := nTypes

	out = make([]byte, 0, len(wasm)+len(wasm)/8+64)
	out = append(out, wasm[:8]...)
	emit := func(id byte, body []byte) {
		out = append(out, id)
		out = binary.AppendUvarint(out, uint64(len(body)))
		out = append(out, body...)
	}
	importSec := func(old []byte) []byte {
		var b []byte
		var rest []byte
		count := uint64(0)
		if old != nil {
			c, n := binary.Uvarint(old)
			count, rest = c, old[n:]
		}
		b = binary.AppendUvarint(b, count+1)
		b = append(b, rest...)
		b = appendName(b, InterruptModule)
		b = appendName(b, InterruptName)
		b = append(b, 0x00)
		return binary.AppendUvarint(b, uint64(checkType))
	}
	globalSec := func(old []byte) []byte {
		var b []byte
		var rest []byte
		count := uint64(0)
		if old != nil {
			c, n := binary.Uvarint(old)
			count, rest = c, old[n:]
		}
		b = binary.AppendUvarint(b, count+1)
		r := &reader{b: rest}
		for i := uint64(0); i < count; i++ {
			start := r.pos
			r.skip(2) // valtype, mutability
			if r.bad {
				return nil
			}
			b = append(b, rest[start:r.pos]...)
			if b = rw.constExpr(r, b); b == nil {
				return nil
			}
		}
		if r.bad || r.pos != len(rest) {
			return nil
		}
		// mut i32, i32.const 0: the first step calls the import.
		return append(b, 0x7f, 0x01, 0x41, 0x00, 0x0b)
	}
	importDone, globalDone := false, false
	for _, s := range secs {
		if s.id != 0 {
			if !importDone && s.id != 1 && !hasImport {
				emit(2, importSec(nil))
				importDone = true
			}
			if !globalDone && !hasGlobal && s.id != 1 && s.id != 2 && s.id != 3 && s.id != 4 && s.id != 5 {
				b := globalSec(nil)
				emit(6, b)
				globalDone = true
			}
		}
		var b []byte
		switch s.id {
		case 0:
			name, n := readName(s.body)
			switch {
			case n < 0:
				return wasm, false, nil
			case strings.HasPrefix(name, ".debug_"):
				continue
			case name == "name":
				b = append(appendName(nil, name), rw.names(s.body[n:])...)
			default:
				b = s.body
			}
		case 1:
			c, n := binary.Uvarint(s.body)
			b = binary.AppendUvarint(nil, c+1)
			b = append(b, s.body[n:]...)
			b = append(b, 0x60, 0x00, 0x01, 0x7f) // () -> i32
		case 2:
			b = importSec(s.body)
			importDone = true
		case 6:
			b = globalSec(s.body)
			globalDone = true
		case 7:
			b = rw.exports(s.body)
		case 8:
			r := &reader{b: s.body}
			b = binary.AppendUvarint(nil, uint64(rw.fn(r.u32())))
		case 9:
			b = rw.elems(s.body)
		case 10:
			b = rw.code(s.body)
		default:
			b = s.body
		}
		if b == nil {
			return wasm, false, nil
		}
		emit(s.id, b)
	}
	if !importDone || (!globalDone && !hasGlobal) {
		return wasm, false, nil
	}
	return out, true, nil
}

// rewriter holds the index facts of one InsertInterruptChecks.
type rewriter struct {
	nImp        uint32 // imported functions before the rewrite
	nImpGlobals uint32
	global      uint32 // the counter's global index
	changes     bool   // instr saw an instruction changesState names
}

// fn maps an old function index to its new one.
func (rw *rewriter) fn(i uint32) uint32 {
	if i >= rw.nImp {
		return i + 1
	}
	return i
}

// check is the step: count down, call the import at 0.
func (rw *rewriter) check(b []byte) []byte {
	g := func(op byte) { b = append(b, op); b = binary.AppendUvarint(b, uint64(rw.global)) }
	g(0x23)                         // global.get
	b = append(b, 0x45, 0x04, 0x40) // i32.eqz; if
	b = append(b, 0x10)
	b = binary.AppendUvarint(b, uint64(rw.nImp)) // call check
	g(0x24)                                      // global.set
	b = append(b, 0x0b)                          // end
	g(0x23)
	b = append(b, 0x41, 0x01, 0x6b) // i32.const 1; i32.sub
	g(0x24)
	return b
}

// countImports counts the function and global imports and reports whether
// one comes from InterruptModule; good is false for a malformed section or
// an import kind this rewrite does not know.
func countImports(b []byte) (funcs, globals uint32, own, good bool) {
	r := &reader{b: b}
	count := r.u32()
	for i := uint32(0); i < count && !r.bad; i++ {
		mod := r.name()
		r.name()
		switch r.byte() {
		case 0x00:
			r.u32()
			funcs++
		case 0x01: // table: reftype, limits
			r.byte()
			r.limits()
		case 0x02:
			r.limits()
		case 0x03:
			r.skip(2)
			globals++
		default:
			return 0, 0, false, false
		}
		if mod == InterruptModule {
			own = true
		}
	}
	return funcs, globals, own, !r.bad && r.pos == len(b)
}

func (rw *rewriter) exports(b []byte) []byte {
	r := &reader{b: b}
	count := r.u32()
	out := binary.AppendUvarint(nil, uint64(count))
	for i := uint32(0); i < count && !r.bad; i++ {
		start := r.pos
		r.name()
		kind := r.byte()
		out = append(out, b[start:r.pos]...)
		idx := r.u32()
		if kind == 0x00 {
			idx = rw.fn(idx)
		}
		out = binary.AppendUvarint(out, uint64(idx))
	}
	if r.bad || r.pos != len(b) {
		return nil
	}
	return out
}

func (rw *rewriter) elems(b []byte) []byte {
	r := &reader{b: b}
	count := r.u32()
	out := binary.AppendUvarint(nil, uint64(count))
	for i := uint32(0); i < count && !r.bad; i++ {
		flags := r.u32()
		out = binary.AppendUvarint(out, uint64(flags))
		if flags > 7 {
			return nil
		}
		if flags == 2 || flags == 6 {
			out = binary.AppendUvarint(out, uint64(r.u32())) // table index
		}
		if flags&1 == 0 { // active: offset expression
			if out = rw.constExpr(r, out); out == nil {
				return nil
			}
		}
		if flags&3 != 0 { // elemkind or reftype
			out = append(out, r.byte())
		}
		n := r.u32()
		out = binary.AppendUvarint(out, uint64(n))
		for j := uint32(0); j < n && !r.bad; j++ {
			if flags&4 == 0 {
				out = binary.AppendUvarint(out, uint64(rw.fn(r.u32())))
			} else if out = rw.constExpr(r, out); out == nil {
				return nil
			}
		}
	}
	if r.bad || r.pos != len(b) {
		return nil
	}
	return out
}

// constExpr copies a constant expression up to and including its end.
func (rw *rewriter) constExpr(r *reader, out []byte) []byte {
	for !r.bad {
		if r.pos < len(r.b) && r.b[r.pos] == 0x0b {
			r.pos++
			return append(out, 0x0b)
		}
		if out = rw.instr(r, out, false); out == nil {
			return nil
		}
	}
	return nil
}

func (rw *rewriter) code(b []byte) []byte {
	count, n := binary.Uvarint(b)
	if n <= 0 {
		return nil
	}
	out := binary.AppendUvarint(nil, count)
	var body []byte
	ok := funcBodies(b, func(fr *reader, locals []byte) bool {
		body = rw.check(append(body[:0], locals...))
		for fr.pos < len(fr.b) && body != nil {
			body = rw.instr(fr, body, true)
		}
		if body == nil {
			return false
		}
		out = binary.AppendUvarint(out, uint64(len(body)))
		out = append(out, body...)
		return true
	})
	if !ok {
		return nil
	}
	return out
}

// funcBodies walks the function bodies of code section b: fn gets a
// reader of each body positioned at its first instruction (the body ends
// at len(fr.b)) and the body's local declarations as they are. It returns
// false when fn does, or when the section or a body is malformed.
func funcBodies(b []byte, fn func(fr *reader, locals []byte) bool) bool {
	r := &reader{b: b}
	count := r.u32()
	for i := uint32(0); i < count && !r.bad; i++ {
		size := r.u32()
		end := r.pos + int(size)
		if r.bad || end > len(b) || end < r.pos {
			return false
		}
		fr := &reader{b: b[:end], pos: r.pos}
		groups := fr.u32()
		for j := uint32(0); j < groups && !fr.bad; j++ {
			fr.u32()
			fr.byte()
		}
		if fr.bad || !fn(fr, b[r.pos:fr.pos]) || fr.bad {
			return false
		}
		r.pos = end
	}
	return !r.bad && r.pos == len(b)
}

// instr copies one instruction from r to out, shifting function indices
// and, in a function body, adding the step after each loop's block type.
// It returns nil for an instruction it does not know.
func (rw *rewriter) instr(r *reader, out []byte, body bool) []byte {
	start := r.pos
	op := r.byte()
	switch {
	case op == 0x10 || op == 0x12 || op == 0xd2: // call, return_call, ref.func
		out = append(out, op)
		return binary.AppendUvarint(out, uint64(rw.fn(r.u32())))
	case op == 0x03: // loop
		r.blockType()
		if r.bad {
			return nil
		}
		out = append(out, r.b[start:r.pos]...)
		if body {
			out = rw.check(out)
		}
		return out
	case op == 0x02 || op == 0x04:
		r.blockType()
	case op <= 0x01, op == 0x05, op == 0x0b, op == 0x0f, op == 0x1a, op == 0x1b,
		op >= 0x45 && op <= 0xc4, op == 0xd1:
	case op == 0x0c || op == 0x0d:
		r.u32()
	case op == 0x0e:
		n := r.u32()
		for i := uint32(0); i <= n && !r.bad; i++ {
			r.u32()
		}
	case op == 0x11 || op == 0x13:
		r.u32()
		r.u32()
	case op == 0x1c:
		n := r.u32()
		r.skip(int(n))
	case op >= 0x20 && op <= 0x26:
		rw.changes = rw.changes || op == 0x26 // table.set
		r.u32()
	case op >= 0x28 && op <= 0x3e:
		r.memarg()
	case op == 0x3f || op == 0x40:
		r.u32()
	case op == 0x41 || op == 0x42:
		r.sleb()
	case op == 0x43:
		r.skip(4)
	case op == 0x44:
		r.skip(8)
	case op == 0xd0:
		r.byte()
	case op == 0xfc:
		sub := r.u32()
		rw.changes = rw.changes || fcChangesState(sub)
		switch {
		case sub <= 7:
		case sub == 8, sub == 10, sub == 12, sub == 14:
			r.u32()
			r.u32()
		case sub == 9, sub == 11, sub == 13, sub <= 17:
			r.u32()
		default:
			return nil
		}
	case op == 0xfd:
		switch sub := r.u32(); {
		case sub <= 11, sub == 92, sub == 93:
			r.memarg()
		case sub == 12, sub == 13:
			r.skip(16)
		case sub >= 21 && sub <= 34:
			r.byte()
		case sub >= 84 && sub <= 91:
			r.memarg()
			r.byte()
		case sub <= 0x113: // no immediate (SIMD and relaxed SIMD)
		default:
			return nil
		}
	case op == 0xfe:
		switch sub := r.u32(); {
		case sub == 3:
			r.byte()
		case sub <= 2, sub >= 0x10 && sub <= 0x4e:
			r.memarg()
		default:
			return nil
		}
	default:
		return nil
	}
	if r.bad {
		return nil
	}
	return append(out, r.b[start:r.pos]...)
}

// names rewrites the name section's function-indexed subsections
// (function names, local names, label names).
func (rw *rewriter) names(b []byte) []byte {
	r := &reader{b: b}
	var out []byte
	for r.pos < len(b) && !r.bad {
		id := r.byte()
		size := r.u32()
		end := r.pos + int(size)
		if r.bad || end > len(b) || end < r.pos {
			return nil
		}
		sub := b[r.pos:end]
		if id >= 1 && id <= 3 {
			sr := &reader{b: sub}
			count := sr.u32()
			ns := binary.AppendUvarint(nil, uint64(count))
			for i := uint32(0); i < count && !sr.bad; i++ {
				ns = binary.AppendUvarint(ns, uint64(rw.fn(sr.u32())))
				start := sr.pos
				if id == 1 {
					sr.name()
				} else {
					n := sr.u32()
					for j := uint32(0); j < n && !sr.bad; j++ {
						sr.u32()
						sr.name()
					}
				}
				ns = append(ns, sub[start:sr.pos]...)
			}
			if sr.bad || sr.pos != len(sub) {
				return nil
			}
			sub = ns
		}
		out = append(out, id)
		out = binary.AppendUvarint(out, uint64(len(sub)))
		out = append(out, sub...)
		r.pos = end
	}
	if r.bad {
		return nil
	}
	return out
}

// reader reads a module's encodings; bad is set, and stays set, past the
// end or on an over-long number.
type reader struct {
	b   []byte
	pos int
	bad bool
}

func (r *reader) byte() byte {
	if r.bad || r.pos >= len(r.b) {
		r.bad = true
		return 0
	}
	c := r.b[r.pos]
	r.pos++
	return c
}

func (r *reader) skip(n int) {
	if r.bad || n < 0 || n > len(r.b)-r.pos {
		r.bad = true
		return
	}
	r.pos += n
}

func (r *reader) u32() uint32 {
	if r.bad {
		return 0
	}
	v, n := binary.Uvarint(r.b[r.pos:])
	if n <= 0 || n > 5 || v > 0xffffffff {
		r.bad = true
		return 0
	}
	r.pos += n
	return uint32(v)
}

// sleb skips a signed LEB128 number of up to 64 bits.
func (r *reader) sleb() {
	for i := 0; i < 10; i++ {
		if r.byte()&0x80 == 0 {
			return
		}
	}
	r.bad = true
}

func (r *reader) name() string {
	n := r.u32()
	start := r.pos
	r.skip(int(n))
	if r.bad {
		return ""
	}
	return string(r.b[start:r.pos])
}

func (r *reader) limits() {
	flags := r.byte()
	r.sleb() // min (u32 or u64: the LEB is skipped the same way)
	if flags&1 != 0 {
		r.sleb()
	}
}

func (r *reader) memarg() {
	align := r.u32()
	if align&0x40 != 0 { // multi-memory: a memory index follows
		r.u32()
	}
	r.sleb() // offset (u32, or u64 for memory64)
}

// blockType skips a block type: empty, a value type, or a type index
// (a non-negative s33).
func (r *reader) blockType() {
	if r.pos < len(r.b) && (r.b[r.pos] == 0x40 || r.b[r.pos] >= 0x6f && r.b[r.pos] <= 0x7f) {
		r.pos++
		return
	}
	r.sleb()
}

func readName(b []byte) (string, int) {
	r := &reader{b: b}
	s := r.name()
	if r.bad {
		return "", -1
	}
	return s, r.pos
}

func appendName(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}
