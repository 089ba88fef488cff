// Package abi holds edgehost's guest ABI as Go constants and data: the
// hostcall module and function names, the fastly_status codes, the
// backend_config_options mask bits, the dynamic_backend_config and
// send_error_detail layouts, HTTP version codes and the no-handle sentinel;
// and one description of every hostcall (Hostcalls), implemented or not.
//
// The ABI is Fastly Compute's (the compute-at-edge witx definitions); this
// package restates its facts, it does not copy its text. It has no
// dependencies and builds for the host, for GOOS=wasip1 GOARCH=wasm and
// under TinyGo, so the host and guestsdk share one definition.
// README.md beside this file documents every hostcall edgehost implements.
package abi

//go:generate go run ./internal/abigen -root ..

// Version is the only ABI version fastly_abi.init accepts. New features are
// negotiated by mask bits, never by this number.
const Version = 1

// NoHandle is the "no handle" sentinel used by guest SDKs (0xFFFFFFFE).
// The host never hands it out as a live handle.
const NoHandle uint32 = 0xFFFFFFFE

// Module names of the hostcall import modules.
const (
	ModuleABI            = "fastly_abi"
	ModuleHTTPReq        = "fastly_http_req"
	ModuleHTTPResp       = "fastly_http_resp"
	ModuleHTTPBody       = "fastly_http_body"
	ModuleHTTPDownstream = "fastly_http_downstream"
	ModuleLog            = "fastly_log"
	ModuleDictionary     = "fastly_dictionary"
	ModuleConfigStore    = "fastly_config_store"
	ModuleBackend        = "fastly_backend"
	ModuleAsyncIO        = "fastly_async_io"
	// ModulePrefix starts every hostcall module name; an import of an
	// unimplemented function in such a module is linked to a stub.
	ModulePrefix = "fastly_"
	// ModuleWASI is WASI preview 1, provided by the engine.
	ModuleWASI = "wasi_snapshot_preview1"
)

// HTTP version codes (http_version enum).
const (
	HTTP09 uint32 = 0
	HTTP10 uint32 = 1
	HTTP11 uint32 = 2
	HTTP2  uint32 = 3
	HTTP3  uint32 = 4
)

// Body write ends (body_write_end enum) for fastly_http_body.write.
const (
	BodyWriteBack  uint32 = 0
	BodyWriteFront uint32 = 1
)

// Backend health (backend_health enum) from fastly_backend.is_healthy.
const (
	HealthUnknown   uint32 = 0
	HealthHealthy   uint32 = 1
	HealthUnhealthy uint32 = 2
)

// TLS versions (tls_version enum) in dynamic_backend_config and the
// fastly_backend ssl version getters.
const (
	TLS10 uint32 = 0
	TLS11 uint32 = 1
	TLS12 uint32 = 2
	TLS13 uint32 = 3
)

// HTTP keepalive modes for fastly_http_resp.http_keepalive_mode_set.
const (
	KeepaliveAutomatic uint32 = 0
	KeepaliveNone      uint32 = 1
)

// Framing header modes for the framing_headers_mode_set hostcalls.
const (
	FramingAutomatic          uint32 = 0
	FramingManuallyFromHeader uint32 = 1
)

// CursorDone is the ending_cursor value that multi-value getters write when
// every value has been written.
const CursorDone int64 = -1
