package hostcall

import (
	"io"
	"net/http"
	"sync"

	"golang.org/x/net/http/httpguts"

	"github.com/edgehost/edgehost/abi"
)

// body is a host body: a queue of parts read front to back, each either
// bytes the guest wrote or a stream (an origin response body, the
// downstream request body). Nothing is buffered whole: a stream is read
// only as the guest or the destination reads it. A body with a sink is a
// streaming body (downstream response, or a request sent with
// send_async_streaming): writes go straight to the sink.
type body struct {
	s        *Session
	parts    []bodyPart
	knownLen int64  // -1 when unknown
	trailers header // the zero block until a trailer is appended

	sink      io.Writer
	sinkClose func(abandon bool) error
	// broken: a copy into the sink failed part-way, so the receiver must
	// see the body as incomplete even when the guest closes it.
	broken bool
}

type bodyPart struct {
	b []byte
	r io.ReadCloser
}

func newBody(s *Session) *body { return &body{s: s, knownLen: 0} }

// newStreamBody wraps r; n is its known length or -1.
func newStreamBody(s *Session, r io.ReadCloser, n int64) *body {
	b := &body{s: s, knownLen: n}
	if r != nil && r != http.NoBody {
		b.parts = []bodyPart{{r: r}}
	} else {
		b.knownLen = 0
	}
	return b
}

// read fills p from the front part; 0 bytes and nil error is the end.
func (b *body) read(p []byte) (int, error) {
	for len(b.parts) > 0 && len(p) > 0 {
		part := &b.parts[0]
		if part.r == nil {
			n := copy(p, part.b)
			part.b = part.b[n:]
			b.s.bufferedLen -= int64(n)
			if len(part.b) == 0 {
				b.parts = b.parts[1:]
			}
			b.consumed(n)
			return n, nil
		}
		n, err := part.r.Read(p)
		if n > 0 {
			b.consumed(n)
			return n, nil
		}
		if err == io.EOF {
			part.r.Close()
			b.parts = b.parts[1:]
			continue
		}
		if err != nil {
			return 0, err
		}
	}
	return 0, nil
}

func (b *body) consumed(n int) {
	if b.knownLen >= 0 {
		b.knownLen -= int64(n)
		if b.knownLen < 0 {
			b.knownLen = -1
		}
	}
}

// write adds p at the back or the front, or sends it to the sink, and
// returns how many bytes it took: all of p, except that a buffered
// streaming body (asyncio.go) takes what it has room for.
func (b *body) write(p []byte, front bool) (int, error) {
	if b.sink != nil {
		if front {
			return 0, statusErr(abi.Inval, "cannot write at the front of a streaming body")
		}
		n := len(p)
		var err error
		if q, ok := b.sink.(*streamBuffer); ok {
			n, err = q.writeSome(p)
		} else {
			_, err = b.sink.Write(p)
		}
		if err != nil {
			b.broken = true
			return 0, err
		}
		return n, nil
	}
	if b.s.bufferedLen+int64(len(p)) > b.s.env.limits.MaxBufferedBodyBytes {
		return 0, statusErr(abi.LimitExceeded, "sandbox body buffers over %d bytes", b.s.env.limits.MaxBufferedBodyBytes)
	}
	cp := append([]byte(nil), p...)
	b.s.bufferedLen += int64(len(cp))
	part := bodyPart{b: cp}
	if front {
		b.parts = append([]bodyPart{part}, b.parts...)
	} else {
		b.parts = append(b.parts, part)
	}
	if b.knownLen >= 0 {
		b.knownLen += int64(len(p))
	}
	return len(p), nil
}

// appendBody moves src to the back of b; into a streaming body it is
// copied through as it is read.
func (b *body) appendBody(src *body) error {
	if b.sink != nil {
		r, _ := src.detach()
		defer r.Close()
		_, err := io.Copy(b.sink, r)
		if err != nil {
			b.broken = true
		}
		return err
	}
	b.parts = append(b.parts, src.parts...)
	if b.knownLen >= 0 && src.knownLen >= 0 {
		b.knownLen += src.knownLen
	} else {
		b.knownLen = -1
	}
	src.parts = nil
	return nil
}

// detach moves the body's parts out into a stream that may be read from
// another goroutine (an origin request body), with its known length or -1.
// Buffered bytes stop counting against the sandbox's limit here.
func (b *body) detach() (io.ReadCloser, int64) {
	parts := b.parts
	b.parts = nil
	for _, p := range parts {
		if p.r == nil {
			b.s.bufferedLen -= int64(len(p.b))
		}
	}
	n := b.knownLen
	b.knownLen = 0
	return &partsReader{parts: parts}, n
}

// byteChunks returns the body's parts when every one is bytes the guest
// wrote (no stream), for replaying the body.
func (b *body) byteChunks() ([][]byte, bool) {
	chunks := make([][]byte, 0, len(b.parts))
	for _, p := range b.parts {
		if p.r != nil {
			return nil, false
		}
		chunks = append(chunks, p.b)
	}
	return chunks, true
}

// newBytesReader reads chunks in order without changing them.
func newBytesReader(chunks [][]byte) *partsReader {
	parts := make([]bodyPart, len(chunks))
	for i, c := range chunks {
		parts[i] = bodyPart{b: c}
	}
	return &partsReader{parts: parts}
}

// partsReader streams body parts in order; it owns their readers.
type partsReader struct{ parts []bodyPart }

func (r *partsReader) Read(p []byte) (int, error) {
	for len(r.parts) > 0 {
		part := &r.parts[0]
		if part.r == nil {
			n := copy(p, part.b)
			part.b = part.b[n:]
			if len(part.b) == 0 {
				r.parts = r.parts[1:]
			}
			if n > 0 || len(p) == 0 {
				return n, nil
			}
			continue
		}
		n, err := part.r.Read(p)
		if err == io.EOF {
			part.r.Close()
			r.parts = r.parts[1:]
			if n > 0 {
				return n, nil
			}
			continue
		}
		return n, err
	}
	return 0, io.EOF
}

// WriteTo writes the parts to w: bytes directly, streams through io.Copy
// (so copying a body needs no intermediate buffer for the bytes parts).
func (r *partsReader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for len(r.parts) > 0 {
		part := &r.parts[0]
		var n int64
		var err error
		if part.r == nil {
			var k int
			k, err = w.Write(part.b)
			n = int64(k)
		} else {
			n, err = copyStream(w, part.r)
			part.r.Close()
		}
		total += n
		r.parts = r.parts[1:]
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// copyBufSize is the size of the buffers copyStream copies through, as
// io.Copy's own.
const copyBufSize = 32 << 10

// copyBufs holds copyStream's buffers, so that a body copied from an
// origin to the client (body append into a streaming response) does not
// allocate and clear 32 KiB each time; a buffer holds no data between
// uses.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}

// copyStream is io.Copy through a pooled buffer when neither side offers
// its own way to copy (io.WriterTo, io.ReaderFrom).
func copyStream(w io.Writer, r io.Reader) (int64, error) {
	_, wt := r.(io.WriterTo)
	_, rf := w.(io.ReaderFrom)
	if wt || rf {
		return io.Copy(w, r)
	}
	buf := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(buf)
	return io.CopyBuffer(w, r, *buf)
}

func (r *partsReader) Close() error {
	for _, p := range r.parts {
		if p.r != nil {
			p.r.Close()
		}
	}
	r.parts = nil
	return nil
}

// finish closes the body successfully: a streaming body ends its framing.
func (b *body) finish() error {
	b.dropParts()
	if b.sinkClose != nil {
		f := b.sinkClose
		b.sinkClose, b.sink = nil, nil
		return f(b.broken)
	}
	return nil
}

// abandon closes the body unsuccessfully: a streaming body is cut so the
// receiver sees it incomplete.
func (b *body) abandon() {
	b.dropParts()
	if b.sinkClose != nil {
		f := b.sinkClose
		b.sinkClose, b.sink = nil, nil
		_ = f(true)
	}
}

func (b *body) dropParts() {
	for _, p := range b.parts {
		if p.r != nil {
			p.r.Close()
		} else {
			b.s.bufferedLen -= int64(len(p.b))
		}
	}
	b.parts = nil
}

func bodyImpls() []impl {
	get := func(c *call, h uint32) (*body, error) { return c.s.bodies.get(h) }
	trailers := func(c *call, h uint32) (*header, error) {
		b, err := get(c, h)
		if err != nil {
			return nil, err
		}
		return &b.trailers, nil
	}
	plain := func(b []byte) (string, error) { return string(b), nil }
	impls := fieldGetters(fieldBinders{bindBodyTrailerNamesGet, bindBodyTrailerValueGet, bindBodyTrailerValuesGet}, trailers, plain)
	return append(impls,
		bindBodyNew(func(c *call, a bodyNewArgs) error { return c.putU32(a.BodyOut, c.s.bodies.add(newBody(c.s))) }),
		bindBodyAppend(func(c *call, a bodyAppendArgs) error {
			dst, err := get(c, a.Dest)
			if err != nil {
				return err
			}
			if a.Dest == a.Src {
				return statusErr(abi.Inval, "cannot append a body to itself")
			}
			src, err := get(c, a.Src)
			if err != nil {
				return err
			}
			if src.sink != nil {
				return statusErr(abi.Inval, "cannot append a streaming body")
			}
			c.s.bodies.remove(a.Src)
			return dst.appendBody(src)
		}),
		bindBodyRead(func(c *call, a bodyReadArgs) error {
			b, err := get(c, a.H)
			if err != nil {
				return err
			}
			buf, ok := c.mem.Read(a.Buf.Ptr, a.Buf.Cap)
			if !ok {
				return statusErr(abi.Inval, "buffer outside linear memory")
			}
			if b.sink != nil {
				return statusErr(abi.Inval, "cannot read a streaming body")
			}
			n, err := b.read(buf)
			if err != nil {
				return statusErr(abi.Error, "body read failed: %v", err)
			}
			return c.putU32(a.Buf.NWritten, uint32(n))
		}),
		bindBodyWrite(func(c *call, a bodyWriteArgs) error {
			b, err := get(c, a.H)
			if err != nil {
				return err
			}
			var front bool
			switch a.End {
			case abi.BodyWriteBack:
			case abi.BodyWriteFront:
				front = true
			default:
				return statusErr(abi.Inval, "unknown body write end %d", a.End)
			}
			n, err := b.write(a.Buf, front)
			if err != nil {
				return err
			}
			return c.putU32(a.NwrittenOut, uint32(n))
		}),
		bindBodyClose(func(c *call, a bodyCloseArgs) error {
			b, err := c.s.bodies.remove(a.H)
			if err != nil {
				return err
			}
			return b.finish()
		}),
		bindBodyAbandon(func(c *call, a bodyAbandonArgs) error {
			b, err := c.s.bodies.remove(a.H)
			if err != nil {
				return err
			}
			b.abandon()
			return nil
		}),
		bindBodyKnownLength(func(c *call, a bodyKnownLengthArgs) error {
			b, err := get(c, a.H)
			if err != nil {
				return err
			}
			if b.knownLen < 0 || b.sink != nil {
				return errNone
			}
			return c.putU64(a.BodyLengthOut, uint64(b.knownLen))
		}),
		bindBodyTrailerAppend(func(c *call, a bodyTrailerAppendArgs) error {
			b, err := get(c, a.H)
			if err != nil {
				return err
			}
			name, v := string(a.Name), string(a.Value)
			if !httpguts.ValidHeaderFieldName(name) || !httpguts.ValidHeaderFieldValue(v) {
				return statusErr(abi.Inval, "invalid trailer field %q", name)
			}
			if err := c.s.growFields(&b.trailers, fieldSize(name, v), abi.LimitExceeded); err != nil {
				return err
			}
			b.trailers.add(name, v)
			return nil
		}),
	)
}
