package guestbuild

import "encoding/binary"

// timerFunctions are the TinyGo runtime functions a module holds when it
// can set a timer (time.After, time.NewTimer, time.NewTicker and what
// builds on them): a guest built without a scheduler that waits for one
// stops with "scheduler is disabled" instead.
var timerFunctions = []string{"runtime.addTimer", "runtime.timerCallback", "time.startTimer"}

// mayUseTimers reports whether wasm names one of timerFunctions in its
// name section, or cannot be shown not to (no name section, or one that
// does not parse).
func mayUseTimers(wasm []byte) bool {
	names, ok := functionNames(wasm)
	if !ok {
		return true
	}
	for _, n := range names {
		for _, t := range timerFunctions {
			if n == t {
				return true
			}
		}
	}
	return false
}

// functionNames returns the function names of wasm's name section
// (subsection 1, WebAssembly core specification, appendix "Name
// Section"); ok is false when the module has none or it does not parse.
func functionNames(wasm []byte) (names []string, ok bool) {
	if len(wasm) < 8 || string(wasm[:4]) != "\x00asm" {
		return nil, false
	}
	b := wasm[8:]
	for len(b) > 0 {
		id := b[0]
		size, n := binary.Uvarint(b[1:])
		if n <= 0 || size > uint64(len(b)-1-n) {
			return nil, false
		}
		sec := b[1+n : 1+n+int(size)]
		b = b[1+n+int(size):]
		if id != 0 {
			continue
		}
		name, rest, good := vecBytes(sec)
		if !good || string(name) != "name" {
			continue
		}
		for len(rest) > 0 {
			sub := rest[0]
			body, after, good := vecBytes(rest[1:])
			if !good {
				return nil, false
			}
			rest = after
			if sub != 1 {
				continue
			}
			count, n := binary.Uvarint(body)
			if n <= 0 {
				return nil, false
			}
			body = body[n:]
			for i := uint64(0); i < count; i++ {
				if _, n = binary.Uvarint(body); n <= 0 {
					return nil, false
				}
				var fn []byte
				if fn, body, good = vecBytes(body[n:]); !good {
					return nil, false
				}
				names = append(names, string(fn))
			}
			return names, true
		}
		return nil, false
	}
	return nil, false
}

// vecBytes splits b into a length-prefixed byte string and what follows.
func vecBytes(b []byte) (v, rest []byte, ok bool) {
	size, n := binary.Uvarint(b)
	if n <= 0 || size > uint64(len(b)-n) {
		return nil, nil, false
	}
	return b[n : n+int(size)], b[n+int(size):], true
}
