//go:build wasip1

package guestsdk

// Tests of the raw bindings against a real host: they run as a wasip1
// test binary under `edgehost run` (for TinyGo: `tinygo test
// -target=<target inheriting wasip1 with "emulator": "edgehost run {}">`,
// see README.md; for Go: GOOS=wasip1 GOARCH=wasm go test -exec "edgehost
// run"). Between them they call every binding of hostcalls_gen_wasip1.go, so
// the test binary imports all of them (TestWasmBuilds checks that).

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/edgehost/edgehost/abi"
)

// badHandle is a handle no host hands out in a test this short.
const badHandle = 0xFFFF_FFFE

// TestBindingsAnswerBadInput calls each binding with an input the ABI
// rejects (an unknown handle or name, an unknown mask bit) and checks the
// host answers the status abi/README.md gives, instead of trapping.
func TestBindingsAnswerBadInput(t *testing.T) {
	var out, out2 uint32
	var cursor int64
	buf := make([]byte, 64)
	b, n := bytesPtr(buf), uint32(len(buf))
	o, o2, c := unsafe.Pointer(&out), unsafe.Pointer(&out2), unsafe.Pointer(&cursor)
	name := "no-such-name"
	np, nl := strPtr(name), uint32(len(name))
	var detail [8]uint32
	d := unsafe.Pointer(&detail[0])

	type tc struct {
		name string
		call func() uint32
		want abi.Status // 0xFFFF: any status but ok
	}
	const notOK abi.Status = 0xFFFF
	tests := []tc{
		{"fastly_abi.init(version 0)", func() uint32 { return abiInit(0) }, abi.Error},
		{"fastly_http_body.append", func() uint32 { return bodyAppend(badHandle, badHandle) }, abi.Badf},
		{"fastly_http_body.read", func() uint32 { return bodyRead(badHandle, b, n, o) }, abi.Badf},
		{"fastly_http_body.write", func() uint32 { return bodyWrite(badHandle, b, n, abi.BodyWriteBack, o) }, abi.Badf},
		{"fastly_http_body.close", func() uint32 { return bodyClose(badHandle) }, abi.Badf},
		{"fastly_http_body.abandon", func() uint32 { return bodyAbandon(badHandle) }, abi.Badf},
		{"fastly_log.endpoint_get(stdout)", func() uint32 { return logEndpointGet(strPtr("stdout"), 6, o) }, abi.Inval},
		{"fastly_log.write", func() uint32 { return logWrite(badHandle, b, n, o) }, abi.Badf},
		{"fastly_http_downstream.next_request(reserved bit)", func() uint32 { return downstreamNextRequest(1, nil, o) }, notOK},
		{"fastly_http_downstream.next_request_wait", func() uint32 { return downstreamNextRequestWait(badHandle, o, o2) }, abi.Badf},
		{"fastly_http_req.close", func() uint32 { return reqClose(badHandle) }, abi.Badf},
		{"fastly_http_req.method_get", func() uint32 { return reqMethodGet(badHandle, b, n, o) }, abi.Badf},
		{"fastly_http_req.method_set", func() uint32 { return reqMethodSet(badHandle, strPtr("GET"), 3) }, abi.Badf},
		{"fastly_http_req.uri_get", func() uint32 { return reqURIGet(badHandle, b, n, o) }, abi.Badf},
		{"fastly_http_req.uri_set", func() uint32 { return reqURISet(badHandle, strPtr("/"), 1) }, abi.Badf},
		{"fastly_http_req.header_names_get", func() uint32 { return reqHeaderNamesGet(badHandle, b, n, 0, c, o) }, abi.Badf},
		{"fastly_http_req.header_values_get", func() uint32 { return reqHeaderValuesGet(badHandle, strPtr("a"), 1, b, n, 0, c, o) }, abi.Badf},
		{"fastly_http_req.header_append", func() uint32 { return reqHeaderAppend(badHandle, strPtr("a"), 1, strPtr("b"), 1) }, abi.Badf},
		{"fastly_http_req.send_v2", func() uint32 { return reqSendV2(badHandle, badHandle, np, nl, d, o, o2) }, abi.Badf},
		{"fastly_http_req.send_async", func() uint32 { return reqSendAsync(badHandle, badHandle, np, nl, o) }, abi.Badf},
		{"fastly_http_req.pending_req_wait_v2", func() uint32 { return reqPendingReqWaitV2(badHandle, d, o, o2) }, abi.Badf},
		{"fastly_http_req.register_dynamic_backend(unknown mask bit)", func() uint32 {
			var cfg [abi.CfgSize / 4]uint32
			return reqRegisterDynamicBackend(np, nl, strPtr("127.0.0.1:1"), 11, 1<<31, unsafe.Pointer(&cfg[0]))
		}, abi.Inval},
		{"fastly_http_req.cache_override_v2_set", func() uint32 { return reqCacheOverrideV2Set(badHandle, 1, 0, 0, np, nl) }, abi.Badf},
		{"fastly_purge.purge_surrogate_key(unknown mask bit)", func() uint32 {
			var opts [3]uint32
			return purgePurgeSurrogateKey(np, nl, 1<<31, unsafe.Pointer(&opts[0]))
		}, abi.Inval},
		{"fastly_http_resp.close", func() uint32 { return respClose(badHandle) }, abi.Badf},
		{"fastly_http_resp.status_get", func() uint32 { return respStatusGet(badHandle, o) }, abi.Badf},
		{"fastly_http_resp.status_set", func() uint32 { return respStatusSet(badHandle, 200) }, abi.Badf},
		{"fastly_http_resp.header_names_get", func() uint32 { return respHeaderNamesGet(badHandle, b, n, 0, c, o) }, abi.Badf},
		{"fastly_http_resp.header_values_get", func() uint32 { return respHeaderValuesGet(badHandle, strPtr("a"), 1, b, n, 0, c, o) }, abi.Badf},
		{"fastly_http_resp.header_append", func() uint32 { return respHeaderAppend(badHandle, strPtr("a"), 1, strPtr("b"), 1) }, abi.Badf},
		{"fastly_http_resp.send_downstream", func() uint32 { return respSendDownstream(badHandle, badHandle, 0) }, notOK}, // unsupported without a downstream request,
		{"fastly_dictionary.open", func() uint32 { return dictionaryOpen(np, nl, o) }, abi.Badf},
		{"fastly_dictionary.get", func() uint32 { return dictionaryGet(badHandle, np, nl, b, n, o) }, abi.Badf},
		{"fastly_config_store.open", func() uint32 { return configStoreOpen(np, nl, o) }, abi.Badf},
		{"fastly_config_store.get", func() uint32 { return configStoreGet(badHandle, np, nl, b, n, o) }, abi.Badf},
		{"fastly_backend.is_healthy", func() uint32 { return backendIsHealthy(np, nl, o) }, abi.Inval},
		{"fastly_backend.is_dynamic", func() uint32 { return backendIsDynamic(np, nl, o) }, abi.Inval},
		{"fastly_backend.is_ssl", func() uint32 { return backendIsSSL(np, nl, o) }, abi.Inval},
		{"fastly_backend.get_host", func() uint32 { return backendGetHost(np, nl, b, n, o) }, abi.Inval},
		{"fastly_backend.get_override_host", func() uint32 { return backendGetOverrideHost(np, nl, b, n, o) }, abi.Inval},
		{"fastly_backend.get_port", func() uint32 { return backendGetPort(np, nl, o) }, abi.Inval},
		{"fastly_backend.get_connect_timeout_ms", func() uint32 { return backendGetConnectTimeoutMs(np, nl, o) }, abi.Inval},
		{"fastly_backend.get_first_byte_timeout_ms", func() uint32 { return backendGetFirstByteTimeoutMs(np, nl, o) }, abi.Inval},
		{"fastly_backend.get_between_bytes_timeout_ms", func() uint32 { return backendGetBetweenBytesTimeoutMs(np, nl, o) }, abi.Inval},
		{"fastly_backend.get_ssl_min_version", func() uint32 { return backendGetSSLMinVersion(np, nl, o) }, abi.Inval},
		{"fastly_backend.get_ssl_max_version", func() uint32 { return backendGetSSLMaxVersion(np, nl, o) }, abi.Inval},
		{"fastly_backend.get_http_keepalive_time", func() uint32 { return backendGetHTTPKeepaliveTime(np, nl, o) }, abi.Inval},
		{"fastly_backend.get_tcp_keepalive_enable", func() uint32 { return backendGetTCPKeepaliveEnable(np, nl, o) }, abi.Inval},
		{"fastly_backend.get_tcp_keepalive_interval", func() uint32 { return backendGetTCPKeepaliveInterval(np, nl, o) }, abi.Inval},
		{"fastly_backend.get_tcp_keepalive_probes", func() uint32 { return backendGetTCPKeepaliveProbes(np, nl, o) }, abi.Inval},
		{"fastly_backend.get_tcp_keepalive_time", func() uint32 { return backendGetTCPKeepaliveTime(np, nl, o) }, abi.Inval},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := abi.Status(tc.call())
			if tc.want == notOK && st == abi.OK || tc.want != notOK && st != tc.want {
				want := tc.want.String()
				if tc.want == notOK {
					want = "anything but ok"
				}
				t.Errorf("status %v, want %s", st, want)
			}
		})
	}
}

// TestInitAndExists: the calls a guest makes that succeed on any host.
func TestInitAndExists(t *testing.T) {
	if st := abi.Status(abiInit(abi.Version)); st != abi.OK {
		t.Errorf("fastly_abi.init(%d) = %v", abi.Version, st)
	}
	ok, err := BackendByName("no-such-backend").Exists()
	if err != nil || ok {
		t.Errorf("Exists() of an unknown backend = %v, %v; want false, nil", ok, err)
	}
	if _, err := OpenConfigStore("no-such-store"); !errors.Is(err, ErrStoreNotFound) {
		t.Errorf("OpenConfigStore(unknown) = %v, want ErrStoreNotFound", err)
	}
	if _, err := OpenDictionary("no-such-dictionary"); !errors.Is(err, ErrStoreNotFound) {
		t.Errorf("OpenDictionary(unknown) = %v, want ErrStoreNotFound", err)
	}
	// Under `edgehost run` the guest may or may not be given a downstream
	// request; when it is, its method reads back.
	var req, body uint32
	switch st := abi.Status(reqBodyDownstreamGet(unsafe.Pointer(&req), unsafe.Pointer(&body))); st {
	case abi.OK:
		r, err := requestFromHandles(req, body)
		if err != nil || r.Method == "" {
			t.Errorf("downstream request: %+v, %v", r, err)
		}
	case abi.Unsupported:
	default:
		t.Errorf("fastly_http_req.body_downstream_get = %v, want ok or unsupported", st)
	}
}

// TestBodyRoundTrip writes two host bodies, appends one to the other and
// reads the result back in small chunks.
func TestBodyRoundTrip(t *testing.T) {
	a, err := newBody()
	if err != nil {
		t.Fatal(err)
	}
	b, err := newBody()
	if err != nil {
		t.Fatal(err)
	}
	first := strings.Repeat("0123456789", 500)
	if n, err := writeBody(a, []byte(first)); err != nil || n != len(first) {
		t.Fatalf("write: %d, %v", n, err)
	}
	if _, err := writeBody(b, []byte("|tail")); err != nil {
		t.Fatal(err)
	}
	if err := statusErr("fastly_http_body.append", bodyAppend(a, b)); err != nil {
		t.Fatal(err)
	}
	var got strings.Builder
	hb := &hostBody{h: a}
	chunk := make([]byte, 333)
	for {
		n, err := hb.Read(chunk)
		got.Write(chunk[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if want := first + "|tail"; got.String() != want {
		t.Fatalf("read back %d bytes, want %d", got.Len(), len(want))
	}
	if err := hb.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	c, err := newBody()
	if err != nil {
		t.Fatal(err)
	}
	if err := statusErr("fastly_http_body.abandon", bodyAbandon(c)); err != nil {
		t.Errorf("abandon: %v", err)
	}
}

// TestRequestRoundTrip builds a host request from a Request and reads it
// back: method, URI and every header value in order.
func TestRequestRoundTrip(t *testing.T) {
	r, err := NewRequest("PUT", "http://example.test/a/b?c=d", nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Add("X-Many", "one")
	r.Header.Add("X-Many", "two")
	r.Header.Set("X-Long", strings.Repeat("v", 3000)) // past the first buffer
	req, body, err := r.toHost()
	if err != nil {
		t.Fatal(err)
	}
	back, err := requestFromHandles(req, body)
	if err != nil {
		t.Fatal(err)
	}
	if back.Method != "PUT" || back.URL.String() != "http://example.test/a/b?c=d" {
		t.Errorf("read back %s %s", back.Method, back.URL)
	}
	if got := back.Header.Values("X-Many"); len(got) != 2 || got[0] != "one" || got[1] != "two" {
		t.Errorf("X-Many = %q", got)
	}
	if got := back.Header.Get("X-Long"); len(got) != 3000 {
		t.Errorf("X-Long has %d bytes, want 3000", len(got))
	}
	if err := statusErr("fastly_http_req.close", reqClose(req)); err != nil {
		t.Errorf("close: %v", err)
	}
}

// TestResponseRoundTrip sets a host response's status and headers and
// reads them back.
func TestResponseRoundTrip(t *testing.T) {
	var resp uint32
	if err := statusErr("fastly_http_resp.new", respNew(unsafe.Pointer(&resp))); err != nil {
		t.Fatal(err)
	}
	if err := statusErr("fastly_http_resp.status_set", respStatusSet(resp, 418)); err != nil {
		t.Fatal(err)
	}
	if err := writeHeaders(respKind, resp, Header{"Content-Type": {"text/plain"}, "X-A": {"1", "2"}}); err != nil {
		t.Fatal(err)
	}
	body, err := newBody()
	if err != nil {
		t.Fatal(err)
	}
	got, err := responseFromHost(resp, body) // closes resp
	if err != nil {
		t.Fatal(err)
	}
	if got.StatusCode != 418 || got.Header.Get("Content-Type") != "text/plain" || len(got.Header.Values("X-A")) != 2 {
		t.Errorf("read back %d %v", got.StatusCode, got.Header)
	}
	got.Body.Close()
}

// TestDynamicBackendReadBack registers a dynamic backend with options and
// reads every setting back through the fastly_backend getters.
func TestDynamicBackendReadBack(t *testing.T) {
	opts := BackendOptions{
		HostOverride:         "origin.test",
		ConnectTimeout:       1500 * time.Millisecond,
		FirstByteTimeout:     7 * time.Second,
		BetweenBytesTimeout:  3 * time.Second,
		HTTPKeepaliveTime:    30 * time.Second,
		TCPKeepalive:         On,
		TCPKeepaliveTime:     60 * time.Second,
		TCPKeepaliveInterval: 10 * time.Second,
		TCPKeepaliveProbes:   5,
	}
	// A documentation address (TEST-NET-3): registered and read back, never
	// dialled, so the default backend policy (public addresses) admits it.
	b, err := RegisterDynamicBackend("readback", "203.0.113.10:8081", opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := RegisterDynamicBackend("readback", "203.0.113.10:8081", opts); !errors.Is(err, ErrBackendExists) {
		t.Errorf("second registration: %v, want ErrBackendExists", err)
	}
	check := func(what string, got, want any, err error) {
		t.Helper()
		if err != nil || got != want {
			t.Errorf("%s = %v, %v; want %v", what, got, err, want)
		}
	}
	exists, err := b.Exists()
	check("Exists", exists, true, err)
	dyn, err := b.IsDynamic()
	check("IsDynamic", dyn, true, err)
	ssl, err := b.IsSSL()
	check("IsSSL", ssl, false, err)
	_, err = b.IsHealthy()
	check("IsHealthy error", err, nil, nil)
	host, err := b.Host()
	check("Host", host, "203.0.113.10", err)
	oh, err := b.OverrideHost()
	check("OverrideHost", oh, "origin.test", err)
	port, err := b.Port()
	check("Port", port, 8081, err)
	ct, err := b.ConnectTimeout()
	check("ConnectTimeout", ct, opts.ConnectTimeout, err)
	fb, err := b.FirstByteTimeout()
	check("FirstByteTimeout", fb, opts.FirstByteTimeout, err)
	bb, err := b.BetweenBytesTimeout()
	check("BetweenBytesTimeout", bb, opts.BetweenBytesTimeout, err)
	_, err = b.SSLMinVersion()
	check("SSLMinVersion error", err, nil, nil)
	_, err = b.SSLMaxVersion()
	check("SSLMaxVersion error", err, nil, nil)
	hk, err := b.HTTPKeepaliveTime()
	check("HTTPKeepaliveTime", hk, opts.HTTPKeepaliveTime, err)
	tk, err := b.TCPKeepaliveEnabled()
	check("TCPKeepaliveEnabled", tk, true, err)
	tt, err := b.TCPKeepaliveTime()
	check("TCPKeepaliveTime", tt, opts.TCPKeepaliveTime, err)
	ti, err := b.TCPKeepaliveInterval()
	check("TCPKeepaliveInterval", ti, opts.TCPKeepaliveInterval, err)
	tp, err := b.TCPKeepaliveProbes()
	check("TCPKeepaliveProbes", tp, 5, err)
}

// TestLogEndpoint opens a log endpoint and writes a line to it.
func TestLogEndpoint(t *testing.T) {
	var h uint32
	name := "guestsdk-test"
	if err := statusErr("fastly_log.endpoint_get", logEndpointGet(strPtr(name), uint32(len(name)), unsafe.Pointer(&h))); err != nil {
		t.Fatal(err)
	}
	line := []byte("a line from guestsdk's wasip1 tests")
	var n uint32
	if err := statusErr("fastly_log.write", logWrite(h, bytesPtr(line), uint32(len(line)), unsafe.Pointer(&n))); err != nil || n != uint32(len(line)) {
		t.Errorf("fastly_log.write: %d bytes, %v", n, err)
	}
}
