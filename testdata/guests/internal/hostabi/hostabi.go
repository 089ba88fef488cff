//go:build wasip1

// Package hostabi declares the hostcalls that the raw-hostcall test guests
// (httpcache, gosdkcache) import, as abi/README.md gives their signatures:
// every pointer and length is a uint32 into the guest's memory and every
// result a fastly_status. The guests call them directly (TinyGo does not
// allow an import as a function value).
package hostabi

import "unsafe"

//go:wasmimport fastly_http_req body_downstream_get
func ReqBodyDownstreamGet(req, body uint32) uint32

//go:wasmimport fastly_http_req uri_get
func ReqURIGet(h, buf, n, nw uint32) uint32

//go:wasmimport fastly_http_req new
func ReqNew(out uint32) uint32

//go:wasmimport fastly_http_req uri_set
func ReqURISet(h, u, ulen uint32) uint32

//go:wasmimport fastly_http_req header_insert
func ReqHeaderInsert(h, name, nlen, val, vlen uint32) uint32

//go:wasmimport fastly_http_cache get_suggested_cache_key
func HcSuggestedCacheKey(req, buf, n, nw uint32) uint32

//go:wasmimport fastly_http_req cache_override_set
func ReqCacheOverrideSet(h, tag, ttl, swr uint32) uint32

//go:wasmimport fastly_http_req send
func ReqSend(h, body, backend, blen, resp, rbody uint32) uint32

//go:wasmimport fastly_http_resp new
func RespNew(out uint32) uint32

//go:wasmimport fastly_http_resp status_set
func RespStatusSet(h, status uint32) uint32

//go:wasmimport fastly_http_resp header_insert
func RespHeaderInsert(h, name, nlen, val, vlen uint32) uint32

//go:wasmimport fastly_http_resp send_downstream
func RespSendDownstream(h, body, streaming uint32) uint32

//go:wasmimport fastly_http_body new
func BodyNew(out uint32) uint32

//go:wasmimport fastly_http_body write
func BodyWrite(h, buf, n, end, nw uint32) uint32

//go:wasmimport fastly_http_body read
func BodyRead(h, buf, n, nw uint32) uint32

//go:wasmimport fastly_http_body close
func BodyClose(h uint32) uint32

//go:wasmimport fastly_http_cache lookup
func HcLookup(req, mask, opts, out uint32) uint32

//go:wasmimport fastly_http_cache transaction_lookup
func HcTxLookup(req, mask, opts, out uint32) uint32

//go:wasmimport fastly_http_cache transaction_insert
func HcTxInsert(h, resp, mask, opts, bodyOut uint32) uint32

//go:wasmimport fastly_http_cache transaction_insert_and_stream_back
func HcTxInsertStreamBack(h, resp, mask, opts, bodyOut, cacheOut uint32) uint32

//go:wasmimport fastly_http_cache transaction_update
func HcTxUpdate(h, resp, mask, opts uint32) uint32

//go:wasmimport fastly_http_cache transaction_update_and_return_fresh
func HcTxUpdateReturnFresh(h, resp, mask, opts, out uint32) uint32

//go:wasmimport fastly_http_cache transaction_record_not_cacheable
func HcTxRecordNotCacheable(h, mask, opts uint32) uint32

//go:wasmimport fastly_http_cache transaction_abandon
func HcTxAbandon(h uint32) uint32

//go:wasmimport fastly_http_cache transaction_choose_stale
func HcTxChooseStale(h uint32) uint32

//go:wasmimport fastly_http_cache close
func HcClose(h uint32) uint32

//go:wasmimport fastly_http_cache get_suggested_backend_request
func HcSuggestedBackendRequest(h, out uint32) uint32

//go:wasmimport fastly_http_cache get_suggested_cache_options
func HcSuggestedCacheOptions(h, resp, mask, opts, maskOut, optsOut uint32) uint32

//go:wasmimport fastly_http_cache prepare_response_for_storage
func HcPrepare(h, resp, actionOut, respOut uint32) uint32

//go:wasmimport fastly_http_cache get_found_response
func HcFoundResponse(h, transform, respOut, bodyOut uint32) uint32

//go:wasmimport fastly_http_cache get_state
func HcState(h, out uint32) uint32

//go:wasmimport fastly_http_cache get_length
func HcLength(h, out uint32) uint32

//go:wasmimport fastly_http_cache get_max_age_ns
func HcMaxAge(h, out uint32) uint32

//go:wasmimport fastly_http_cache get_stale_while_revalidate_ns
func HcSWR(h, out uint32) uint32

//go:wasmimport fastly_http_cache get_age_ns
func HcAge(h, out uint32) uint32

//go:wasmimport fastly_http_cache get_hits
func HcHits(h, out uint32) uint32

//go:wasmimport fastly_http_cache get_sensitive_data
func HcSensitive(h, out uint32) uint32

//go:wasmimport fastly_http_cache get_surrogate_keys
func HcSurrogateKeys(h, buf, n, nw uint32) uint32

//go:wasmimport fastly_http_cache get_vary_rule
func HcVaryRule(h, buf, n, nw uint32) uint32

//go:wasmimport fastly_http_req header_value_get
func ReqHeaderValueGet(h, name, nlen, buf, n, nw uint32) uint32

//go:wasmimport fastly_http_req method_set
func ReqMethodSet(h, m, mlen uint32) uint32

//go:wasmimport fastly_http_req cache_override_v2_set
func ReqCacheOverrideV2Set(h, tag, ttl, swr, sk, sklen uint32) uint32

//go:wasmimport fastly_http_req auto_decompress_response_set
func ReqAutoDecompress(h, enc uint32) uint32

//go:wasmimport fastly_http_req framing_headers_mode_set
func ReqFramingMode(h, mode uint32) uint32

//go:wasmimport fastly_http_req header_values_set
func ReqHeaderValuesSet(h, name, nlen, vals, vlen uint32) uint32

//go:wasmimport fastly_http_req send_v3
func ReqSendV3(h, body, backend, blen, detail, resp, rbody uint32) uint32

//go:wasmimport fastly_http_req send_async_v2
func ReqSendAsyncV2(h, body, backend, blen, streaming, pending uint32) uint32

//go:wasmimport fastly_http_req pending_req_wait_v2
func ReqPendingWaitV2(p, detail, resp, body uint32) uint32

//go:wasmimport fastly_http_resp header_value_get
func RespHeaderValueGet(h, name, nlen, buf, n, nw uint32) uint32

//go:wasmimport fastly_http_body append
func BodyAppend(dst, src uint32) uint32

//go:wasmimport fastly_http_body known_length
func BodyKnownLength(h, out uint32) uint32

//go:wasmimport fastly_http_cache is_request_cacheable
func HcIsRequestCacheable(req, out uint32) uint32

//go:wasmimport fastly_http_cache get_stale_if_error_ns
func HcSIE(h, out uint32) uint32

// Ptr is the guest address of v.
func Ptr[T any](v *T) uint32 { return uint32(uintptr(unsafe.Pointer(v))) }

// Str is the address and length of s (0, 0 for "").
func Str(s string) (uint32, uint32) {
	if s == "" {
		return 0, 0
	}
	return uint32(uintptr(unsafe.Pointer(unsafe.StringData(s)))), uint32(len(s))
}

// Bytes is the address of b's first byte; b must not be empty.
func Bytes(b []byte) uint32 { return uint32(uintptr(unsafe.Pointer(&b[0]))) }
