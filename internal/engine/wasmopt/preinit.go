package wasmopt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// The exports of a pre-initialized guest (abi/README.md, "Pre-initialized
// modules"): a WASI reactor whose PreinitInit the host runs once, at
// deploy time, and whose PreinitEntry serves one sandbox.
const (
	PreinitInit  = "_initialize"
	PreinitEntry = "edgehost_serve"
)

// PreinitVersion names the output of Snapshot: a cache of snapshots keys
// them by it. It changes whenever the output for some input does.
const PreinitVersion = "preinit-v1"

// SnapshotGlobalPrefix starts the names under which ExportForSnapshot
// exports a module's mutable globals; the global's index follows.
const SnapshotGlobalPrefix = "edgehost.snapshot.global."

// ErrNotSnapshottable is wrapped by ExportForSnapshot's error for a
// module whose instance state is more than its memory and its globals.
var ErrNotSnapshottable = errors.New("the module cannot be pre-initialized")

// wasmPage is the size of a Wasm memory page, bytes.
const wasmPage = 1 << 16

// IsPreinit reports whether wasm exports the functions PreinitInit and
// PreinitEntry and no _start: a pre-initialized guest. False for a
// malformed module.
func IsPreinit(wasm []byte) bool {
	secs, err := sections(wasm)
	if err != nil {
		return false
	}
	var init, entry, start bool
	for _, s := range secs {
		if s.id != 7 {
			continue
		}
		exps, ok := readExports(s.body)
		if !ok {
			return false
		}
		for _, e := range exps {
			if e.kind != 0x00 {
				continue
			}
			switch e.name {
			case PreinitInit:
				init = true
			case PreinitEntry:
				entry = true
			case "_start":
				start = true
			}
		}
	}
	return init && entry && !start
}

// ExportForSnapshot checks that the state of an instance of wasm is
// nothing but its linear memory and its globals once PreinitInit has
// returned, so that Snapshot can rebuild it, and returns wasm with each
// mutable global exported as SnapshotGlobalPrefix and its index, those
// names in names. The conditions: only function imports; one memory,
// defined, 32-bit and not shared; no start function; no data count
// section (so no passive segment is left to copy later); every global a
// number; no instruction that changes a table or drops a segment, and
// none this package does not know; no export named with
// SnapshotGlobalPrefix. Errors: ErrNotSnapshottable, wrapped with the
// condition that fails, or a malformed module.
func ExportForSnapshot(wasm []byte) (out []byte, names []string, err error) {
	secs, err := sections(wasm)
	if err != nil {
		return nil, nil, err
	}
	refuse := func(why string) ([]byte, []string, error) {
		return nil, nil, fmt.Errorf("%w: %s", ErrNotSnapshottable, why)
	}
	rw := &rewriter{nImp: ^uint32(0)}
	var mutable []uint32
	memories, exportAt := 0, -1
	for i, s := range secs {
		switch s.id {
		case 0, 1, 3, 4:
		case 2:
			if !funcImportsOnly(s.body) {
				return refuse("it imports a table, a memory or a global")
			}
		case 5:
			n, ok := memoryCount(s.body)
			if !ok {
				return refuse("its memory is 64-bit or shared")
			}
			memories += n
		case 6:
			var ok bool
			if mutable, ok = rw.mutableGlobals(s.body); !ok {
				return refuse("a global holds a reference")
			}
		case 7:
			exportAt = i
			exps, ok := readExports(s.body)
			if !ok {
				return nil, nil, errors.New("wasmopt: bad export section")
			}
			for _, e := range exps {
				if strings.HasPrefix(e.name, SnapshotGlobalPrefix) {
					return refuse("it exports " + e.name)
				}
			}
		case 8:
			return refuse("it has a start function")
		case 9:
			if !rw.elemsOK(s.body) {
				return refuse("an element segment this rewrite does not read")
			}
		case 10:
			if !rw.codeKeepsTables(s.body) {
				return refuse("its code changes a table or drops a segment, or holds an instruction this rewrite does not know")
			}
		case 11:
		case 12:
			return refuse("it has a data count section (bulk memory segments)")
		default:
			return refuse("it has section " + strconv.Itoa(int(s.id)))
		}
	}
	if memories != 1 {
		return refuse("it defines " + strconv.Itoa(memories) + " memories, not one")
	}
	if exportAt < 0 {
		return refuse("it exports nothing")
	}
	names, added := globalExports(SnapshotGlobalPrefix, mutable)
	body := secs[exportAt].body
	count, n := binary.Uvarint(body)
	b := binary.AppendUvarint(nil, count+uint64(len(names)))
	b = append(append(b, body[n:]...), added...)
	return replaceSections(wasm, secs, map[byte][]byte{7: b}), names, nil
}

// Snapshot returns wasm (the module ExportForSnapshot was given, not its
// output) as a WASI command whose instances start in the state an
// instance of it had once PreinitInit returned: mem is that instance's
// linear memory (a whole number of pages), globals the values of its
// mutable globals in the order of ExportForSnapshot's names (as wazero's
// api.Global.Get gives them: i32 zero-extended, floats as their bits).
// The module's memory then starts at len(mem) bytes, its data segments
// are mem's non-zero bytes, its mutable globals start at their values,
// PreinitInit is no longer exported and PreinitEntry is exported as
// _start too, so an engine runs it as any command. Errors: mem not a
// whole number of pages or over the memory's maximum, a global count that
// does not match, or a module ExportForSnapshot refuses.
func Snapshot(wasm, mem []byte, globals []uint64) ([]byte, error) {
	if _, _, err := ExportForSnapshot(wasm); err != nil {
		return nil, err
	}
	if len(mem)%wasmPage != 0 {
		return nil, fmt.Errorf("wasmopt: snapshot memory of %d bytes is not a whole number of pages", len(mem))
	}
	secs, _ := sections(wasm)
	repl := map[byte][]byte{11: snapshotData(mem)}
	for _, s := range secs {
		var (
			b   []byte
			err error
		)
		switch s.id {
		case 5:
			b, err = resizeMemory(s.body, uint64(len(mem)/wasmPage))
		case 6:
			b, err = snapshotGlobals(s.body, globals)
		case 7:
			b, err = commandExports(s.body)
		default:
			continue
		}
		if err != nil {
			return nil, err
		}
		repl[s.id] = b
	}
	if _, ok := repl[6]; !ok && len(globals) != 0 {
		return nil, fmt.Errorf("wasmopt: %d global values for a module without globals", len(globals))
	}
	return replaceSections(wasm, secs, repl), nil
}

// snapshotData is a data section of active segments holding the non-zero
// bytes of mem: runs of zeros shorter than maxGap stay inside a segment.
func snapshotData(mem []byte) []byte {
	var segs []segment
	for i := 0; i < len(mem); {
		for i < len(mem) && mem[i] == 0 {
			i++
		}
		if i == len(mem) {
			break
		}
		start, end := i, i
		for zeros := 0; i < len(mem) && zeros < maxGap; i++ {
			if mem[i] == 0 {
				zeros++
				continue
			}
			zeros, end = 0, i+1
		}
		segs = append(segs, segment{off: uint32(start), data: mem[start:end]})
		i = end
	}
	sec := binary.AppendUvarint(nil, uint64(len(segs)))
	for _, s := range segs {
		sec = append(sec, 0x00, 0x41)
		sec = appendSleb32(sec, int32(s.off))
		sec = append(sec, 0x0b)
		sec = binary.AppendUvarint(sec, uint64(len(s.data)))
		sec = append(sec, s.data...)
	}
	return sec
}

// resizeMemory is the memory section b (one memory) with the memory's
// minimum set to pages.
func resizeMemory(b []byte, pages uint64) ([]byte, error) {
	r := &reader{b: b}
	if r.u32() != 1 {
		return nil, errors.New("wasmopt: not one memory")
	}
	flags := r.byte()
	r.u32()
	out := []byte{1, flags}
	out = binary.AppendUvarint(out, pages)
	if flags&1 != 0 {
		max := r.u32()
		if uint64(max) < pages {
			return nil, fmt.Errorf("wasmopt: snapshot memory of %d pages is over the maximum of %d", pages, max)
		}
		out = binary.AppendUvarint(out, uint64(max))
	}
	if r.bad || r.pos != len(b) {
		return nil, errors.New("wasmopt: bad memory section")
	}
	return out, nil
}

// snapshotGlobals is the global section b with each mutable global's
// initializer replaced by a constant: the next value of values.
func snapshotGlobals(b []byte, values []uint64) ([]byte, error) {
	rw := &rewriter{nImp: ^uint32(0)}
	r := &reader{b: b}
	count := r.u32()
	out := binary.AppendUvarint(nil, uint64(count))
	next := 0
	var scratch []byte
	for i := uint32(0); i < count && !r.bad; i++ {
		start := r.pos
		t, mut := r.byte(), r.byte()
		if scratch = rw.constExpr(r, scratch[:0]); scratch == nil {
			return nil, errors.New("wasmopt: bad global initializer")
		}
		if mut != 0x01 {
			out = append(out, b[start:r.pos]...)
			continue
		}
		if next == len(values) {
			return nil, fmt.Errorf("wasmopt: %d global values for more mutable globals", len(values))
		}
		v := values[next]
		next++
		out = append(out, t, mut)
		switch t {
		case 0x7f: // i32
			out = append(out, 0x41)
			out = appendSleb32(out, int32(uint32(v)))
		case 0x7e: // i64
			out = append(out, 0x42)
			out = appendSleb64(out, int64(v))
		case 0x7d: // f32
			out = append(out, 0x43)
			out = binary.LittleEndian.AppendUint32(out, uint32(v))
		case 0x7c: // f64
			out = append(out, 0x44)
			out = binary.LittleEndian.AppendUint64(out, v)
		default:
			return nil, errors.New("wasmopt: a mutable global holds a reference")
		}
		out = append(out, 0x0b)
	}
	if r.bad || r.pos != len(b) {
		return nil, errors.New("wasmopt: bad global section")
	}
	if next != len(values) {
		return nil, fmt.Errorf("wasmopt: %d global values for %d mutable globals", len(values), next)
	}
	return out, nil
}

// commandExports is the export section b without PreinitInit and with
// PreinitEntry exported as _start too.
func commandExports(b []byte) ([]byte, error) {
	exps, ok := readExports(b)
	if !ok {
		return nil, errors.New("wasmopt: bad export section")
	}
	var body []byte
	n := 0
	for _, e := range exps {
		if e.kind == 0x00 && e.name == PreinitInit {
			continue
		}
		if e.kind == 0x00 && e.name == PreinitEntry {
			body = appendName(body, "_start")
			body = append(body, 0x00)
			body = binary.AppendUvarint(body, uint64(e.index))
			n++
		}
		body = appendName(body, e.name)
		body = append(body, e.kind)
		body = binary.AppendUvarint(body, uint64(e.index))
		n++
	}
	return append(binary.AppendUvarint(nil, uint64(n)), body...), nil
}

// appendSleb64 appends v as a signed LEB128.
func appendSleb64(b []byte, v int64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

// memoryCount is the number of memories the memory section b defines;
// ok is false when one is 64-bit or shared.
func memoryCount(b []byte) (n int, ok bool) {
	r := &reader{b: b}
	count := r.u32()
	for i := uint32(0); i < count && !r.bad; i++ {
		flags := r.byte()
		if flags&^1 != 0 {
			return 0, false
		}
		r.u32()
		if flags&1 != 0 {
			r.u32()
		}
	}
	return int(count), !r.bad && r.pos == len(b) && count <= math.MaxInt32
}

// section is one section of a module: its id and body, and its span in
// the module (id byte to end).
type section struct {
	id         byte
	start, end int
	body       []byte
}

// sections splits wasm into its sections.
func sections(wasm []byte) ([]section, error) {
	if len(wasm) < 8 || string(wasm[:4]) != "\x00asm" {
		return nil, errors.New("wasmopt: not a wasm module")
	}
	var secs []section
	for pos := 8; pos < len(wasm); {
		id := wasm[pos]
		size, n := binary.Uvarint(wasm[pos+1:])
		if n <= 0 {
			return nil, errors.New("wasmopt: bad section size")
		}
		body := pos + 1 + n
		end := body + int(size)
		if end > len(wasm) || end < body {
			return nil, errors.New("wasmopt: section past the end")
		}
		secs = append(secs, section{id, pos, end, wasm[body:end]})
		pos = end
	}
	return secs, nil
}

// sectionOrder is the place of each known section id in a module.
var sectionOrder = [...]int{1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 6, 7: 7, 8: 8, 9: 9, 12: 10, 10: 11, 11: 12}

// replaceSections is wasm (split into secs) with the body of each section
// whose id is a key of repl replaced by its value; a section of repl that
// wasm lacks is added in its place in the order of sections.
func replaceSections(wasm []byte, secs []section, repl map[byte][]byte) []byte {
	out := make([]byte, 0, len(wasm))
	out = append(out, wasm[:8]...)
	emit := func(id byte, body []byte) {
		out = append(out, id)
		out = binary.AppendUvarint(out, uint64(len(body)))
		out = append(out, body...)
	}
	done := map[byte]bool{}
	addBefore := func(place int) {
		for id, body := range repl {
			if !done[id] && int(id) < len(sectionOrder) && sectionOrder[id] < place && !present(secs, id) {
				emit(id, body)
				done[id] = true
			}
		}
	}
	for _, s := range secs {
		if s.id != 0 && int(s.id) < len(sectionOrder) {
			addBefore(sectionOrder[s.id])
		}
		if body, ok := repl[s.id]; ok && s.id != 0 {
			emit(s.id, body)
			done[s.id] = true
			continue
		}
		out = append(out, wasm[s.start:s.end]...)
	}
	addBefore(len(sectionOrder) + 1)
	return out
}

func present(secs []section, id byte) bool {
	for _, s := range secs {
		if s.id == id {
			return true
		}
	}
	return false
}

// export is one entry of an export section.
type export struct {
	name  string
	kind  byte
	index uint32
}

func readExports(b []byte) ([]export, bool) {
	r := &reader{b: b}
	count := r.u32()
	var exps []export
	for i := uint32(0); i < count && !r.bad; i++ {
		e := export{name: r.name()}
		e.kind = r.byte()
		e.index = r.u32()
		exps = append(exps, e)
	}
	return exps, !r.bad && r.pos == len(b)
}
