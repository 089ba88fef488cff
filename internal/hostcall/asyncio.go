package hostcall

import (
	"context"
	"encoding/binary"
	"io"
	"net/http"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/edgehost/edgehost/abi"
)

// fastly_async_io: select and is_ready over the session's async items
// (abi/README.md, "fastly_async_io"). An async item is
//
//   - a pending request (send_async, send_async_streaming, send_async_v2):
//     ready when its response headers arrived or it failed, so that
//     pending_req_wait returns at once;
//   - a body that is read (an origin response body, the downstream
//     request body, a body the guest built): ready when a read returns
//     without blocking: bytes are buffered, or the end or an error is
//     reached;
//   - a streaming body that is written (send_downstream streaming, or the
//     body of send_async_streaming): ready when a write accepts at least
//     one byte without blocking, or would fail at once.
//
// Readiness of a stream has to be observed without consuming it, so the
// first time a guest asks about a body the host interposes a buffer: a
// read-ahead of one chunk for a body that is read (readahead), a bounded
// queue drained by a goroutine for a body that is written (streamBuffer).
// Bodies nobody asks about keep their direct path.

const (
	// readaheadSize is the most a read-ahead takes from a stream at once.
	readaheadSize = 32 << 10
	// streamBufferSize bounds the bytes a streaming body holds for its
	// receiver once it is buffered; a write beyond it waits.
	streamBufferSize = 64 << 10
)

func asyncIOImpls() []impl {
	return []impl{
		bindAsyncIOSelect(asyncSelect),
		bindAsyncIOIsReady(func(c *call, a asyncIOIsReadyArgs) error {
			ready, _, err := c.s.readiness(a.Handle)
			if err != nil {
				return err
			}
			v := uint32(0)
			if ready {
				v = 1
			}
			return c.putU32(a.IsDoneOut, v)
		}),
	}
}

// asyncSelect implements select(handles_ptr, handles_len, timeout_ms,
// ready_idx_out): it blocks until one of the handles is ready and writes
// its index (the first ready one in list order). timeout_ms 0 waits
// without a time limit; otherwise, when none is ready in time, it writes
// abi.SelectNoneReady and answers ok. An empty list with timeout 0 is
// inval (it would wait forever; Viceroy answers the same); an empty list
// with a timeout sleeps for it. The wait always ends with the sandbox
// (its wall-clock limit): then the status is error.
func asyncSelect(c *call, a asyncIOSelectArgs) error {
	ptr, n, timeoutMs, out := a.Hs.Ptr, a.Hs.Len, a.TimeoutMs, a.ReadyIdxOut
	if n == 0 && timeoutMs == 0 {
		return statusErr(abi.Inval, "select with no handles and no timeout would never return")
	}
	if uint64(n)*4 > uint64(^uint32(0)) {
		return statusErr(abi.Inval, "handle list of %d entries overflows linear memory", n)
	}
	raw, ok := c.mem.Read(ptr, n*4)
	if !ok {
		return statusErr(abi.Inval, "handle list [%d, +%d) outside linear memory", ptr, n*4)
	}
	if n > 0 && ptr%4 != 0 {
		return statusErr(abi.Badalign, "handle list %d not 4-aligned", ptr)
	}
	hs := make([]uint32, n)
	for i := range hs {
		hs[i] = binary.LittleEndian.Uint32(raw[4*i:])
	}
	for _, h := range hs {
		if err := c.s.isAsyncItem(h); err != nil {
			return err
		}
	}

	// cases: 0 the sandbox's end, 1 the timeout (a nil channel when there
	// is none, never chosen), then one per distinct wait channel.
	cases := []reflect.SelectCase{
		{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(c.ctx.Done())},
		{Dir: reflect.SelectRecv, Chan: reflect.ValueOf((<-chan time.Time)(nil))},
	}
	if timeoutMs > 0 {
		t := time.NewTimer(time.Duration(timeoutMs) * time.Millisecond)
		defer t.Stop()
		cases[1].Chan = reflect.ValueOf(t.C)
	}
	seen := map[<-chan struct{}]bool{}
	for {
		cases = cases[:2]
		clear(seen)
		for _, h := range hs {
			ready, wait, err := c.s.readiness(h)
			if err != nil {
				return err
			}
			if ready {
				// A handle listed twice answers with its first index:
				// it may have become ready while the scan passed the
				// earlier entry, and readiness does not go back.
				return c.putU32(out, uint32(slices.Index(hs, h)))
			}
			if !seen[wait] {
				seen[wait] = true
				cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(wait)})
			}
		}
		switch chosen := c.s.selectUnlocked(cases); chosen {
		case 0:
			return statusErr(abi.Error, "sandbox ended while waiting in select: %v", context.Cause(c.ctx))
		case 1:
			return c.putU32(out, abi.SelectNoneReady)
		}
		// Something changed: look at every item again (a body may have
		// reached the end of one part and now waits on the next).
	}
}

// selectUnlocked is reflect.Select(cases)'s chosen index, waited for
// with the sandbox's CPU clock paused and its goroutine off its thread
// (cpuClock.pause).
func (s *Session) selectUnlocked(cases []reflect.SelectCase) int {
	s.cpu.pause()
	defer s.cpu.resume()
	chosen, _, _ := reflect.Select(cases)
	return chosen
}

// isAsyncItem checks that h is a pending request or a body. Errors: badf.
func (s *Session) isAsyncItem(h uint32) error {
	if _, ok := s.pending.lookup(h); ok {
		return nil
	}
	if _, ok := s.bodies.lookup(h); ok {
		return nil
	}
	if s.isKVPending(h) {
		return nil
	}
	if isCache, _, _ := s.cacheReadiness(h); isCache {
		return nil
	}
	return statusErr(abi.Badf, "handle %d is not an async item (a pending request, a body, a KV operation or a cache lookup)", h)
}

// readiness reports whether the I/O action of async item h would complete
// without blocking; when not, wait is closed once that may have changed.
// Errors: badf for a handle that is not an async item.
func (s *Session) readiness(h uint32) (ready bool, wait <-chan struct{}, err error) {
	if p, ok := s.pending.lookup(h); ok {
		if p.isDone() {
			return true, nil, nil
		}
		return false, p.done, nil
	}
	if b, ok := s.bodies.lookup(h); ok {
		if b.sink != nil {
			ready, wait = b.buffered().ready()
		} else {
			ready, wait = b.readReady()
		}
		return ready, wait, nil
	}
	if s.isKVPending(h) {
		return true, nil, nil // done when started (kvstore.go)
	}
	if isCache, ready, wait := s.cacheReadiness(h); isCache {
		return ready, wait, nil
	}
	return false, nil, s.isAsyncItem(h)
}

// readReady reports whether a read of b returns without blocking: it does
// when the front part holds bytes, or its stream has data, an error or
// its end buffered; parts that reached their end are dropped on the way
// (as a read would). A body with no parts left reads its end at once.
func (b *body) readReady() (bool, <-chan struct{}) {
	for len(b.parts) > 0 {
		part := &b.parts[0]
		if part.r == nil {
			return true, nil
		}
		ra, ok := part.r.(*readahead)
		if !ok {
			ra = &readahead{r: part.r, interrupt: b.s.downstreamInterrupt(part.r)}
			part.r = ra
			if ra.interrupt != nil {
				b.s.downstreamReadaheads = true
			}
		}
		st, wait := ra.poll()
		switch st {
		case raPending:
			return false, wait
		case raEOF:
			ra.Close()
			b.parts = b.parts[1:]
			continue
		}
		return true, nil
	}
	return true, nil
}

// downstreamInterrupt returns, for the current downstream request's body,
// a function that makes a read of it in flight return at once (a read
// deadline on the client connection), so that no read outlives the
// request (net/http forbids reading the body after the handler returns).
// For any other stream it returns nil.
func (s *Session) downstreamInterrupt(r io.ReadCloser) func() bool {
	if s.down == nil || s.down.d.Request == nil || s.down.d.Writer == nil {
		return nil
	}
	body := s.down.d.Request.Body
	if body == nil || !reflect.TypeOf(r).Comparable() || !reflect.TypeOf(body).Comparable() || r != body {
		return nil
	}
	w := s.down.d.Writer
	return func() bool {
		return http.NewResponseController(w).SetReadDeadline(time.Now()) == nil
	}
}

// stopDownstreamReads ends every read-ahead in flight on a downstream
// request body the session still holds; next_request calls it before the
// request is handed back to the server.
func (s *Session) stopDownstreamReads() {
	if !s.downstreamReadaheads {
		return // no body ever read a downstream request body ahead
	}
	for _, b := range s.bodies.all {
		for _, part := range b.parts {
			if ra, ok := part.r.(*readahead); ok && ra.interrupt != nil {
				ra.stop()
			}
		}
	}
}

// readahead wraps a stream so that its readiness can be polled: poll
// starts one read into a buffer on another goroutine, and Read returns
// what it got before reading on directly. Reads come from one goroutine
// at a time (the guest's, or the goroutine the body was handed to).
type readahead struct {
	r io.ReadCloser
	// interrupt, when set, makes a read in flight return soon and reports
	// whether it could (the downstream request body).
	interrupt func() bool

	mu     sync.Mutex
	buf    []byte        // read ahead and not yet returned
	err    error         // the stream's error once seen (io.EOF at its end)
	fill   chan struct{} // closed when the read in flight ends; nil when none
	closed bool
}

type raState int

const (
	raPending raState = iota // a read is in flight
	raData                   // bytes are buffered
	raEOF                    // the stream ended and everything was returned
	raErr                    // the stream failed and the bytes before were returned
)

// poll reports the state, starting a read-ahead when nothing is buffered;
// with raPending, wait is closed when that read ends.
func (a *readahead) poll() (raState, <-chan struct{}) {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case len(a.buf) > 0:
		return raData, nil
	case a.err == io.EOF:
		return raEOF, nil
	case a.err != nil:
		return raErr, nil
	}
	if a.fill == nil && !a.closed {
		a.fill = make(chan struct{})
		go a.readAhead(a.fill)
	}
	return raPending, a.fill
}

func (a *readahead) readAhead(done chan struct{}) {
	p := make([]byte, readaheadSize)
	n, err := a.r.Read(p)
	a.mu.Lock()
	a.buf, a.err, a.fill = p[:n], err, nil
	a.mu.Unlock()
	close(done)
}

// Read returns read-ahead bytes first (waiting for a read in flight),
// then reads the stream directly.
func (a *readahead) Read(p []byte) (int, error) {
	a.mu.Lock()
	if fill := a.fill; fill != nil {
		a.mu.Unlock()
		<-fill
		a.mu.Lock()
	}
	if len(a.buf) > 0 {
		n := copy(p, a.buf)
		a.buf = a.buf[n:]
		a.mu.Unlock()
		return n, nil
	}
	if err := a.err; err != nil {
		a.mu.Unlock()
		return 0, err
	}
	a.mu.Unlock()
	return a.r.Read(p)
}

// stop ends a read-ahead in flight through interrupt and waits for it;
// when interrupt cannot, it leaves the read running.
func (a *readahead) stop() {
	a.mu.Lock()
	fill := a.fill
	a.mu.Unlock()
	if fill != nil && a.interrupt != nil && a.interrupt() {
		<-fill
	}
}

// Close closes the stream, first ending a read-ahead in flight: an origin
// body's close cuts its read short, a downstream request body's read is
// interrupted. Only when neither works (a downstream body without a read
// deadline) does the close run beside the read, without waiting.
func (a *readahead) Close() error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil
	}
	a.closed = true
	fill := a.fill
	a.mu.Unlock()
	if fill == nil {
		return a.r.Close()
	}
	if a.interrupt == nil {
		err := a.r.Close()
		<-fill
		return err
	}
	if a.interrupt() {
		<-fill
		return a.r.Close()
	}
	go a.r.Close()
	return nil
}

// buffered puts a streamBuffer in front of a streaming body's sink (once)
// and returns it. Closing the body then first delivers what is queued;
// abandoning it drops the queue.
func (b *body) buffered() *streamBuffer {
	if q, ok := b.sink.(*streamBuffer); ok {
		return q
	}
	q := newStreamBuffer(b.s.ctx, b.sink)
	inner := b.sinkClose
	b.sink = q
	b.sinkClose = func(abandon bool) error {
		var err error
		if abandon {
			// The receiver is cut first: that ends a write blocked on it.
			err = inner(true)
			q.close(true)
			return err
		}
		if qerr := q.close(false); qerr != nil {
			return inner(true)
		}
		return inner(false)
	}
	return q
}

// streamBuffer is a bounded queue in front of a streaming body's sink: a
// goroutine writes what the guest queued to the sink, so readiness for
// writing is "the queue has room". The bytes queued plus the bytes being
// written never exceed max.
type streamBuffer struct {
	ctx context.Context // the session's: ends waits for room
	w   io.Writer
	max int

	mu       sync.Mutex
	buf      []byte // queued
	spare    []byte
	inflight int           // bytes the drain is writing to w
	err      error         // w's first error
	stopped  bool          // closed: no more writes
	changed  chan struct{} // closed (and replaced) when room frees or err is set
	kick     chan struct{} // cap 1: wakes the drain
	done     chan struct{} // closed when the drain ends
}

func newStreamBuffer(ctx context.Context, w io.Writer) *streamBuffer {
	q := &streamBuffer{ctx: ctx, w: w, max: streamBufferSize,
		changed: make(chan struct{}), kick: make(chan struct{}, 1), done: make(chan struct{})}
	go q.drain()
	return q
}

func (q *streamBuffer) wake() {
	select {
	case q.kick <- struct{}{}:
	default:
	}
}

// signal tells waiters the state changed; q.mu is held.
func (q *streamBuffer) signal() {
	close(q.changed)
	q.changed = make(chan struct{})
}

func (q *streamBuffer) drain() {
	defer close(q.done)
	for {
		q.mu.Lock()
		for len(q.buf) == 0 && !q.stopped && q.err == nil {
			q.mu.Unlock()
			<-q.kick
			q.mu.Lock()
		}
		if q.err != nil || len(q.buf) == 0 {
			q.mu.Unlock()
			return
		}
		chunk := q.buf
		q.buf, q.spare = q.spare[:0], nil
		q.inflight = len(chunk)
		q.mu.Unlock()

		_, err := q.w.Write(chunk)

		q.mu.Lock()
		q.inflight = 0
		q.spare = chunk[:0]
		if err != nil && q.err == nil {
			q.err = err
		}
		q.signal()
		q.mu.Unlock()
	}
}

// ready reports whether a write would not block: the queue has room, or
// the sink failed (a write fails at once).
func (q *streamBuffer) ready() (bool, <-chan struct{}) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.err != nil || q.stopped || len(q.buf)+q.inflight < q.max {
		return true, nil
	}
	return false, q.changed
}

// writeSome queues as much of p as there is room for, waiting only while
// there is none; it returns how much it took. Errors: the sink's error,
// or the session's end while waiting.
func (q *streamBuffer) writeSome(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		q.mu.Lock()
		if q.err != nil {
			err := q.err
			q.mu.Unlock()
			return 0, err
		}
		if q.stopped {
			q.mu.Unlock()
			return 0, io.ErrClosedPipe
		}
		if room := q.max - len(q.buf) - q.inflight; room > 0 {
			n := min(room, len(p))
			q.buf = append(q.buf, p[:n]...)
			q.mu.Unlock()
			q.wake()
			return n, nil
		}
		changed := q.changed
		q.mu.Unlock()
		select {
		case <-changed:
		case <-q.ctx.Done():
			return 0, context.Cause(q.ctx)
		}
	}
}

// Write queues all of p (io.Writer), waiting for room as needed.
func (q *streamBuffer) Write(p []byte) (int, error) {
	total := 0
	for total < len(p) {
		n, err := q.writeSome(p[total:])
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// close stops the queue and waits for the drain: after everything queued
// was written (abandon false), or at once after the write in flight
// (abandon true). It returns the sink's error, if any.
func (q *streamBuffer) close(abandon bool) error {
	q.mu.Lock()
	q.stopped = true
	if abandon {
		q.buf = nil
	}
	q.signal()
	q.mu.Unlock()
	q.wake()
	<-q.done
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.err
}
