package guestsdk

import (
	"errors"
	"strings"
	"time"
	"unsafe"
)

// CacheOverride changes how the host's readthrough cache treats one
// backend request (fastly_http_req.cache_override_v2_set; ../abi/README.md
// and the README's "Caching" say what edgehost does with each field).
// Set it as Request.CacheOverride before Send or SendAsync.
type CacheOverride struct {
	// Pass sends the request to the backend past the cache: the answer is
	// neither looked up nor stored.
	Pass bool
	// TTL, when > 0, is how long the answer stays fresh, in place of what
	// its headers say. The ABI counts whole seconds: TTL is rounded down,
	// and a TTL under 1 s with SWR unset is 0 (not fresh at all).
	TTL time.Duration
	// SWR, when > 0, is the stale-while-revalidate window (whole seconds)
	// in place of the one the headers give.
	SWR time.Duration
	// PCI asks that the answer not be written to persistent storage.
	PCI bool
	// SurrogateKeys are added to those of the answer's Surrogate-Key
	// header, for PurgeSurrogateKey. The host refuses (inval) a key over
	// 1024 bytes or keys over 16 KiB together.
	SurrogateKeys []string
}

// The cache_override_tag bits (../abi/README.md).
const (
	overridePass = 1 << 0
	overrideTTL  = 1 << 1
	overrideSWR  = 1 << 2
	overridePCI  = 1 << 3
)

// apply sets o on host request req.
func (o *CacheOverride) apply(req uint32) error {
	var tag uint32
	if o.Pass {
		tag |= overridePass
	}
	if o.TTL > 0 {
		tag |= overrideTTL
	}
	if o.SWR > 0 {
		tag |= overrideSWR
	}
	if o.PCI {
		tag |= overridePCI
	}
	sk := strings.Join(o.SurrogateKeys, " ")
	return statusErr("fastly_http_req.cache_override_v2_set", reqCacheOverrideV2Set(req, tag,
		uint32(o.TTL/time.Second), uint32(o.SWR/time.Second), strPtr(sk), uint32(len(sk))))
}

// PurgeSurrogateKey purges the host's cached objects carrying surrogate
// key key (fastly_purge.purge_surrogate_key): removed, or with soft marked
// stale, so they revalidate (or serve stale within their
// stale-while-revalidate window). The next request sees the purge. Errors:
// an empty key or one with spaces (the host answers inval), a host
// without purging (unsupported).
func PurgeSurrogateKey(key string, soft bool) error {
	if key == "" || strings.ContainsAny(key, " \t\r\n") {
		return errors.New("guestsdk: PurgeSurrogateKey: want one non-empty key")
	}
	var mask uint32
	if soft {
		mask = 1 // soft_purge
	}
	var opts [3]uint32 // purge_options, unused without ret_buf
	return statusErr("fastly_purge.purge_surrogate_key", purgePurgeSurrogateKey(strPtr(key), uint32(len(key)), mask, unsafe.Pointer(&opts)))
}
