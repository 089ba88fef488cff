package abi

// The platform service modules (compute-at-edge witx: fastly_acl,
// fastly_geo, fastly_device_detection, fastly_erl, fastly_shielding).
const (
	ModuleACL             = "fastly_acl"
	ModuleGeo             = "fastly_geo"
	ModuleDeviceDetection = "fastly_device_detection"
	ModuleERL             = "fastly_erl"
	ModuleShielding       = "fastly_shielding"
)

// acl_error: what fastly_acl.lookup writes to its acl_error_out beside an
// ok status.
const (
	ACLErrorUninitialized   uint32 = 0 // not written
	ACLErrorOK              uint32 = 1 // a match: the body holds its JSON
	ACLErrorNoContent       uint32 = 2 // no entry holds the address
	ACLErrorTooManyRequests uint32 = 3 // (not answered by edgehost)
)

// shield_backend_options: the mask bits of backend_for_shield.
const (
	ShieldBackendReserved            uint32 = 1 << 0
	ShieldBackendUseCacheKey         uint32 = 1 << 1
	ShieldBackendFirstByteTimeout    uint32 = 1 << 2
	ShieldBackendBetweenBytesTimeout uint32 = 1 << 3
	// ShieldBackendKnownBits are the bits edgehost reads.
	ShieldBackendKnownBits = ShieldBackendReserved | ShieldBackendUseCacheKey | ShieldBackendFirstByteTimeout | ShieldBackendBetweenBytesTimeout
)

// shield_backend_config: byte offsets of its fields, and its size.
const (
	ShieldCfgCacheKeyPtr           = 0
	ShieldCfgCacheKeyLen           = 4
	ShieldCfgFirstByteTimeoutMs    = 8
	ShieldCfgBetweenBytesTimeoutMs = 12
	ShieldCfgSize                  = 16
)
