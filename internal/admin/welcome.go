package admin

import (
	"strings"

	"github.com/edgehost/edgehost/abi"
)

// WelcomeModule returns the guest edgehost serves when nothing is
// deployed: a tiny hand-assembled Wasm module (no compiler involved) that
// answers every request with 200 and text saying how to deploy to the
// admin API at adminURL ("" when the admin API is off).
//
// The module imports four hostcalls, fastly_http_resp.new,
// fastly_http_body.new, fastly_http_body.write and
// fastly_http_resp.send_downstream, and keeps its text in a data segment.
func WelcomeModule(adminURL string) []byte {
	return welcomeWasm([]byte(welcomeText(adminURL)))
}

func welcomeText(adminURL string) string {
	var b strings.Builder
	b.WriteString("edgehost is running, but no guest is deployed yet.\n\n")
	if adminURL == "" {
		b.WriteString("The admin API is off (--admin-addr \"\"). To serve a guest, restart with\n" +
			"    edgehost serve MODULE\n" +
			"or turn the admin API on and deploy to it.\n")
		return b.String()
	}
	b.WriteString("Deploy a guest (a .wasm file, a package .tar.gz, or a folder with a Go main package):\n\n" +
		"    edgehost deploy --admin " + adminURL + " ./my-guest\n\n" +
		"then reload this page. `edgehost versions` lists the deployed versions and\n" +
		"`edgehost activate N` switches between them. If the host has a token, pass it\n" +
		"with --token or EDGEHOST_ADMIN_TOKEN.\n")
	return b.String()
}

// Memory layout of the welcome module: out-pointers at 0 (response
// handle), 4 (body handle), 8 (bytes written), the text from 16.
const (
	welcomeRespPtr = 0
	welcomeBodyPtr = 4
	welcomeNWPtr   = 8
	welcomeTextPtr = 16
)

// welcomeWasm assembles a module whose _start does, ignoring statuses:
//
//	resp.new(&resp); body.new(&body)
//	body.write(body, text, len(text), back, &nw)
//	resp.send_downstream(resp, body, not streaming)
func welcomeWasm(text []byte) []byte {
	const (
		i32      = 0x7f
		funcType = 0x60
		opCall   = 0x10
		opDrop   = 0x1a
		opLoad   = 0x28
		opConst  = 0x41
		opEnd    = 0x0b
	)
	var e wasmEncoder
	fnType := func(params, results int) []byte {
		b := []byte{funcType}
		b = appendU32(b, uint32(params))
		for range params {
			b = append(b, i32)
		}
		b = appendU32(b, uint32(results))
		for range results {
			b = append(b, i32)
		}
		return b
	}
	// Types: 0 (i32)->i32, 1 (i32 x5)->i32, 2 (i32 x3)->i32, 3 ()->().
	e.section(1, vec(fnType(1, 1), fnType(5, 1), fnType(3, 1), fnType(0, 0)))
	imp := func(module, name string, typ uint32) []byte {
		b := appendName(nil, module)
		b = appendName(b, name)
		return appendU32(append(b, 0x00), typ) // func import of type typ
	}
	const (
		fnRespNew = iota
		fnBodyNew
		fnBodyWrite
		fnSendDownstream
		fnStart
	)
	e.section(2, vec(
		imp(abi.ModuleHTTPResp, "new", 0),
		imp(abi.ModuleHTTPBody, "new", 0),
		imp(abi.ModuleHTTPBody, "write", 1),
		imp(abi.ModuleHTTPResp, "send_downstream", 2),
	))
	e.section(3, vec(appendU32(nil, 3)))                             // _start: type 3
	pages := uint32((welcomeTextPtr + len(text) + 0xffff) / 0x10000) // text fits in memory
	e.section(5, vec(appendU32([]byte{0x00}, pages)))                // no maximum
	e.section(7, vec(
		appendU32(append(appendName(nil, "_start"), 0x00), fnStart),
		appendU32(append(appendName(nil, "memory"), 0x02), 0),
	))
	var c []byte
	konst := func(v int32) { c = appendS32(append(c, opConst), v) }
	call := func(fn uint32) { c = append(appendU32(append(c, opCall), fn), opDrop) }
	load := func(ptr int32) { konst(ptr); c = append(c, opLoad, 0x02, 0x00) } // align 4, offset 0
	konst(welcomeRespPtr)
	call(fnRespNew)
	konst(welcomeBodyPtr)
	call(fnBodyNew)
	load(welcomeBodyPtr)
	konst(welcomeTextPtr)
	konst(int32(len(text)))
	konst(int32(abi.BodyWriteBack))
	konst(welcomeNWPtr)
	call(fnBodyWrite)
	load(welcomeRespPtr)
	load(welcomeBodyPtr)
	konst(0) // not streaming
	call(fnSendDownstream)
	c = append(c, opEnd)
	body := append([]byte{0x00}, c...) // no locals
	e.section(10, vec(appendU32(nil, uint32(len(body)), body...)))
	seg := []byte{0x00} // active, memory 0
	seg = appendS32(append(seg, opConst), welcomeTextPtr)
	seg = append(seg, opEnd)
	seg = appendU32(seg, uint32(len(text)))
	e.section(11, vec(append(seg, text...)))
	return e.b
}

// wasmEncoder builds a module binary section by section.
type wasmEncoder struct{ b []byte }

func (e *wasmEncoder) section(id byte, content []byte) {
	if e.b == nil {
		e.b = []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}
	}
	e.b = append(e.b, id)
	e.b = appendU32(e.b, uint32(len(content)))
	e.b = append(e.b, content...)
}

// vec encodes a vector: its length, then the items.
func vec(items ...[]byte) []byte {
	b := appendU32(nil, uint32(len(items)))
	for _, it := range items {
		b = append(b, it...)
	}
	return b
}

func appendName(b []byte, s string) []byte {
	return append(appendU32(b, uint32(len(s))), s...)
}

// appendU32 appends v as unsigned LEB128, then tail.
func appendU32(b []byte, v uint32, tail ...byte) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v == 0 {
			return append(append(b, c), tail...)
		}
		b = append(b, c|0x80)
	}
}

// appendS32 appends v as signed LEB128.
func appendS32(b []byte, v int32) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}
