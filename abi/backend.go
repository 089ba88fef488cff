package abi

// Backend config mask bits (backend_config_options), the mask argument of
// fastly_http_req.register_dynamic_backend. Bit n is 1<<n.
const (
	BackendReserved            uint32 = 1 << 0
	BackendHostOverride        uint32 = 1 << 1
	BackendConnectTimeout      uint32 = 1 << 2
	BackendFirstByteTimeout    uint32 = 1 << 3
	BackendBetweenBytesTimeout uint32 = 1 << 4
	BackendUseSSL              uint32 = 1 << 5
	BackendSSLMinVersion       uint32 = 1 << 6
	BackendSSLMaxVersion       uint32 = 1 << 7
	BackendCertHostname        uint32 = 1 << 8
	BackendCACert              uint32 = 1 << 9
	BackendCiphers             uint32 = 1 << 10
	BackendSNIHostname         uint32 = 1 << 11
	BackendDontPool            uint32 = 1 << 12
	BackendClientCert          uint32 = 1 << 13
	BackendGRPC                uint32 = 1 << 14
	BackendKeepalive           uint32 = 1 << 15
	BackendPoolingLimits       uint32 = 1 << 16
	BackendPreferIPv4          uint32 = 1 << 17
	BackendHealthcheck         uint32 = 1 << 18

	// BackendKnownBits is every defined bit, reserved included.
	BackendKnownBits uint32 = 1<<19 - 1
)

// Offsets (bytes) of the dynamic_backend_config fields, wasm32 layout:
// 4-byte fields, no padding, 108 bytes in all. A pointer field is followed
// by its u32 length at the next offset.
const (
	CfgHostOverride          = 0  // ptr, len at 4
	CfgConnectTimeoutMs      = 8  // u32 milliseconds
	CfgFirstByteTimeoutMs    = 12 // u32 milliseconds
	CfgBetweenBytesTimeoutMs = 16 // u32 milliseconds
	CfgSSLMinVersion         = 20 // tls_version
	CfgSSLMaxVersion         = 24 // tls_version
	CfgCertHostname          = 28 // ptr, len at 32
	CfgCACert                = 36 // ptr, len at 40 (PEM)
	CfgCiphers               = 44 // ptr, len at 48 (OpenSSL cipher list)
	CfgSNIHostname           = 52 // ptr, len at 56
	CfgClientCertificate     = 60 // ptr, len at 64 (PEM)
	CfgClientKey             = 68 // secret handle
	CfgHTTPKeepaliveTimeMs   = 72 // u32 milliseconds; read only with BackendKeepalive
	CfgTCPKeepaliveEnable    = 76 // u32 0/1
	CfgTCPKeepaliveInterval  = 80 // u32 seconds
	CfgTCPKeepaliveProbes    = 84 // u32 count
	CfgTCPKeepaliveTime      = 88 // u32 seconds
	CfgMaxConnections        = 92 // u32; read only with BackendPoolingLimits (or bits 17, 18)
	CfgMaxUse                = 96 // u32 requests per connection
	CfgMaxLifetimeMs         = 100
	CfgHealthcheck           = 104 // pointer to healthcheck_config

	// CfgSizeBase is the size of the struct an older guest passes when it
	// sets neither BackendKeepalive nor bits 16 to 18.
	CfgSizeBase = 72
	// CfgSizeKeepalive is the size readable with BackendKeepalive only.
	CfgSizeKeepalive = 92
	// CfgSize is the full struct size.
	CfgSize = 108
)

// Send error detail tags (send_error_detail_tag) written by send_v2,
// send_v3, pending_req_poll_v2 and pending_req_wait_v2.
const (
	SendErrUninitialized         uint32 = 0
	SendErrOK                    uint32 = 1
	SendErrDNSTimeout            uint32 = 2
	SendErrDNSError              uint32 = 3
	SendErrDestinationNotFound   uint32 = 4
	SendErrDestinationUnavail    uint32 = 5
	SendErrDestinationIPUnroute  uint32 = 6
	SendErrConnectionRefused     uint32 = 7
	SendErrConnectionTerminated  uint32 = 8
	SendErrConnectionTimeout     uint32 = 9
	SendErrConnectionLimit       uint32 = 10
	SendErrTLSCertificate        uint32 = 11
	SendErrTLSConfiguration      uint32 = 12
	SendErrHTTPIncompleteResp    uint32 = 13
	SendErrHTTPRespHeaderTooBig  uint32 = 14
	SendErrHTTPRespBodyTooBig    uint32 = 15
	SendErrHTTPResponseTimeout   uint32 = 16
	SendErrHTTPRespStatusInvalid uint32 = 17
	SendErrHTTPUpgradeFailed     uint32 = 18
	SendErrHTTPProtocolError     uint32 = 19
	SendErrHTTPReqCacheKey       uint32 = 20
	SendErrHTTPReqURIInvalid     uint32 = 21
	SendErrInternal              uint32 = 22
	SendErrTLSAlertReceived      uint32 = 23
	SendErrTLSProtocolError      uint32 = 24
	SendErrH2Error               uint32 = 25
)

// Layout of send_error_detail: tag u32 at 0, mask u32 at 4,
// dns_error_rcode u16 at 8, dns_error_info_code u16 at 10, tls_alert_id u8
// at 12, h2_error_frame u8 at 13, h2_error_code u32 at 16; 20 bytes.
const (
	SendErrDetailTag  = 0
	SendErrDetailMask = 4
	SendErrDetailSize = 20
)
