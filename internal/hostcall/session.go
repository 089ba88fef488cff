package hostcall

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/internal/acl"
)

// handles is a typed handle table. Handles come from a counter shared by
// every table of a session, so no handle is reused within a session and a
// handle of one kind is never valid as another (badf).
type handles[V any] struct {
	// few holds the first handles of the table without a map: most
	// tables of a sandbox hold at most two at once (a hello's request,
	// response and bodies), and a map costs two allocations.
	few  [fewHandles]slot[V]
	m    map[uint32]V // the handles few has no room for
	next *uint32
}

// fewHandles is how many handles a table holds before it makes a map.
const fewHandles = 2

// slot is one of handles.few: h is live while used is set.
type slot[V any] struct {
	h    uint32
	used bool
	v    V
}

// newHandles returns an empty table; its map is made when the table first
// holds more than fewHandles handles (most of a sandbox's tables stay
// empty).
func newHandles[V any](next *uint32) handles[V] {
	return handles[V]{next: next}
}

func (t *handles[V]) add(v V) uint32 {
	*t.next++
	if *t.next == abi.NoHandle {
		*t.next++
	}
	h := *t.next
	for i := range t.few {
		if sl := &t.few[i]; !sl.used {
			*sl = slot[V]{h: h, used: true, v: v}
			return h
		}
	}
	if t.m == nil {
		t.m = map[uint32]V{}
	}
	t.m[h] = v
	return h
}

// lookup returns the value of h, if the table holds it.
func (t *handles[V]) lookup(h uint32) (V, bool) {
	for i := range t.few {
		if sl := &t.few[i]; sl.used && sl.h == h {
			return sl.v, true
		}
	}
	v, ok := t.m[h]
	return v, ok
}

func (t *handles[V]) get(h uint32) (V, error) {
	v, ok := t.lookup(h)
	if !ok {
		var zero V
		return zero, statusErr(abi.Badf, "no such handle %d", h)
	}
	return v, nil
}

// drop takes h out of the table, if it holds it, releasing nothing.
func (t *handles[V]) drop(h uint32) {
	for i := range t.few {
		if sl := &t.few[i]; sl.used && sl.h == h {
			*sl = slot[V]{}
			return
		}
	}
	delete(t.m, h)
}

// remove takes h out of the table; a value that counts against a
// sandbox bound (its header blocks) stops counting. It returns get's
// error for a handle not in the table.
func (t *handles[V]) remove(h uint32) (V, error) {
	v, err := t.get(h)
	if err == nil {
		t.drop(h)
		releaseValue(v)
	}
	return v, err
}

// discard is remove for a caller that has no use for the value or the
// error: a handle not in the table (a request handle a send already
// consumed) is no error, and no error is formatted for it (a reused
// sandbox releases its request's handles after every request).
func (t *handles[V]) discard(h uint32) {
	if v, ok := t.lookup(h); ok {
		t.drop(h)
		releaseValue(v)
	}
}

// releaseValue lets a value that counts against a sandbox bound (a
// header block) stop counting.
func releaseValue(v any) {
	if r, ok := v.(interface{ release() }); ok {
		r.release()
	}
}

// len is how many handles the table holds.
func (t *handles[V]) len() int {
	n := len(t.m)
	for i := range t.few {
		if t.few[i].used {
			n++
		}
	}
	return n
}

// all yields every handle the table holds and its value, in no set
// order; the loop may drop the handle it is given.
func (t *handles[V]) all(yield func(uint32, V) bool) {
	for i := range t.few {
		if sl := t.few[i]; sl.used && !yield(sl.h, sl.v) {
			return
		}
	}
	for h, v := range t.m {
		if !yield(h, v) {
			return
		}
	}
}

// Downstream describes the downstream request a session serves (for a
// command run, CommandDownstream). A session without one answers
// body_downstream_get and send_downstream with unsupported and the
// metadata getters with none.
type Downstream struct {
	// Request is the client's request; its URL is made absolute for the
	// guest (http://host/path).
	Request *http.Request
	// Writer receives the response.
	Writer http.ResponseWriter
	// ClientIP and ServerIP are the two ends of the client connection.
	ClientIP, ServerIP net.IP
	// TLS describes the client connection's TLS; nil on plain HTTP.
	TLS *DownstreamTLS
	// H2Fingerprint, when set, returns the connection's HTTP/2
	// fingerprint (tlsfp.H2), "" when the request is not HTTP/2.
	H2Fingerprint func() string
}

// Session is the per-sandbox state: handle tables for requests,
// responses, bodies, pending requests, log endpoints and stores, the
// downstream request and response, and the sandbox's dynamic backends.
// A session is used by one guest thread; only pending requests are touched
// by other goroutines, through their own synchronisation.
type Session struct {
	// call is the running hostcall's (bind), scratch putMulti's buffer,
	// kept between hostcalls (up to maxScratch bytes).
	call    call
	scratch []byte
	env     *Env
	id      string
	ctx     context.Context

	next     uint32
	reqs     handles[*request]
	resps    handles[*response]
	bodies   handles[*body]
	pending  handles[*pendingRequest]
	logs     handles[*logEndpoint]
	stores   handles[map[string]string]
	promises handles[time.Duration] // next_request promises: their wait timeout
	kv       *kvHandles             // KV stores and pending operations (kvstore.go), made on first use
	secrets  *secretHandles         // secret stores and secrets (secretstore.go), made on first use
	cache    *cacheHandles          // core cache lookups (corecache.go), made on first use
	acls     handles[*acl.ACL]

	down        *downstream
	reuse       Reuse
	dynamic     map[string]*backend
	pendingOpen int
	bufferedLen int64
	wg          sync.WaitGroup
	cpu         cpuClock // get_vcpu_ms; set by RunGuest

	fieldBytes int64             // header and trailer bytes of the blocks the guest changed (growFields)
	logBudget  logBucket         // fastly_log.write bytes (checkLog)
	logHs      map[string]uint32 // log endpoint handles by name (logHandle)
	storeHs    map[string]uint32 // store handles by module and name (storeHandle)
	// downstreamReadaheads is set once a downstream request body is read
	// ahead (readReady): stopDownstreamReads has something to stop.
	downstreamReadaheads bool
}

// NewSession starts the state of one sandbox. id is the request id (it
// tags log lines and is what downstream_client_request_id returns); d may
// be nil for a sandbox without a downstream request.
func (e *Env) NewSession(ctx context.Context, id string, d *Downstream) *Session {
	s := &Session{env: e, id: id, ctx: ctx, cpu: cpuClock{wallStart: time.Now()}}
	s.reqs = newHandles[*request](&s.next)
	s.resps = newHandles[*response](&s.next)
	s.bodies = newHandles[*body](&s.next)
	s.pending = newHandles[*pendingRequest](&s.next)
	s.logs = newHandles[*logEndpoint](&s.next)
	s.stores = newHandles[map[string]string](&s.next)
	s.promises = newHandles[time.Duration](&s.next)
	s.acls = newHandles[*acl.ACL](&s.next)
	if d != nil {
		s.down = newDownstream(s, d)
	}
	return s
}

// ID is the session's request id.
func (s *Session) ID() string { return s.id }

type sessionKey struct{}

// WithSession returns ctx carrying s; engines pass it to every hostcall.
func WithSession(ctx context.Context, s *Session) context.Context {
	return context.WithValue(ctx, sessionKey{}, s)
}

func sessionFrom(ctx context.Context) *Session {
	s, _ := ctx.Value(sessionKey{}).(*Session)
	return s
}

func requestIDFrom(ctx context.Context) string {
	if s := sessionFrom(ctx); s != nil {
		return s.id
	}
	return ""
}

// logger returns the env's logger with the session's current request id.
// It reads the id, so only the guest's thread may call it; a goroutine
// takes the logger made before it starts.
func (s *Session) logger() *slog.Logger { return s.env.Logger.With("request_id", s.id) }

// Close releases everything the guest left open: bodies (a streaming
// downstream body left open is abandoned) and backend requests in flight
// (cancelled, their goroutines waited for).
func (s *Session) Close() {
	for h, b := range s.bodies.all {
		b.abandon()
		s.bodies.drop(h)
	}
	var left []*pendingRequest
	if n := s.pending.len(); n > 0 {
		left = make([]*pendingRequest, 0, n)
	}
	for h, p := range s.pending.all {
		p.cancel()
		left = append(left, p)
		s.pending.drop(h)
	}
	s.wg.Wait()
	s.closeCache()
	for _, p := range left {
		p.discard()
	}
	for name, b := range s.dynamic {
		s.env.pools.Release(b.pool)
		delete(s.dynamic, name)
	}
}

// maxScratch bounds the buffer a session keeps for listings (putMulti).
const maxScratch = 16 << 10
