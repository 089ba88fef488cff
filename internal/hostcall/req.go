package hostcall

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/internal/cache"
	"github.com/edgehost/edgehost/internal/pool"
)

// request is a guest-built (or the downstream) request.
type request struct {
	method  string
	uri     string
	version uint32
	hdr     *header
	// manualFraming: framing_headers_mode_set chose mode 1 (framing.go).
	manualFraming bool
	// override is the request's cache override (cache_override_set,
	// cache_override_v2_set); the zero value is none.
	override cache.Override
	// cacheFill: made by fastly_http_cache.get_suggested_backend_request,
	// so it fills the HTTP cache and passes the readthrough cache whatever
	// override the guest sets on it (overrideOf).
	cacheFill bool

	// parsed is uri parsed (parsedURL), parsedFrom the uri it was
	// parsed from; nobody changes *parsed.
	parsed     *url.URL
	parsedFrom string
}

// parsedURL returns url.Parse(r.uri), parsing it once while the URI stays
// the same: a send reads it for the cache key and the origin request.
func (r *request) parsedURL() (*url.URL, error) {
	if r.parsed != nil && r.parsedFrom == r.uri {
		return r.parsed, nil
	}
	u, err := url.Parse(r.uri)
	if err != nil {
		return nil, err
	}
	r.parsed, r.parsedFrom = u, r.uri
	return u, nil
}

func (r *request) headers() *header     { return r.hdr }
func (r *request) httpVersion() *uint32 { return &r.version }
func (r *request) framingMode() *bool   { return &r.manualFraming }

func newRequest() *request {
	return &request{method: http.MethodGet, uri: "/", version: abi.HTTP11, hdr: newHeader()}
}

// pendingRequest is a backend request in flight (send_async*).
type pendingRequest struct {
	done   chan struct{}
	resp   *http.Response
	err    error
	cancel context.CancelFunc
}

func (p *pendingRequest) isDone() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// discard releases a finished request nobody collected.
func (p *pendingRequest) discard() {
	if p.resp != nil {
		p.resp.Body.Close()
	}
}

func reqImpls() []impl {
	m := abi.ModuleHTTPReq
	get := func(c *call, h uint32) (*request, error) { return c.s.reqs.get(h) }
	// Sends: the error detail pointer is noDetail for send, which has none.
	send := func(c *call, a reqSendArgs) error {
		return c.sendBlocking(a.H, a.B, a.Backend, sendOuts{detail: noDetail, resp: a.RespOut, body: a.RespBodyOut})
	}
	sendV2 := func(c *call, a reqSendV2Args) error {
		return c.sendBlocking(a.H, a.B, a.Backend, sendOuts{detail: a.ErrorDetail, resp: a.RespOut, body: a.RespBodyOut})
	}
	sendAsync := func(streaming bool) func(c *call, a reqSendAsyncArgs) error {
		return func(c *call, a reqSendAsyncArgs) error {
			return c.sendAsync(a.H, a.B, a.Backend, streaming, a.PendingOut)
		}
	}
	impls := []impl{
		bindReqNew(func(c *call, a reqNewArgs) error { return c.putU32(a.ReqOut, c.s.reqs.add(newRequest())) }),
		bindReqClose(func(c *call, a reqCloseArgs) error {
			_, err := c.s.reqs.remove(a.H)
			return err
		}),
		bindReqBodyDownstreamGet(func(c *call, a reqBodyDownstreamGetArgs) error {
			if c.s.down == nil {
				return statusErr(abi.Unsupported, "this sandbox has no downstream request")
			}
			rh, bh, err := c.s.down.takeRequest()
			if err != nil {
				return err
			}
			if err := c.putU32(a.ReqOut, rh); err != nil {
				return err
			}
			return c.putU32(a.BodyOut, bh)
		}),
		bindReqMethodGet(func(c *call, a reqMethodGetArgs) error {
			r, err := get(c, a.H)
			if err != nil {
				return err
			}
			return c.writeBuf(a.Buf, []byte(r.method))
		}),
		bindReqMethodSet(func(c *call, a reqMethodSetArgs) error {
			r, err := get(c, a.H)
			if err != nil {
				return err
			}
			v := string(a.Method)
			if v == "" || strings.IndexFunc(v, func(r rune) bool { return r <= ' ' || r >= 0x7f || strings.ContainsRune("()<>@,;:\\\"/[]?={}", r) }) >= 0 {
				return statusErr(abi.HTTPInvalid, "invalid method %q", v)
			}
			r.method = v
			return nil
		}),
		bindReqURIGet(func(c *call, a reqURIGetArgs) error {
			r, err := get(c, a.H)
			if err != nil {
				return err
			}
			return c.writeBuf(a.Buf, []byte(r.uri))
		}),
		bindReqURISet(func(c *call, a reqURISetArgs) error {
			r, err := get(c, a.H)
			if err != nil {
				return err
			}
			v := string(a.URI)
			if _, err := url.Parse(v); err != nil || v == "" {
				return statusErr(abi.HTTPInvalid, "invalid URI %q", v)
			}
			r.uri = v
			return nil
		}),
		// The override replaces the request's previous one; the send
		// hostcalls hand it to the readthrough cache (cachert.go).
		bindReqCacheOverrideSet(func(c *call, a reqCacheOverrideSetArgs) error {
			r, err := get(c, a.H)
			if err != nil {
				return err
			}
			r.override = cache.OverrideFromABI(a.Tag, a.TTL, a.StaleWhileRevalidate, "")
			return nil
		}),
		bindReqCacheOverrideV2Set(func(c *call, a reqCacheOverrideV2SetArgs) error {
			r, err := get(c, a.H)
			if err != nil {
				return err
			}
			if err := checkSurrogateKeys(a.Sk); err != nil {
				return err
			}
			r.override = cache.OverrideFromABI(a.Tag, a.TTL, a.StaleWhileRevalidate, string(a.Sk))
			return nil
		}),
		bindReqAutoDecompressResponseSet(func(c *call, a reqAutoDecompressResponseSetArgs) error { _, err := get(c, a.H); return err }),

		bindReqSend(send),
		bindReqSendV2(sendV2),
		bindReqSendV3(sendV2),
		bindReqSendAsync(sendAsync(false)),
		bindReqSendAsyncStreaming(sendAsync(true)),
		bindReqSendAsyncV2(func(c *call, a reqSendAsyncV2Args) error {
			return c.sendAsync(a.H, a.B, a.Backend, a.Streaming != 0, a.PendingOut)
		}),
		bindReqPendingReqPoll(func(c *call, a reqPendingReqPollArgs) error {
			return c.pendingPoll(a.H, a.IsDoneOut, sendOuts{detail: noDetail, resp: a.RespOut, body: a.RespBodyOut})
		}),
		bindReqPendingReqPollV2(func(c *call, a reqPendingReqPollV2Args) error {
			return c.pendingPoll(a.H, a.IsDoneOut, sendOuts{detail: a.ErrorDetail, resp: a.RespOut, body: a.RespBodyOut})
		}),
		bindReqPendingReqWait(func(c *call, a reqPendingReqWaitArgs) error {
			return c.pendingWait(a.H, sendOuts{detail: noDetail, resp: a.RespOut, body: a.RespBodyOut})
		}),
		bindReqPendingReqWaitV2(func(c *call, a reqPendingReqWaitV2Args) error {
			return c.pendingWait(a.H, sendOuts{detail: a.ErrorDetail, resp: a.RespOut, body: a.RespBodyOut})
		}),
		bindReqRegisterDynamicBackend(registerDynamicBackend),
	}
	impls = append(impls, messageImpls(m, func(c *call, h uint32) (message, error) { return c.s.reqs.get(h) })...)
	return impls
}

// noDetail is sendOuts.detail for a send or pending call without a
// send_error_detail out-pointer. 0 is never it: the generated binding
// checked every out-pointer, and 0 is a valid address.
const noDetail = ^uint32(0)

// sendOuts are the out-pointers a send or pending call delivers its
// response to, all checked by the binding: the send_error_detail struct
// (noDetail: none), the response handle and the body handle.
type sendOuts struct{ detail, resp, body uint32 }

// buildOrigin turns request handle rh with body handle bh into the
// origin request for the named backend. On success the request handle is
// consumed (abi/README.md, send), and so is the body handle (or,
// streaming, it is kept as the request's sink); on an error both stay.
func (c *call) buildOrigin(rh, bh uint32, backendName []byte, streaming bool) (*backend, *http.Request, error) {
	r, err := c.s.reqs.get(rh)
	if err != nil {
		return nil, nil, err
	}
	var b *body
	if bh != abi.NoHandle {
		if b, err = c.s.bodies.get(bh); err != nil {
			return nil, nil, err
		}
		if b.sink != nil {
			return nil, nil, statusErr(abi.Inval, "body %d is already streaming", bh)
		}
	}
	be, err := c.s.lookupBackend(string(backendName))
	if err != nil {
		return nil, nil, err
	}
	u, err := r.parsedURL()
	if err != nil {
		return nil, nil, statusErr(abi.HTTPInvalid, "invalid URI %q", r.uri)
	}
	// The pool aims the request at its origin and chooses the Host header
	// (pool.Pool.OriginHost): the override, else the guest's Host header,
	// else the host of the guest's URI, else the origin's address.
	target := &url.URL{Scheme: be.settings.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath, RawQuery: u.RawQuery}
	if target.Path == "" {
		target.Path = "/"
	}
	if be.pathPrefix != "" {
		if err := prefixPath(target, be.pathPrefix); err != nil {
			return nil, nil, statusErr(abi.HTTPInvalid, "invalid URI %q: %v", r.uri, err)
		}
	}
	fr := c.s.framingFor(r.manualFraming, r.hdr, "backend request")
	// The request handle is consumed below: its header block is given
	// away, so the origin request shares its values.
	h := r.hdr.httpHeaderShared()
	host := h.Get("Host")
	// Framing is the host's (framingFor), the Host header goes in
	// Request.Host.
	pool.RemoveHopByHop(h)
	h.Del(cacheKeyHeader) // the cache's, not the backend's (cachert.go)
	h.Del("Host")
	h.Del("Content-Length")
	var rd io.ReadCloser = http.NoBody
	var getBody func() (io.ReadCloser, error)
	n := int64(0)
	if b != nil {
		// A body of bytes the guest wrote can be replayed, so the pool
		// may retry the request on a fresh connection.
		if chunks, ok := b.byteChunks(); ok && !streaming {
			getBody = func() (io.ReadCloser, error) { return newBytesReader(chunks), nil }
		}
		rd, n = b.detach()
		if streaming {
			pr, pw := io.Pipe()
			rd, n = struct {
				io.Reader
				io.Closer
			}{io.MultiReader(rd, pr), multiCloser{rd, pr}}, -1
			b.sink = pw
			b.sinkClose = func(abandon bool) error {
				if abandon {
					return pw.CloseWithError(fmt.Errorf("request body abandoned by the guest"))
				}
				return pw.Close()
			}
		} else {
			c.s.bodies.remove(bh)
		}
	}
	// The request is now the origin request's: its handle is consumed, so
	// that a guest sending a request per downstream request in a reused
	// sandbox holds no more handles with every request.
	c.s.reqs.remove(rh)
	req := &http.Request{
		Method:     r.method,
		URL:        target,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1, ProtoMinor: 1,
		Header:        h,
		Host:          host,
		ContentLength: n,
		Body:          rd,
		GetBody:       getBody,
	}
	c.s.countBackendRequest()
	switch {
	case fr.length >= 0:
		// The guest's Content-Length; a body of another length fails
		// the request.
		req.ContentLength = fr.length
	case fr.chunked:
		// The guest's Transfer-Encoding: chunked, even for a body of
		// known (or zero) length.
		req.ContentLength = -1
		req.TransferEncoding = []string{"chunked"}
		if req.Body == http.NoBody {
			// net/http sends no body at all for NoBody.
			empty := func() (io.ReadCloser, error) { return newBytesReader(nil), nil }
			req.Body, _ = empty()
			req.GetBody = empty
		}
		return be, req, nil
	}
	if req.ContentLength == 0 {
		req.Body, req.GetBody = http.NoBody, nil
		rd.Close()
	}
	return be, req, nil
}

// prefixPath puts prefix (the escaped path of a static backend's URL)
// before u's path, with one slash between them, as Fastly does for a
// backend URL with a path.
func prefixPath(u *url.URL, prefix string) error {
	esc := strings.TrimSuffix(prefix, "/") + "/" + strings.TrimPrefix(u.EscapedPath(), "/")
	p, err := url.PathUnescape(esc)
	if err != nil {
		return err
	}
	u.Path, u.RawPath = p, esc
	return nil
}

type multiCloser []io.Closer

func (m multiCloser) Close() error {
	for _, c := range m {
		c.Close()
	}
	return nil
}

// sendBlocking implements send, send_v2 and send_v3: the guest blocks in
// the host until the response headers arrive.
func (c *call) sendBlocking(rh, bh uint32, backendName []byte, out sendOuts) error {
	ov, err := c.overrideOf(rh)
	if err != nil {
		return err
	}
	hk := c.requestCacheKey(rh)
	be, req, err := c.buildOrigin(rh, bh, backendName, false)
	if err != nil {
		return err
	}
	resp, err := c.s.env.send(c.s.ctx, be, req, ov, hk)
	if out.detail != noDetail {
		c.putSendDetail(out.detail, err)
	}
	if err != nil {
		c.s.logger().Info("backend request failed", "backend", be.name, "err", err)
		return statusErr(abi.Error, "send to %q: %v", be.name, err)
	}
	return c.putResponse(resp, out.resp, out.body)
}

// putResponse registers resp as response and body handles.
func (c *call) putResponse(resp *http.Response, respOut, bodyOut uint32) error {
	rh := c.s.resps.add(responseFrom(resp))
	bh := c.s.bodies.add(newStreamBody(c.s, resp.Body, resp.ContentLength))
	if err := c.putU32(respOut, rh); err != nil {
		return err
	}
	return c.putU32(bodyOut, bh)
}

func (c *call) putSendDetail(ptr uint32, err error) {
	var b [abi.SendErrDetailSize]byte
	binary.LittleEndian.PutUint32(b[abi.SendErrDetailTag:], sendErrorTag(err))
	c.mem.Write(ptr, b[:])
}

func (c *call) sendAsync(rh, bh uint32, backendName []byte, streaming bool, pendingOut uint32) error {
	if c.s.pendingOpen >= c.s.env.limits.MaxPendingRequests {
		return statusErr(abi.LimitExceeded, "more than %d backend requests in flight", c.s.env.limits.MaxPendingRequests)
	}
	ov, err := c.overrideOf(rh)
	if err != nil {
		return err
	}
	if streaming {
		// The body is still being written: nothing to cache by.
		ov.Pass = true
	}
	hk := c.requestCacheKey(rh)
	be, req, err := c.buildOrigin(rh, bh, backendName, streaming)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(c.s.ctx)
	p := &pendingRequest{done: make(chan struct{}), cancel: cancel}
	c.s.pendingOpen++
	c.s.wg.Add(1)
	// The goroutine logs with the logger of the request that sent it,
	// made here: it must not read the session's request id, which
	// next_request_wait changes on the guest's thread (issue 13).
	// It must not use c either: the session reuses it for its next
	// hostcall (bind).
	log := c.s.logger()
	s := c.s
	go func() {
		defer s.wg.Done()
		defer close(p.done)
		p.resp, p.err = s.env.send(ctx, be, req, ov, hk)
		if p.err != nil {
			log.Info("backend request failed", "backend", be.name, "err", p.err)
		}
	}()
	return c.putU32(pendingOut, c.s.pending.add(p))
}

// pendingPoll: is_done 0 leaves the request pending; when done the
// handle is consumed and the response (or error) delivered.
func (c *call) pendingPoll(ph, doneOut uint32, out sendOuts) error {
	p, err := c.s.pending.get(ph)
	if err != nil {
		return err
	}
	if !p.isDone() {
		c.putU32(out.resp, abi.NoHandle)
		c.putU32(out.body, abi.NoHandle)
		return c.putU32(doneOut, 0)
	}
	if err := c.putU32(doneOut, 1); err != nil {
		return err
	}
	return c.deliver(ph, p, out)
}

func (c *call) pendingWait(ph uint32, out sendOuts) error {
	p, err := c.s.pending.get(ph)
	if err != nil {
		return err
	}
	select {
	case <-p.done:
	case <-c.ctx.Done():
		return statusErr(abi.Error, "sandbox ended while waiting: %v", c.ctx.Err())
	}
	return c.deliver(ph, p, out)
}

func (c *call) deliver(ph uint32, p *pendingRequest, out sendOuts) error {
	c.s.pending.remove(ph)
	c.s.pendingOpen--
	if out.detail != noDetail {
		c.putSendDetail(out.detail, p.err)
	}
	if p.err != nil {
		c.putU32(out.resp, abi.NoHandle)
		c.putU32(out.body, abi.NoHandle)
		return statusErr(abi.Error, "backend request: %v", p.err)
	}
	return c.putResponse(p.resp, out.resp, out.body)
}
