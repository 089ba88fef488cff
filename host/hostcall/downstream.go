package hostcall

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"

	"github.com/edgehost/edgehost/abi"
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
	streamed  *body  // the open streaming response body, if any
	streamedH uint32 // its handle
}

func newDownstream(s *Session, d *Downstream) *downstream {
	return &downstream{s: s, d: d}
}

// takeRequest hands the downstream request and body to the guest; a
// second call returns the same request handle with an empty body.
func (d *downstream) takeRequest() (uint32, uint32, error) {
	if d.taken {
		return d.reqH, d.s.bodies.add(newBody(d.s)), nil
	}
	d.taken = true
	r := d.d.Request
	req := &request{
		method:  r.Method,
		uri:     absoluteURI(r),
		version: versionCode(r.ProtoMajor, r.ProtoMinor),
		hdr:     headerFrom(r.Header),
	}
	if r.Host != "" {
		req.hdr.set("host", []string{r.Host})
	}
	d.reqH = d.s.reqs.add(req)
	return d.reqH, d.s.bodies.add(newStreamBody(d.s, r.Body, r.ContentLength)), nil
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

// hopHeaders are never copied onto the downstream response: the host owns
// framing and connection management.
var hopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade", "Te", "Trailer", "Content-Length"}

// send writes the response head and, unless streaming, the whole body
// (read through, not buffered). Streaming keeps the body handle open; what
// the guest writes to it goes to the client at once.
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
	d.s.resps.remove(rh)
	d.sent = true
	d.status = resp.status
	w := d.d.Writer
	h := w.Header()
	for k, vs := range resp.hdr.httpHeader() {
		h[k] = vs
	}
	for _, k := range hopHeaders {
		h.Del(k)
	}
	if resp.noKeepalive {
		h.Set("Connection", "close")
	}
	if streaming {
		w.WriteHeader(resp.status)
		if b == nil {
			return nil
		}
		rc := http.NewResponseController(w)
		fw := flushWriter{w: w, rc: rc}
		r, _ := b.detach()
		_, err := io.Copy(fw, r)
		r.Close()
		if err != nil {
			d.aborted = true
			return statusErr(abi.Error, "write downstream: %v", err)
		}
		_ = rc.Flush()
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
		h.Set("Content-Length", "0")
		w.WriteHeader(resp.status)
		return nil
	}
	d.s.bodies.remove(bh)
	r, n := b.detach()
	defer r.Close()
	if n >= 0 {
		h.Set("Content-Length", strconv.FormatInt(n, 10))
	}
	w.WriteHeader(resp.status)
	if _, err := io.Copy(w, r); err != nil {
		d.aborted = true
		return statusErr(abi.Error, "write downstream: %v", err)
	}
	return nil
}

// flushWriter flushes every write, so a streamed body reaches the client
// as the guest writes it.
type flushWriter struct {
	w  io.Writer
	rc *http.ResponseController
}

func (f flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if err == nil {
		err = f.rc.Flush()
	}
	return n, err
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
	if d.sent {
		return Outcome{Sent: true, Status: d.status, Aborted: d.aborted}
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
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	d.d.Writer.WriteHeader(errStatus)
	fmt.Fprintf(d.d.Writer, "%d %s: %s (request id %s)\n", errStatus, http.StatusText(errStatus), msg, s.id)
	return Outcome{Status: errStatus}
}

func ipBytes(ip net.IP) []byte {
	if v4 := ip.To4(); v4 != nil {
		return v4
	}
	return ip.To16()
}

func downstreamImpls() []impl {
	// The client/server address getters exist twice in the ABI: in
	// fastly_http_req without a request handle, and in
	// fastly_http_downstream with one. Both share these bodies.
	down := func(c *call) (*downstream, error) {
		if c.s.down == nil {
			return nil, statusErr(abi.None, "this sandbox has no downstream client")
		}
		return c.s.down, nil
	}
	checkReq := func(c *call) error {
		d, err := down(c)
		if err != nil {
			return err
		}
		if !d.taken || c.u32(0) != d.reqH {
			return statusErr(abi.Badf, "handle %d is not the downstream request", c.u32(0))
		}
		return nil
	}
	ipGetter := func(client bool, arg int, withReq bool) func(c *call) error {
		return func(c *call) error {
			if withReq {
				if err := checkReq(c); err != nil {
					return err
				}
			}
			d, err := down(c)
			if err != nil {
				return err
			}
			ip := d.d.ServerIP
			if client {
				ip = d.d.ClientIP
			}
			if ip == nil {
				return errNone
			}
			b := ipBytes(ip)
			if err := c.checkOut(c.u32(arg+1), 4, 4); err != nil {
				return err
			}
			if !c.mem.Write(c.u32(arg), b) {
				return statusErr(abi.Inval, "address buffer outside linear memory")
			}
			return c.putU32(c.u32(arg+1), uint32(len(b)))
		}
	}
	reqID := func(arg int, withReq bool) func(c *call) error {
		return func(c *call) error {
			if withReq {
				if err := checkReq(c); err != nil {
					return err
				}
			}
			if _, err := down(c); err != nil {
				return err
			}
			return c.putBuf(c.u32(arg), c.u32(arg+1), c.u32(arg+2), []byte(c.s.id))
		}
	}
	// Plain HTTP: no TLS facts, none.
	noTLS := func(withReq bool) func(c *call) error {
		return func(c *call) error {
			if withReq {
				if err := checkReq(c); err != nil {
					return err
				}
			}
			return statusErr(abi.None, "downstream connection is not TLS")
		}
	}
	rq, dn := abi.ModuleHTTPReq, abi.ModuleHTTPDownstream
	impls := []impl{
		{rq, "downstream_client_ip_addr", ipGetter(true, 0, false)},
		{rq, "downstream_server_ip_addr", ipGetter(false, 0, false)},
		{rq, "downstream_client_request_id", reqID(0, false)},
		{dn, "downstream_client_ip_addr", ipGetter(true, 1, true)},
		{dn, "downstream_server_ip_addr", ipGetter(false, 1, true)},
		{dn, "downstream_client_request_id", reqID(1, true)},
		{dn, "next_request", nextRequest},
		{dn, "next_request_wait", nextRequestWait},
		{dn, "next_request_abandon", func(c *call) error { _, err := c.s.promises.remove(c.u32(0)); return err }},
	}
	for _, name := range []string{"downstream_tls_cipher_openssl_name", "downstream_tls_protocol", "downstream_tls_client_hello",
		"downstream_tls_raw_client_certificate", "downstream_tls_client_cert_verify_result", "downstream_tls_ja3_md5"} {
		impls = append(impls, impl{rq, name, noTLS(false)}, impl{dn, name, noTLS(true)})
	}
	impls = append(impls, impl{dn, "downstream_tls_client_servername", noTLS(true)})
	return impls
}
