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
	m    map[uint32]V
	next *uint32
}

// newHandles returns an empty table; its map is made by the first add
// (most of a sandbox's tables stay empty).
func newHandles[V any](next *uint32) handles[V] {
	return handles[V]{next: next}
}

func (t *handles[V]) add(v V) uint32 {
	*t.next++
	if *t.next == abi.NoHandle {
		*t.next++
	}
	if t.m == nil {
		t.m = map[uint32]V{}
	}
	t.m[*t.next] = v
	return *t.next
}

func (t *handles[V]) get(h uint32) (V, error) {
	v, ok := t.m[h]
	if !ok {
		var zero V
		return zero, statusErr(abi.Badf, "no such handle %d", h)
	}
	return v, nil
}

// remove takes h out of the table; a value that counts against a
// sandbox bound (its header blocks) stops counting. It returns get's
// error for a handle not in the table.
func (t *handles[V]) remove(h uint32) (V, error) {
	v, err := t.get(h)
	if err == nil {
		t.drop(h)
	}
	return v, err
}

// drop is remove for a caller that has no use for the value or the
// error: a handle not in the table (a request handle a send already
// consumed) is no error, and no error is made for it (a formatted error
// per request in a reused sandbox's release of its request).
func (t *handles[V]) drop(h uint32) {
	v, ok := t.m[h]
	if !ok {
		return
	}
	delete(t.m, h)
	if r, ok := any(v).(interface{ release() }); ok {
		r.release()
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
	for h, b := range s.bodies.m {
		b.abandon()
		delete(s.bodies.m, h)
	}
	left := make([]*pendingRequest, 0, len(s.pending.m))
	for h, p := range s.pending.m {
		p.cancel()
		left = append(left, p)
		delete(s.pending.m, h)
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
