package guestsdk

import (
	"context"
	"errors"
	"io"
	"os"
	"slices"
	"time"
	"unsafe"

	"github.com/edgehost/edgehost/abi"
)

// Handler responds to the downstream request.
type Handler interface {
	// ServeHTTP writes the response to w. r.Body is the downstream
	// request body, read from the host on demand. The response is sent
	// when ServeHTTP first calls WriteHeader, Write or Flush, or when it
	// returns.
	ServeHTTP(ctx context.Context, w ResponseWriter, r *Request)
}

// HandlerFunc adapts a function to a Handler.
type HandlerFunc func(ctx context.Context, w ResponseWriter, r *Request)

// ServeHTTP calls f(ctx, w, r).
func (f HandlerFunc) ServeHTTP(ctx context.Context, w ResponseWriter, r *Request) { f(ctx, w, r) }

// ResponseWriter builds the downstream response. The response head
// (status and headers) is sent on the first WriteHeader, Write or Flush,
// after which the body streams to the client as it is written
// (fastly_http_resp.send_downstream with streaming = 1).
type ResponseWriter interface {
	// Header returns the header fields to send. Changes made after the
	// head was sent have no effect.
	Header() Header
	// WriteHeader sends the head with statusCode (e.g. 404). Only the
	// first call, and only before any Write or Flush, has an effect.
	WriteHeader(statusCode int)
	// Write sends the head (status 200 unless WriteHeader was called)
	// if not yet sent, then appends p to the body. It returns the
	// *StatusError of a failing hostcall.
	Write(p []byte) (int, error)
	// Flush sends the head if not yet sent. Written bytes are already in
	// the host; a failure is returned by the next Write.
	Flush()
}

// Serve reads the downstream request, calls h and makes sure a response
// is sent: when h sent nothing, an empty 200 response with h's headers;
// the response body is closed when h returns. Serve is the whole life of
// the guest's main function: when the request cannot be read or the
// response cannot be sent it prints the error to stderr and exits with
// status 1, so the host answers the client with a 5xx.
func Serve(h Handler) {
	if err := serve(context.Background(), h); err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(1)
	}
}

// ServeManyOptions bounds a sandbox that serves several requests in turn.
type ServeManyOptions struct {
	// NextTimeout is how long the sandbox waits for its next request
	// before it ends; 0 means the host's default (10 s on edgehost). It is
	// passed to the host in whole milliseconds.
	NextTimeout time.Duration
	// MaxRequests ends the sandbox after this many requests; 0 means no
	// limit.
	MaxRequests int
}

// ServeMany is Serve for handlers that keep no state from one request to
// the next: after each request the sandbox asks the host for another
// (fastly_http_downstream.next_request) and serves it with h, so the
// guest's start-up cost is paid once for many requests. Globals, caches and
// goroutines survive between requests: use it only when that is safe. A
// host that does not offer sandbox reuse just ends the sandbox after the
// first request, as Serve does. As with net/http, a ResponseWriter and its
// Header must not be used once ServeHTTP returns: the next request's
// ResponseWriter reuses the Header map, emptied.
func ServeMany(h Handler, opts ServeManyOptions) {
	if err := serveMany(context.Background(), h, opts); err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(1)
	}
}

func serveMany(ctx context.Context, h Handler, opts ServeManyOptions) error {
	if err := statusErr("fastly_abi.init", abiInit(abi.Version)); err != nil {
		return err
	}
	// One getter buffer serves every request of the sandbox (no
	// sync.Pool round trip per request).
	g := newGetterBuf()
	d, err := downstreamExchange(g)
	if err != nil {
		return err
	}
	var mask uint32
	var timeoutMs uint64 // next_request_options: timeout_ms at offset 0
	if opts.NextTimeout > 0 {
		mask |= 1 << 1
		timeoutMs = uint64((opts.NextTimeout + time.Millisecond - 1) / time.Millisecond)
	}
	for n := 1; ; n++ {
		w := &d.w
		h.ServeHTTP(ctx, w, &d.Request)
		if err := w.finish(); err != nil {
			return err
		}
		if opts.MaxRequests > 0 && n >= opts.MaxRequests {
			return nil
		}
		var promise, req, body uint32
		if downstreamNextRequest(mask, unsafe.Pointer(&timeoutMs), unsafe.Pointer(&promise)) != uint32(abi.OK) {
			return nil // no reuse on this host
		}
		if downstreamNextRequestWait(promise, unsafe.Pointer(&req), unsafe.Pointer(&body)) != uint32(abi.OK) {
			return nil // no further request came
		}
		hdr := w.header
		if d, err = exchangeFromHandles(g, req, body); err != nil {
			return err
		}
		if hdr != nil {
			// The last response's header map serves the next one: a
			// ResponseWriter is not used after ServeHTTP returns.
			clear(hdr)
			d.w.header = hdr
		}
	}
}

func serve(ctx context.Context, h Handler) error {
	if err := statusErr("fastly_abi.init", abiInit(abi.Version)); err != nil {
		return err
	}
	g := bufPool.Get().(*getterBuf)
	d, err := downstreamExchange(g)
	bufPool.Put(g)
	if err != nil {
		return err
	}
	h.ServeHTTP(ctx, &d.w, &d.Request)
	return d.w.finish()
}

// responseWriter is the ResponseWriter given to handlers.
type responseWriter struct {
	header Header // made by the first Header call
	// merged is the Header of a backend response sent as it is
	// (CopyResponse): its fields are copied into header when Header is
	// next called.
	merged  Header
	sent    bool
	sendErr error // error of sending the head
	broken  bool  // the body was cut short; finish abandons it
	body    uint32
	closed  bool
}

func (w *responseWriter) Header() Header {
	if w.header == nil {
		w.header = Header{}
	}
	if w.merged != nil {
		copyHeader(w.header, w.merged)
		w.merged = nil
	}
	return w.header
}

func (w *responseWriter) WriteHeader(statusCode int) { w.sendHead(statusCode) }

func (w *responseWriter) Flush() { w.sendHead(200) }

func (w *responseWriter) Write(p []byte) (int, error) {
	if err := w.sendHead(200); err != nil {
		return 0, err
	}
	if w.closed {
		return 0, errors.New("guestsdk: write after the handler returned")
	}
	n, err := writeBody(w.body, p)
	if err != nil {
		w.broken = true
	}
	return n, err
}

// WriteString is Write for a string (io.WriteString uses it), without
// copying s into a byte slice first: the host only reads the bytes.
func (w *responseWriter) WriteString(s string) (int, error) {
	return w.Write(unsafe.Slice(unsafe.StringData(s), len(s)))
}

// ReadFrom copies r into the body. A host body (a backend response body)
// is appended in the host (fastly_http_body.append) without passing
// through the guest; the returned count is then 0.
func (w *responseWriter) ReadFrom(r io.Reader) (int64, error) {
	if hb, ok := r.(*hostBody); ok {
		if done, err := w.appendHostBody(hb); done || err != nil {
			return 0, err
		}
	}
	return copyChunks(w, r)
}

// appendHostBody appends b to the response body in the host. done is
// false when the host declined (b is then untouched and can be copied).
func (w *responseWriter) appendHostBody(b *hostBody) (done bool, err error) {
	if err := w.sendHead(200); err != nil {
		return true, err
	}
	if b.consumed {
		return true, ErrBodyConsumed
	}
	if b.eof {
		return true, nil
	}
	if abi.Status(bodyAppend(w.body, b.h)) != abi.OK {
		return false, nil
	}
	b.consumed = true
	b.release()
	return true, nil
}

// sendHead sends the response head once: fastly_http_resp.new,
// status_set (unless status is 200, a new response's), the headers, a
// new body, and send_downstream with streaming = 1.
func (w *responseWriter) sendHead(status int) error {
	if w.sent {
		return w.sendErr
	}
	w.sent = true
	w.sendErr = w.sendHeadBody(status, false, 0)
	return w.sendErr
}

// sendHeadWith sends the head with status; the streaming body is a new
// host body, or src when it is not nil: the host writes out what src holds
// (a backend response body, as it arrives) right after the head, and src's
// handle is the response body from then on (send_downstream streaming on
// a body that has content). src is consumed either way.
func (w *responseWriter) sendHeadWith(status int, src *hostBody) error {
	var srcH uint32
	if src != nil {
		srcH, _ = src.take()
	}
	err := w.sendHeadBody(status, src != nil, srcH)
	if err != nil && src != nil {
		bodyClose(srcH)
	}
	return err
}

func (w *responseWriter) sendHeadBody(status int, hasSrc bool, srcH uint32) error {
	if status < 100 || status > 999 {
		return errors.New("guestsdk: invalid response status code")
	}
	var resp uint32
	if err := statusErr("fastly_http_resp.new", respNew(unsafe.Pointer(&resp))); err != nil {
		return err
	}
	var err error
	if status != 200 { // a new response is 200 (abi/README.md, fastly_http_resp.new)
		err = statusErr("fastly_http_resp.status_set", respStatusSet(resp, uint32(status)))
	}
	if err == nil {
		err = writeHeaders(respKind, resp, w.header)
	}
	if err == nil {
		if hasSrc {
			w.body = srcH
		} else {
			w.body, err = newBody()
		}
	}
	if err != nil {
		respClose(resp)
		return err
	}
	return statusErr("fastly_http_resp.send_downstream", respSendDownstream(resp, w.body, 1))
}

// finish sends the head if the handler did not, then closes the body,
// which ends the streamed response.
func (w *responseWriter) finish() error {
	if err := w.sendHead(200); err != nil {
		return err
	}
	if w.closed {
		return nil
	}
	w.closed = true
	if w.broken {
		// The client must see the body as incomplete.
		return statusErr("fastly_http_body.abandon", bodyAbandon(w.body))
	}
	return statusErr("fastly_http_body.close", bodyClose(w.body))
}

// CopyResponse writes resp to w: its header fields (replacing those of the
// same name already in w.Header(); other fields set on w are kept), its
// status, and its body, which the host appends to the downstream body
// without copying it through the guest when w is the ResponseWriter given
// by Serve. resp.Body is closed. It returns the first error of the copy
// or the close.
//
// When w is that ResponseWriter and resp is a backend response whose
// status and header fields are as Send read them and whose body was not
// read, the host sends resp itself downstream (send_downstream on its
// handle), with the fields of w.Header() whose names resp lacks appended:
// what reaches the client is what a copy would give, without the guest
// writing resp's fields back one by one. w.Header() then shows resp's
// fields merged in as they are when it is next called.
func CopyResponse(w ResponseWriter, resp *Response) error {
	rw, _ := w.(*responseWriter)
	if rw != nil && !rw.sent {
		if hb, ok := resp.Body.(*hostBody); ok && !hb.consumed && !hb.eof {
			if hr := hb.resp; hr != nil && &hr.Response == resp && hr.unchanged() {
				return rw.forward(hr)
			}
			// The head and the body go to the host in one call, and the
			// backend body becomes the response body without an append.
			copyHeader(rw.Header(), resp.Header)
			rw.sent = true
			rw.sendErr = rw.sendHeadWith(resp.StatusCode, hb)
			if rw.sendErr != nil {
				rw.broken = true
			}
			return rw.sendErr
		}
	}
	copyHeader(w.Header(), resp.Header)
	w.WriteHeader(resp.StatusCode)
	if resp.Body == nil {
		return nil
	}
	_, err := io.Copy(w, resp.Body)
	if cerr := resp.Body.Close(); err == nil {
		err = cerr
	}
	if rw != nil && err != nil {
		rw.broken = true // the body was cut short: abandon it
	}
	return err
}

// forward sends the backend response r downstream as the response head,
// its body streaming after it (CopyResponse): the fields of w.header
// whose names r lacks are appended to r's handle first. The handle and
// the body are the host's from then on, whatever the outcome.
func (w *responseWriter) forward(r *hostResponse) error {
	w.sent = true
	r.open = false
	h := r.h
	bh, _ := r.body.take()
	w.body = bh
	err := appendMissing(h, w.header, r.Header)
	if err == nil {
		err = statusErr("fastly_http_resp.send_downstream", respSendDownstream(h, bh, 1))
	}
	if err != nil {
		respClose(h)
		bodyClose(bh)
		w.broken = true
		w.sendErr = err
		return err
	}
	w.merged = r.Header
	return nil
}

// appendMissing appends to response handle h every value of the fields
// of hdr whose names src lacks, names in order: the fields a copy of src
// into hdr would have kept.
func appendMissing(h uint32, hdr, src Header) error {
	var small [16]string
	keys := small[:0]
	for key := range hdr {
		if _, ok := src[key]; !ok {
			keys = append(keys, key)
		}
	}
	if len(keys) > 1 {
		slices.Sort(keys)
	}
	for _, key := range keys {
		if err := appendValues(respKind, h, key, hdr[key]); err != nil {
			return err
		}
	}
	return nil
}

// copyHeader sets every field of src in dst (replacing dst's values of the
// same names) with copies of the values, all in one new backing array:
// each name's slice is capped at its own values, so appending to one never
// writes into another.
func copyHeader(dst, src Header) {
	n := 0
	for _, v := range src {
		n += len(v)
	}
	all := make([]string, 0, n)
	for k, v := range src {
		if len(v) == 0 {
			dst[k] = nil
			continue
		}
		i := len(all)
		all = append(all, v...)
		dst[k] = all[i:len(all):len(all)]
	}
}
