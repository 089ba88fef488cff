package abi

// Func is the Wasm signature of one hostcall as a guest imports it: every
// parameter is an i32 ('i') or an i64 ('I'), strings and byte lists are two
// i32 (pointer, length), out-parameters are trailing i32 pointers, and the
// single result is the i32 fastly_status.
//
// Signatures follow the compute-at-edge witx definitions lowered to core
// Wasm (a `u64` parameter is i64, an `expected` result becomes out-pointers).
type Func struct {
	Module string
	Name   string
	Params string // one letter per parameter: 'i' i32, 'I' i64
}

// Funcs lists the signature of every hostcall edgehost implements, in
// module order. It returns a new slice on each call.
func Funcs() []Func {
	const (
		h    = "i"   // a handle
		str  = "ii"  // ptr, len
		out  = "i"   // an out-pointer
		buf  = "iii" // buf ptr, buf len, nwritten_out
		curs = "iiiii"
	)
	hdrs := func(m string) []Func {
		return []Func{
			{m, "header_names_get", h + curs},        // h, buf, buf_len, cursor, ending_cursor_out, nwritten_out
			{m, "header_value_get", h + str + buf},   // h, name, value, max, nwritten_out
			{m, "header_values_get", h + str + curs}, // h, name, buf, buf_len, cursor, ending_cursor_out, nwritten_out
			{m, "header_values_set", h + str + str},  // h, name, values (NUL-terminated)
			{m, "header_insert", h + str + str},      // h, name, value
			{m, "header_append", h + str + str},      // h, name, value
			{m, "header_remove", h + str},            // h, name
			{m, "version_get", h + out},              // h, version_out
			{m, "version_set", h + "i"},              // h, version
			{m, "close", h},                          // h
			{m, "framing_headers_mode_set", h + "i"}, // h, mode
			{m, "new", out},                          // handle_out
		}
	}
	fs := []Func{
		{ModuleABI, "init", "I"},

		{ModuleHTTPBody, "new", out},
		{ModuleHTTPBody, "append", h + h},
		{ModuleHTTPBody, "read", h + buf},              // h, buf, len, nread_out
		{ModuleHTTPBody, "write", h + str + "i" + out}, // h, buf, len, end, nwritten_out
		{ModuleHTTPBody, "close", h},
		{ModuleHTTPBody, "abandon", h},
		{ModuleHTTPBody, "known_length", h + out},         // h, u64_out
		{ModuleHTTPBody, "trailer_append", h + str + str}, // h, name, value
		{ModuleHTTPBody, "trailer_names_get", h + curs},   // like header_names_get
		{ModuleHTTPBody, "trailer_value_get", h + str + buf},
		{ModuleHTTPBody, "trailer_values_get", h + str + curs},

		{ModuleLog, "endpoint_get", str + out},
		{ModuleLog, "write", h + str + out},

		// The sandbox's own resource counters.
		{ModuleComputeRuntime, "get_vcpu_ms", out},  // u64_out: CPU time in ms
		{ModuleComputeRuntime, "get_heap_mib", out}, // u32_out: memory in MiB

		{ModuleHTTPReq, "body_downstream_get", out + out}, // req_out, body_out
		{ModuleHTTPReq, "method_get", h + buf},
		{ModuleHTTPReq, "method_set", h + str},
		{ModuleHTTPReq, "uri_get", h + buf},
		{ModuleHTTPReq, "uri_set", h + str},
		{ModuleHTTPReq, "send", h + h + str + out + out},           // req, body, backend, resp_out, body_out
		{ModuleHTTPReq, "send_v2", h + h + str + out + out + out},  // ..., err_detail, resp_out, body_out
		{ModuleHTTPReq, "send_v3", h + h + str + out + out + out},  // same as send_v2
		{ModuleHTTPReq, "send_async", h + h + str + out},           // req, body, backend, pending_out
		{ModuleHTTPReq, "send_async_streaming", h + h + str + out}, // req, body, backend, pending_out
		{ModuleHTTPReq, "send_async_v2", h + h + str + "i" + out},  // req, body, backend, streaming, pending_out
		{ModuleHTTPReq, "pending_req_poll", h + out + out + out},   // p, is_done_out, resp_out, body_out
		{ModuleHTTPReq, "pending_req_poll_v2", h + out + out + out + out},
		{ModuleHTTPReq, "pending_req_wait", h + out + out},
		{ModuleHTTPReq, "pending_req_wait_v2", h + out + out + out}, // p, err_detail, resp_out, body_out
		{ModuleHTTPReq, "cache_override_set", h + "iii"},            // h, tag, ttl, swr
		{ModuleHTTPReq, "cache_override_v2_set", h + "iii" + str},   // h, tag, ttl, swr, surrogate key
		{ModuleHTTPReq, "auto_decompress_response_set", h + "i"},
		{ModuleHTTPReq, "register_dynamic_backend", str + str + "i" + "i"}, // name, target, mask, config_ptr
		{ModuleHTTPReq, "downstream_client_ip_addr", out + out},            // addr16_out, nwritten_out
		{ModuleHTTPReq, "downstream_server_ip_addr", out + out},
		{ModuleHTTPReq, "downstream_client_request_id", buf},
		{ModuleHTTPReq, "downstream_tls_cipher_openssl_name", buf},
		{ModuleHTTPReq, "downstream_tls_protocol", buf},
		{ModuleHTTPReq, "downstream_tls_client_hello", buf},
		{ModuleHTTPReq, "downstream_tls_raw_client_certificate", buf},
		{ModuleHTTPReq, "downstream_tls_client_cert_verify_result", out},
		{ModuleHTTPReq, "downstream_tls_ja3_md5", out + out},

		{ModuleHTTPResp, "status_get", h + out}, // h, u16_out
		{ModuleHTTPResp, "status_set", h + "i"},
		{ModuleHTTPResp, "send_downstream", h + h + "i"}, // resp, body, streaming
		{ModuleHTTPResp, "http_keepalive_mode_set", h + "i"},

		{ModuleHTTPDownstream, "next_request", "i" + "i" + out},    // mask, opts_ptr, promise_out
		{ModuleHTTPDownstream, "next_request_wait", h + out + out}, // promise, req_out, body_out
		{ModuleHTTPDownstream, "next_request_abandon", h},
		{ModuleHTTPDownstream, "downstream_client_ip_addr", h + out + out}, // req, addr16_out, nwritten_out
		{ModuleHTTPDownstream, "downstream_server_ip_addr", h + out + out},
		{ModuleHTTPDownstream, "downstream_client_request_id", h + buf},
		{ModuleHTTPDownstream, "downstream_tls_cipher_openssl_name", h + buf},
		{ModuleHTTPDownstream, "downstream_tls_protocol", h + buf},
		{ModuleHTTPDownstream, "downstream_tls_client_hello", h + buf},
		{ModuleHTTPDownstream, "downstream_tls_raw_client_certificate", h + buf},
		{ModuleHTTPDownstream, "downstream_tls_client_cert_verify_result", h + out},
		{ModuleHTTPDownstream, "downstream_tls_client_servername", h + buf},
		{ModuleHTTPDownstream, "downstream_tls_ja3_md5", h + out + out},

		// Downstream request metadata: the per-request getters Fastly's SDKs
		// call for every request, in both forms (fastly_http_req without a
		// request handle, fastly_http_downstream with one).
		{ModuleHTTPReq, "downstream_client_h2_fingerprint", buf},
		{ModuleHTTPReq, "downstream_client_oh_fingerprint", buf},
		{ModuleHTTPReq, "downstream_client_ddos_detected", out},
		{ModuleHTTPReq, "downstream_tls_ja4", buf},
		{ModuleHTTPReq, "downstream_compliance_region", buf},
		{ModuleHTTPReq, "fastly_key_is_valid", out},
		{ModuleHTTPReq, "original_header_names_get", curs}, // buf, buf_len, cursor, ending_cursor_out, nwritten_out
		{ModuleHTTPReq, "original_header_count", out},
		{ModuleHTTPDownstream, "downstream_original_header_names", h + curs},
		{ModuleHTTPDownstream, "downstream_original_header_count", h + out},
		{ModuleHTTPDownstream, "downstream_client_h2_fingerprint", h + buf},
		{ModuleHTTPDownstream, "downstream_client_oh_fingerprint", h + buf},
		{ModuleHTTPDownstream, "downstream_client_ddos_detected", h + out},
		{ModuleHTTPDownstream, "downstream_tls_ja4", h + buf},
		{ModuleHTTPDownstream, "downstream_compliance_region", h + buf},
		{ModuleHTTPDownstream, "fastly_key_is_valid", h + out},
		{ModuleHTTPDownstream, "downstream_bot_analyzed", h + out},
		{ModuleHTTPDownstream, "downstream_bot_detected", h + out},
		{ModuleHTTPDownstream, "downstream_bot_name", h + buf},
		{ModuleHTTPDownstream, "downstream_bot_category", h + buf},
		{ModuleHTTPDownstream, "downstream_bot_category_kind", h + out},
		{ModuleHTTPDownstream, "downstream_bot_verified", h + out},
		{ModuleHTTPDownstream, "downstream_resvpnproxy_is_anonymous", h + out},
		{ModuleHTTPDownstream, "downstream_resvpnproxy_is_anonymous_vpn", h + out},
		{ModuleHTTPDownstream, "downstream_resvpnproxy_is_hosting_provider", h + out},
		{ModuleHTTPDownstream, "downstream_resvpnproxy_is_proxy_over_vpn", h + out},
		{ModuleHTTPDownstream, "downstream_resvpnproxy_is_public_proxy", h + out},
		{ModuleHTTPDownstream, "downstream_resvpnproxy_is_relay_proxy", h + out},
		{ModuleHTTPDownstream, "downstream_resvpnproxy_is_residential_proxy", h + out},
		{ModuleHTTPDownstream, "downstream_resvpnproxy_is_smart_dns_proxy", h + out},
		{ModuleHTTPDownstream, "downstream_resvpnproxy_is_tor_exit_node", h + out},
		{ModuleHTTPDownstream, "downstream_resvpnproxy_is_vpn_datacenter", h + out},
		{ModuleHTTPDownstream, "downstream_resvpnproxy_vpn_service_name", h + buf},

		{ModuleDictionary, "open", str + out},
		{ModuleDictionary, "get", h + str + buf},
		{ModuleConfigStore, "open", str + out},
		{ModuleConfigStore, "get", h + str + buf},

		{ModuleBackend, "exists", str + out},
		{ModuleBackend, "is_healthy", str + out},
		{ModuleBackend, "is_dynamic", str + out},
		{ModuleBackend, "is_ssl", str + out},
		{ModuleBackend, "get_host", str + buf},
		{ModuleBackend, "get_override_host", str + buf},
		{ModuleBackend, "get_port", str + out},
		{ModuleBackend, "get_connect_timeout_ms", str + out},
		{ModuleBackend, "get_first_byte_timeout_ms", str + out},
		{ModuleBackend, "get_between_bytes_timeout_ms", str + out},
		{ModuleBackend, "get_ssl_min_version", str + out},
		{ModuleBackend, "get_ssl_max_version", str + out},
		{ModuleBackend, "get_http_keepalive_time", str + out},
		{ModuleBackend, "get_tcp_keepalive_enable", str + out},
		{ModuleBackend, "get_tcp_keepalive_interval", str + out},
		{ModuleBackend, "get_tcp_keepalive_probes", str + out},
		{ModuleBackend, "get_tcp_keepalive_time", str + out},

		// fastly_kv_store: every operation starts with one call and ends
		// with its *_wait; the pending handles are async items.
		{ModuleKVStore, "open", str + out},                           // name, store_out
		{ModuleKVStore, "lookup", h + str + "i" + "i" + out},         // store, key, mask, config, handle_out
		{ModuleKVStore, "lookup_wait", h + out + buf + out + out},    // handle, body_out, metadata buf, generation_out (u32), kv_error_out
		{ModuleKVStore, "lookup_wait_v2", h + out + buf + out + out}, // as lookup_wait, generation_out u64
		{ModuleKVStore, "insert", h + str + h + "i" + "i" + out},     // store, key, body, mask, config, handle_out
		{ModuleKVStore, "insert_wait", h + out},                      // handle, kv_error_out
		{ModuleKVStore, "delete", h + str + "i" + "i" + out},         // store, key, mask, config, handle_out
		{ModuleKVStore, "delete_wait", h + out},                      // handle, kv_error_out
		{ModuleKVStore, "list", h + "i" + "i" + out},                 // store, mask, config, handle_out
		{ModuleKVStore, "list_wait", h + out + out},                  // handle, body_out, kv_error_out

		{ModuleSecretStore, "open", str + out},       // name, store_out
		{ModuleSecretStore, "get", h + str + out},    // store, name, secret_out
		{ModuleSecretStore, "plaintext", h + buf},    // secret, buf, buf_len, nwritten_out
		{ModuleSecretStore, "from_bytes", str + out}, // bytes, secret_out

		// fastly_async_io: waiting on pending requests and bodies.
		{ModuleAsyncIO, "select", str + "i" + out}, // handles ptr, handles len (count), timeout_ms, ready_idx_out
		{ModuleAsyncIO, "is_ready", h + out},       // async item handle, is_ready_out

		// Platform services (abi/services.go).
		{ModuleACL, "open", str + out},                                 // name, acl_out
		{ModuleACL, "lookup", h + str + out + out},                     // acl, ip octets, body_out, acl_error_out
		{ModuleGeo, "lookup", str + buf},                               // ip octets, buf, buf_len, nwritten_out
		{ModuleDeviceDetection, "lookup", str + buf},                   // user agent, buf, buf_len, nwritten_out
		{ModuleERL, "check_rate", str + str + "iii" + str + "i" + out}, // rc, entry, delta, window, limit, pb, ttl, blocked_out
		{ModuleERL, "ratecounter_increment", str + str + "i"},          // rc, entry, delta
		{ModuleERL, "ratecounter_lookup_rate", str + str + "i" + out},  // rc, entry, window, rate_out
		{ModuleERL, "ratecounter_lookup_count", str + str + "i" + out}, // rc, entry, duration, count_out
		{ModuleERL, "penaltybox_add", str + str + "i"},                 // pb, entry, ttl
		{ModuleERL, "penaltybox_has", str + str + out},                 // pb, entry, has_out
		{ModuleShielding, "shield_info", str + buf},                    // name, info buf, max, nwritten_out
		{ModuleShielding, "backend_for_shield", str + "ii" + buf},      // name, mask, config, name buf, max, nwritten_out
	}
	fs = append(fs, hdrs(ModuleHTTPReq)...)
	fs = append(fs, hdrs(ModuleHTTPResp)...)
	return fs
}
