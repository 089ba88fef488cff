package hostcall

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/internal/pool"
)

// downstream is the client side of a session: the request the guest reads
// and the response it sends (at most once).
type downstream struct {
	s         *Session
	d         *Downstream
	reqH      uint32
	taken     bool
	sent      bool
	aborted   bool
	status    int
	bodyHs    []uint32     // the request body handles handed out (releaseDownstream)
	streamed  *body        // the open streaming response body, if any
	streamedH uint32       // its handle
	flush     *flushWriter // the streaming body's sink, once sent
	backend   int          // backend requests sent for this request
}

// CommandDownstream returns the downstream request of a sandbox run as a
// command (edgehost run), as Fastly's local server gives one: GET
// http://example.com/ with no body, from 127.0.0.1 to 127.0.0.1:80. What
// the guest responds is discarded.
func CommandDownstream() *Downstream {
	u := &url.URL{Scheme: "http", Host: "example.com", Path: "/"}
	return &Downstream{
		Request: (&http.Request{
			Method: http.MethodGet, URL: u, Host: u.Host, RequestURI: "/",
			Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{}, Body: http.NoBody,
		}).WithContext(context.Background()),
		Writer:   &discardWriter{h: http.Header{}},
		ClientIP: net.IPv4(127, 0, 0, 1),
		ServerIP: net.IPv4(127, 0, 0, 1),
	}
}

// discardWriter is an http.ResponseWriter that drops the response.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}

// newDownstream starts the client side of one request. The request body
// stays readable while the response streams (full duplex, as on
// Compute): net/http would otherwise drop an HTTP/1.x request body once
// the response head is written.
func newDownstream(s *Session, d *Downstream) *downstream {
	if unwrapsTo[interface{ EnableFullDuplex() error }](d.Writer) {
		// HTTP/2's writer has no such method: it is full duplex already.
		_ = http.NewResponseController(d.Writer).EnableFullDuplex()
	}
	return &downstream{s: s, d: d}
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

// takeRequest hands the downstream request and body to the guest; a
// second call returns the same request handle with an empty body.
func (d *downstream) takeRequest() (uint32, uint32, error) {
	if d.taken {
		bh := d.s.bodies.add(newBody(d.s))
		d.bodyHs = append(d.bodyHs, bh)
		return d.reqH, bh, nil
	}
	d.taken = true
	r := d.d.Request
	req := &request{
		method:  r.Method,
		uri:     absoluteURI(r),
		version: versionCode(r.ProtoMajor, r.ProtoMinor),
		hdr:     originalHeader(r),
	}
	d.reqH = d.s.reqs.add(req)
	bh := d.s.bodies.add(newStreamBody(d.s, r.Body, r.ContentLength))
	d.bodyHs = append(d.bodyHs, bh)
	return d.reqH, bh, nil
}

// absoluteURI gives the guest http://host/path?query, as Compute does.
func absoluteURI(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	host := r.Host
	if host == "" {
		host = "localhost"
	}
	return scheme + "://" + host + r.URL.RequestURI()
}

// send writes the response head and, unless streaming, the whole body
// (read through, not buffered). Streaming keeps the body handle open; what
// the guest writes to it goes to the client at once. A 103 (Early Hints)
// response sends its head as an informational response and leaves both
// handles to the guest for the final response; any other 1xx is inval.
func (d *downstream) send(rh, bh uint32, streaming bool) error {
	if d.sent {
		return statusErr(abi.Error, "the downstream response was already sent")
	}
	resp, err := d.s.resps.get(rh)
	if err != nil {
		return err
	}
	var b *body
	if bh != abi.NoHandle {
		if b, err = d.s.bodies.get(bh); err != nil {
			return err
		}
		if b.sink != nil {
			return statusErr(abi.Inval, "body %d is already streaming", bh)
		}
	}
	if resp.status < 200 {
		if resp.status != abi.EarlyHints {
			return statusErr(abi.Inval, "status %d: the only informational response a guest may send is 103", resp.status)
		}
		d.earlyHints(resp)
		return nil
	}
	d.s.resps.remove(rh)
	d.sent = true
	d.status = resp.status
	w := d.d.Writer
	h := d.head(resp)
	fr := d.s.framingFor(resp.manualFraming, resp.hdr, "downstream response")
	switch {
	case fr.length >= 0:
		h.Set("Content-Length", strconv.FormatInt(fr.length, 10))
	case fr.chunked:
		h.Set("Transfer-Encoding", "chunked")
	}
	if streaming {
		if !fr.manual && chunksStream(d.d.Request, resp.status) {
			// A streamed HTTP/1.1 response is chunked, however soon
			// the guest ends: net/http would frame one that ended
			// before the first flush with Content-Length (flushWriter).
			h.Set("Transfer-Encoding", "chunked")
		}
		w.WriteHeader(resp.status)
		if b == nil {
			return nil
		}
		fw := newFlushWriter(w)
		d.flush = fw
		r, _ := b.detach()
		_, err := io.Copy(fw, r)
		r.Close()
		if err != nil {
			// The head and what arrived go out before the cut, so the
			// client sees a broken answer, not none (as it did when
			// every write was flushed).
			fw.pending()
			fw.flushNow()
			d.aborted = true
			return statusErr(abi.Error, "write downstream: %v", err)
		}
		fw.pending()
		b.sink = fw
		b.sinkClose = func(abandon bool) error {
			d.streamed = nil
			if abandon {
				d.aborted = true
			}
			return nil
		}
		d.streamed, d.streamedH = b, bh
		return nil
	}
	if b == nil {
		if !fr.manual {
			h.Set("Content-Length", "0")
		}
		w.WriteHeader(resp.status)
		return nil
	}
	d.s.bodies.remove(bh)
	r, n := b.detach()
	defer r.Close()
	if n >= 0 && !fr.manual {
		h.Set("Content-Length", strconv.FormatInt(n, 10))
	}
	w.WriteHeader(resp.status)
	if _, err := io.Copy(w, r); err != nil {
		d.aborted = true
		return statusErr(abi.Error, "write downstream: %v", err)
	}
	return nil
}

// chunksStream reports whether net/http chunks a streamed response with
// status to r: an HTTP/1.1 request other than HEAD, a status with a body
// (RFC 9110, sections 6.4.1 and 9.3.2).
func chunksStream(r *http.Request, status int) bool {
	return r.ProtoMajor == 1 && r.ProtoMinor >= 1 && r.Method != http.MethodHead &&
		status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
}

// head replaces the writer's header block with resp's, without the
// headers the host owns (framing and connection management), and returns
// it.
func (d *downstream) head(resp *response) http.Header {
	h := d.d.Writer.Header()
	clear(h)
	// The writer's block shares the values (capped: appends stay apart).
	for _, n := range resp.hdr.names {
		vs := resp.hdr.vals[n]
		h[canonicalName(n)] = vs[:len(vs):len(vs)]
	}
	pool.RemoveHopByHop(h)
	h.Del("Content-Length") // framing is the host's
	if resp.noKeepalive {
		h.Set("Connection", "close")
	}
	return h
}

// earlyHints sends resp's head as a 103 informational response. HTTP/1.0
// clients get none (RFC 9110, section 15.2: a server must not send them
// a 1xx response); the call still succeeds.
func (d *downstream) earlyHints(resp *response) {
	if !d.d.Request.ProtoAtLeast(1, 1) {
		return
	}
	d.head(resp)
	d.d.Writer.WriteHeader(abi.EarlyHints)
}

// flushDelay is how long a streamed response's head or written bytes may
// wait in the server's buffer before they are flushed to the client
// (README.md, "Streaming responses").
const flushDelay = time.Millisecond

// flushWriter is the sink of a streaming downstream body. A write goes
// into net/http's buffer and is flushed to the client at the latest
// flushDelay later, or at once when the guest makes a hostcall other than
// a body write, append or close (it may block there: a read, a select, a
// backend request), so that a head and body written in one burst leave in
// one packet, as a plain net/http handler's do. Writes may come from the
// guest's goroutine and from a streamBuffer's; the timer flushes from its
// own: mu orders them, and stop ends the timer before the handler returns.
type flushWriter struct {
	mu      sync.Mutex
	w       http.ResponseWriter
	rc      http.ResponseController
	t       *time.Timer
	due     atomic.Bool // bytes (or the head) wait for a flush
	armed   bool        // t is running
	stopped bool        // the response is finished: never touch w again
	err     error       // a flush that failed; the next write returns it
}

func newFlushWriter(w http.ResponseWriter) *flushWriter {
	return &flushWriter{w: w, rc: *http.NewResponseController(w)}
}

func (f *flushWriter) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped {
		return 0, errors.New("write after the response ended")
	}
	if f.err != nil {
		return 0, f.err
	}
	n, err := f.w.Write(p)
	if err == nil {
		f.pendingLocked()
	}
	return n, err
}

// pending notes that the head or bytes wait for a flush.
func (f *flushWriter) pending() {
	f.mu.Lock()
	f.pendingLocked()
	f.mu.Unlock()
}

func (f *flushWriter) pendingLocked() {
	if f.stopped {
		return
	}
	f.due.Store(true)
	if f.armed {
		return
	}
	f.armed = true
	if f.t == nil {
		f.t = time.AfterFunc(flushDelay, f.onTimer)
	} else {
		f.t.Reset(flushDelay)
	}
}

func (f *flushWriter) onTimer() {
	f.mu.Lock()
	f.armed = false
	f.flushLocked()
	f.mu.Unlock()
}

// flushNow flushes what waits, if anything does.
func (f *flushWriter) flushNow() {
	if !f.due.Load() {
		return
	}
	f.mu.Lock()
	f.flushLocked()
	f.mu.Unlock()
}

func (f *flushWriter) flushLocked() {
	if f.stopped || !f.due.Load() {
		return
	}
	f.due.Store(false)
	if err := f.rc.Flush(); err != nil && f.err == nil {
		f.err = err
	}
}

// stop ends the timer; what still waits is sent by net/http when the
// handler returns. It returns once no flush runs.
func (f *flushWriter) stop() {
	f.mu.Lock()
	f.stopped = true
	f.due.Store(false)
	if f.t != nil {
		f.t.Stop()
	}
	f.mu.Unlock()
}

// Outcome says how a sandbox's downstream response ended.
type Outcome struct {
	// Sent is true when the guest sent a response head.
	Sent bool
	// Status is the status sent (by the guest or by Finish).
	Status int
	// Aborted is true when a streamed response could not be completed:
	// the server must cut the connection so the client sees it incomplete.
	Aborted bool
	// BackendRequests counts the backend requests the guest sent while
	// serving this request (for the request log).
	BackendRequests int
}

// countBackendRequest counts a backend request of the current downstream
// request.
func (s *Session) countBackendRequest() {
	if s.down != nil {
		s.down.backend++
	}
}

// Finish completes the downstream response after the guest ended with
// runErr (nil for success): a streaming body left open is closed (or cut
// when runErr is set), and a guest that sent nothing gets errStatus with a
// short plain-text body naming the cause. It returns the outcome for the
// access log.
func (s *Session) Finish(runErr error, errStatus int) Outcome {
	d := s.down
	if d == nil {
		return Outcome{}
	}
	if d.streamed != nil {
		if runErr != nil {
			d.streamed.abandon()
		} else {
			d.streamed.finish()
		}
		s.bodies.remove(d.streamedH)
	}
	if d.flush != nil {
		if d.aborted {
			// The client sees the head and the bytes written before
			// the cut (the server then aborts the response).
			d.flush.flushNow()
		}
		d.flush.stop()
	}
	if d.sent {
		return Outcome{Sent: true, Status: d.status, Aborted: d.aborted, BackendRequests: d.backend}
	}
	msg := "guest sent no response"
	if runErr != nil {
		msg = runErr.Error()
		var se *statusError
		if errors.As(runErr, &se) {
			msg = se.msg
		}
	}
	h := d.d.Writer.Header()
	clear(h) // what an Early Hints response left
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	d.d.Writer.WriteHeader(errStatus)
	fmt.Fprintf(d.d.Writer, "%d %s: %s (request id %s)\n", errStatus, http.StatusText(errStatus), msg, s.id)
	return Outcome{Status: errStatus, BackendRequests: d.backend}
}
