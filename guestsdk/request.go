package guestsdk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"unsafe"

	"github.com/edgehost/edgehost/abi"
)

// Request is an HTTP request: the downstream request handed to a Handler,
// or a request built with NewRequest to send to a backend.
type Request struct {
	// Method is the HTTP method ("GET" when empty on Send).
	Method string
	// URL is the request URL. The host gives the downstream request an
	// absolute URL (http://host/path?query); for a backend request the
	// host connects to the backend, not to URL.Host.
	URL *url.URL
	// Header holds the request header fields.
	Header Header
	// Body is the request body; nil means none. The downstream request's
	// Body is read from the host in chunks. Send closes it.
	Body io.ReadCloser
	// CacheOverride, when set, changes how the host's readthrough cache
	// treats the request when it is sent (see CacheOverride); nil leaves
	// it to the answer's headers.
	CacheOverride *CacheOverride

	// orig is the host request this one was read from (the downstream
	// request), with what was read; nil for a request built in the guest.
	orig *origRequest
}

// origRequest is the host's downstream request as the guest read it: a
// Send of the request with its method, URL and header as they were read
// sends this handle itself rather than building a copy in the host.
type origRequest struct {
	h      uint32
	method string
	url    url.URL
	// read is the header block as read (readHeadersInto), or, when it was
	// read the general way, fields holds a name and a value for each value
	// read, names in the order read, a name's values together and in order.
	read   readBlock
	fields []string
	names  int  // distinct names
	used   bool // the handle was sent (a send consumes it)
}

// unchanged reports whether r still has the method, URL and header it was
// read with, so that o's handle carries exactly what a copy would.
func (o *origRequest) unchanged(r *Request) bool {
	if o.used || r.CacheOverride != nil || r.Method != o.method || r.URL == nil || *r.URL != o.url {
		return false
	}
	if o.read.vals != nil {
		return o.read.same(r.Header)
	}
	return fieldsMatch(o.fields, o.names, r.Header)
}

// fieldsMatch reports whether h holds exactly the fields read into it:
// fields holds a name and a value for each value read, a name's values
// together and in order, names distinct names in all. A name read with no
// value (which fields cannot show) makes it false.
func fieldsMatch(fields []string, names int, h Header) bool {
	if len(h) != names {
		return false
	}
	f := fields
	seen := 0
	for len(f) > 0 {
		name := f[0]
		vs := h[name]
		if len(vs) == 0 || 2*len(vs) > len(f) {
			return false
		}
		for i, v := range vs {
			if f[2*i] != name || f[2*i+1] != v {
				return false
			}
		}
		f = f[2*len(vs):]
		if len(f) > 0 && f[0] == name {
			return false // the name was read with more values
		}
		seen++
	}
	return seen == names
}

// NewRequest returns a Request for method and rawURL (parsed with
// url.Parse) with an empty Header. body may be nil; a body that is not an
// io.ReadCloser is wrapped with io.NopCloser. It returns the url.Parse
// error, wrapped.
func NewRequest(method, rawURL string, body io.Reader) (*Request, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("guestsdk: NewRequest: %w", err)
	}
	r := &Request{Method: method, URL: u, Header: Header{}}
	if body != nil {
		rc, ok := body.(io.ReadCloser)
		if !ok {
			rc = io.NopCloser(body)
		}
		r.Body = rc
	}
	return r, nil
}

// Response is a backend's response to Send or PendingRequest.Wait.
type Response struct {
	// StatusCode is the HTTP status, e.g. 200.
	StatusCode int
	// Header holds the response header fields.
	Header Header
	// Body is read from the host in chunks (fastly_http_body.read; a read
	// of 0 bytes is io.EOF). Close it when not read to the end.
	Body io.ReadCloser
}

// Send sends r to the named backend (static, from fastly.toml, or
// registered with RegisterDynamicBackend) and blocks in the host until the
// response headers arrive (fastly_http_req.send_v2; no guest-side polling).
// The request body is handed over without a copy when it is a host body
// (e.g. the downstream request's Body), else it is streamed into a new
// host body in 32 KiB chunks before the request is sent; Send closes it.
//
// ctx is checked before the request leaves; the host bounds the wait with
// the backend's timeouts. A host failure is a *SendError, which wraps
// ErrBackendNotFound when the host answered inval.
func (r *Request) Send(ctx context.Context, backend string) (*Response, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	req, body, err := r.hostRequest()
	if err != nil {
		return nil, err
	}
	var detail [abi.SendErrDetailSize / 4]uint32
	var resp, respBody uint32
	st := reqSendV2(req, body, strPtr(backend), uint32(len(backend)), unsafe.Pointer(&detail), unsafe.Pointer(&resp), unsafe.Pointer(&respBody))
	if err := statusErr("fastly_http_req.send_v2", st); err != nil {
		releaseUnsent(req, body)
		return nil, &SendError{Backend: backend, Detail: detail[abi.SendErrDetailTag/4], Err: err}
	}
	return responseFromHost(resp, respBody)
}

// PendingRequest is a backend request sent with SendAsync whose response
// has not been collected yet.
type PendingRequest struct {
	h       uint32
	backend string
	done    bool
}

// SendAsync sends r to the named backend without waiting for the response
// (fastly_http_req.send_async), so that several backend requests run
// concurrently in the host. Collect each response with Wait. The body is
// handed over as in Send. A failure is a *SendError.
func (r *Request) SendAsync(ctx context.Context, backend string) (*PendingRequest, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	req, body, err := r.hostRequest()
	if err != nil {
		return nil, err
	}
	var p uint32
	st := reqSendAsync(req, body, strPtr(backend), uint32(len(backend)), unsafe.Pointer(&p))
	if err := statusErr("fastly_http_req.send_async", st); err != nil {
		releaseUnsent(req, body)
		return nil, &SendError{Backend: backend, Err: err}
	}
	return &PendingRequest{h: p, backend: backend}, nil
}

// Wait blocks in the host until the response headers arrive
// (fastly_http_req.pending_req_wait_v2) and returns the response. ctx is
// checked before blocking; the host bounds the wait with the backend's
// timeouts. Wait may be called once; a failure is a *SendError.
func (p *PendingRequest) Wait(ctx context.Context) (*Response, error) {
	if p.done {
		return nil, errors.New("guestsdk: PendingRequest.Wait called twice")
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p.done = true
	var detail [abi.SendErrDetailSize / 4]uint32
	var resp, body uint32
	st := reqPendingReqWaitV2(p.h, unsafe.Pointer(&detail), unsafe.Pointer(&resp), unsafe.Pointer(&body))
	if err := statusErr("fastly_http_req.pending_req_wait_v2", st); err != nil {
		return nil, &SendError{Backend: p.backend, Detail: detail[abi.SendErrDetailTag/4], Err: err}
	}
	return responseFromHost(resp, body)
}

// releaseUnsent closes the request and body handles of a send that
// failed: a send consumes both once the request is on its way
// (abi/README.md, send), but one refused before that (an unknown backend)
// leaves them to the guest. Closing a consumed handle answers badf, which
// is ignored.
func releaseUnsent(req, body uint32) {
	reqClose(req)
	bodyClose(body)
}

// hostRequest returns the host request and body to send for r: the
// downstream request's own handle when r is still what was read from it
// (the first send only, as a send consumes it), else a copy built with
// toHost.
func (r *Request) hostRequest() (req, body uint32, err error) {
	if o := r.orig; o != nil && o.unchanged(r) {
		if hb, ok := r.Body.(*hostBody); ok {
			// The usual case, without bodyFrom's conversion to io.Reader
			// (an itab lookup in Wasm).
			body, err = hb.take()
		} else {
			var rd io.Reader
			if r.Body != nil {
				rd = r.Body
			}
			body, err = bodyFrom(rd)
		}
		if err != nil {
			return 0, 0, err
		}
		o.used = true
		return o.h, body, nil
	}
	return r.toHost()
}

// toHost builds a host request from r: method, URI, headers and body.
func (r *Request) toHost() (req, body uint32, err error) {
	if r.URL == nil {
		return 0, 0, errors.New("guestsdk: Request.URL is nil")
	}
	if err := statusErr("fastly_http_req.new", reqNew(unsafe.Pointer(&req))); err != nil {
		return 0, 0, err
	}
	method := r.Method
	if method == "" {
		method = "GET"
	}
	uri := r.URL.String()
	err = statusErr("fastly_http_req.method_set", reqMethodSet(req, strPtr(method), uint32(len(method))))
	if err == nil {
		err = statusErr("fastly_http_req.uri_set", reqURISet(req, strPtr(uri), uint32(len(uri))))
	}
	if err == nil {
		err = writeHeaders(reqKind, req, r.Header)
	}
	if err == nil && r.CacheOverride != nil {
		err = r.CacheOverride.apply(req)
	}
	if err == nil {
		var rd io.Reader
		if r.Body != nil {
			rd = r.Body
		}
		body, err = bodyFrom(rd)
	}
	if err != nil {
		reqClose(req)
		return 0, 0, err
	}
	return req, body, nil
}

// responseFromHost reads the status and headers of a host response; the
// body stays a host body. The response handle stays open while the body
// does (hostBody.release), so that CopyResponse can send it downstream as
// it is when the guest changed nothing; a response whose header block
// cannot be checked for changes (a name given twice) is closed at once.
// The Response, its body and its header block are one allocation when the
// block fits (readHeadersInto).
func responseFromHost(resp, body uint32) (*Response, error) {
	var status uint32
	err := statusErr("fastly_http_resp.status_get", respStatusGet(resp, unsafe.Pointer(&status)))
	var r *hostResponse
	var rb readBlock
	if err == nil {
		g := bufPool.Get().(*getterBuf)
		var hdr Header
		var ok bool
		if r, rb, hdr, ok, err = readHeadersInto[hostResponse](g, respKind, resp, 0); err == nil && !ok {
			r = new(hostResponse)
			hdr, _, err = readHeaderBlockSlow(g, respKind, resp, false)
		}
		bufPool.Put(g)
		if err == nil {
			r.Header = hdr
		}
	}
	if err != nil {
		respClose(resp)
		bodyClose(body)
		return nil, err
	}
	r.StatusCode = int(status & 0xFFFF)
	if rb.vals != nil || len(r.Header) == 0 {
		r.h, r.open, r.status, r.read = resp, true, r.StatusCode, rb
		r.body.resp = r
	} else {
		respClose(resp)
	}
	r.body.h = body
	r.Body = &r.body
	return &r.Response, nil
}

// hostResponse is a backend Response with its body, in one allocation,
// and what CopyResponse needs to send it downstream as it is: the host
// response handle h (open until the body leaves the guest or ends), the
// status and the header block as read.
type hostResponse struct {
	Response
	body   hostBody
	h      uint32
	open   bool
	status int
	read   readBlock
}

// unchanged reports whether r's handle is open and r still has the
// status and header it was read with: the handle then carries exactly
// what a copy would.
func (r *hostResponse) unchanged() bool {
	if !r.open || r.StatusCode != r.status {
		return false
	}
	if r.read.vals == nil {
		return len(r.Header) == 0 // no field was read
	}
	return r.read.same(r.Header)
}

// downstreamRequest reads the downstream request from the host.
func downstreamRequest() (*Request, error) {
	g := bufPool.Get().(*getterBuf)
	defer bufPool.Put(g)
	d, err := downstreamExchange(g)
	if err != nil {
		return nil, err
	}
	return &d.Request, nil
}

// downstreamExchange reads the downstream request from the host, with the
// ResponseWriter for its response, offering g (see getStringAs).
func downstreamExchange(g *getterBuf) (*downstreamReq, error) {
	var req, body uint32
	if err := statusErr("fastly_http_req.body_downstream_get", reqBodyDownstreamGet(unsafe.Pointer(&req), unsafe.Pointer(&body))); err != nil {
		return nil, err
	}
	return exchangeFromHandles(g, req, body)
}

// requestFromHandles reads a downstream request given as handles.
func requestFromHandles(req, body uint32) (*Request, error) {
	g := bufPool.Get().(*getterBuf)
	defer bufPool.Put(g)
	d, err := exchangeFromHandles(g, req, body)
	if err != nil {
		return nil, err
	}
	return &d.Request, nil
}

// exchangeFromHandles is requestFromHandles returning the request with
// the ResponseWriter for its response, offering g (see getStringAs; a
// ServeMany sandbox keeps one for all its requests). The request, its
// URL, body and ResponseWriter, the bytes of its URI and header block and
// the strings of its header values are one allocation when the block fits
// (readHeadersInto; the usual request), and the Header map is the only
// other one.
func exchangeFromHandles(g *getterBuf, req, body uint32) (d *downstreamReq, err error) {
	// The method fits g.buf but for a host that misbehaves (the general
	// getter then retries or fails).
	var method string
	g.nw = 0
	if st := reqMethodGet(req, bytesPtr(g.buf), uint32(len(g.buf)), unsafe.Pointer(&g.nw)); abi.Status(st) == abi.OK && int(g.nw) <= len(g.buf) {
		method = methodString(g.buf[:g.nw])
	} else if method, err = getStringAs(g, "fastly_http_req.method_get", func(b unsafe.Pointer, n uint32, w unsafe.Pointer) uint32 {
		return reqMethodGet(req, b, n, w)
	}, methodString); err != nil {
		return nil, err
	}
	// The URI goes to the start of g.buf, the header block after it, and
	// all of it becomes one string (scanHeaders); when either does not
	// fit, each is read on its own.
	var (
		uri    string
		hdr    Header
		fields []string
		rb     readBlock
		fast   bool
	)
	g.nw = 0
	st := reqURIGet(req, bytesPtr(g.buf), uint32(len(g.buf)), unsafe.Pointer(&g.nw))
	if pre := int(g.nw); abi.Status(st) == abi.OK && pre <= len(g.buf) {
		if d, rb, hdr, fast, err = readHeadersInto[downstreamReq](g, reqKind, req, pre); err != nil {
			return nil, err
		}
		if fast {
			uri = rb.s[:pre]
		} else {
			uri = string(g.buf[:pre])
		}
	} else if uri, err = getStringAs(g, "fastly_http_req.uri_get", func(b unsafe.Pointer, n uint32, w unsafe.Pointer) uint32 {
		return reqURIGet(req, b, n, w)
	}, bytesString); err != nil {
		return nil, err
	}
	if !fast {
		if hdr, fields, err = readHeaderBlockSlow(g, reqKind, req, true); err != nil {
			return nil, err
		}
	}
	if d == nil {
		d = new(downstreamReq)
	}
	d.Request.Method, d.Request.Header = method, hdr
	d.body.h = body
	if !parseSimpleURIInto(&d.url, uri) {
		u, err := url.Parse(uri)
		if err != nil {
			return nil, fmt.Errorf("guestsdk: downstream request URI: %w", err)
		}
		d.url = *u
	}
	d.Request.URL = &d.url
	d.Request.Body = &d.body
	if fast || fields != nil || len(hdr) == 0 {
		// Field by field: d is new, so the rest is already zero.
		d.orig.h, d.orig.method, d.orig.url, d.orig.read, d.orig.fields, d.orig.names = req, method, d.url, rb, fields, len(hdr)
		d.Request.orig = &d.orig
	}
	return d, nil
}

// downstreamReq holds a downstream Request, its URL, its body, what was
// read of it and the ResponseWriter for its response in one allocation.
type downstreamReq struct {
	Request
	url  url.URL
	body hostBody
	orig origRequest
	w    responseWriter
}

// methodString is string(b), without an allocation for the common
// methods.
func methodString(b []byte) string {
	switch string(b) {
	case "GET":
		return "GET"
	case "HEAD":
		return "HEAD"
	case "POST":
		return "POST"
	case "PUT":
		return "PUT"
	case "DELETE":
		return "DELETE"
	case "OPTIONS":
		return "OPTIONS"
	case "PATCH":
		return "PATCH"
	}
	return string(b)
}
