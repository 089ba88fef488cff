package hostcall

import (
	"time"

	"github.com/edgehost/edgehost/abi"
)

// Defaults of the per-sandbox bounds in Limits (README.md, "Limits").
const (
	// DefaultMaxHandles caps the handles a sandbox holds at once.
	DefaultMaxHandles = 4096
	// DefaultMaxSandboxHeaderBytes caps the header and trailer bytes of
	// the blocks a sandbox's guest changed, all together.
	DefaultMaxSandboxHeaderBytes = 16 << 20
	// DefaultMaxLogRecordBytes caps one fastly_log.write record.
	DefaultMaxLogRecordBytes = 64 << 10
	// DefaultLogBytesPerSecond is what a sandbox may log per second
	// (fastly_log.write), with a burst of as much.
	DefaultLogBytesPerSecond = 1 << 20
)

// handleMakers are the hostcalls that create handles (or a dynamic
// backend): at the sandbox's MaxHandles they answer limitexceeded and do
// nothing.
var handleMakers = map[[2]string]bool{
	{abi.ModuleHTTPReq, "new"}:                                   true,
	{abi.ModuleHTTPReq, "body_downstream_get"}:                   true,
	{abi.ModuleHTTPReq, "send"}:                                  true,
	{abi.ModuleHTTPReq, "send_v2"}:                               true,
	{abi.ModuleHTTPReq, "send_v3"}:                               true,
	{abi.ModuleHTTPReq, "send_async"}:                            true,
	{abi.ModuleHTTPReq, "send_async_v2"}:                         true,
	{abi.ModuleHTTPReq, "send_async_streaming"}:                  true,
	{abi.ModuleHTTPReq, "pending_req_poll"}:                      true,
	{abi.ModuleHTTPReq, "pending_req_poll_v2"}:                   true,
	{abi.ModuleHTTPReq, "pending_req_wait"}:                      true,
	{abi.ModuleHTTPReq, "pending_req_wait_v2"}:                   true,
	{abi.ModuleHTTPReq, "register_dynamic_backend"}:              true,
	{abi.ModuleHTTPResp, "new"}:                                  true,
	{abi.ModuleHTTPBody, "new"}:                                  true,
	{abi.ModuleLog, "endpoint_get"}:                              true,
	{abi.ModuleConfigStore, "open"}:                              true,
	{abi.ModuleDictionary, "open"}:                               true,
	{abi.ModuleHTTPDownstream, "next_request"}:                   true,
	{abi.ModuleHTTPDownstream, "next_request_wait"}:              true,
	{abi.ModuleKVStore, "open"}:                                  true,
	{abi.ModuleKVStore, "lookup"}:                                true,
	{abi.ModuleKVStore, "lookup_wait"}:                           true,
	{abi.ModuleKVStore, "lookup_wait_v2"}:                        true,
	{abi.ModuleKVStore, "insert"}:                                true,
	{abi.ModuleKVStore, "delete"}:                                true,
	{abi.ModuleKVStore, "list"}:                                  true,
	{abi.ModuleKVStore, "list_wait"}:                             true,
	{abi.ModuleSecretStore, "open"}:                              true,
	{abi.ModuleSecretStore, "get"}:                               true,
	{abi.ModuleSecretStore, "from_bytes"}:                        true,
	{abi.ModuleACL, "open"}:                                      true,
	{abi.ModuleACL, "lookup"}:                                    true,
	{abi.ModuleCache, "lookup"}:                                  true,
	{abi.ModuleCache, "insert"}:                                  true,
	{abi.ModuleCache, "transaction_lookup"}:                      true,
	{abi.ModuleCache, "transaction_lookup_async"}:                true,
	{abi.ModuleCache, "cache_busy_handle_wait"}:                  true,
	{abi.ModuleCache, "transaction_insert"}:                      true,
	{abi.ModuleCache, "transaction_insert_and_stream_back"}:      true,
	{abi.ModuleCache, "get_body"}:                                true,
	{abi.ModuleCache, "replace"}:                                 true,
	{abi.ModuleCache, "replace_insert"}:                          true,
	{abi.ModuleCache, "replace_get_body"}:                        true,
	{abi.ModuleHTTPCache, "lookup"}:                              true,
	{abi.ModuleHTTPCache, "transaction_lookup"}:                  true,
	{abi.ModuleHTTPCache, "transaction_insert"}:                  true,
	{abi.ModuleHTTPCache, "transaction_insert_and_stream_back"}:  true,
	{abi.ModuleHTTPCache, "transaction_update_and_return_fresh"}: true,
	{abi.ModuleHTTPCache, "get_suggested_backend_request"}:       true,
	{abi.ModuleHTTPCache, "prepare_response_for_storage"}:        true,
	{abi.ModuleHTTPCache, "get_found_response"}:                  true,
}

// limitHandles wraps the hostcalls that create handles with the
// sandbox's handle cap. A call that makes two handles (a response and its
// body) may pass the cap by one.
func limitHandles(all []impl) []impl {
	for i, im := range all {
		if !handleMakers[[2]string{im.module, im.name}] {
			continue
		}
		fn := im.fn
		all[i].fn = func(c *call) error {
			if n, max := c.s.liveHandles(), c.s.env.limits.MaxHandles; n >= max {
				return statusErr(abi.LimitExceeded, "the sandbox holds %d handles, the limit (max_handles)", max)
			}
			return fn(c)
		}
	}
	return all
}

// liveHandles counts what the sandbox holds: handles of every kind and
// dynamic backends.
func (s *Session) liveHandles() int {
	n := s.reqs.len() + s.resps.len() + s.bodies.len() + s.pending.len() +
		s.logs.len() + s.stores.len() + s.promises.len() + len(s.dynamic) + s.acls.len()
	if kv := s.kv; kv != nil {
		n += kv.stores.len() + kv.lookups.len() + kv.inserts.len() + kv.deletes.len() + kv.lists.len()
	}
	if sec := s.secrets; sec != nil {
		n += sec.stores.len() + sec.secrets.len()
	}
	if ch := s.cache; ch != nil {
		n += ch.lookups.len() + ch.busy.len() + ch.replace.len() + ch.http.len()
	}
	return n
}

// growFields checks that h may grow by delta bytes: the block stays
// within MaxHeaderBytes (else tooLarge: httpheadtoolarge for headers,
// limitexceeded for trailers) and the sandbox's changed blocks within
// MaxSandboxHeaderBytes (else limitexceeded). The first change makes the
// block counted in the sandbox's total.
func (s *Session) growFields(h *header, delta int, tooLarge abi.Status) error {
	lim := s.env.limits
	if h.n+delta > lim.MaxHeaderBytes {
		return statusErr(tooLarge, "field block over %d bytes (max_header_bytes)", lim.MaxHeaderBytes)
	}
	if h.acct == nil {
		h.acct = &s.fieldBytes
		s.fieldBytes += int64(h.n)
	}
	if delta > 0 && s.fieldBytes+int64(delta) > lim.MaxSandboxHeaderBytes {
		return statusErr(abi.LimitExceeded, "the sandbox's header and trailer blocks over %d bytes (max_sandbox_header_bytes)", lim.MaxSandboxHeaderBytes)
	}
	return nil
}

// release hooks: a value taken out of its handle table stops counting.

func (r *request) release()  { r.hdr.release() }
func (r *response) release() { r.hdr.release() }
func (b *body) release()     { b.trailers.release() }

// logBucket is a sandbox's log budget: a token bucket of bytes refilled
// at LogBytesPerSecond, holding at most one second's worth.
type logBucket struct {
	tokens float64
	last   time.Time
	warned bool
}

// take spends n bytes of the bucket; false when they are not there.
func (b *logBucket) take(now time.Time, n int, perSec int) bool {
	if b.last.IsZero() {
		b.tokens = float64(perSec)
	} else {
		b.tokens = min(float64(perSec), b.tokens+now.Sub(b.last).Seconds()*float64(perSec))
	}
	b.last = now
	if float64(n) > b.tokens {
		return false
	}
	b.tokens -= float64(n)
	return true
}

// checkLog applies the log bounds to a record of n bytes. Errors:
// limitexceeded for a record over MaxLogRecordBytes or beyond the
// sandbox's LogBytesPerSecond (the first such refusal is logged).
func (s *Session) checkLog(endpoint string, n int) error {
	lim := s.env.limits
	if n > lim.MaxLogRecordBytes {
		return statusErr(abi.LimitExceeded, "log record of %d bytes over %d (max_log_record_bytes)", n, lim.MaxLogRecordBytes)
	}
	if !s.logBudget.take(time.Now(), n, lim.LogBytesPerSecond) {
		if !s.logBudget.warned {
			s.logBudget.warned = true
			s.logger().Warn("guest log records dropped: over the sandbox's log rate (log_bytes_per_sec)",
				"log_endpoint", endpoint, "bytes_per_sec", lim.LogBytesPerSecond)
		}
		return statusErr(abi.LimitExceeded, "over %d log bytes per second (log_bytes_per_sec)", lim.LogBytesPerSecond)
	}
	return nil
}

// logHandle returns the sandbox's handle for the log endpoint name: one
// per name, so that a guest opening its endpoint on every request holds
// one handle.
func (s *Session) logHandle(name string) uint32 {
	if h, ok := s.logHs[name]; ok {
		return h
	}
	if s.logHs == nil {
		s.logHs = map[string]uint32{}
	}
	h := s.logs.add(&logEndpoint{name: name})
	s.logHs[name] = h
	return h
}

// storeHandle returns the sandbox's handle for a config store or
// dictionary (st its contents), one per key: the module and the name,
// since each module looks in its own section first.
func (s *Session) storeHandle(key string, st map[string]string) uint32 {
	if h, ok := s.storeHs[key]; ok {
		return h
	}
	if s.storeHs == nil {
		s.storeHs = map[string]uint32{}
	}
	h := s.stores.add(st)
	s.storeHs[key] = h
	return h
}

// releaseDownstream drops the handles of a finished downstream request
// (a reused sandbox moving on to the next one): its request and the
// bodies handed out for it that the guest still holds.
func (s *Session) releaseDownstream(d *downstream) {
	if d.taken {
		s.reqs.discard(d.reqH)
	}
	for _, h := range d.bodyHs {
		if b, ok := s.bodies.lookup(h); ok {
			b.abandon()
			s.bodies.discard(h)
		}
	}
}
