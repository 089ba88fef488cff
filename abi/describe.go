package abi

// Hostcall describes one function of a fastly_* import module: its name,
// its parameters with their meaning, what it does, the statuses edgehost
// answers and whether edgehost implements it. Hostcalls lists them all.
//
// Every hostcall returns one i32, the fastly_status; results go through
// out-pointer parameters (KindOut, KindOutBuf, KindCursorBuf), which come
// after the inputs, as in the compute-at-edge witx definitions lowered to
// core Wasm (see README.md beside this file, "Conventions").
type Hostcall struct {
	Module string
	Name   string
	// Params in Wasm order. One Param may stand for several Wasm values
	// (KindIn is a pointer and a length); Wasm gives the lowering.
	Params []Param
	// Doc is one sentence saying what the hostcall does.
	Doc string
	// Statuses are every status edgehost answers for this hostcall: for
	// an implemented one what its implementation can return, for any
	// other only Unsupported (the stub's answer).
	Statuses StatusSet
	// Implemented is true when edgehost implements the hostcall (it is
	// then also in Funcs); otherwise a guest importing it gets the stub.
	Implemented bool
	// SDKs are the public Fastly SDKs whose guests import the hostcall;
	// 0 for one only the witx definitions name.
	SDKs SDK
}

// Param is one parameter of a hostcall.
type Param struct {
	Name string
	Kind Kind
	// Handle is the kind of handle of a KindHandle or KindHandleList
	// parameter, and of a KindOut parameter the host writes a handle to.
	Handle HandleKind
	// Unit is what the number of a KindScalar parameter, or the number a
	// KindOut parameter receives, means.
	Unit Unit
	// Type is the witx type name: the enum, flags or record a value is, or
	// "u32", "u64" for a plain number.
	Type string
	// Size is 4 or 8 for a KindScalar (Wasm i32 or i64); for KindOut and
	// KindInStruct the number of bytes at the pointer.
	Size uint32
	// Align is the alignment a KindOut or KindInStruct pointer needs.
	Align uint32
	// Max is the most bytes edgehost reads for a KindIn parameter (a
	// longer one is inval); 0 means 64 KiB, the limit of a name, value or
	// URI (README.md beside this file, "Conventions").
	Max uint32
}

// Kind says how a parameter is passed and so which Wasm values it is.
type Kind uint8

// The parameter kinds. Pointers and lengths are i32 (wasm32).
const (
	// KindHandle is one i32: a handle of Param.Handle's kind.
	KindHandle Kind = iota + 1
	// KindHandleList is two i32: a pointer to an array of i32 handles of
	// Param.Handle's kind and the number of handles in it.
	KindHandleList
	// KindScalar is one i32 or i64 (Param.Size 4 or 8): a number in
	// Param.Unit, an enum value or a flags mask.
	KindScalar
	// KindIn is two i32: a pointer and a byte length of data the host
	// reads (a string, a key, a body chunk, an address).
	KindIn
	// KindInStruct is one i32: a pointer to a Param.Size-byte struct of
	// witx record Param.Type that the host reads (an options struct,
	// usually with a mask parameter saying which fields are set).
	KindInStruct
	// KindOut is one i32: a pointer to Param.Size bytes, Param.Align
	// aligned, that the host writes (a handle, a number or a struct).
	KindOut
	// KindOutBuf is three i32: a buffer pointer, its capacity in bytes,
	// and a pointer to a u32 the host writes the bytes written to (or the
	// size needed, with buflen).
	KindOutBuf
	// KindCursorBuf is five i32, a multi-value page: a buffer pointer,
	// its capacity, the u32 cursor of the first value wanted, a pointer
	// to the i64 ending cursor (-1 when done) and a pointer to the u32
	// bytes written.
	KindCursorBuf
)

var kindNames = [...]string{
	KindHandle: "handle", KindHandleList: "handle list", KindScalar: "scalar", KindIn: "in",
	KindInStruct: "in struct", KindOut: "out", KindOutBuf: "out buffer", KindCursorBuf: "cursor buffer",
}

// String returns the kind's name, e.g. "out buffer".
func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return "kind(" + itoa(uint32(k)) + ")"
}

// Wasm returns the parameter's core Wasm value types, one letter each:
// 'i' for i32, 'I' for i64; "" for an invalid Param.
func (p Param) Wasm() string {
	switch p.Kind {
	case KindHandle, KindInStruct, KindOut:
		return "i"
	case KindScalar:
		switch p.Size {
		case 4:
			return "i"
		case 8:
			return "I"
		}
	case KindHandleList, KindIn:
		return "ii"
	case KindOutBuf:
		return "iii"
	case KindCursorBuf:
		return "iiiii"
	}
	return ""
}

// WasmParams returns the hostcall's core Wasm parameter types in the
// notation of Func.Params; its only result is the i32 status.
func (h Hostcall) WasmParams() string {
	s := ""
	for _, p := range h.Params {
		s += p.Wasm()
	}
	return s
}

// Func returns the hostcall's signature as Funcs lists it.
func (h Hostcall) Func() Func { return Func{Module: h.Module, Name: h.Name, Params: h.WasmParams()} }

// HandleKind is the kind of object a handle names, by its witx type name
// without "_handle". A handle of one kind is never valid as another.
type HandleKind string

// The handle kinds of the compute-at-edge witx definitions.
const (
	HandleRequest           HandleKind = "request"
	HandleResponse          HandleKind = "response"
	HandleBody              HandleKind = "body"
	HandlePendingRequest    HandleKind = "pending_request"
	HandleRequestPromise    HandleKind = "request_promise"
	HandleEndpoint          HandleKind = "endpoint" // a log endpoint
	HandleDictionary        HandleKind = "dictionary"
	HandleConfigStore       HandleKind = "config_store"
	HandleKVStore           HandleKind = "kv_store"
	HandleKVLookup          HandleKind = "kv_store_lookup"
	HandleKVInsert          HandleKind = "kv_store_insert"
	HandleKVDelete          HandleKind = "kv_store_delete"
	HandleKVList            HandleKind = "kv_store_list"
	HandleObjectStore       HandleKind = "object_store"      // the KV store's old interface
	HandleObjectStoreLookup HandleKind = "pending_kv_lookup" // of fastly_object_store
	HandleObjectStoreInsert HandleKind = "pending_kv_insert"
	HandleObjectStoreDelete HandleKind = "pending_kv_delete"
	HandleSecretStore       HandleKind = "secret_store"
	HandleSecret            HandleKind = "secret"
	HandleACL               HandleKind = "acl"
	HandleAsyncItem         HandleKind = "async_item" // a body, pending request, cache or promise handle
	HandleCache             HandleKind = "cache"
	HandleCacheBusy         HandleKind = "cache_busy"
	HandleCacheReplace      HandleKind = "cache_replace"
	HandleHTTPCache         HandleKind = "http_cache"
)

// Unit says what a number means.
type Unit string

// The units of scalar parameters and of numbers written to out-pointers.
const (
	UnitMs         Unit = "ms"
	UnitSec        Unit = "s"
	UnitNs         Unit = "ns"
	UnitBytes      Unit = "bytes"
	UnitMiB        Unit = "MiB"
	UnitCount      Unit = "count"
	UnitPerSecond  Unit = "per second"
	UnitIndex      Unit = "index"       // a position in a list the guest passed
	UnitBool       Unit = "0/1"         // 0 false, 1 true
	UnitEnum       Unit = "enum"        // a value of the witx enum Param.Type
	UnitMask       Unit = "bitmask"     // flags of the witx type Param.Type
	UnitHTTPStatus Unit = "status code" // an HTTP status code
	UnitNumber     Unit = "number"      // a version, port or generation
)

// SDK is a set of Fastly's public guest SDKs.
type SDK uint8

// The SDKs whose imports Hostcalls records.
const (
	// GoSDK is Fastly's Go SDK (github.com/fastly/compute-sdk-go).
	GoSDK SDK = 1 << iota
	// JSSDK is Fastly's JavaScript runtime (github.com/fastly/js-compute-runtime).
	JSSDK
)

// String returns the SDKs' names joined by "|", e.g. "go|js", or "none".
func (s SDK) String() string {
	out := ""
	for _, x := range []struct {
		bit  SDK
		name string
	}{{GoSDK, "go"}, {JSSDK, "js"}} {
		if s&x.bit != 0 {
			if out != "" {
				out += "|"
			}
			out += x.name
		}
	}
	if out == "" {
		return "none"
	}
	return out
}

// StatusSet is a set of fastly_status codes (bit n is Status n).
type StatusSet uint32

// StatusesOf returns the set of the given statuses.
func StatusesOf(st ...Status) StatusSet {
	var s StatusSet
	for _, x := range st {
		s |= 1 << x
	}
	return s
}

// Has reports whether st is in the set.
func (s StatusSet) Has(st Status) bool { return st < 32 && s&(1<<st) != 0 }

// List returns the statuses of the set in numeric order.
func (s StatusSet) List() []Status {
	var out []Status
	for st := Status(0); st < 32; st++ {
		if s.Has(st) {
			out = append(out, st)
		}
	}
	return out
}
