package wasmopt

import (
	"encoding/binary"
	"strconv"
	"strings"
)

// ResetGlobalPrefix starts the names under which ExportGlobalsForReset
// exports a module's mutable globals; the global's index follows.
const ResetGlobalPrefix = "edgehost.reset.global."

// ResetVersion names the output of ExportGlobalsForReset: a cache of its
// results keys them by it. It changes whenever the rewrite's output or
// its verdict for some module does.
const ResetVersion = "reset-v1"

// ExportGlobalsForReset decides whether an instance of wasm can be put
// back into the state its instantiation left it in using only what an
// embedder reaches from outside: the contents of its linear memory and its
// exported globals. When it can (ok), out is wasm with every mutable
// global of the module exported as ResetGlobalPrefix followed by the
// global's index in decimal, and names lists those exports.
//
// It can when the module's instance state is nothing but its memory, its
// globals and its tables, and its tables cannot change after
// instantiation:
//   - no start function (its effects would be part of the initial state);
//   - no imported global, table or memory;
//   - every mutable global holds a number (i32, i64, f32, f64);
//   - no active data segment (the initial memory is then all zeros, or an
//     image the embedder keeps: DataImage's);
//   - no instruction that changes a table or drops a segment (table.set,
//     table.grow, table.fill, table.copy, table.init, elem.drop,
//     memory.init, data.drop) and none this package does not know;
//   - no export already named with ResetGlobalPrefix.
//
// Memory growth is not visible here: an embedder must compare the
// memory's size with its initial size. ok is false (and wasm returned as
// is) otherwise; err is non-nil only for a malformed module.
func ExportGlobalsForReset(wasm []byte) (out []byte, names []string, ok bool, err error) {
	return exportGlobalsForReset(wasm, true)
}

// RewriteForReuse is InsertInterruptChecks (ok reports it was made)
// followed by ExportGlobalsForReset on its output (resettable and names
// report that one), decoding the functions' code once: out is the
// module with the interrupt checks, and its mutable globals exported when
// resettable. err is non-nil only for a malformed module.
func RewriteForReuse(wasm []byte) (out []byte, ok bool, names []string, resettable bool, err error) {
	out, ok, changes, err := insertInterruptChecks(wasm)
	if err != nil || !ok || changes {
		return out, ok, nil, false, err
	}
	// The checks add no instruction that changes state, and code the
	// rewrite did not know made it refuse the module.
	r, names, rok, rerr := exportGlobalsForReset(out, false)
	if rerr != nil || !rok {
		return out, true, nil, false, nil
	}
	return r, true, names, true, nil
}

// exportGlobalsForReset is ExportGlobalsForReset; with scanCode false it
// takes the code section as checked.
func exportGlobalsForReset(wasm []byte, scanCode bool) (out []byte, names []string, ok bool, err error) {
	secs, err := sections(wasm)
	if err != nil {
		return nil, nil, false, err
	}
	scan := &rewriter{nImp: ^uint32(0)} // copies indices as they are
	var mutable []uint32
	exportAt := -1 // index in secs of the export section
	for i, s := range secs {
		var good bool
		switch s.id {
		case 0, 1, 3, 4, 5:
			good = true
		case 2:
			good = funcImportsOnly(s.body)
		case 6:
			mutable, good = scan.mutableGlobals(s.body)
		case 7:
			exportAt, good = i, noResetExports(s.body)
		case 9:
			good = scan.elemsOK(s.body)
		case 10:
			good = !scanCode || scan.codeKeepsTables(s.body)
		case 11:
			good = scan.passiveDataOnly(s.body)
		case 12:
			good = true
		default: // 8 (start), 13 (tags), unknown
		}
		if !good {
			return wasm, nil, false, nil
		}
	}
	names, exports := globalExports(ResetGlobalPrefix, mutable)
	if len(names) == 0 {
		return wasm, nil, true, nil
	}
	sec := func(old []byte) []byte {
		count, rest := uint64(0), []byte(nil)
		if old != nil {
			c, n := binary.Uvarint(old)
			count, rest = c, old[n:]
		}
		b := binary.AppendUvarint(nil, count+uint64(len(names)))
		b = append(b, rest...)
		b = append(b, exports...)
		out := []byte{7}
		out = binary.AppendUvarint(out, uint64(len(b)))
		return append(out, b...)
	}
	out = make([]byte, 0, len(wasm)+len(exports)+16)
	out = append(out, wasm[:8]...)
	done := false
	for i, s := range secs {
		switch {
		case i == exportAt:
			out = append(out, sec(s.body)...)
			done = true
			continue
		case !done && exportAt < 0 && (s.id == 8 || s.id == 9 || s.id == 10 || s.id == 11 || s.id == 12):
			out = append(out, sec(nil)...)
			done = true
		}
		out = append(out, wasm[s.start:s.end]...)
	}
	if !done {
		out = append(out, sec(nil)...)
	}
	return out, names, true, nil
}

// ResetExports lists the exports of wasm named with ResetGlobalPrefix, in
// their order: the names ExportGlobalsForReset returned for the module it
// made. Nil for a malformed module.
func ResetExports(wasm []byte) []string {
	secs, err := sections(wasm)
	if err != nil {
		return nil
	}
	for _, sec := range secs {
		if sec.id != 7 {
			continue
		}
		exps, ok := readExports(sec.body)
		if !ok {
			return nil
		}
		var names []string
		for _, e := range exps {
			if strings.HasPrefix(e.name, ResetGlobalPrefix) {
				names = append(names, e.name)
			}
		}
		return names
	}
	return nil
}

// globalExports is the export entries that export each global of idx as
// prefix followed by its index in decimal, and those names.
func globalExports(prefix string, idx []uint32) (names []string, entries []byte) {
	for _, g := range idx {
		name := prefix + strconv.FormatUint(uint64(g), 10)
		names = append(names, name)
		entries = appendName(entries, name)
		entries = append(entries, 0x03)
		entries = binary.AppendUvarint(entries, uint64(g))
	}
	return names, entries
}

// funcImportsOnly reports whether every import of the import section b is
// a function.
func funcImportsOnly(b []byte) bool {
	r := &reader{b: b}
	count := r.u32()
	for i := uint32(0); i < count && !r.bad; i++ {
		r.name()
		r.name()
		if r.byte() != 0x00 {
			return false
		}
		r.u32()
	}
	return !r.bad && r.pos == len(b)
}

// mutableGlobals returns the indices of the mutable globals of the global
// section b (no global is imported); good is false when one holds
// anything but a number.
func (rw *rewriter) mutableGlobals(b []byte) (idx []uint32, good bool) {
	r := &reader{b: b}
	count := r.u32()
	var scratch []byte
	for i := uint32(0); i < count && !r.bad; i++ {
		t, mut := r.byte(), r.byte()
		if mut == 0x01 {
			if t < 0x7c || t > 0x7f {
				return nil, false
			}
			idx = append(idx, i)
		}
		if scratch = rw.constExpr(r, scratch[:0]); scratch == nil {
			return nil, false
		}
	}
	return idx, !r.bad && r.pos == len(b)
}

// noResetExports reports whether no export of the export section b is
// named with ResetGlobalPrefix.
func noResetExports(b []byte) bool {
	r := &reader{b: b}
	count := r.u32()
	for i := uint32(0); i < count && !r.bad; i++ {
		if strings.HasPrefix(r.name(), ResetGlobalPrefix) {
			return false
		}
		r.byte()
		r.u32()
	}
	return !r.bad && r.pos == len(b)
}

// elemsOK reports whether the element section b is well formed as far as
// elems reads it.
func (rw *rewriter) elemsOK(b []byte) bool { return rw.elems(b) != nil }

// passiveDataOnly reports whether every segment of the data section b is
// passive.
func (rw *rewriter) passiveDataOnly(b []byte) bool {
	r := &reader{b: b}
	count := r.u32()
	for i := uint32(0); i < count && !r.bad; i++ {
		if r.u32() != 1 {
			return false
		}
		r.skip(int(r.u32()))
	}
	return !r.bad && r.pos == len(b)
}

// codeKeepsTables reports whether no function of the code section b holds
// an instruction that changes a table or drops a segment, or one instr
// does not know.
func (rw *rewriter) codeKeepsTables(b []byte) bool {
	var scratch []byte
	return funcBodies(b, func(fr *reader, _ []byte) bool {
		for fr.pos < len(fr.b) && !fr.bad {
			if op := fr.b[fr.pos]; (op == 0x26 || op == 0xfc) && changesState(fr.b[fr.pos:]) {
				return false
			}
			if scratch = rw.instr(fr, scratch[:0], false); scratch == nil {
				return false
			}
		}
		return true
	})
}

// changesState reports whether the instruction at the start of b changes a
// table or drops a segment.
func changesState(b []byte) bool {
	switch {
	case len(b) == 0:
		return false
	case b[0] == 0x26: // table.set
		return true
	case b[0] != 0xfc:
		return false
	}
	sub, n := binary.Uvarint(b[1:])
	if n <= 0 || sub > 0xffffffff {
		return true // malformed: instr refuses it too
	}
	return fcChangesState(uint32(sub))
}

// fcChangesState reports whether the 0xfc-prefixed instruction sub
// changes a table or drops a segment: memory.init, data.drop, table.init,
// elem.drop, table.copy, table.grow, table.fill.
func fcChangesState(sub uint32) bool {
	switch sub {
	case 8, 9, 12, 13, 14, 15, 17:
		return true
	}
	return false
}
