//go:build !wasip1

package guestsdk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"reflect"
	"runtime"
	"sort"
	"strings"
	"testing"
	"testing/iotest"
	"unsafe"

	"github.com/edgehost/edgehost/abi"
)

// downstream returns what the fake host sent downstream: status, header
// fields and body, and whether the body was closed.
func downstream(t *testing.T, f *fakeHost) (*fakeMsg, string, bool) {
	t.Helper()
	if f.down == nil {
		t.Fatal("no response was sent downstream")
	}
	if f.down.streaming != 1 {
		t.Errorf("send_downstream streaming = %d, want 1", f.down.streaming)
	}
	b := f.bodies[f.down.body]
	return f.down.resp, string(b.data), b.closed
}

func TestServeHello(t *testing.T) {
	f := installFake(t)
	f.setDownstream("GET", "http://example.com/x?y=1", []fakeField{{"host", "example.com"}, {"user-agent", "curl/8"}}, "")
	serveErr := serve(context.Background(), HandlerFunc(func(ctx context.Context, w ResponseWriter, r *Request) {
		w.Header().Set("content-type", "text/plain")
		fmt.Fprintf(w, "method: %s\npath: %s\nquery: %s\nuser-agent: %s\n", r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("User-Agent"))
		io.WriteString(w, "end\n")
	}))
	if serveErr != nil {
		t.Fatal(serveErr)
	}
	resp, body, closed := downstream(t, f)
	if resp.status != 200 || !reflect.DeepEqual(resp.hdr, []fakeField{{"Content-Type", "text/plain"}}) {
		t.Errorf("response head = %d %v", resp.status, resp.hdr)
	}
	if want := "method: GET\npath: /x\nquery: y=1\nuser-agent: curl/8\nend\n"; body != want {
		t.Errorf("body = %q, want %q", body, want)
	}
	if !closed {
		t.Error("response body not closed after the handler returned")
	}
}

func TestServeSendsResponseWhenHandlerWritesNothing(t *testing.T) {
	f := installFake(t)
	f.setDownstream("POST", "http://example.com/", nil, "ignored")
	if err := serve(context.Background(), HandlerFunc(func(ctx context.Context, w ResponseWriter, r *Request) {
		w.Header().Set("X-A", "1")
	})); err != nil {
		t.Fatal(err)
	}
	resp, body, closed := downstream(t, f)
	if resp.status != 200 || body != "" || !closed || len(resp.hdr) != 1 {
		t.Errorf("got %d %v %q closed=%v", resp.status, resp.hdr, body, closed)
	}
}

func TestWriteHeaderSendsHeadOnce(t *testing.T) {
	f := installFake(t)
	f.setDownstream("GET", "http://example.com/", nil, "")
	if err := serve(context.Background(), HandlerFunc(func(ctx context.Context, w ResponseWriter, r *Request) {
		w.WriteHeader(404)
		w.Header().Set("X-Late", "ignored")
		w.WriteHeader(500)
		w.Flush()
		io.WriteString(w, "gone")
	})); err != nil {
		t.Fatal(err)
	}
	resp, body, _ := downstream(t, f)
	if resp.status != 404 || len(resp.hdr) != 0 || body != "gone" {
		t.Errorf("got %d %v %q", resp.status, resp.hdr, body)
	}
	if n := f.calls["fastly_http_resp.send_downstream"]; n != 1 {
		t.Errorf("send_downstream called %d times", n)
	}
}

func TestDownstreamHeaderPaging(t *testing.T) {
	f := installFake(t)
	var hdr []fakeField
	want := Header{}
	// 60 names of about 40 bytes need several 1 KiB pages of names.
	for i := 0; i < 60; i++ {
		name := fmt.Sprintf("x-header-number-%02d-%s", i, strings.Repeat("p", 20))
		hdr = append(hdr, fakeField{name, fmt.Sprint(i)})
		want[canonicalKey(name)] = []string{fmt.Sprint(i)}
	}
	// One value longer than the first buffer: buflen, then a retry.
	long := strings.Repeat("v", 3*initialBufSize)
	hdr = append(hdr, fakeField{"x-long", long})
	want["X-Long"] = []string{long}
	// Many values of one name, paged too.
	for i := 0; i < 200; i++ {
		v := fmt.Sprintf("cookie-value-%03d", i)
		hdr = append(hdr, fakeField{"cookie", v})
		want["Cookie"] = append(want["Cookie"], v)
	}
	// A name longer than the first buffer.
	longName := "x-" + strings.Repeat("n", 2*initialBufSize)
	hdr = append(hdr, fakeField{longName, "ok"})
	want[canonicalKey(longName)] = []string{"ok"}
	f.setDownstream("GET", "http://example.com/", hdr, "")

	r, err := downstreamRequest()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(r.Header, want) {
		t.Errorf("headers differ:\n got %d names\nwant %d names", len(r.Header), len(want))
		for k, v := range want {
			if !reflect.DeepEqual(r.Header[k], v) {
				t.Errorf("%s: got %d values, want %d", k, len(r.Header[k]), len(v))
			}
		}
	}
	if n := f.calls["fastly_http_req.header_names_get"]; n < 3 {
		t.Errorf("header_names_get called %d times, want several pages", n)
	}
	if n := f.calls["fastly_http_req.header_values_get"]; n < 62+2 {
		t.Errorf("header_values_get called %d times, want a buflen retry and several cookie pages", n)
	}
}

func TestGetStringBuflenRetry(t *testing.T) {
	installFake(t)
	value := strings.Repeat("z", 5000)
	var offered []uint32
	got, err := getString("op", func(buf unsafe.Pointer, n uint32, nw unsafe.Pointer) uint32 {
		offered = append(offered, n)
		return uint32(writeOut(value, buf, n, nw))
	})
	if err != nil || got != value {
		t.Fatalf("getString = %d bytes, %v", len(got), err)
	}
	if !reflect.DeepEqual(offered, []uint32{initialBufSize, 5000}) {
		t.Errorf("buffer sizes offered = %v, want [%d 5000]", offered, initialBufSize)
	}

	// A host that keeps asking for less than it was offered is not looped on forever.
	calls := 0
	_, err = getString("op", func(buf unsafe.Pointer, n uint32, nw unsafe.Pointer) uint32 {
		calls++
		putU32(nw, 1)
		return uint32(abi.Buflen)
	})
	if err == nil || calls > 20 {
		t.Errorf("endless buflen: err = %v after %d calls", err, calls)
	}
}

func TestProxySend(t *testing.T) {
	f := installFake(t)
	f.backends["origin"] = &fakeBackend{host: "127.0.0.1", port: 8080}
	f.maxIO = 7 // the host moves few bytes per call: reads and writes must loop
	f.origin = func(backend string, req *fakeMsg, body []byte) fakeResult {
		return fakeResult{
			resp: &fakeMsg{status: 201, hdr: []fakeField{{"content-type", "text/plain"}, {"set-cookie", "a=1"}, {"set-cookie", "b=2"}}},
			body: []byte("origin says " + req.method + " " + req.uri + " " + string(body)),
		}
	}
	f.setDownstream("PUT", "http://example.com/p?q=1", []fakeField{{"host", "example.com"}, {"x-in", "1"}}, "request body")

	if err := serve(context.Background(), HandlerFunc(func(ctx context.Context, w ResponseWriter, r *Request) {
		resp, err := r.Send(ctx, "origin")
		if err != nil {
			t.Errorf("Send: %v", err)
			return
		}
		w.Header().Set("X-Edgehost-Proxy", "1")
		if err := CopyResponse(w, resp); err != nil {
			t.Errorf("CopyResponse: %v", err)
		}
	})); err != nil {
		t.Fatal(err)
	}
	if len(f.sent) != 1 {
		t.Fatalf("origin got %d requests", len(f.sent))
	}
	s := f.sent[0]
	if s.req.method != "PUT" || s.req.uri != "http://example.com/p?q=1" || string(s.body) != "request body" {
		t.Errorf("origin got %s %s %q", s.req.method, s.req.uri, s.body)
	}
	if !equalFoldFields(s.req.hdr, []fakeField{{"Host", "example.com"}, {"X-In", "1"}}) {
		t.Errorf("origin got headers %v", s.req.hdr)
	}
	// The request was sent as the host's downstream request, not copied.
	if n := f.calls["fastly_http_req.new"]; n != 0 {
		t.Errorf("fastly_http_req.new called %d times for an unchanged downstream request", n)
	}
	// The downstream body went to the host as a handle, unread.
	if n := f.calls["fastly_http_body.read"] + f.calls["fastly_http_body.write"]; n != 0 {
		t.Errorf("bodies went through the guest: %d read/write calls", n)
	}
	// The backend response body became the downstream body as it was
	// (send_downstream on its handle): no new body, nothing appended.
	if n, m := f.calls["fastly_http_body.new"], f.calls["fastly_http_body.append"]; n != 0 || m != 0 {
		t.Errorf("body new called %d times and append %d, want the backend body sent as it is", n, m)
	}
	resp, body, closed := downstream(t, f)
	if resp.status != 201 || body != "origin says PUT http://example.com/p?q=1 request body" || !closed {
		t.Errorf("downstream got %d %q closed=%v", resp.status, body, closed)
	}
	// The backend response itself went downstream (its names as the
	// origin spelt them: the host treats names case-insensitively), with
	// the guest's own field appended: no new response, one append.
	wantHdr := []fakeField{{"Content-Type", "text/plain"}, {"Set-Cookie", "a=1"}, {"Set-Cookie", "b=2"}, {"X-Edgehost-Proxy", "1"}}
	if !equalFoldFields(resp.hdr, wantHdr) {
		t.Errorf("downstream headers %v, want %v", resp.hdr, wantHdr)
	}
	if n, m := f.calls["fastly_http_resp.new"], f.calls["fastly_http_resp.header_append"]; n != 0 || m != 1 {
		t.Errorf("fastly_http_resp.new called %d times and header_append %d, want 0 and 1", n, m)
	}
	if len(f.resps) != 0 {
		t.Errorf("%d response handles left open", len(f.resps))
	}
}

// TestCopyResponseChanged: a backend response whose status or header the
// handler changed (in place or not), or whose body it read, is copied
// into a new response with the change, fields in name order; only an
// unchanged one is sent as it is. No response handle is left open.
func TestCopyResponseChanged(t *testing.T) {
	origin := []fakeField{{"content-type", "text/plain"}, {"set-cookie", "a=1"}, {"set-cookie", "b=2"}, {"x-o", "o"}}
	cases := []struct {
		name    string
		change  func(w ResponseWriter, r *Response)
		status  uint32
		want    []fakeField
		body    string
		forward bool
	}{
		{"unchanged", func(w ResponseWriter, r *Response) { w.Header().Set("X-O", "guest") }, 200,
			[]fakeField{{"content-type", "text/plain"}, {"set-cookie", "a=1"}, {"set-cookie", "b=2"}, {"x-o", "o"}}, "origin body", true},
		{"value changed in place", func(w ResponseWriter, r *Response) { r.Header["Set-Cookie"][1] = "c=3" }, 200,
			[]fakeField{{"Content-Type", "text/plain"}, {"Set-Cookie", "a=1"}, {"Set-Cookie", "c=3"}, {"X-O", "o"}}, "origin body", false},
		{"value added", func(w ResponseWriter, r *Response) { r.Header.Add("Set-Cookie", "c=3") }, 200,
			[]fakeField{{"Content-Type", "text/plain"}, {"Set-Cookie", "a=1"}, {"Set-Cookie", "b=2"}, {"Set-Cookie", "c=3"}, {"X-O", "o"}}, "origin body", false},
		{"values shortened", func(w ResponseWriter, r *Response) { r.Header["Set-Cookie"] = r.Header["Set-Cookie"][:1] }, 200,
			[]fakeField{{"Content-Type", "text/plain"}, {"Set-Cookie", "a=1"}, {"X-O", "o"}}, "origin body", false},
		{"values moved to another name", func(w ResponseWriter, r *Response) {
			r.Header["X-O"] = append(r.Header["Set-Cookie"][1:], r.Header["X-O"]...)
			r.Header["Set-Cookie"] = r.Header["Set-Cookie"][:1:1]
		}, 200, []fakeField{{"Content-Type", "text/plain"}, {"Set-Cookie", "a=1"}, {"X-O", "b=2"}, {"X-O", "o"}}, "origin body", false},
		{"field deleted", func(w ResponseWriter, r *Response) { r.Header.Del("X-O") }, 200,
			[]fakeField{{"Content-Type", "text/plain"}, {"Set-Cookie", "a=1"}, {"Set-Cookie", "b=2"}}, "origin body", false},
		{"field replaced", func(w ResponseWriter, r *Response) { r.Header.Del("X-O"); r.Header.Set("X-P", "p") }, 200,
			[]fakeField{{"Content-Type", "text/plain"}, {"Set-Cookie", "a=1"}, {"Set-Cookie", "b=2"}, {"X-P", "p"}}, "origin body", false},
		{"status changed", func(w ResponseWriter, r *Response) { r.StatusCode = 404 }, 404,
			[]fakeField{{"Content-Type", "text/plain"}, {"Set-Cookie", "a=1"}, {"Set-Cookie", "b=2"}, {"X-O", "o"}}, "origin body", false},
		{"body read", func(w ResponseWriter, r *Response) {
			b, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(strings.NewReader(strings.ToUpper(string(b))))
		}, 200, []fakeField{{"Content-Type", "text/plain"}, {"Set-Cookie", "a=1"}, {"Set-Cookie", "b=2"}, {"X-O", "o"}}, "ORIGIN BODY", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := installFake(t)
			f.backends["origin"] = &fakeBackend{}
			f.origin = func(string, *fakeMsg, []byte) fakeResult {
				return fakeResult{resp: &fakeMsg{status: 200, hdr: origin}, body: []byte("origin body")}
			}
			f.setDownstream("GET", "http://example.com/", nil, "")
			if err := serve(context.Background(), HandlerFunc(func(ctx context.Context, w ResponseWriter, r *Request) {
				resp, err := r.Send(ctx, "origin")
				if err != nil {
					t.Fatalf("Send: %v", err)
				}
				w.Header().Set("X-Guest", "g")
				tc.change(w, resp)
				if err := CopyResponse(w, resp); err != nil {
					t.Errorf("CopyResponse: %v", err)
				}
				// The writer's header shows what was copied into it.
				if got, want := w.Header().Values("Set-Cookie"), resp.Header["Set-Cookie"]; !reflect.DeepEqual(got, want) || w.Header().Get("X-Guest") != "g" {
					t.Errorf("w.Header() after CopyResponse: Set-Cookie = %q, want %q; X-Guest %q", got, want, w.Header().Get("X-Guest"))
				}
			})); err != nil {
				t.Fatal(err)
			}
			resp, body, closed := downstream(t, f)
			want := append(append([]fakeField(nil), tc.want...), fakeField{"X-Guest", "g"})
			if tc.forward {
				if !equalFoldFields(resp.hdr, want) {
					t.Errorf("downstream headers %v, want %v", resp.hdr, want)
				}
			} else if sort.SliceStable(want, func(i, j int) bool { return want[i].name < want[j].name }); !reflect.DeepEqual(resp.hdr, want) {
				// A copy writes the names in order.
				t.Errorf("downstream headers %v, want %v", resp.hdr, want)
			}
			if resp.status != tc.status || body != tc.body || !closed {
				t.Errorf("downstream got %d %q closed=%v, want %d %q", resp.status, body, closed, tc.status, tc.body)
			}
			if n := f.calls["fastly_http_resp.new"]; (n == 0) != tc.forward {
				t.Errorf("fastly_http_resp.new called %d times (sent as it is: %v)", n, tc.forward)
			}
			if len(f.resps) != 0 {
				t.Errorf("%d response handles left open", len(f.resps))
			}
		})
	}
}

// TestResponseHandleReleased: the backend response's handle, kept for
// CopyResponse, is closed as soon as its body is closed, read to its end
// or sent elsewhere, so that a guest making many backend requests holds
// no more handles than before.
func TestResponseHandleReleased(t *testing.T) {
	cases := []struct {
		name string
		use  func(t *testing.T, r *Response)
	}{
		{"closed", func(t *testing.T, r *Response) { r.Body.Close() }},
		{"read to the end", func(t *testing.T, r *Response) {
			if b, err := io.ReadAll(r.Body); err != nil || string(b) != "origin body" {
				t.Errorf("body %q, %v", b, err)
			}
		}},
		{"sent as a request body", func(t *testing.T, r *Response) {
			req, _ := NewRequest("POST", "http://example.com/", r.Body)
			if _, err := req.Send(context.Background(), "origin"); err != nil {
				t.Errorf("Send: %v", err)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := installFake(t)
			f.backends["origin"] = &fakeBackend{}
			f.origin = func(string, *fakeMsg, []byte) fakeResult {
				return fakeResult{resp: &fakeMsg{status: 200, hdr: []fakeField{{"x-a", "1"}}}, body: []byte("origin body")}
			}
			req, _ := NewRequest("GET", "http://example.com/", nil)
			resp, err := req.Send(context.Background(), "origin")
			if err != nil {
				t.Fatal(err)
			}
			if len(f.resps) != 1 {
				t.Fatalf("%d response handles open after Send, want 1", len(f.resps))
			}
			before := len(f.resps)
			tc.use(t, resp)
			// A second Send (the "sent as a request body" case) left its own response open.
			if got := len(f.resps) - (f.calls["fastly_http_req.send_v2"] - 1); got != before-1 {
				t.Errorf("%d response handles of the first Send open, want 0", got)
			}
		})
	}
}

func TestSendStreamsGuestBodyAndReadsResponseInChunks(t *testing.T) {
	f := installFake(t)
	f.backends["b"] = &fakeBackend{}
	f.maxIO = 1000
	reqBody := strings.Repeat("0123456789", 10000) // 100 kB
	f.origin = func(backend string, req *fakeMsg, body []byte) fakeResult {
		return fakeResult{resp: &fakeMsg{status: 200}, body: body}
	}
	req, err := NewRequest("POST", "http://origin.test/upload", strings.NewReader(reqBody))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("x-k", "v")
	resp, err := req.Send(context.Background(), "b")
	if err != nil {
		t.Fatal(err)
	}
	// The host takes at most 1000 bytes per write: the SDK must loop.
	if n := f.calls["fastly_http_body.write"]; n < len(reqBody)/1000 {
		t.Errorf("body written in %d calls, want at least %d", n, len(reqBody)/1000)
	}
	got, err := io.ReadAll(resp.Body)
	if err != nil || string(got) != reqBody {
		t.Fatalf("response body: %d bytes, %v", len(got), err)
	}
	if n := f.calls["fastly_http_body.read"]; n < len(reqBody)/1000+1 {
		t.Errorf("body read in %d calls, want at least %d (the last one reads 0 bytes)", n, len(reqBody)/1000+1)
	}
	if err := resp.Body.Close(); err != nil {
		t.Error(err)
	}
	if f.calls["fastly_http_req.send_v2"] != 1 || f.calls["fastly_http_req.send_async"] != 0 {
		t.Errorf("Send used %v", f.calls)
	}
}

func TestSendErrors(t *testing.T) {
	f := installFake(t)
	f.backends["down"] = &fakeBackend{}
	req, _ := NewRequest("GET", "http://x/", nil)
	_, err := req.Send(context.Background(), "missing")
	var se *SendError
	if !errors.Is(err, ErrBackendNotFound) || !errors.As(err, &se) || se.Backend != "missing" {
		t.Errorf("unknown backend: %v", err)
	}
	req, _ = NewRequest("GET", "http://x/", nil)
	_, err = req.Send(context.Background(), "down") // no origin: connection refused
	if !errors.As(err, &se) || se.Detail != abi.SendErrConnectionRefused || errors.Is(err, ErrBackendNotFound) {
		t.Errorf("refused: %v", err)
	}
	if !strings.Contains(err.Error(), "connection_refused") {
		t.Errorf("error text %q lacks the detail", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := req.Send(ctx, "down"); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled ctx: %v", err)
	}
}

func TestSendAsyncWait(t *testing.T) {
	f := installFake(t)
	f.backends["a"] = &fakeBackend{}
	f.backends["b"] = &fakeBackend{}
	f.origin = func(backend string, req *fakeMsg, body []byte) fakeResult {
		return fakeResult{resp: &fakeMsg{status: 200}, body: []byte(backend + req.uri)}
	}
	ctx := context.Background()
	var pending []*PendingRequest
	for _, b := range []string{"a", "b"} {
		req, _ := NewRequest("GET", "http://x/"+b, nil)
		p, err := req.SendAsync(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		pending = append(pending, p)
	}
	for i, want := range []string{"ahttp://x/a", "bhttp://x/b"} {
		resp, err := pending[i].Wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		if string(got) != want {
			t.Errorf("response %d = %q, want %q", i, got, want)
		}
	}
	if _, err := pending[0].Wait(ctx); err == nil {
		t.Error("second Wait succeeded")
	}
	if f.calls["fastly_http_req.pending_req_wait_v2"] != 2 {
		t.Errorf("calls: %v", f.calls)
	}
	req, _ := NewRequest("GET", "http://x/", nil)
	if _, err := req.SendAsync(ctx, "nope"); !errors.Is(err, ErrBackendNotFound) {
		t.Errorf("unknown backend: %v", err)
	}
}

// A copy that fails part-way abandons the response body, so the client
// sees it incomplete; a complete one closes it.
func TestCopyResponseFailureAbandonsBody(t *testing.T) {
	for _, tc := range []struct {
		name      string
		body      io.Reader
		abandoned bool
	}{
		{"complete", strings.NewReader("all of it"), false},
		{"cut short", io.MultiReader(strings.NewReader("part"), iotest.ErrReader(errors.New("origin went away"))), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := installFake(t)
			f.setDownstream("GET", "http://example.com/", nil, "")
			err := serve(context.Background(), HandlerFunc(func(ctx context.Context, w ResponseWriter, r *Request) {
				CopyResponse(w, &Response{StatusCode: 200, Header: Header{}, Body: io.NopCloser(tc.body)})
			}))
			if err != nil {
				t.Fatal(err)
			}
			b := f.bodies[f.down.body]
			if !b.closed || b.abandoned != tc.abandoned {
				t.Fatalf("body closed=%v abandoned=%v, want abandoned=%v", b.closed, b.abandoned, tc.abandoned)
			}
		})
	}
}

// TestDownstreamHeaderNamesCanonical checks that header names read from
// the host are keyed by their canonical form, with their values, and
// that a name holding a byte that is not a token character is kept as
// the host gave it.
func TestDownstreamHeaderNamesCanonical(t *testing.T) {
	tests := []struct {
		name string
		hdr  []fakeField
		want Header
	}{
		{"lower case", []fakeField{{"host", "example.com"}, {"x-forwarded-for", "1.2.3.4"}},
			Header{"Host": {"example.com"}, "X-Forwarded-For": {"1.2.3.4"}}},
		{"mixed case", []fakeField{{"CONTENT-type", "text/plain"}, {"Accept", "*/*"}, {"x-A-b", "1"}},
			Header{"Content-Type": {"text/plain"}, "Accept": {"*/*"}, "X-A-B": {"1"}}},
		{"several values", []fakeField{{"cookie", "a=1"}, {"cookie", "b=2"}},
			Header{"Cookie": {"a=1", "b=2"}}},
		{"not a token", []fakeField{{"x y", "v"}, {"host", "h"}},
			Header{"x y": {"v"}, "Host": {"h"}}},
		{"none", nil, Header{}},
		{"one name in two cases, listed once", []fakeField{{"x-a", "1"}, {"X-A", "2"}, {"host", "h"}},
			Header{"X-A": {"1", "2"}, "Host": {"h"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := installFake(t)
			f.setDownstream("GET", "http://example.com/", tc.hdr, "")
			r, err := downstreamRequest()
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(r.Header, tc.want) {
				t.Errorf("headers %v, want %v", r.Header, tc.want)
			}
		})
	}
}

// equalFoldFields compares header fields with names case-insensitively, as
// HTTP does (edgehost's host keeps names lower case).
func equalFoldFields(got, want []fakeField) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if !strings.EqualFold(got[i].name, want[i].name) || got[i].value != want[i].value {
			return false
		}
	}
	return true
}

// TestSendChangedRequest: a downstream request the handler changed (its
// method, URL or any header value, in place or not) is sent as a copy with
// the change; only an unchanged one is sent as the host's own handle, and
// only once (a send consumes it).
func TestSendChangedRequest(t *testing.T) {
	down := []fakeField{{"host", "example.com"}, {"x-in", "1"}, {"x-two", "a"}, {"x-two", "b"}}
	tests := []struct {
		name   string
		change func(r *Request)
		method string
		uri    string
		hdr    []fakeField // as the origin sees them, names compared case-insensitively
		copied bool        // sent as a copy (fastly_http_req.new)
	}{
		{"unchanged", func(r *Request) {}, "GET", "http://example.com/p?q=1",
			[]fakeField{{"Host", "example.com"}, {"X-In", "1"}, {"X-Two", "a"}, {"X-Two", "b"}}, false},
		{"method", func(r *Request) { r.Method = "POST" }, "POST", "http://example.com/p?q=1",
			[]fakeField{{"Host", "example.com"}, {"X-In", "1"}, {"X-Two", "a"}, {"X-Two", "b"}}, true},
		{"path", func(r *Request) { r.URL.Path = "/other" }, "GET", "http://example.com/other?q=1",
			[]fakeField{{"Host", "example.com"}, {"X-In", "1"}, {"X-Two", "a"}, {"X-Two", "b"}}, true},
		{"new URL", func(r *Request) { u := *r.URL; u.RawQuery = "q=2"; r.URL = &u }, "GET", "http://example.com/p?q=2",
			[]fakeField{{"Host", "example.com"}, {"X-In", "1"}, {"X-Two", "a"}, {"X-Two", "b"}}, true},
		{"set", func(r *Request) { r.Header.Set("X-In", "2") }, "GET", "http://example.com/p?q=1",
			[]fakeField{{"Host", "example.com"}, {"X-In", "2"}, {"X-Two", "a"}, {"X-Two", "b"}}, true},
		{"in place", func(r *Request) { r.Header["X-In"][0] = "3" }, "GET", "http://example.com/p?q=1",
			[]fakeField{{"Host", "example.com"}, {"X-In", "3"}, {"X-Two", "a"}, {"X-Two", "b"}}, true},
		{"value added", func(r *Request) { r.Header.Add("X-In", "4") }, "GET", "http://example.com/p?q=1",
			[]fakeField{{"Host", "example.com"}, {"X-In", "1"}, {"X-In", "4"}, {"X-Two", "a"}, {"X-Two", "b"}}, true},
		{"value removed", func(r *Request) { r.Header["X-Two"] = r.Header["X-Two"][:1] }, "GET", "http://example.com/p?q=1",
			[]fakeField{{"Host", "example.com"}, {"X-In", "1"}, {"X-Two", "a"}}, true},
		{"values swapped", func(r *Request) { r.Header["X-Two"] = []string{"b", "a"} }, "GET", "http://example.com/p?q=1",
			[]fakeField{{"Host", "example.com"}, {"X-In", "1"}, {"X-Two", "b"}, {"X-Two", "a"}}, true},
		{"deleted", func(r *Request) { r.Header.Del("X-In") }, "GET", "http://example.com/p?q=1",
			[]fakeField{{"Host", "example.com"}, {"X-Two", "a"}, {"X-Two", "b"}}, true},
		{"deleted and another added", func(r *Request) { r.Header.Del("X-In"); r.Header.Set("X-New", "1") }, "GET", "http://example.com/p?q=1",
			[]fakeField{{"Host", "example.com"}, {"X-New", "1"}, {"X-Two", "a"}, {"X-Two", "b"}}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := installFake(t)
			f.backends["origin"] = &fakeBackend{host: "127.0.0.1", port: 8080}
			f.origin = func(backend string, req *fakeMsg, body []byte) fakeResult {
				return fakeResult{resp: &fakeMsg{status: 200}}
			}
			f.setDownstream("GET", "http://example.com/p?q=1", down, "")
			if err := serve(context.Background(), HandlerFunc(func(ctx context.Context, w ResponseWriter, r *Request) {
				tc.change(r)
				for range 2 { // the second send is always a copy
					resp, err := r.Send(ctx, "origin")
					if err != nil {
						t.Errorf("Send: %v", err)
						return
					}
					resp.Body.Close()
					r.Body = nil // the first send consumed it
				}
			})); err != nil {
				t.Fatal(err)
			}
			if len(f.sent) != 2 {
				t.Fatalf("origin got %d requests, want 2", len(f.sent))
			}
			for i, s := range f.sent {
				if s.req.method != tc.method || s.req.uri != tc.uri || !equalFoldFields(s.req.hdr, tc.hdr) {
					t.Errorf("send %d: origin got %s %s %v, want %s %s %v", i, s.req.method, s.req.uri, s.req.hdr, tc.method, tc.uri, tc.hdr)
				}
			}
			want := 1
			if tc.copied {
				want = 2
			}
			if n := f.calls["fastly_http_req.new"]; n != want {
				t.Errorf("fastly_http_req.new called %d times, want %d", n, want)
			}
		})
	}
}

// TestDownstreamRequestOneBuffer: a request read in one buffer (URI and
// header block together) gives the same URL and headers as one read piece
// by piece (a URI longer than the first buffer), and each header's values
// are its own: appending to one name's values never changes another's.
func TestDownstreamRequestOneBuffer(t *testing.T) {
	hdr := []fakeField{{"accept", "*/*"}, {"cookie", "a=1"}, {"cookie", "b=2"}, {"x-empty", ""}, {"host", "example.com"}}
	want := Header{"Accept": {"*/*"}, "Cookie": {"a=1", "b=2"}, "X-Empty": {""}, "Host": {"example.com"}}
	for _, uri := range []string{
		"http://example.com/p?q=1",
		"http://example.com/" + strings.Repeat("a", 2*initialBufSize),
		"http://example.com/%7Euser",
	} {
		t.Run(fmt.Sprint(len(uri)), func(t *testing.T) {
			f := installFake(t)
			f.setDownstream("GET", uri, hdr, "")
			r, err := downstreamRequest()
			if err != nil {
				t.Fatal(err)
			}
			u, err := url.Parse(uri)
			if err != nil {
				t.Fatal(err)
			}
			if *r.URL != *u {
				t.Errorf("URL %#v, want %#v", *r.URL, *u)
			}
			if !reflect.DeepEqual(r.Header, want) {
				t.Errorf("headers %v, want %v", r.Header, want)
			}
			for name := range want {
				r.Header[name] = append(r.Header[name], "appended to "+name)
			}
			for name, vs := range want {
				if got := r.Header[name]; !reflect.DeepEqual(got, append(vs, "appended to "+name)) {
					t.Errorf("%s %q after appending to every name", name, got)
				}
			}
		})
	}
}

// TestHeaderBlockSizes reads downstream request and backend response
// header blocks of every size the one-allocation read takes (a few
// fields, seven or eight as a usual origin response has, a dozen, up to
// the getter buffer) and of sizes it leaves to the
// general read (too many values, more bytes than the buffer): each gives
// the same Header, and appending to one name's values never changes
// another's.
func TestHeaderBlockSizes(t *testing.T) {
	fields := func(n, valueLen int) []fakeField {
		var out []fakeField
		for i := 0; i < n; i++ {
			out = append(out, fakeField{fmt.Sprintf("x-field-%d", i), strings.Repeat(string(rune('a'+i%26)), valueLen)})
		}
		return out
	}
	tests := []struct {
		name string
		hdr  []fakeField
	}{
		{"none", nil},
		{"one", []fakeField{{"host", "example.com"}}},
		{"five", fields(5, 10)},
		{"seven", fields(7, 12)},
		{"eight, near 256 bytes", fields(8, 20)},
		{"nine", fields(9, 5)},
		{"fifteen", fields(15, 20)},
		{"twenty, too many strings", fields(20, 5)},
		{"one long value", []fakeField{{"host", "example.com"}, {"x-long", strings.Repeat("v", initialBufSize-200)}}},
		{"more than the buffer", []fakeField{{"host", "example.com"}, {"x-long", strings.Repeat("v", 2*initialBufSize)}}},
		{"repeated names", append(fields(3, 4), fakeField{"x-field-0", "again"}, fakeField{"x-field-1", "again"})},
	}
	for _, tc := range tests {
		want := Header{}
		for _, f := range tc.hdr {
			want.Add(f.name, f.value)
		}
		check := func(t *testing.T, what string, got Header) {
			t.Helper()
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%s headers %v, want %v", what, got, want)
			}
			for name := range want {
				got[name] = append(got[name], "appended to "+name)
			}
			for name, vs := range want {
				if g := got[name]; !reflect.DeepEqual(g, append(append([]string(nil), vs...), "appended to "+name)) {
					t.Errorf("%s %s %q after appending to every name", what, name, g)
				}
			}
		}
		t.Run(tc.name, func(t *testing.T) {
			f := installFake(t)
			f.backends["origin"] = &fakeBackend{host: "127.0.0.1", port: 8080}
			f.origin = func(backend string, req *fakeMsg, body []byte) fakeResult {
				return fakeResult{resp: &fakeMsg{status: 203, hdr: tc.hdr}, body: []byte("from the origin")}
			}
			f.setDownstream("GET", "http://example.com/p?q=1", tc.hdr, "")
			r, err := downstreamRequest()
			if err != nil {
				t.Fatal(err)
			}
			if r.Method != "GET" || r.URL.String() != "http://example.com/p?q=1" {
				t.Errorf("request %s %s", r.Method, r.URL)
			}
			// The header strings alone keep what they point into alive.
			hdr := r.Header
			r = nil
			runtime.GC()
			check(t, "request", hdr)
			req, err := NewRequest("GET", "http://example.com/", nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := req.Send(context.Background(), "origin")
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(resp.Body)
			if resp.StatusCode != 203 || string(b) != "from the origin" || err != nil {
				t.Errorf("response %d %q %v", resp.StatusCode, b, err)
			}
			hdr = resp.Header
			resp = nil
			runtime.GC()
			check(t, "response", hdr)
		})
	}
}
