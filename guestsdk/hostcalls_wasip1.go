//go:build wasip1

package guestsdk

import "unsafe"

// Raw hostcall bindings: one function per hostcall, parameters in the
// order and with the Wasm types of abi.Funcs (uint32 = i32, uint64 = i64,
// unsafe.Pointer = an i32 address in linear memory). Every result is the
// fastly_status. hostcalls_native.go declares the same functions for
// native builds, backed by an in-memory fake host. The SDK calls them
// directly and never uses one as a value: TinyGo refuses a
// //go:wasmimport function used as a value.

// pin returns the linear-memory address of p for a pointer field of a
// struct handed to the host. Go's and TinyGo's collectors do not move
// objects, so the address stays valid while p is kept alive.
func pin(p unsafe.Pointer) uint32 { return uint32(uintptr(p)) }

//go:wasmimport fastly_abi init
//go:noescape
func abiInit(version uint64) uint32

//go:wasmimport fastly_http_body new
//go:noescape
func bodyNew(handleOut unsafe.Pointer) uint32

//go:wasmimport fastly_http_body append
//go:noescape
func bodyAppend(dest, src uint32) uint32

//go:wasmimport fastly_http_body read
//go:noescape
func bodyRead(h uint32, buf unsafe.Pointer, bufLen uint32, nreadOut unsafe.Pointer) uint32

//go:wasmimport fastly_http_body write
//go:noescape
func bodyWrite(h uint32, buf unsafe.Pointer, bufLen uint32, end uint32, nwrittenOut unsafe.Pointer) uint32

//go:wasmimport fastly_http_body close
//go:noescape
func bodyClose(h uint32) uint32

//go:wasmimport fastly_http_body abandon
//go:noescape
func bodyAbandon(h uint32) uint32

//go:wasmimport fastly_log endpoint_get
//go:noescape
func logEndpointGet(name unsafe.Pointer, nameLen uint32, handleOut unsafe.Pointer) uint32

//go:wasmimport fastly_log write
//go:noescape
func logWrite(h uint32, buf unsafe.Pointer, bufLen uint32, nwrittenOut unsafe.Pointer) uint32

//go:wasmimport fastly_http_downstream next_request
//go:noescape
func downstreamNextRequest(mask uint32, opts unsafe.Pointer, promiseOut unsafe.Pointer) uint32

//go:wasmimport fastly_http_downstream next_request_wait
//go:noescape
func downstreamNextRequestWait(promise uint32, reqOut, bodyOut unsafe.Pointer) uint32

//go:wasmimport fastly_http_req body_downstream_get
//go:noescape
func reqBodyDownstreamGet(reqOut, bodyOut unsafe.Pointer) uint32

//go:wasmimport fastly_http_req new
//go:noescape
func reqNew(handleOut unsafe.Pointer) uint32

//go:wasmimport fastly_http_req close
//go:noescape
func reqClose(h uint32) uint32

//go:wasmimport fastly_http_req method_get
//go:noescape
func reqMethodGet(h uint32, buf unsafe.Pointer, bufLen uint32, nwrittenOut unsafe.Pointer) uint32

//go:wasmimport fastly_http_req method_set
//go:noescape
func reqMethodSet(h uint32, method unsafe.Pointer, methodLen uint32) uint32

//go:wasmimport fastly_http_req uri_get
//go:noescape
func reqURIGet(h uint32, buf unsafe.Pointer, bufLen uint32, nwrittenOut unsafe.Pointer) uint32

//go:wasmimport fastly_http_req uri_set
//go:noescape
func reqURISet(h uint32, uri unsafe.Pointer, uriLen uint32) uint32

//go:wasmimport fastly_http_req header_names_get
//go:noescape
func reqHeaderNamesGet(h uint32, buf unsafe.Pointer, bufLen uint32, cursor uint32, endingCursorOut, nwrittenOut unsafe.Pointer) uint32

//go:wasmimport fastly_http_req header_values_get
//go:noescape
func reqHeaderValuesGet(h uint32, name unsafe.Pointer, nameLen uint32, buf unsafe.Pointer, bufLen uint32, cursor uint32, endingCursorOut, nwrittenOut unsafe.Pointer) uint32

//go:wasmimport fastly_http_req header_append
//go:noescape
func reqHeaderAppend(h uint32, name unsafe.Pointer, nameLen uint32, value unsafe.Pointer, valueLen uint32) uint32

//go:wasmimport fastly_http_req send_v2
//go:noescape
func reqSendV2(req, body uint32, backend unsafe.Pointer, backendLen uint32, errDetailOut, respOut, bodyOut unsafe.Pointer) uint32

//go:wasmimport fastly_http_req send_async
//go:noescape
func reqSendAsync(req, body uint32, backend unsafe.Pointer, backendLen uint32, pendingOut unsafe.Pointer) uint32

//go:wasmimport fastly_http_req pending_req_wait_v2
//go:noescape
func reqPendingReqWaitV2(pending uint32, errDetailOut, respOut, bodyOut unsafe.Pointer) uint32

//go:wasmimport fastly_http_req register_dynamic_backend
//go:noescape
func reqRegisterDynamicBackend(name unsafe.Pointer, nameLen uint32, target unsafe.Pointer, targetLen uint32, mask uint32, config unsafe.Pointer) uint32

//go:wasmimport fastly_http_resp new
//go:noescape
func respNew(handleOut unsafe.Pointer) uint32

//go:wasmimport fastly_http_resp close
//go:noescape
func respClose(h uint32) uint32

//go:wasmimport fastly_http_resp status_get
//go:noescape
func respStatusGet(h uint32, statusOut unsafe.Pointer) uint32

//go:wasmimport fastly_http_resp status_set
//go:noescape
func respStatusSet(h uint32, status uint32) uint32

//go:wasmimport fastly_http_resp header_names_get
//go:noescape
func respHeaderNamesGet(h uint32, buf unsafe.Pointer, bufLen uint32, cursor uint32, endingCursorOut, nwrittenOut unsafe.Pointer) uint32

//go:wasmimport fastly_http_resp header_values_get
//go:noescape
func respHeaderValuesGet(h uint32, name unsafe.Pointer, nameLen uint32, buf unsafe.Pointer, bufLen uint32, cursor uint32, endingCursorOut, nwrittenOut unsafe.Pointer) uint32

//go:wasmimport fastly_http_resp header_append
//go:noescape
func respHeaderAppend(h uint32, name unsafe.Pointer, nameLen uint32, value unsafe.Pointer, valueLen uint32) uint32

//go:wasmimport fastly_http_resp send_downstream
//go:noescape
func respSendDownstream(resp, body uint32, streaming uint32) uint32

//go:wasmimport fastly_dictionary open
//go:noescape
func dictionaryOpen(name unsafe.Pointer, nameLen uint32, handleOut unsafe.Pointer) uint32

//go:wasmimport fastly_dictionary get
//go:noescape
func dictionaryGet(h uint32, key unsafe.Pointer, keyLen uint32, buf unsafe.Pointer, bufLen uint32, nwrittenOut unsafe.Pointer) uint32

//go:wasmimport fastly_config_store open
//go:noescape
func configStoreOpen(name unsafe.Pointer, nameLen uint32, handleOut unsafe.Pointer) uint32

//go:wasmimport fastly_config_store get
//go:noescape
func configStoreGet(h uint32, key unsafe.Pointer, keyLen uint32, buf unsafe.Pointer, bufLen uint32, nwrittenOut unsafe.Pointer) uint32

//go:wasmimport fastly_backend exists
//go:noescape
func backendExists(name unsafe.Pointer, nameLen uint32, out unsafe.Pointer) uint32

//go:wasmimport fastly_backend is_healthy
//go:noescape
func backendIsHealthy(name unsafe.Pointer, nameLen uint32, out unsafe.Pointer) uint32

//go:wasmimport fastly_backend is_dynamic
//go:noescape
func backendIsDynamic(name unsafe.Pointer, nameLen uint32, out unsafe.Pointer) uint32

//go:wasmimport fastly_backend is_ssl
//go:noescape
func backendIsSSL(name unsafe.Pointer, nameLen uint32, out unsafe.Pointer) uint32

//go:wasmimport fastly_backend get_host
//go:noescape
func backendGetHost(name unsafe.Pointer, nameLen uint32, buf unsafe.Pointer, bufLen uint32, nwrittenOut unsafe.Pointer) uint32

//go:wasmimport fastly_backend get_override_host
//go:noescape
func backendGetOverrideHost(name unsafe.Pointer, nameLen uint32, buf unsafe.Pointer, bufLen uint32, nwrittenOut unsafe.Pointer) uint32

//go:wasmimport fastly_backend get_port
//go:noescape
func backendGetPort(name unsafe.Pointer, nameLen uint32, out unsafe.Pointer) uint32

//go:wasmimport fastly_backend get_connect_timeout_ms
//go:noescape
func backendGetConnectTimeoutMs(name unsafe.Pointer, nameLen uint32, out unsafe.Pointer) uint32

//go:wasmimport fastly_backend get_first_byte_timeout_ms
//go:noescape
func backendGetFirstByteTimeoutMs(name unsafe.Pointer, nameLen uint32, out unsafe.Pointer) uint32

//go:wasmimport fastly_backend get_between_bytes_timeout_ms
//go:noescape
func backendGetBetweenBytesTimeoutMs(name unsafe.Pointer, nameLen uint32, out unsafe.Pointer) uint32

//go:wasmimport fastly_backend get_ssl_min_version
//go:noescape
func backendGetSSLMinVersion(name unsafe.Pointer, nameLen uint32, out unsafe.Pointer) uint32

//go:wasmimport fastly_backend get_ssl_max_version
//go:noescape
func backendGetSSLMaxVersion(name unsafe.Pointer, nameLen uint32, out unsafe.Pointer) uint32

//go:wasmimport fastly_backend get_http_keepalive_time
//go:noescape
func backendGetHTTPKeepaliveTime(name unsafe.Pointer, nameLen uint32, out unsafe.Pointer) uint32

//go:wasmimport fastly_backend get_tcp_keepalive_enable
//go:noescape
func backendGetTCPKeepaliveEnable(name unsafe.Pointer, nameLen uint32, out unsafe.Pointer) uint32

//go:wasmimport fastly_backend get_tcp_keepalive_interval
//go:noescape
func backendGetTCPKeepaliveInterval(name unsafe.Pointer, nameLen uint32, out unsafe.Pointer) uint32

//go:wasmimport fastly_backend get_tcp_keepalive_probes
//go:noescape
func backendGetTCPKeepaliveProbes(name unsafe.Pointer, nameLen uint32, out unsafe.Pointer) uint32

//go:wasmimport fastly_backend get_tcp_keepalive_time
//go:noescape
func backendGetTCPKeepaliveTime(name unsafe.Pointer, nameLen uint32, out unsafe.Pointer) uint32
