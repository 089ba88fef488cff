package abi

// The HTTP cache module (abi/README.md, "fastly_http_cache").
const ModuleHTTPCache = "fastly_http_cache"

// http_cache_lookup_options_mask bits. Bit 0 is reserved and must be 0.
const (
	HTTPCacheLookupReserved    uint32 = 1 << 0
	HTTPCacheLookupOverrideKey uint32 = 1 << 1
	// HTTPCacheLookupBackendName is the bit of backend_name (ptr 8, len
	// 12): the backend the request will be sent to. Fastly's Go SDK sets
	// it on every lookup of its Send.
	HTTPCacheLookupBackendName uint32 = 1 << 2
)

// http_cache_write_options_mask bits. Bit 0 is reserved and must be 0;
// max_age_ns has no bit (it is always read).
const (
	HTTPCacheWriteReserved               uint32 = 1 << 0
	HTTPCacheWriteVaryRule               uint32 = 1 << 1
	HTTPCacheWriteInitialAgeNs           uint32 = 1 << 2
	HTTPCacheWriteStaleWhileRevalidateNs uint32 = 1 << 3
	HTTPCacheWriteSurrogateKeys          uint32 = 1 << 4
	HTTPCacheWriteLength                 uint32 = 1 << 5
	HTTPCacheWriteSensitiveData          uint32 = 1 << 6
	// HTTPCacheWriteStaleIfErrorNs is the bit of stale_if_error_ns (u64 at
	// 48, the last field of the 56-byte struct), as the witx orders the
	// mask's flags and the struct's fields; the JS SDK's runtime
	// (js-compute 3.46) and Fastly's Go SDK both set it.
	HTTPCacheWriteStaleIfErrorNs uint32 = 1 << 7
)

// http_storage_action values, as prepare_response_for_storage writes them.
const (
	HTTPStorageInsert            uint32 = 0
	HTTPStorageUpdate            uint32 = 1
	HTTPStorageDoNotStore        uint32 = 2
	HTTPStorageRecordUncacheable uint32 = 3
)

// Layouts of the HTTP cache option structs (wasm32), byte offsets, of the
// fields the host reads and writes:
//
//	http_cache_lookup_options (4-aligned, 16 bytes): override_key ptr 0
//	and len 4, backend_name ptr 8 and len 12.
//	http_cache_write_options (8-aligned): max_age_ns u64 0, vary_rule
//	ptr 8 and len 12, initial_age_ns u64 16, stale_while_revalidate_ns
//	u64 24, surrogate_keys ptr 32 and len 36, length u64 40,
//	stale_if_error_ns u64 48 (56 bytes in all).
const (
	HTTPCacheLookupOptionsFields = 8
	HTTPCacheLookupOptionsSize   = 16
	// HTTPCacheWriteOptionsFields is the bytes read without the
	// stale_if_error_ns bit; HTTPCacheWriteOptionsSize with it.
	HTTPCacheWriteOptionsFields = 48
	HTTPCacheWriteOptionsSize   = 56

	HTTPCacheLookupOffBackendName = 8

	HTTPCacheWriteOffMaxAge        = 0
	HTTPCacheWriteOffVaryRule      = 8
	HTTPCacheWriteOffInitialAge    = 16
	HTTPCacheWriteOffSWR           = 24
	HTTPCacheWriteOffSurrogateKeys = 32
	HTTPCacheWriteOffLength        = 40
	HTTPCacheWriteOffStaleIfError  = 48
)
