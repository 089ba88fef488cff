package hostcall

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/internal/cache"
	"github.com/edgehost/edgehost/internal/pool"
)

// This file checks the ABI's conventions (abi/README.md, "Conventions") on every
// hostcall of the table at once: each spec gives arguments for a call that
// succeeds (or returns a fixed status), and each argument is then broken
// in turn: a handle unknown or of another kind is badf, a pointer or
// length outside memory is inval, a misaligned out-pointer is badalign.

// argKind says how a parameter may be broken.
type argKind int

const (
	aVal    argKind = iota // a plain value, never broken
	aHandle                // a handle of kind hk
	aIn                    // pointer of an input byte string; its length follows (aInLen)
	aInLen                 // length of the preceding aIn
	aBuf                   // pointer of an output buffer; its length follows as an aVal
	aPtr                   // pointer of a fixed-size region read or written bytewise
	aOut                   // out-pointer of size bytes, aligned to align
)

type arg struct {
	v           uint64
	kind        argKind
	hk          handleKind
	noHandleOK  bool // abi.NoHandle is a valid value here
	size, align uint32
}

type spec struct {
	module, name string
	want         abi.Status // with the valid arguments
	args         func(h *harness) []arg
}

func val(v uint64) arg { return arg{v: v} }

func (h *harness) aH(k handleKind) arg { return arg{v: uint64(h.newHandle(k)), kind: aHandle, hk: k} }

// aHdr is a request or response handle with header "x-a: 1".
func (h *harness) aHdr(k handleKind) arg {
	a := h.aH(k)
	mod := abi.ModuleHTTPReq
	if k == kindResp {
		mod = abi.ModuleHTTPResp
	}
	np, nl := h.str("x-a")
	vp, vl := h.str("v1")
	h.want(abi.OK, mod, "header_insert", a.v, np, nl, vp, vl)
	return a
}

func (h *harness) aS(s string) []arg {
	p, n := h.str(s)
	return []arg{{v: p, kind: aIn}, {v: n, kind: aInLen}}
}

func (h *harness) aB(n uint32) []arg {
	return []arg{{v: uint64(h.alloc(n)), kind: aBuf}, val(uint64(n))}
}

func (h *harness) aO(size, align uint32) arg {
	return arg{v: uint64(h.alloc(size)), kind: aOut, size: size, align: align}
}

func (h *harness) aP(size uint32) arg { return arg{v: uint64(h.alloc(size)), kind: aPtr, size: size} }

// u32o and u64o are the usual out-pointers.
func (h *harness) u32o() arg { return h.aO(4, 4) }
func (h *harness) u64o() arg { return h.aO(8, 8) }

func flat(parts ...any) []arg {
	var out []arg
	for _, p := range parts {
		switch x := p.(type) {
		case arg:
			out = append(out, x)
		case []arg:
			out = append(out, x...)
		default:
			panic(fmt.Sprintf("flat: %T", p))
		}
	}
	return out
}

// conventionSpecs lists every hostcall of the table but the promise calls
// (no promise handle can be made: next_request is unsupported).
func conventionSpecs() []spec {
	var specs []spec
	add := func(module, name string, want abi.Status, args func(h *harness) []arg) {
		specs = append(specs, spec{module: module, name: name, want: want, args: args})
	}
	ok := abi.OK

	add(abi.ModuleABI, "init", ok, func(h *harness) []arg { return flat(val(1)) })

	b := abi.ModuleHTTPBody
	add(b, "new", ok, func(h *harness) []arg { return flat(h.u32o()) })
	add(b, "append", ok, func(h *harness) []arg { return flat(h.aH(kindBody), h.aH(kindBody)) })
	add(b, "read", ok, func(h *harness) []arg { return flat(h.aH(kindBody), h.aB(16), h.u32o()) })
	add(b, "write", ok, func(h *harness) []arg { return flat(h.aH(kindBody), h.aS("abc"), val(0), h.u32o()) })
	add(b, "close", ok, func(h *harness) []arg { return flat(h.aH(kindBody)) })
	add(b, "abandon", ok, func(h *harness) []arg { return flat(h.aH(kindBody)) })
	add(b, "known_length", ok, func(h *harness) []arg { return flat(h.aH(kindBody), h.u64o()) })
	add(b, "trailer_append", ok, func(h *harness) []arg { return flat(h.aH(kindBody), h.aS("x-t"), h.aS("tv")) })
	withTrailer := func(h *harness) arg {
		a := h.aH(kindBody)
		np, nl := h.str("x-t")
		vp, vl := h.str("tv")
		h.want(ok, b, "trailer_append", a.v, np, nl, vp, vl)
		return a
	}
	add(b, "trailer_names_get", ok, func(h *harness) []arg {
		return flat(withTrailer(h), h.aB(64), val(0), h.u64o(), h.u32o())
	})
	add(b, "trailer_value_get", ok, func(h *harness) []arg { return flat(withTrailer(h), h.aS("x-t"), h.aB(64), h.u32o()) })
	add(b, "trailer_values_get", ok, func(h *harness) []arg {
		return flat(withTrailer(h), h.aS("x-t"), h.aB(64), val(0), h.u64o(), h.u32o())
	})

	add(abi.ModuleLog, "endpoint_get", ok, func(h *harness) []arg { return flat(h.aS("my-endpoint"), h.u32o()) })
	add(abi.ModuleLog, "write", ok, func(h *harness) []arg { return flat(h.aH(kindLog), h.aS("hello"), h.u32o()) })

	rq := abi.ModuleHTTPReq
	add(rq, "body_downstream_get", ok, func(h *harness) []arg { return flat(h.u32o(), h.u32o()) })
	add(rq, "method_get", ok, func(h *harness) []arg { return flat(h.aH(kindReq), h.aB(16), h.u32o()) })
	add(rq, "method_set", ok, func(h *harness) []arg { return flat(h.aH(kindReq), h.aS("PUT")) })
	add(rq, "uri_get", ok, func(h *harness) []arg {
		a := h.aH(kindReq)
		p, n := h.str("http://example.test/")
		h.want(ok, rq, "uri_set", a.v, p, n)
		return flat(a, h.aB(128), h.u32o())
	})
	add(rq, "uri_set", ok, func(h *harness) []arg { return flat(h.aH(kindReq), h.aS("http://example.test/a")) })
	sendBody := func(h *harness) arg { a := h.aH(kindBody); a.noHandleOK = true; return a }
	add(rq, "send", ok, func(h *harness) []arg {
		return flat(h.aH(kindReq), sendBody(h), h.aS("origin"), h.u32o(), h.u32o())
	})
	for _, name := range []string{"send_v2", "send_v3"} {
		add(rq, name, ok, func(h *harness) []arg {
			return flat(h.aH(kindReq), sendBody(h), h.aS("origin"), h.aO(abi.SendErrDetailSize, 4), h.u32o(), h.u32o())
		})
	}
	for _, name := range []string{"send_async", "send_async_streaming"} {
		add(rq, name, ok, func(h *harness) []arg {
			return flat(h.aH(kindReq), sendBody(h), h.aS("origin"), h.u32o())
		})
	}
	add(rq, "send_async_v2", ok, func(h *harness) []arg {
		return flat(h.aH(kindReq), sendBody(h), h.aS("origin"), val(0), h.u32o())
	})
	add(rq, "pending_req_poll", ok, func(h *harness) []arg {
		return flat(h.aPending(), h.u32o(), h.u32o(), h.u32o())
	})
	add(rq, "pending_req_poll_v2", ok, func(h *harness) []arg {
		return flat(h.aPending(), h.aO(abi.SendErrDetailSize, 4), h.u32o(), h.u32o(), h.u32o())
	})
	add(rq, "pending_req_wait", ok, func(h *harness) []arg { return flat(h.aPending(), h.u32o(), h.u32o()) })
	add(rq, "pending_req_wait_v2", ok, func(h *harness) []arg {
		return flat(h.aPending(), h.aO(abi.SendErrDetailSize, 4), h.u32o(), h.u32o())
	})
	add(rq, "cache_override_set", ok, func(h *harness) []arg { return flat(h.aH(kindReq), val(1), val(60), val(0)) })
	add(rq, "cache_override_v2_set", ok, func(h *harness) []arg {
		return flat(h.aH(kindReq), val(1), val(60), val(0), h.aS("surrogate"))
	})
	add("fastly_purge", "purge_surrogate_key", ok, func(h *harness) []arg { return flat(h.aS("a-key"), val(0), h.aP(12)) })
	add(rq, "auto_decompress_response_set", ok, func(h *harness) []arg { return flat(h.aH(kindReq), val(1)) })
	add(rq, "register_dynamic_backend", ok, func(h *harness) []arg {
		return flat(h.aS("dyn"), h.aS("127.0.0.1:8080"), val(0), h.aP(abi.CfgSizeBase))
	})
	add(rq, "downstream_client_ip_addr", ok, func(h *harness) []arg { return flat(h.aP(16), h.u32o()) })
	add(rq, "downstream_server_ip_addr", ok, func(h *harness) []arg { return flat(h.aP(16), h.u32o()) })
	add(rq, "downstream_client_request_id", ok, func(h *harness) []arg { return flat(h.aB(64), h.u32o()) })

	dn := abi.ModuleHTTPDownstream
	add(dn, "next_request", abi.Unsupported, func(h *harness) []arg { return flat(val(0), val(0), val(uint64(h.alloc(4)))) })
	add(dn, "downstream_client_ip_addr", ok, func(h *harness) []arg { return flat(h.aH(kindDownReq), h.aP(16), h.u32o()) })
	add(dn, "downstream_server_ip_addr", ok, func(h *harness) []arg { return flat(h.aH(kindDownReq), h.aP(16), h.u32o()) })
	add(dn, "downstream_client_request_id", ok, func(h *harness) []arg { return flat(h.aH(kindDownReq), h.aB(64), h.u32o()) })
	// Plain HTTP: every TLS fact is none.
	noneArgs := func(withReq bool, n int) func(h *harness) []arg {
		return func(h *harness) []arg {
			var as []arg
			if withReq {
				as = append(as, h.aH(kindDownReq))
			}
			for range n {
				as = append(as, val(uint64(h.alloc(64))))
			}
			return as
		}
	}
	for _, f := range []struct {
		name string
		outs int // parameters after the (optional) request handle
	}{
		{"downstream_tls_cipher_openssl_name", 3}, {"downstream_tls_protocol", 3}, {"downstream_tls_client_hello", 3},
		{"downstream_tls_raw_client_certificate", 3}, {"downstream_tls_client_cert_verify_result", 1}, {"downstream_tls_ja3_md5", 2},
	} {
		add(rq, f.name, abi.None, noneArgs(false, f.outs))
		add(dn, f.name, abi.None, noneArgs(true, f.outs))
	}
	add(dn, "downstream_tls_client_servername", abi.None, noneArgs(true, 3))

	// The per-request metadata getters, in both forms.
	for _, form := range []struct {
		module  string
		withReq bool
	}{{rq, false}, {dn, true}} {
		pre := func(h *harness, rest ...any) []arg {
			if form.withReq {
				rest = append([]any{h.aH(kindDownReq)}, rest...)
			}
			return flat(rest...)
		}
		for _, name := range []string{"downstream_client_h2_fingerprint", "downstream_client_oh_fingerprint", "downstream_tls_ja4"} {
			add(form.module, name, abi.None, noneArgs(form.withReq, 3))
		}
		for _, name := range []string{"downstream_client_ddos_detected", "fastly_key_is_valid"} {
			add(form.module, name, ok, func(h *harness) []arg { return pre(h, h.u32o()) })
		}
		add(form.module, "downstream_compliance_region", ok, func(h *harness) []arg { return pre(h, h.aB(16), h.u32o()) })
		names, count := "original_header_names_get", "original_header_count"
		if form.withReq {
			names, count = "downstream_original_header_names", "downstream_original_header_count"
		}
		add(form.module, names, ok, func(h *harness) []arg { return pre(h, h.aB(256), val(0), h.u64o(), h.u32o()) })
		add(form.module, count, ok, func(h *harness) []arg { return pre(h, h.u32o()) })
	}
	for _, name := range []string{"downstream_bot_analyzed", "downstream_bot_detected"} {
		add(dn, name, ok, func(h *harness) []arg { return flat(h.aH(kindDownReq), h.u32o()) })
	}
	for _, name := range []string{"downstream_bot_category_kind", "downstream_bot_verified",
		"downstream_resvpnproxy_is_anonymous", "downstream_resvpnproxy_is_anonymous_vpn", "downstream_resvpnproxy_is_hosting_provider",
		"downstream_resvpnproxy_is_proxy_over_vpn", "downstream_resvpnproxy_is_public_proxy", "downstream_resvpnproxy_is_relay_proxy",
		"downstream_resvpnproxy_is_residential_proxy", "downstream_resvpnproxy_is_smart_dns_proxy",
		"downstream_resvpnproxy_is_tor_exit_node", "downstream_resvpnproxy_is_vpn_datacenter"} {
		add(dn, name, abi.None, noneArgs(true, 1))
	}
	for _, name := range []string{"downstream_bot_name", "downstream_bot_category", "downstream_resvpnproxy_vpn_service_name"} {
		add(dn, name, abi.None, noneArgs(true, 3))
	}

	cr := abi.ModuleComputeRuntime
	add(cr, "get_vcpu_ms", ok, func(h *harness) []arg { return flat(h.u64o()) })
	add(cr, "get_heap_mib", ok, func(h *harness) []arg { return flat(h.u32o()) })

	rs := abi.ModuleHTTPResp
	add(rs, "status_get", ok, func(h *harness) []arg { return flat(h.aH(kindResp), h.aO(2, 2)) })
	add(rs, "status_set", ok, func(h *harness) []arg { return flat(h.aH(kindResp), val(201)) })
	add(rs, "send_downstream", ok, func(h *harness) []arg {
		return flat(h.aH(kindResp), sendBody(h), val(0))
	})
	add(rs, "http_keepalive_mode_set", ok, func(h *harness) []arg { return flat(h.aH(kindResp), val(uint64(abi.KeepaliveNone))) })

	for _, m := range []struct {
		module string
		k      handleKind
	}{{rq, kindReq}, {rs, kindResp}} {
		k := m.k
		add(m.module, "header_names_get", ok, func(h *harness) []arg {
			return flat(h.aHdr(k), h.aB(64), val(0), h.u64o(), h.u32o())
		})
		add(m.module, "header_value_get", ok, func(h *harness) []arg { return flat(h.aHdr(k), h.aS("x-a"), h.aB(64), h.u32o()) })
		add(m.module, "header_values_get", ok, func(h *harness) []arg {
			return flat(h.aHdr(k), h.aS("x-a"), h.aB(64), val(0), h.u64o(), h.u32o())
		})
		add(m.module, "header_values_set", ok, func(h *harness) []arg { return flat(h.aH(k), h.aS("x-a"), h.aS("1\x002\x00")) })
		add(m.module, "header_insert", ok, func(h *harness) []arg { return flat(h.aH(k), h.aS("x-b"), h.aS("v")) })
		add(m.module, "header_append", ok, func(h *harness) []arg { return flat(h.aH(k), h.aS("x-b"), h.aS("v")) })
		add(m.module, "header_remove", ok, func(h *harness) []arg { return flat(h.aHdr(k), h.aS("x-a")) })
		add(m.module, "version_get", ok, func(h *harness) []arg { return flat(h.aH(k), h.u32o()) })
		add(m.module, "version_set", ok, func(h *harness) []arg { return flat(h.aH(k), val(uint64(abi.HTTP10))) })
		add(m.module, "close", ok, func(h *harness) []arg { return flat(h.aH(k)) })
		add(m.module, "framing_headers_mode_set", ok, func(h *harness) []arg { return flat(h.aH(k), val(uint64(abi.FramingManuallyFromHeader))) })
		add(m.module, "new", ok, func(h *harness) []arg { return flat(h.u32o()) })
	}

	for _, m := range []string{abi.ModuleDictionary, abi.ModuleConfigStore} {
		add(m, "open", ok, func(h *harness) []arg { return flat(h.aS("settings"), h.u32o()) })
		add(m, "get", ok, func(h *harness) []arg { return flat(h.aH(kindStore), h.aS("greeting"), h.aB(64), h.u32o()) })
	}

	be := abi.ModuleBackend
	for _, name := range []string{"exists", "is_healthy", "is_dynamic", "is_ssl", "get_connect_timeout_ms",
		"get_first_byte_timeout_ms", "get_between_bytes_timeout_ms", "get_http_keepalive_time",
		"get_tcp_keepalive_enable", "get_tcp_keepalive_interval", "get_tcp_keepalive_probes", "get_tcp_keepalive_time"} {
		add(be, name, ok, func(h *harness) []arg { return flat(h.aS("origin"), h.u32o()) })
	}
	for _, name := range []string{"get_ssl_min_version", "get_ssl_max_version"} {
		add(be, name, ok, func(h *harness) []arg { return flat(h.aS("tls-origin"), h.u32o()) })
	}
	add(be, "get_port", ok, func(h *harness) []arg { return flat(h.aS("origin"), h.aO(2, 2)) })
	add(be, "get_host", ok, func(h *harness) []arg { return flat(h.aS("origin"), h.aB(64), h.u32o()) })
	add(be, "get_override_host", ok, func(h *harness) []arg { return flat(h.aS("tls-origin"), h.aB(64), h.u32o()) })

	as := abi.ModuleAsyncIO
	add(as, "select", ok, func(h *harness) []arg { return flat(h.aHandleList(h.newHandle(kindBody)), val(0), h.u32o()) })
	add(as, "is_ready", ok, func(h *harness) []arg { return flat(h.aH(kindBody), h.u32o()) })
	kvConventionSpecs(add)
	coreCacheConventionSpecs(add)           // corecache_test.go
	coreReplaceConventionSpecs(add)         // corecache_test.go
	httpCacheConventionSpecs(add)           // httpcache_test.go
	return append(specs, serviceSpecs()...) // services_test.go
}

// aPending is a pending request to the test origin (send_async).
func (h *harness) aPending() arg {
	req, o := h.newHandle(kindReq), h.out()
	np, nl := h.str("origin")
	h.want(abi.OK, abi.ModuleHTTPReq, "send_async", uint64(req), uint64(abi.NoHandle), np, nl, o)
	return arg{v: uint64(h.u32(o)), kind: aHandle, hk: kindPending}
}

// kindPending is only made by aPending; newHandle does not know it.
const kindPending handleKind = 100

// conventionEnv is the env the convention tests share: a static backend
// "origin" on a loopback test server, an https backend "tls-origin" that
// is never sent to, and a "settings" config store and dictionary.
func conventionEnv(t *testing.T) *Env {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Write([]byte("from origin"))
	}))
	t.Cleanup(origin.Close)
	cfg := EnvConfig{
		Backends: []StaticBackend{
			{Name: "origin", Settings: pool.Settings{Scheme: "http", Addr: origin.Listener.Addr().String()}},
			{Name: "tls-origin", Settings: pool.Settings{Scheme: "https", Addr: "127.0.0.1:1", HostOverride: "override.test",
				TLS: pool.TLS{MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS13}}},
		},
		ConfigStores: map[string]map[string]string{"settings": {"greeting": "hello"}},
		Dictionaries: map[string]map[string]string{"settings": {"greeting": "hello"}},
		Services:     testServices(t, origin.URL),
		Cache:        cache.New(cache.Config{MaxBytes: 1 << 20}),
		CacheService: "conventions",
	}
	testKVEnv(t, &cfg)
	env, _ := newTestEnv(t, cfg)
	return env
}

func TestConventions(t *testing.T) {
	env := conventionEnv(t)
	const memSize = 16 << 10
	for _, sp := range conventionSpecs() {
		t.Run(sp.module+"."+sp.name, func(t *testing.T) {
			newH := func(t *testing.T) (*harness, []arg) {
				h := newHarness(t, harnessOpts{env: env, memSize: memSize})
				return h, sp.args(h)
			}
			h, args := newH(t)
			if got := h.call(sp.module, sp.name, words(args)...); got != sp.want {
				t.Fatalf("valid call: %v, want %v", got, sp.want)
			}
			// Each broken variant runs in a fresh session; v computes the
			// broken value in it.
			try := func(label string, i int, want abi.Status, v func(h *harness) uint64) {
				t.Run(fmt.Sprintf("arg%d/%s", i, label), func(t *testing.T) {
					h, args := newH(t)
					w := words(args)
					w[i] = v(h)
					if got := h.call(sp.module, sp.name, w...); got != want {
						t.Fatalf("%v: %v, want %v", w, got, want)
					}
				})
			}
			is := func(v uint64) func(*harness) uint64 { return func(*harness) uint64 { return v } }
			for i, a := range args {
				switch a.kind {
				case aHandle:
					try("unknown-handle", i, abi.Badf, is(0x7FFFFFF0))
					try("zero-handle", i, abi.Badf, is(0))
					if !a.noHandleOK {
						try("no-handle", i, abi.Badf, is(uint64(abi.NoHandle)))
					}
					for _, k := range []handleKind{kindReq, kindResp, kindBody, kindLog, kindStore} {
						if k == a.hk {
							continue
						}
						try("as-"+k.String(), i, abi.Badf, func(h *harness) uint64 { return uint64(h.newHandle(k)) })
					}
				case aIn:
					if args[i+1].v == 0 {
						continue
					}
					try("ptr-past-end", i, abi.Inval, is(memSize-1))
					try("ptr-max", i, abi.Inval, is(0xFFFFFFFF))
				case aInLen:
					try("len-past-end", i, abi.Inval, is(memSize))
					try("len-max", i, abi.Inval, is(0xFFFFFFFF))
				case aBuf, aPtr:
					try("ptr-past-end", i, abi.Inval, is(memSize-1))
					try("ptr-max", i, abi.Inval, is(0xFFFFFFFF))
				case aOut:
					try("out-at-end", i, abi.Inval, is(memSize))
					try("out-max", i, abi.Inval, is(0xFFFFFFF8))
					if a.size > a.align {
						try("out-straddles-end", i, abi.Inval, is(memSize-uint64(a.align)))
					}
					if a.align > 1 {
						try("out-misaligned", i, abi.Badalign, is(a.v+1))
					}
				}
			}
		})
	}
}

func words(args []arg) []uint64 {
	w := make([]uint64, len(args))
	for i, a := range args {
		w[i] = a.v
	}
	return w
}

// TestConventionsCoverTable makes sure a hostcall added to the table gets
// a convention spec (or is listed here as covered elsewhere).
func TestConventionsCoverTable(t *testing.T) {
	elsewhere := map[string]bool{
		"fastly_http_downstream.next_request_wait":    true, // TestPromiseHandles
		"fastly_http_downstream.next_request_abandon": true, // TestPromiseHandles
	}
	have := map[string]bool{}
	for _, sp := range conventionSpecs() {
		k := sp.module + "." + sp.name
		if have[k] {
			t.Errorf("two specs for %s", k)
		}
		have[k] = true
	}
	for _, hc := range Table() {
		k := hc.Module + "." + hc.Name
		if !have[k] && !elsewhere[k] {
			t.Errorf("%s has no convention spec", k)
		}
	}
}
