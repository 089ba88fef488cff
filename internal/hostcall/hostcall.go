// Package hostcall implements edgehost's guest ABI (Fastly Compute's
// hostcalls, see abi/README.md) once, against engine.Memory, for every
// engine. Hostcalls are bound from one table (Table): each entry names its
// module and function, takes its signature from abi.Funcs, and returns a Go
// error that statusFor maps onto a fastly_status.
//
// An implementation gets its arguments as one typed struct (args_gen.go,
// generated from abi.Hostcalls by go generate in abi/): its binding
// (bindX) decodes the Wasm parameters, checks input ranges and
// out-pointers once, before the implementation runs, and only then calls
// it. Every entry is such a binding: no implementation reads a Wasm
// parameter by position.
//
// Per-request state lives in a Session (typed handle tables); host-wide
// state (manifest, static backends, origin pools) lives in an Env shared by
// every session of a module version.
package hostcall

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/internal/engine"
)

// statusError is an error that carries the fastly_status a hostcall
// returns for it.
type statusError struct {
	status abi.Status
	msg    string
}

func (e *statusError) Error() string {
	if e.msg == "" {
		return e.status.String()
	}
	return e.status.String() + ": " + e.msg
}

func (e *statusError) Is(target error) bool {
	t, ok := target.(*statusError)
	return ok && t.status == e.status && t.msg == ""
}

func statusErr(s abi.Status, format string, args ...any) error {
	return &statusError{status: s, msg: fmt.Sprintf(format, args...)}
}

// Sentinel errors, one per status a hostcall can fail with; errors.Is
// matches any statusError of the same status against them.
var (
	errGeneric     = &statusError{status: abi.Error}
	errInval       = &statusError{status: abi.Inval}
	errBadf        = &statusError{status: abi.Badf}
	errUnsupported = &statusError{status: abi.Unsupported}
	errBadalign    = &statusError{status: abi.Badalign}
	errNone        = &statusError{status: abi.None}
	errLimit       = &statusError{status: abi.LimitExceeded}
	errAgain       = &statusError{status: abi.Again}
)

// statusFor maps a hostcall's error onto the status the guest sees. It is
// the only such mapping: every error a hostcall returns is either a
// *statusError or is reported as the generic `error` status.
func statusFor(err error) abi.Status {
	if err == nil {
		return abi.OK
	}
	var se *statusError
	if errors.As(err, &se) {
		return se.status
	}
	return abi.Error
}

// call is one hostcall invocation: its session, the guest's memory and the
// raw Wasm parameters. Only the generated bindings (args_gen.go) read args;
// implementations get them decoded (TestNoPositionalReads).
type call struct {
	ctx  context.Context
	s    *Session
	mem  engine.Memory
	args []uint64
	word [8]byte // putU16/32/64's bytes: the call is on the heap already
}

// in reads the guest range (ptr, n) as a view of guest memory: a KindIn
// parameter, read by the generated bindings (args_gen.go). Errors: inval
// when n is over max bytes or the range is outside linear memory.
func (c *call) in(ptr, n, max uint32) ([]byte, error) {
	if n > max {
		return nil, statusErr(abi.Inval, "length %d over the limit of %d", n, max)
	}
	b, ok := c.mem.Read(ptr, n)
	if !ok {
		return nil, statusErr(abi.Inval, "range [%d, +%d) outside linear memory", ptr, n)
	}
	return b, nil
}

// maxStringLen caps a name, value or URI passed by a guest.
const maxStringLen = 64 << 10

// putU32 writes v at the out-pointer ptr. Errors: badalign, inval.
func (c *call) putU32(ptr uint32, v uint32) error {
	b := c.word[:4]
	binary.LittleEndian.PutUint32(b, v)
	return c.put(ptr, 4, b)
}

func (c *call) putU16(ptr uint32, v uint16) error {
	b := c.word[:2]
	binary.LittleEndian.PutUint16(b, v)
	return c.put(ptr, 2, b)
}

func (c *call) putU64(ptr uint32, v uint64) error {
	b := c.word[:8]
	binary.LittleEndian.PutUint64(b, v)
	return c.put(ptr, 8, b)
}

func (c *call) put(ptr, align uint32, b []byte) error {
	if ptr%align != 0 {
		return statusErr(abi.Badalign, "out-pointer %d not %d-aligned", ptr, align)
	}
	if !c.mem.Write(ptr, b) {
		return statusErr(abi.Inval, "out-pointer %d outside linear memory", ptr)
	}
	return nil
}

// checkOut verifies that n bytes at ptr are writable and aligned, before a
// hostcall with side effects commits to them.
func (c *call) checkOut(ptr, n, align uint32) error {
	if ptr%align != 0 {
		return statusErr(abi.Badalign, "out-pointer %d not %d-aligned", ptr, align)
	}
	if _, ok := c.mem.Read(ptr, n); !ok {
		return statusErr(abi.Inval, "out-pointer %d outside linear memory", ptr)
	}
	return nil
}

// putBuf writes value into the guest buffer (buf, max) and its length to
// nwritten. If it does not fit, it writes the needed length to nwritten and
// returns buflen.
func (c *call) putBuf(buf, max, nwritten uint32, value []byte) error {
	if uint32(len(value)) > max {
		if err := c.putU32(nwritten, uint32(len(value))); err != nil {
			return err
		}
		return statusErr(abi.Buflen, "need %d bytes, have %d", len(value), max)
	}
	if len(value) > 0 && !c.mem.Write(buf, value) {
		return statusErr(abi.Inval, "buffer %d outside linear memory", buf)
	}
	return c.putU32(nwritten, uint32(len(value)))
}

// putMulti writes values[cursor:] into (buf, bufLen) as NUL-terminated
// strings, as many whole values as fit, then the next cursor (or -1 when
// done) to endingCursor and the bytes written to nwritten. If not even the
// first value fits it returns buflen with nwritten = that value's length+1.
func (c *call) putMulti(values []string, buf, bufLen, cursor, endingCursor, nwritten uint32) error {
	if err := c.checkOut(endingCursor, 8, 8); err != nil {
		return err
	}
	if int(cursor) > len(values) {
		return statusErr(abi.Inval, "cursor %d past the %d values", cursor, len(values))
	}
	// The listing is built in the session's scratch buffer: a session's
	// hostcalls run one at a time, on the guest's goroutine.
	out := c.s.scratch[:0]
	defer func() {
		if cap(out) <= maxScratch {
			c.s.scratch = out[:0]
		}
	}()
	i := int(cursor)
	for ; i < len(values); i++ {
		v := values[i]
		if len(out)+len(v)+1 > int(bufLen) {
			break
		}
		out = append(out, v...)
		out = append(out, 0)
	}
	if i == int(cursor) && i < len(values) {
		if err := c.putU32(nwritten, uint32(len(values[i])+1)); err != nil {
			return err
		}
		return statusErr(abi.Buflen, "value of %d bytes does not fit in %d", len(values[i])+1, bufLen)
	}
	if len(out) > 0 && !c.mem.Write(buf, out) {
		return statusErr(abi.Inval, "buffer %d outside linear memory", buf)
	}
	next := int64(i)
	if i >= len(values) {
		next = abi.CursorDone
	}
	if err := c.putU64(endingCursor, uint64(next)); err != nil {
		return err
	}
	return c.putU32(nwritten, uint32(len(out)))
}

// Hostcall is one implemented hostcall: its ABI signature (from abi.Funcs)
// and its implementation.
type Hostcall struct {
	abi.Func
	fn func(c *call) error
}

// impl is the implementation half of a table entry, before its signature
// is looked up in abi.Funcs: a generated binding (bindX(fn), args_gen.go).
type impl struct {
	module, name string
	fn           func(c *call) error
}

// Table returns every implemented hostcall, signatures from abi.Funcs.
// It panics if an implementation has no signature in abi.Funcs or a name
// is implemented twice: both are programming errors caught by tests.
func Table() []Hostcall {
	sigs := map[[2]string]abi.Func{}
	for _, f := range abi.Funcs() {
		sigs[[2]string{f.Module, f.Name}] = f
	}
	var all []impl
	for _, family := range [][]impl{
		abiImpls(), bodyImpls(), logImpls(), reqImpls(), respImpls(),
		downstreamImpls(), storeImpls(), backendImpls(), runtimeImpls(),
		asyncIOImpls(), kvStoreImpls(), coreCacheImpls(), coreReplaceImpls(), httpCacheImpls(), secretStoreImpls(), aclImpls(), geoImpls(), erlImpls(), shieldingImpls(),
		purgeImpls(),
	} {
		all = append(all, family...)
	}
	all = limitHandles(all)
	seen := map[[2]string]bool{}
	t := make([]Hostcall, 0, len(all))
	for _, im := range all {
		k := [2]string{im.module, im.name}
		sig, ok := sigs[k]
		if !ok {
			panic("hostcall " + im.module + "." + im.name + " has no signature in abi.Funcs")
		}
		if seen[k] {
			panic("hostcall " + im.module + "." + im.name + " implemented twice")
		}
		seen[k] = true
		t = append(t, Hostcall{Func: sig, fn: im.fn})
	}
	return t
}

// Linker binds a guest's imports: implemented hostcalls by table, any other
// function of a fastly_* module to a stub returning unsupported (logged
// once per module on first call), and an import from any other module is
// an error naming it. A stub for a function abi.Hostcalls describes must
// have the described signature, as an implemented hostcall must.
type Linker struct {
	// OnError, when set before the first Link, is called after every
	// implemented hostcall that returns a status other than ok, with the
	// hostcall's module and function name (metrics). It must be safe for
	// concurrent use and fast.
	OnError func(module, name string, status abi.Status)

	table     map[[2]string]Hostcall
	described map[[2]string]abi.Hostcall // the unimplemented ones
	logger    *slog.Logger
}

// NewLinker builds the linker from Table and abi.Hostcalls. logger
// receives stub notices; nil discards them.
func NewLinker(logger *slog.Logger) *Linker {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	l := &Linker{table: map[[2]string]Hostcall{}, described: map[[2]string]abi.Hostcall{}, logger: logger}
	for _, h := range Table() {
		l.table[[2]string{h.Module, h.Name}] = h
	}
	for _, d := range abi.Hostcalls() {
		if k := [2]string{d.Module, d.Name}; l.table[k].fn == nil {
			l.described[k] = d
		}
	}
	return l
}

// Link returns an engine.Linker for one module; stubs log their first
// call once for that module.
func (l *Linker) Link() engine.Linker {
	var once sync.Map // import name -> struct{}
	return func(imp engine.Import) (engine.HostFunc, error) {
		if h, ok := l.table[[2]string{imp.Module, imp.Name}]; ok {
			want := engine.Signature{Params: h.Params, Results: "i"}
			if imp.Signature != want {
				return nil, fmt.Errorf("import %s has signature %s, the ABI's is %s", imp, imp.Signature, want)
			}
			return bind(h, l.OnError), nil
		}
		if !strings.HasPrefix(imp.Module, abi.ModulePrefix) {
			return nil, fmt.Errorf("import %s: unknown module %q (edgehost provides fastly_* hostcalls and %s)", imp, imp.Module, abi.ModuleWASI)
		}
		d, known := l.described[[2]string{imp.Module, imp.Name}]
		if known {
			want := engine.Signature{Params: d.WasmParams(), Results: "i"}
			if imp.Signature != want {
				return nil, fmt.Errorf("import %s has signature %s, the ABI's is %s (edgehost does not implement it)", imp, imp.Signature, want)
			}
		}
		return l.stub(imp, d.Doc, &once), nil
	}
}

// stub returns a function with imp's own signature that returns
// unsupported (results: an i32 status first, any other result zero). doc
// is the function's abi.Hostcalls description, "" for a function it does
// not describe.
func (l *Linker) stub(imp engine.Import, doc string, once *sync.Map) engine.HostFunc {
	name := imp.String()
	return func(ctx context.Context, _ engine.Memory, stack []uint64) {
		if _, loaded := once.LoadOrStore(name, struct{}{}); !loaded {
			const msg = "guest called a hostcall edgehost does not implement; returning unsupported"
			if doc != "" {
				l.logger.Warn(msg, "hostcall", name, "doc", doc, "request_id", requestIDFrom(ctx))
			} else {
				l.logger.Warn(msg, "hostcall", name, "request_id", requestIDFrom(ctx))
			}
		}
		for i := range imp.Results {
			stack[i] = 0
		}
		if len(imp.Results) > 0 {
			stack[0] = uint64(abi.Unsupported)
		}
	}
}

// flushesDownstream reports whether the hostcall module.name first
// flushes what a streamed downstream response holds (flushWriter): every
// hostcall but the body writes, appends and closes that continue it, and
// next_request, which ends the response (Session.Finish): net/http then
// sends what waits with the response's end in one write.
func flushesDownstream(module, name string) bool {
	switch module {
	case abi.ModuleHTTPBody:
		return name != "write" && name != "append" && name != "close"
	case abi.ModuleHTTPDownstream:
		return name != "next_request"
	}
	return true
}

// bind adapts an implementation to engine.HostFunc: it finds the session,
// runs fn, and writes its status. Every hostcall but the ones that
// continue a streamed downstream body first flushes what that body holds
// (flushesDownstream). A panic in a hostcall is a bug: it is logged and
// turned into the `error` status rather than crashing the host.
func bind(h Hostcall, onError func(module, name string, status abi.Status)) engine.HostFunc {
	fn := h.fn
	flushes := flushesDownstream(h.Module, h.Name)
	return func(ctx context.Context, mem engine.Memory, stack []uint64) {
		s := sessionFrom(ctx)
		if s == nil {
			stack[0] = uint64(abi.Unsupported)
			return
		}
		if d := s.down; flushes && d != nil && d.flush != nil {
			d.flush.flushNow()
		}
		// A session's hostcalls run one at a time, on the guest's
		// goroutine: each uses the session's call, so that a hostcall
		// allocates none. Nothing keeps c past the hostcall.
		c := &s.call
		*c = call{ctx: ctx, s: s, mem: mem, args: stack}
		defer func() {
			if r := recover(); r != nil {
				s.env.Logger.Error("hostcall panicked", "panic", r, "request_id", s.id)
				stack[0] = uint64(abi.Error)
			}
		}()
		err := fn(c)
		*c = call{}
		st := statusFor(err)
		if err != nil && st == abi.Error {
			s.env.Logger.Debug("hostcall error", "err", err, "request_id", s.id)
		}
		stack[0] = uint64(st)
		if st != abi.OK && onError != nil {
			onError(h.Module, h.Name, st)
		}
	}
}
