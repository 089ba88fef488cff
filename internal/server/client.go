package server

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// Defaults of the downstream stall timeouts (Config.ReadStallTimeout,
// Config.WriteStallTimeout).
const (
	DefaultReadStallTimeout  = 10 * time.Second
	DefaultWriteStallTimeout = 10 * time.Second
)

// errClientCut is what a guest's downstream read or write gets once the
// request's wall-clock limit cut the client connection.
var errClientCut = errors.New("the request's wall-clock limit ended the client connection")

// client is one downstream request's connection as its sandbox sees it:
// the request body and the ResponseWriter, each call bounded by a stall
// timeout (a body read or a response write that makes no progress for that
// long fails and the connection is cut), and cut at once, whatever is
// blocked, when the request's wall-clock limit ends it (expire).
//
// The deadlines are the connection's (http.ResponseController), so a
// deadline left behind would hit the connection's next request: a read's
// deadline is cleared when the read returns, and ServeHTTP clears the
// write deadline at the start of each request.
type client struct {
	w    http.ResponseWriter
	rc   *http.ResponseController
	body io.ReadCloser

	readStall, writeStall time.Duration
	closeConn             bool // Connection: close on the response (a CL+TE request)

	mu      sync.Mutex
	started bool // a final response head went out
	expired bool // the wall-clock limit cut the connection
	over    bool // ServeHTTP returned: the connection may serve another request
}

func newClient(w http.ResponseWriter, r *http.Request, readStall, writeStall time.Duration) *client {
	c := &client{w: w, rc: http.NewResponseController(w), body: r.Body, readStall: readStall, writeStall: writeStall}
	_ = c.rc.SetWriteDeadline(time.Time{}) // what an earlier request on the connection left
	return c
}

// expire cuts the connection for the wall-clock limit: a read blocked on
// the client returns at once, and so does a write once the response has
// started (before that, the 504 the server writes must still go out).
func (c *client) expire() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.over {
		return
	}
	c.expired = true
	now := time.Now()
	_ = c.rc.SetReadDeadline(now)
	if c.started {
		_ = c.rc.SetWriteDeadline(now)
	}
}

// finish ends the request's use of the connection: no expire reaches it
// any more, and the final flush the server does after ServeHTTP has the
// write stall timeout too.
func (c *client) finish() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.over = true
	if !c.expired || !c.started {
		_ = c.rc.SetWriteDeadline(time.Now().Add(c.writeStall))
	}
}

// armRead sets the read deadline of one body read; ok is false once the
// connection was cut.
func (c *client) armRead() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.expired {
		return false
	}
	_ = c.rc.SetReadDeadline(time.Now().Add(c.readStall))
	return true
}

func (c *client) disarmRead() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.expired {
		_ = c.rc.SetReadDeadline(time.Time{})
	}
}

// armWrite sets the write deadline of one write or flush; final marks the
// response as started.
func (c *client) armWrite(final bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.expired {
		if c.started {
			return false // cut: the client must see the response incomplete
		}
		// The error response the server writes once the guest is stopped.
	} else if final {
		c.started = true
	}
	_ = c.rc.SetWriteDeadline(time.Now().Add(c.writeStall))
	return true
}

// stallError names the stall that cut a read or write.
func stallError(op string, d time.Duration, err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("client %s made no progress for %v: %w", op, d, err)
	}
	return err
}

// clientBody is the request body with the read stall timeout.
type clientBody struct{ c *client }

func (b clientBody) Read(p []byte) (int, error) {
	if !b.c.armRead() {
		return 0, errClientCut
	}
	n, err := b.c.body.Read(p)
	if err != nil && err != io.EOF {
		// The connection is broken (a stall, a reset): its deadline
		// stays, so that net/http does not wait for the rest of the body.
		return n, stallError("upload", b.c.readStall, err)
	}
	b.c.disarmRead()
	return n, err
}

func (b clientBody) Close() error { return b.c.body.Close() }

// clientWriter is the ResponseWriter with the write stall timeout.
// Unwrap lets http.ResponseController reach the server's own writer
// (EnableFullDuplex, deadlines).
type clientWriter struct{ c *client }

func (w clientWriter) Header() http.Header { return w.c.w.Header() }

func (w clientWriter) WriteHeader(code int) {
	final := code >= 200
	if !w.c.armWrite(final) {
		return
	}
	if w.c.closeConn && final {
		w.c.w.Header().Set("Connection", "close")
	}
	w.c.w.WriteHeader(code)
}

func (w clientWriter) Write(p []byte) (int, error) {
	if !w.c.armWrite(true) {
		return 0, errClientCut
	}
	if w.c.closeConn {
		w.c.w.Header().Set("Connection", "close") // no-op once the head is out
	}
	n, err := w.c.w.Write(p)
	return n, stallError("download", w.c.writeStall, err)
}

// FlushError flushes with the write stall timeout (http.ResponseController
// calls it).
func (w clientWriter) FlushError() error {
	if !w.c.armWrite(true) {
		return errClientCut
	}
	return stallError("download", w.c.writeStall, w.c.rc.Flush())
}

// Flush implements http.Flusher.
func (w clientWriter) Flush() { _ = w.FlushError() }

// Unwrap returns the server's ResponseWriter.
func (w clientWriter) Unwrap() http.ResponseWriter { return w.c.w }
