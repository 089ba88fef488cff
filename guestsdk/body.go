package guestsdk

import (
	"errors"
	"io"
	"unsafe"

	"github.com/edgehost/edgehost/abi"
)

// hostBody is a body held by the host (fastly_http_body handle): the
// downstream request body and backend response bodies. Reads copy chunks
// from the host; a body that is sent, appended or closed is consumed.
type hostBody struct {
	h        uint32
	consumed bool
	eof      bool
	// resp is the backend response this is the body of, whose host
	// handle stays open for CopyResponse until the body is consumed,
	// closed or read to its end (release); nil for other bodies.
	resp *hostResponse
}

// release closes the host handle of the response b belongs to, if it is
// still open: once the body has left the guest or ended, CopyResponse can
// no longer send that response as it is.
func (b *hostBody) release() {
	if r := b.resp; r != nil && r.open {
		r.open = false
		respClose(r.h)
	}
}

// Read reads up to len(p) bytes with fastly_http_body.read; 0 bytes read
// is the end of the body (io.EOF).
func (b *hostBody) Read(p []byte) (int, error) {
	if b.consumed {
		return 0, ErrBodyConsumed
	}
	if b.eof {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	var n uint32
	if err := statusErr("fastly_http_body.read", bodyRead(b.h, bytesPtr(p), uint32(len(p)), unsafe.Pointer(&n))); err != nil {
		return 0, err
	}
	if n == 0 {
		b.eof = true
		b.release()
		return 0, io.EOF
	}
	if uint64(n) > uint64(len(p)) {
		return 0, errors.New("guestsdk: fastly_http_body.read: host read past the buffer")
	}
	return int(n), nil
}

// WriteTo copies the rest of the body to w. When w is a ResponseWriter of
// this package the host appends the body to the response body
// (fastly_http_body.append) and the bytes never enter the guest; the
// count is then 0 because the host does not report it.
func (b *hostBody) WriteTo(w io.Writer) (int64, error) {
	if rw, ok := w.(*responseWriter); ok {
		if done, err := rw.appendHostBody(b); done || err != nil {
			return 0, err
		}
	}
	return copyChunks(w, b)
}

// Close releases the body in the host. Closing a consumed body is a no-op.
func (b *hostBody) Close() error {
	if b.consumed {
		return nil
	}
	b.consumed = true
	b.release()
	err := statusErr("fastly_http_body.close", bodyClose(b.h))
	if abi.Status(statusOf(err)) == abi.Badf {
		return nil // already gone in the host, e.g. fully read and freed
	}
	return err
}

// take hands the handle over to the host (send or append): the body is
// consumed for the guest.
func (b *hostBody) take() (uint32, error) {
	if b.consumed {
		return 0, ErrBodyConsumed
	}
	b.consumed = true
	b.release()
	return b.h, nil
}

// copyChunks copies src to dst through a guest buffer, without the
// WriterTo/ReaderFrom fast paths.
func copyChunks(dst io.Writer, src io.Reader) (int64, error) {
	buf := make([]byte, chunkSize)
	var total int64
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			w, werr := dst.Write(buf[:n])
			total += int64(w)
			if werr != nil {
				return total, werr
			}
		}
		if rerr == io.EOF {
			return total, nil
		}
		if rerr != nil {
			return total, rerr
		}
	}
}

// writeBody writes all of p to the back of host body h, looping while the
// host accepts fewer bytes than offered.
func writeBody(h uint32, p []byte) (int, error) {
	written := 0
	for written < len(p) {
		var n uint32
		rest := p[written:]
		if err := statusErr("fastly_http_body.write", bodyWrite(h, bytesPtr(rest), uint32(len(rest)), abi.BodyWriteBack, unsafe.Pointer(&n))); err != nil {
			return written, err
		}
		if n == 0 || uint64(n) > uint64(len(rest)) {
			return written, errors.New("guestsdk: fastly_http_body.write: host accepted no bytes")
		}
		written += int(n)
	}
	return written, nil
}

// newBody creates an empty host body.
func newBody() (uint32, error) {
	var h uint32
	if err := statusErr("fastly_http_body.new", bodyNew(unsafe.Pointer(&h))); err != nil {
		return 0, err
	}
	return h, nil
}

// hostBodyWriter writes to the back of a host body.
type hostBodyWriter uint32

func (w hostBodyWriter) Write(p []byte) (int, error) { return writeBody(uint32(w), p) }

// bodyFrom returns a host body holding everything r yields: r itself when
// it is a host body (no copy), else a new body filled chunk by chunk.
// r is closed when it is an io.Closer. A nil r gives an empty body.
func bodyFrom(r io.Reader) (uint32, error) {
	if hb, ok := r.(*hostBody); ok {
		return hb.take()
	}
	h, err := newBody()
	if err != nil {
		return 0, err
	}
	if r == nil {
		return h, nil
	}
	_, err = copyChunks(hostBodyWriter(h), r)
	if c, ok := r.(io.Closer); ok {
		if cerr := c.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		bodyClose(h)
		return 0, err
	}
	return h, nil
}
