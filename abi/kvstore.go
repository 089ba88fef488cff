package abi

// The KV store and secret store modules (abi/README.md,
// "fastly_kv_store" and "fastly_secret_store").
const (
	ModuleKVStore     = "fastly_kv_store"
	ModuleSecretStore = "fastly_secret_store"
)

// KVError is the witx kv_error: the outcome of a KV operation, written
// by the *_wait calls (their status is ok whenever the operation ran).
type KVError uint32

// The kv_error values.
const (
	KVErrorUninitialized      KVError = 0
	KVErrorOK                 KVError = 1
	KVErrorBadRequest         KVError = 2 // a bad cursor
	KVErrorNotFound           KVError = 3 // no such key (or it expired)
	KVErrorPreconditionFailed KVError = 4 // add of an existing key, if_generation_match not met
	KVErrorPayloadTooLarge    KVError = 5 // a value over 25 MiB, metadata over 2000 bytes
	KVErrorInternal           KVError = 6 // the write failed (a full disk); nothing changed
	KVErrorTooManyRequests    KVError = 7 // (not answered by edgehost)
)

// KV insert modes (witx kv_insert_mode).
const (
	KVInsertOverwrite uint32 = 0
	KVInsertAdd       uint32 = 1
	KVInsertAppend    uint32 = 2
	KVInsertPrepend   uint32 = 3
)

// KV config option bits (witx kv_insert_config_options and
// kv_list_config_options). Bit 0 of every mask is reserved; insert's bit
// 2 (reserved_2) was once a 32-bit if_generation_match and must be 0.
const (
	KVInsertBackgroundFetch   uint32 = 1 << 1
	KVInsertReserved2         uint32 = 1 << 2
	KVInsertMetadata          uint32 = 1 << 3
	KVInsertTTL               uint32 = 1 << 4
	KVInsertIfGenerationMatch uint32 = 1 << 5

	KVListCursor uint32 = 1 << 1
	KVListLimit  uint32 = 1 << 2
	KVListPrefix uint32 = 1 << 3
)

// Sizes of the KV config structs (wasm32): kv_insert_config is mode u32
// at 0, unused u32 at 4, metadata ptr at 8 and len at 12,
// time_to_live_sec u32 at 16, if_generation_match u64 at 24 (32 bytes,
// 8-aligned); kv_list_config is mode u32 at 0 (0 strong, 1 eventual),
// cursor ptr at 4 and len at 8, limit u32 at 12, prefix ptr at 16 and len
// at 20 (24 bytes); the lookup and delete configs are one reserved u32.
const (
	KVInsertConfigSize = 32
	KVListConfigSize   = 24
)
