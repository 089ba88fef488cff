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

// ClientWaitRelease is how long one read of the request body or one write
// of the response may block on the client before the request's sandbox
// gives its slot back (README.md, "Limits"): from then until the read or
// write returns, the sandbox holds a waiting place
// (Config.MaxWaitingSandboxes) instead of a slot, and it takes a slot
// again before the guest goes on.
const ClientWaitRelease = 5 * time.Millisecond

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
// deadline is cleared when the read returns. The write deadline is set
// only when it is due (armWriteDeadline): a write, flush or body read (a
// 100 Continue) finds the one the request set last at least the write
// stall timeout away, else sets it an eighth of that timeout further
// (writeDeadlineSlack), so that a request moves it about once per that
// eighth, not once per write. A request's first write, flush or body
// read always sets it: one an earlier request left (net/http clears it
// after each request; older releases did not) never cuts a later one.
type client struct {
	w      http.ResponseWriter
	rc     http.ResponseController
	body   io.ReadCloser
	noBody bool // body is http.NoBody: a read has nothing to wait for

	readStall, writeStall time.Duration
	closeConn             bool // Connection: close on the response (a CL+TE request)

	// The server's sandbox slots and waiting places (Server.slots,
	// Server.waits); nil waits: the slot is never given back.
	slots, waits chan struct{}

	mu        sync.Mutex
	started   bool  // a final response head went out
	expired   bool  // the wall-clock limit cut the connection
	over      bool  // ServeHTTP returned: the connection may serve another request
	held      bool  // the request holds a sandbox slot
	waiting   bool  // it holds a waiting place instead (the slot was given back)
	regaining bool  // a read or write that ended is waiting for a slot
	io        int   // reads and writes of the client in flight
	wd        int64 // the write deadline the request set last, in Unix nanoseconds; 0: none yet
	release   *time.Timer
	isCut     bool          // expire or finish ran: no wait for a slot begins
	cut       chan struct{} // made by the first wait for a slot; closed once isCut
	// The ResponseWriter cannot take a read or write deadline
	// (http.ErrNotSupported, e.g. a recorder or a wrapper without
	// Unwrap): it is not asked again.
	noReadDeadline, noWriteDeadline bool
}

// unwrapsTo reports whether w, or a writer its Unwrap chain reaches, is
// a T: whether http.ResponseController finds T's method (it answers
// http.ErrNotSupported, an error it allocates, when it does not).
func unwrapsTo[T any](w http.ResponseWriter) bool {
	for {
		if _, ok := w.(T); ok {
			return true
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return false
		}
		w = u.Unwrap()
	}
}

// setReadDeadline sets the connection's read deadline, if it has one.
func (c *client) setReadDeadline(t time.Time) {
	if !c.noReadDeadline && errors.Is(c.rc.SetReadDeadline(t), http.ErrNotSupported) {
		c.noReadDeadline = true
	}
}

// setWriteDeadline sets the connection's write deadline, if it has one.
func (c *client) setWriteDeadline(t time.Time) {
	if !c.noWriteDeadline && errors.Is(c.rc.SetWriteDeadline(t), http.ErrNotSupported) {
		c.noWriteDeadline = true
	}
}

// writeDeadlineSlack is how much later than the write stall timeout d a
// write deadline is set (armWriteDeadline): a write that makes no
// progress is cut after between d and d+d/8.
func writeDeadlineSlack(d time.Duration) time.Duration { return d / 8 }

// armWriteDeadline sets the write deadline when the one set last is
// nearer than the write stall timeout (or none is set); c.mu is held.
func (c *client) armWriteDeadline() {
	if c.noWriteDeadline {
		return
	}
	now := time.Now()
	if c.wd != 0 && c.wd-now.UnixNano() >= int64(c.writeStall) {
		return
	}
	t := now.Add(c.writeStall + writeDeadlineSlack(c.writeStall))
	c.setWriteDeadline(t)
	c.wd = t.UnixNano()
}

// initClient makes the zero c the client of r, and c takes over the
// sandbox slot the request holds (one value in slots): finish gives it
// back, or the waiting place that replaced it.
func initClient(c *client, w http.ResponseWriter, r *http.Request, readStall, writeStall time.Duration, slots, waits chan struct{}) {
	c.w, c.rc, c.body, c.noBody = w, *http.NewResponseController(w), r.Body, r.Body == http.NoBody
	c.readStall, c.writeStall, c.slots, c.waits, c.held = readStall, writeStall, slots, waits, true
	c.noReadDeadline = !unwrapsTo[interface{ SetReadDeadline(time.Time) error }](w)
	c.noWriteDeadline = !unwrapsTo[interface{ SetWriteDeadline(time.Time) error }](w)
}

// ioBegin marks a read or write of the client as in flight: if it blocks
// for ClientWaitRelease, giveBack runs.
func (c *client) ioBegin() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.io++
	if c.io == 1 && c.held && c.waits != nil {
		c.armRelease()
	}
}

func (c *client) armRelease() {
	if c.release == nil {
		c.release = time.AfterFunc(ClientWaitRelease, c.giveBack)
	} else {
		c.release.Reset(ClientWaitRelease)
	}
}

// giveBack trades the request's slot for a waiting place while a read or
// write is still blocked on the client. With every waiting place taken
// the slot is kept (the stall timeout still bounds the wait).
func (c *client) giveBack() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.io == 0 || !c.held || c.over {
		return
	}
	select {
	case c.waits <- struct{}{}:
	default:
		return
	}
	c.held, c.waiting = false, true
	<-c.slots
}

// ioEnd ends what ioBegin began. When the slot was given back, the last
// read or write to end waits for a slot before the guest goes on; the
// wall-clock limit (expire) or the request's end (finish) ends that wait.
func (c *client) ioEnd() {
	c.mu.Lock()
	c.io--
	if c.io > 0 {
		c.mu.Unlock()
		return
	}
	if c.release != nil {
		c.release.Stop()
	}
	if !c.waiting || c.regaining || c.over {
		c.mu.Unlock()
		return
	}
	if c.isCut {
		c.mu.Unlock()
		return
	}
	c.regaining = true
	if c.cut == nil {
		c.cut = make(chan struct{})
	}
	cut := c.cut
	c.mu.Unlock()
	got := false
	select {
	case c.slots <- struct{}{}:
		got = true
	case <-cut:
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.regaining = false
	if got {
		c.held, c.waiting = true, false
		<-c.waits
	}
	switch {
	case c.over:
		c.releaseAll()
	case c.held && c.io > 0:
		c.armRelease() // a read or write began while this one waited
	}
}

// releaseAll gives back the slot or waiting place the request holds;
// c.mu is held.
func (c *client) releaseAll() {
	if c.held {
		<-c.slots
		c.held = false
	}
	if c.waiting {
		<-c.waits
		c.waiting = false
	}
}

// endCut ends any wait for a slot; c.mu is held.
func (c *client) endCut() {
	if c.isCut {
		return
	}
	c.isCut = true
	if c.cut != nil {
		close(c.cut)
	}
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
	c.endCut()
	now := time.Now()
	c.setReadDeadline(now)
	if c.started {
		c.setWriteDeadline(now)
		c.wd = now.UnixNano()
	}
}

// finish ends the request's use of the connection: no expire reaches it
// any more, its slot (or waiting place) is given back, and the final
// flush the server does after ServeHTTP has the write stall timeout too.
func (c *client) finish() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.over = true
	c.endCut()
	if c.release != nil {
		c.release.Stop()
	}
	if !c.regaining {
		c.releaseAll()
	}
	if !c.expired || !c.started {
		c.armWriteDeadline()
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
	if c.noBody {
		return true
	}
	c.setReadDeadline(time.Now().Add(c.readStall))
	// A read may first send 100 Continue (net/http does, for a request
	// that expects it).
	c.armWriteDeadline()
	return true
}

func (c *client) disarmRead() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.expired && !c.noBody {
		c.setReadDeadline(time.Time{})
	}
}

// armWrite readies one write or flush (io) or one final response head
// (no io: net/http writes nothing to the connection for it); final marks
// the response as started. With io it arms the write deadline
// (armWriteDeadline). ok is false once the connection was cut.
func (c *client) armWrite(final, io bool) bool {
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
	if io {
		c.armWriteDeadline()
	}
	return true
}

// stallError names the stall that cut a read or write.
func stallError(op string, d time.Duration, err error) error {
	if err == nil {
		return nil
	}
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
	b.c.ioBegin()
	n, err := b.c.body.Read(p)
	b.c.ioEnd()
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
	// A final head waits in the ResponseWriter for the first write or
	// flush (net/http, HTTP/1.x and HTTP/2 alike): only an informational
	// one is written to the client at once.
	if !w.c.armWrite(final, !final) {
		return
	}
	if w.c.closeConn && final {
		w.c.w.Header().Set("Connection", "close")
	}
	if final {
		w.c.w.WriteHeader(code)
		return
	}
	w.c.ioBegin()
	w.c.w.WriteHeader(code)
	w.c.ioEnd()
}

func (w clientWriter) Write(p []byte) (int, error) {
	if !w.c.armWrite(true, true) {
		return 0, errClientCut
	}
	if w.c.closeConn {
		w.c.w.Header().Set("Connection", "close") // no-op once the head is out
	}
	w.c.ioBegin()
	n, err := w.c.w.Write(p)
	w.c.ioEnd()
	return n, stallError("download", w.c.writeStall, err)
}

// FlushError flushes with the write stall timeout (http.ResponseController
// calls it).
func (w clientWriter) FlushError() error {
	if !w.c.armWrite(true, true) {
		return errClientCut
	}
	w.c.ioBegin()
	err := w.c.rc.Flush()
	w.c.ioEnd()
	return stallError("download", w.c.writeStall, err)
}

// Flush implements http.Flusher.
func (w clientWriter) Flush() { _ = w.FlushError() }

// Unwrap returns the server's ResponseWriter.
func (w clientWriter) Unwrap() http.ResponseWriter { return w.c.w }
