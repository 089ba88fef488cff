package abi

// The core cache module (abi/README.md, "fastly_cache").
const ModuleCache = "fastly_cache"

// cache_lookup_options_mask bits. Bit 0 is reserved and must be 0.
const (
	CacheLookupReserved                uint32 = 1 << 0
	CacheLookupRequestHeaders          uint32 = 1 << 1
	CacheLookupService                 uint32 = 1 << 2
	CacheLookupAlwaysUseRequestedRange uint32 = 1 << 3
)

// cache_write_options_mask bits. Bit 0 is reserved and must be 0; max_age_ns
// has no bit (it is always read).
const (
	CacheWriteReserved               uint32 = 1 << 0
	CacheWriteRequestHeaders         uint32 = 1 << 1
	CacheWriteVaryRule               uint32 = 1 << 2
	CacheWriteInitialAgeNs           uint32 = 1 << 3
	CacheWriteStaleWhileRevalidateNs uint32 = 1 << 4
	CacheWriteSurrogateKeys          uint32 = 1 << 5
	CacheWriteLength                 uint32 = 1 << 6
	CacheWriteUserMetadata           uint32 = 1 << 7
	CacheWriteSensitiveData          uint32 = 1 << 8
	CacheWriteEdgeMaxAgeNs           uint32 = 1 << 9
	CacheWriteService                uint32 = 1 << 10
)

// cache_replace_options_mask bits. Bit 0 is reserved and must be 0.
const (
	CacheReplaceReserved                uint32 = 1 << 0
	CacheReplaceRequestHeaders          uint32 = 1 << 1
	CacheReplaceStrategy                uint32 = 1 << 2
	CacheReplaceService                 uint32 = 1 << 3
	CacheReplaceAlwaysUseRequestedRange uint32 = 1 << 4
)

// cache_replace_strategy values (replace_strategy, bit 2 of the replace
// options; Immediate when not given).
const (
	// CacheReplaceImmediate replaces at once, racing other writers; the
	// existing object stays visible until the replacement is inserted.
	CacheReplaceImmediate uint32 = 1
	// CacheReplaceImmediateForceMiss removes the existing object at once:
	// transactional lookups wait for the replacement.
	CacheReplaceImmediateForceMiss uint32 = 2
	// CacheReplaceWait waits for a pending insert of the key first.
	CacheReplaceWait uint32 = 3
)

// cache_get_body_options_mask bits. Bit 0 is reserved and must be 0.
const (
	CacheGetBodyReserved uint32 = 1 << 0
	CacheGetBodyFrom     uint32 = 1 << 1
	CacheGetBodyTo       uint32 = 1 << 2
)

// cache_lookup_state bits, as get_state writes them.
const (
	CacheStateFound              uint32 = 1 << 0
	CacheStateUsable             uint32 = 1 << 1
	CacheStateStale              uint32 = 1 << 2
	CacheStateMustInsertOrUpdate uint32 = 1 << 3
)

// Layouts of the core cache option structs (wasm32), byte offsets:
//
//	cache_lookup_options (12 bytes, 4-aligned): request_headers (request
//	handle) 0, service_id ptr 4 and len 8.
//	cache_write_options (80 bytes, 8-aligned): max_age_ns u64 0,
//	request_headers 8, vary_rule ptr 12 and len 16, initial_age_ns u64 24,
//	stale_while_revalidate_ns u64 32, surrogate_keys ptr 40 and len 44,
//	length u64 48, user_metadata ptr 56 and len 60, edge_max_age_ns u64 64,
//	service_id ptr 72 and len 76.
//	cache_get_body_options (16 bytes, 8-aligned): from u64 0, to u64 8.
//	cache_replace_options (16 bytes, 4-aligned): request_headers 0,
//	replace_strategy u32 4, service_id ptr 8 and len 12.
const (
	CacheReplaceOptionsSize = 16
	CacheLookupOptionsSize  = 12
	CacheWriteOptionsSize   = 80
	CacheGetBodyOptionsSize = 16
)

// Offsets in cache_write_options.
const (
	CacheWriteOffMaxAge        = 0
	CacheWriteOffRequest       = 8
	CacheWriteOffVaryRule      = 12
	CacheWriteOffInitialAge    = 24
	CacheWriteOffSWR           = 32
	CacheWriteOffSurrogateKeys = 40
	CacheWriteOffLength        = 48
	CacheWriteOffUserMetadata  = 56
	CacheWriteOffEdgeMaxAge    = 64
	CacheWriteOffService       = 72
)
