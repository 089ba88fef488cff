// Package wasmopt rewrites guest modules in ways that keep their meaning
// but make instantiation cheaper.
package wasmopt

import (
	"encoding/binary"
	"sort"
)

// maxGap is the largest run of zero bytes CoalesceData fills in to join two
// data segments. Fresh linear memory is zero, so filling a gap with zeros
// does not change what the guest sees.
const maxGap = 4096

// CoalesceData merges the active data segments of wasm into as few
// segments as it can, when doing so cannot change the module's meaning: the
// module defines (does not import) its memory, every segment is active on
// memory 0 at a constant i32 offset, no two overlap, and there is no data
// count section (so no instruction refers to a segment by index). Go's
// wasip1 linker emits tens of thousands of small segments, and an engine
// copies each one at every instantiation; merged, the cost is one copy.
//
// It returns wasm unchanged (and no error) when a condition does not hold,
// and an error only for a malformed module.
func CoalesceData(wasm []byte) ([]byte, error) {
	d, err := scan(wasm)
	if err != nil || d == nil || len(d.segs) < 2 || d.countStart != 0 {
		return wasm, err
	}
	merged := d.merged(maxGap)
	var sec []byte
	sec = binary.AppendUvarint(sec, uint64(len(merged)))
	for _, s := range merged {
		sec = append(sec, 0x00, 0x41) // active, memory 0; i32.const
		sec = appendSleb32(sec, int32(s.off))
		sec = append(sec, 0x0b)
		sec = binary.AppendUvarint(sec, uint64(len(s.data)))
		sec = append(sec, s.data...)
	}
	return d.replaceData(sec), nil
}

// DataImage splits wasm into a module without data segments and the image
// of its linear memory after instantiation (bytes from offset 0 to the end
// of the last segment), so an engine can map the image copy-on-write
// instead of copying segments at every instantiation. ok is false (and
// wasm returned as is) under the conditions CoalesceData leaves a module
// alone, or when the image does not fit the memory's initial size.
func DataImage(wasm []byte) (code, image []byte, ok bool, err error) {
	d, err := scan(wasm)
	if err != nil || d == nil || len(d.segs) == 0 || d.countStart != 0 {
		return wasm, nil, false, err
	}
	return d.image()
}

// DataImageUnverified is DataImage that also splits a module with a data
// count section (toolchains with bulk memory emit one: the wizer snapshots
// of Fastly's JS SDK carry 10,000 segments). code then declares 0 data
// segments, so an instruction that refers to one (memory.init, data.drop)
// makes code fail validation: the caller must compile code and, when it
// does not compile, use wasm unchanged.
func DataImageUnverified(wasm []byte) (code, image []byte, ok bool, err error) {
	d, err := scan(wasm)
	if err != nil || d == nil || len(d.segs) == 0 {
		return wasm, nil, false, err
	}
	return d.image()
}

func (d *dataInfo) image() (code, image []byte, ok bool, err error) {
	wasm := d.wasm
	merged := d.merged(^uint32(0))
	last := merged[len(merged)-1]
	size := uint64(last.off) + uint64(len(last.data))
	if size > d.minMemBytes {
		return wasm, nil, false, nil
	}
	image = make([]byte, size)
	for _, s := range merged {
		copy(image[s.off:], s.data)
	}
	code = d.replaceData([]byte{0x00})
	if d.countStart != 0 {
		// The data count section comes before the code and data
		// sections: replace it in the prefix replaceData kept.
		code = append(append(append([]byte(nil), code[:d.countStart]...), 12, 1, 0), code[d.countEnd:]...)
	}
	return code, image, true, nil
}

// dataInfo is what scan learns of a module.
type dataInfo struct {
	wasm                 []byte
	dataStart, dataEnd   int // the data section, id byte to end
	countStart, countEnd int // the data count section, if any
	segs                 []segment
	minMemBytes          uint64
}

// scan finds the data section of wasm and parses its segments. It returns
// nil when the module has none or a condition of CoalesceData fails.
func scan(wasm []byte) (*dataInfo, error) {
	secs, err := sections(wasm)
	if err != nil {
		return nil, err
	}
	d := &dataInfo{wasm: wasm}
	hasMemory := false
	for _, sec := range secs {
		switch sec.id {
		case 2: // import: an imported memory may already hold data
			if importsMemory(sec.body) {
				return nil, nil
			}
		case 5: // memory: one memory, limits flag, min pages
			b := sec.body
			if len(b) < 3 || b[0] != 1 || b[1] > 1 {
				return nil, nil
			}
			min, n := binary.Uvarint(b[2:])
			if n <= 0 {
				return nil, nil
			}
			d.minMemBytes = min * 65536
			hasMemory = true
		case 12: // data count: instructions may refer to segments by index
			d.countStart, d.countEnd = sec.start, sec.end
		case 11:
			d.dataStart, d.dataEnd = sec.start, sec.end
		}
	}
	if d.dataStart == 0 || !hasMemory {
		return nil, nil
	}
	_, n := binary.Uvarint(wasm[d.dataStart+1:])
	segs, ok := parseData(wasm[d.dataStart+1+n : d.dataEnd])
	if !ok {
		return nil, nil
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i].off < segs[j].off })
	for i := 1; i < len(segs); i++ {
		if segs[i].off < segs[i-1].off+uint32(len(segs[i-1].data)) {
			return nil, nil // overlap: order of application matters
		}
	}
	d.segs = segs
	return d, nil
}

// merged joins segments separated by at most gap zero bytes.
func (d *dataInfo) merged(gap uint32) []segment {
	var out []segment
	for _, s := range d.segs {
		if len(out) > 0 {
			last := &out[len(out)-1]
			end := last.off + uint32(len(last.data))
			if s.off-end <= gap {
				last.data = append(last.data, make([]byte, s.off-end)...)
				last.data = append(last.data, s.data...)
				continue
			}
		}
		out = append(out, segment{off: s.off, data: append([]byte(nil), s.data...)})
	}
	return out
}

// replaceData returns the module with its data section body replaced.
func (d *dataInfo) replaceData(sec []byte) []byte {
	out := make([]byte, 0, len(d.wasm)-(d.dataEnd-d.dataStart)+len(sec)+6)
	out = append(out, d.wasm[:d.dataStart]...)
	out = append(out, 11)
	out = binary.AppendUvarint(out, uint64(len(sec)))
	out = append(out, sec...)
	return append(out, d.wasm[d.dataEnd:]...)
}

type segment struct {
	off  uint32
	data []byte
}

// parseData reads a data section; ok is false when a segment is not
// active-on-memory-0 at a constant i32 offset.
func parseData(b []byte) ([]segment, bool) {
	count, n := binary.Uvarint(b)
	if n <= 0 || count > uint64(len(b)) {
		return nil, false
	}
	b = b[n:]
	segs := make([]segment, 0, count)
	for i := uint64(0); i < count; i++ {
		if len(b) < 2 || b[0] != 0x00 || b[1] != 0x41 {
			return nil, false
		}
		off, n := sleb32(b[2:])
		if n <= 0 || off < 0 || len(b) < 2+n+1 || b[2+n] != 0x0b {
			return nil, false
		}
		b = b[2+n+1:]
		size, n := binary.Uvarint(b)
		if n <= 0 || size > uint64(len(b)-n) {
			return nil, false
		}
		segs = append(segs, segment{off: uint32(off), data: b[n : n+int(size)]})
		b = b[n+int(size):]
	}
	return segs, len(b) == 0
}

// importsMemory reports whether an import section imports a memory.
func importsMemory(b []byte) bool {
	count, n := binary.Uvarint(b)
	if n <= 0 {
		return true
	}
	b = b[n:]
	skipName := func() bool {
		l, n := binary.Uvarint(b)
		if n <= 0 || uint64(len(b)-n) < l {
			return false
		}
		b = b[n+int(l):]
		return true
	}
	for i := uint64(0); i < count; i++ {
		if !skipName() || !skipName() || len(b) < 1 {
			return true
		}
		kind := b[0]
		b = b[1:]
		switch kind {
		case 0x00: // func: type index
			_, n := binary.Uvarint(b)
			if n <= 0 {
				return true
			}
			b = b[n:]
		case 0x02: // memory
			return true
		default: // table or global: give up rather than parse them
			return true
		}
	}
	return false
}

func sleb32(b []byte) (int32, int) {
	var result int64
	var shift uint
	for i := 0; i < len(b) && i < 5; i++ {
		c := b[i]
		result |= int64(c&0x7f) << shift
		shift += 7
		if c&0x80 == 0 {
			if shift < 64 && c&0x40 != 0 {
				result |= -1 << shift
			}
			return int32(result), i + 1
		}
	}
	return 0, 0
}

// appendSleb32 appends v as a signed LEB128: an i32's encoding is its
// sign-extended i64's (appendSleb64).
func appendSleb32(b []byte, v int32) []byte { return appendSleb64(b, int64(v)) }
