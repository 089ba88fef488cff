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
)

// request is a guest-built (or the downstream) request.
type request struct {
	method  string
	uri     string
	version uint32
	hdr     *header
	// manualFraming: framing_headers_mode_set chose mode 1 (framing.go).
	manualFraming bool
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
	get := func(c *call, i int) (*request, error) { return c.s.reqs.get(c.u32(i)) }
	impls := []impl{
		{m, "new", func(c *call) error {
			if err := c.checkOut(c.u32(0), 4, 4); err != nil {
				return err
			}
			return c.putU32(c.u32(0), c.s.reqs.add(newRequest()))
		}},
		{m, "close", func(c *call) error {
			_, err := c.s.reqs.remove(c.u32(0))
			return err
		}},
		{m, "body_downstream_get", func(c *call) error {
			if c.s.down == nil {
				return statusErr(abi.Unsupported, "this sandbox has no downstream request")
			}
			if err := c.checkOut(c.u32(0), 4, 4); err != nil {
				return err
			}
			if err := c.checkOut(c.u32(1), 4, 4); err != nil {
				return err
			}
			rh, bh, err := c.s.down.takeRequest()
			if err != nil {
				return err
			}
			if err := c.putU32(c.u32(0), rh); err != nil {
				return err
			}
			return c.putU32(c.u32(1), bh)
		}},
		{m, "method_get", func(c *call) error {
			r, err := get(c, 0)
			if err != nil {
				return err
			}
			return c.putBuf(c.u32(1), c.u32(2), c.u32(3), []byte(r.method))
		}},
		{m, "method_set", func(c *call) error {
			r, err := get(c, 0)
			if err != nil {
				return err
			}
			v, err := c.str(1)
			if err != nil {
				return err
			}
			if v == "" || strings.IndexFunc(v, func(r rune) bool { return r <= ' ' || r >= 0x7f || strings.ContainsRune("()<>@,;:\\\"/[]?={}", r) }) >= 0 {
				return statusErr(abi.HTTPInvalid, "invalid method %q", v)
			}
			r.method = v
			return nil
		}},
		{m, "uri_get", func(c *call) error {
			r, err := get(c, 0)
			if err != nil {
				return err
			}
			return c.putBuf(c.u32(1), c.u32(2), c.u32(3), []byte(r.uri))
		}},
		{m, "uri_set", func(c *call) error {
			r, err := get(c, 0)
			if err != nil {
				return err
			}
			v, err := c.str(1)
			if err != nil {
				return err
			}
			if _, err := url.Parse(v); err != nil || v == "" {
				return statusErr(abi.HTTPInvalid, "invalid URI %q", v)
			}
			r.uri = v
			return nil
		}},
		// edgehost has no cache: overrides are accepted and ignored.
		{m, "cache_override_set", func(c *call) error { _, err := get(c, 0); return err }},
		{m, "cache_override_v2_set", func(c *call) error {
			if _, err := get(c, 0); err != nil {
				return err
			}
			_, err := c.bytes(4, maxStringLen)
			return err
		}},
		{m, "auto_decompress_response_set", func(c *call) error { _, err := get(c, 0); return err }},

		// Parameters: req 0, body 1, backend 2-3, then the rest.
		{m, "send", func(c *call) error { return c.sendBlocking(-1, 4, 5) }},
		{m, "send_v2", func(c *call) error { return c.sendBlocking(4, 5, 6) }},
		{m, "send_v3", func(c *call) error { return c.sendBlocking(4, 5, 6) }},
		{m, "send_async", func(c *call) error { return c.sendAsync(false, 4) }},
		{m, "send_async_streaming", func(c *call) error { return c.sendAsync(true, 4) }},
		{m, "send_async_v2", func(c *call) error { return c.sendAsync(c.u32(4) != 0, 5) }},
		{m, "pending_req_poll", func(c *call) error { return c.pendingPoll(-1, 1, 2, 3) }},
		{m, "pending_req_poll_v2", func(c *call) error { return c.pendingPoll(1, 2, 3, 4) }},
		{m, "pending_req_wait", func(c *call) error { return c.pendingWait(-1, 1, 2) }},
		{m, "pending_req_wait_v2", func(c *call) error { return c.pendingWait(1, 2, 3) }},
		{m, "register_dynamic_backend", registerDynamicBackend},
	}
	impls = append(impls, messageImpls(m, func(c *call, h uint32) (message, error) { return c.s.reqs.get(h) })...)
	return impls
}

// buildOrigin turns request handle reqH with body handle bodyH into the
// origin request for the named backend; the body handle is consumed (or,
// streaming, kept as the request's sink).
func (c *call) buildOrigin(streaming bool) (*backend, *http.Request, error) {
	r, err := c.s.reqs.get(c.u32(0))
	if err != nil {
		return nil, nil, err
	}
	bh := c.u32(1)
	var b *body
	if bh != abi.NoHandle {
		if b, err = c.s.bodies.get(bh); err != nil {
			return nil, nil, err
		}
		if b.sink != nil {
			return nil, nil, statusErr(abi.Inval, "body %d is already streaming", bh)
		}
	}
	name, err := c.str(2)
	if err != nil {
		return nil, nil, err
	}
	be, err := c.s.lookupBackend(name)
	if err != nil {
		return nil, nil, err
	}
	u, err := url.Parse(r.uri)
	if err != nil {
		return nil, nil, statusErr(abi.HTTPInvalid, "invalid URI %q", r.uri)
	}
	target := &url.URL{Scheme: be.settings.Scheme, Host: be.settings.Addr, Path: u.Path, RawPath: u.RawPath, RawQuery: u.RawQuery}
	if target.Path == "" {
		target.Path = "/"
	}
	if be.pathPrefix != "" {
		if err := prefixPath(target, be.pathPrefix); err != nil {
			return nil, nil, statusErr(abi.HTTPInvalid, "invalid URI %q: %v", r.uri, err)
		}
	}
	fr := c.s.framingFor(r.manualFraming, r.hdr, "backend request")
	h := r.hdr.httpHeader()
	host := be.settings.HostOverride
	if host == "" {
		host = h.Get("Host")
	}
	if host == "" {
		host = u.Host
	}
	if host == "" {
		host = be.settings.Addr
	}
	for _, k := range []string{"Host", "Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Upgrade"} {
		h.Del(k)
	}
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
// the host until the response headers arrive. detailArg is the index of
// the send_error_detail pointer, or -1 (send has none).
func (c *call) sendBlocking(detailArg, respOut, bodyOut int) error {
	withDetail := detailArg >= 0
	if withDetail {
		if err := c.checkOut(c.u32(detailArg), abi.SendErrDetailSize, 4); err != nil {
			return err
		}
	}
	if err := c.checkOut(c.u32(respOut), 4, 4); err != nil {
		return err
	}
	if err := c.checkOut(c.u32(bodyOut), 4, 4); err != nil {
		return err
	}
	be, req, err := c.buildOrigin(false)
	if err != nil {
		return err
	}
	resp, err := be.pool.Do(c.s.ctx, req, be.timeouts)
	if withDetail {
		c.putSendDetail(c.u32(detailArg), err)
	}
	if err != nil {
		c.s.logger().Info("backend request failed", "backend", be.name, "err", err)
		return statusErr(abi.Error, "send to %q: %v", be.name, err)
	}
	return c.putResponse(resp, c.u32(respOut), c.u32(bodyOut))
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

func (c *call) sendAsync(streaming bool, pendingOut int) error {
	if err := c.checkOut(c.u32(pendingOut), 4, 4); err != nil {
		return err
	}
	if c.s.pendingOpen >= c.s.env.limits.MaxPendingRequests {
		return statusErr(abi.LimitExceeded, "more than %d backend requests in flight", c.s.env.limits.MaxPendingRequests)
	}
	be, req, err := c.buildOrigin(streaming)
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
	log := c.s.logger()
	go func() {
		defer c.s.wg.Done()
		defer close(p.done)
		p.resp, p.err = be.pool.Do(ctx, req, be.timeouts)
		if p.err != nil {
			log.Info("backend request failed", "backend", be.name, "err", p.err)
		}
	}()
	return c.putU32(c.u32(pendingOut), c.s.pending.add(p))
}

// pendingPoll: is_done 0 leaves the request pending; when done the
// handle is consumed and the response (or error) delivered.
func (c *call) pendingPoll(detailArg, doneOut, respOut, bodyOut int) error {
	p, err := c.s.pending.get(c.u32(0))
	if err != nil {
		return err
	}
	for _, o := range []int{doneOut, respOut, bodyOut} {
		if err := c.checkOut(c.u32(o), 4, 4); err != nil {
			return err
		}
	}
	if detailArg >= 0 {
		if err := c.checkOut(c.u32(detailArg), abi.SendErrDetailSize, 4); err != nil {
			return err
		}
	}
	if !p.isDone() {
		c.putU32(c.u32(respOut), abi.NoHandle)
		c.putU32(c.u32(bodyOut), abi.NoHandle)
		return c.putU32(c.u32(doneOut), 0)
	}
	if err := c.putU32(c.u32(doneOut), 1); err != nil {
		return err
	}
	return c.deliver(p, detailArg, respOut, bodyOut)
}

func (c *call) pendingWait(detailArg, respOut, bodyOut int) error {
	p, err := c.s.pending.get(c.u32(0))
	if err != nil {
		return err
	}
	for _, o := range []int{respOut, bodyOut} {
		if err := c.checkOut(c.u32(o), 4, 4); err != nil {
			return err
		}
	}
	if detailArg >= 0 {
		if err := c.checkOut(c.u32(detailArg), abi.SendErrDetailSize, 4); err != nil {
			return err
		}
	}
	select {
	case <-p.done:
	case <-c.ctx.Done():
		return statusErr(abi.Error, "sandbox ended while waiting: %v", c.ctx.Err())
	}
	return c.deliver(p, detailArg, respOut, bodyOut)
}

func (c *call) deliver(p *pendingRequest, detailArg, respOut, bodyOut int) error {
	c.s.pending.remove(c.u32(0))
	c.s.pendingOpen--
	if detailArg >= 0 {
		c.putSendDetail(c.u32(detailArg), p.err)
	}
	if p.err != nil {
		c.putU32(c.u32(respOut), abi.NoHandle)
		c.putU32(c.u32(bodyOut), abi.NoHandle)
		return statusErr(abi.Error, "backend request: %v", p.err)
	}
	return c.putResponse(p.resp, c.u32(respOut), c.u32(bodyOut))
}
