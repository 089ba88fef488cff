package hostcall

import (
	"context"
	"encoding/binary"
	"time"

	"github.com/edgehost/edgehost/abi"
)

// Reuse lets one sandbox serve several downstream requests in turn
// (fastly_http_downstream.next_request, Fastly's Go SDK ServeMany). The
// server implements it; a session without one answers next_request with
// unsupported.
type Reuse interface {
	// Done reports that the current downstream request is complete, with
	// how its response ended.
	Done(out Outcome)
	// Next parks the sandbox until the server hands it another downstream
	// request, for at most timeout. ok is false when none came (timeout,
	// shutdown, ctx ended); the guest then ends.
	Next(ctx context.Context, timeout time.Duration) (id string, d *Downstream, ok bool)
}

// SetReuse enables next_request for the session.
func (s *Session) SetReuse(r Reuse) { s.reuse = r }

// Next-request options (next_request_options_mask and the
// next_request_options struct: timeout_ms u64 at offset 0).
const (
	nextReqReserved   = 1 << 0
	nextReqTimeout    = 1 << 1
	nextReqKnownBits  = nextReqReserved | nextReqTimeout
	defaultNextWait   = 10 * time.Second
	maxNextWait       = 10 * time.Minute
	nextReqOptionsLen = 8
)

// nextRequest implements next_request(mask, opts_ptr, promise_out): the
// current downstream request is finished (a guest that sent no response
// gets the client a 500) and a promise is returned for the next one.
func nextRequest(c *call, a downstreamNextRequestArgs) error {
	if c.s.reuse == nil {
		return statusErr(abi.Unsupported, "sandbox reuse is not offered to this sandbox")
	}
	mask := a.OptionsMask
	if mask&nextReqReserved != 0 || mask&^nextReqKnownBits != 0 {
		return statusErr(abi.Inval, "bad next_request options mask %#x", mask)
	}
	wait := defaultNextWait
	if mask&nextReqTimeout != 0 {
		b, ok := c.mem.Read(a.Options, nextReqOptionsLen)
		if !ok {
			return statusErr(abi.Inval, "next_request options outside linear memory")
		}
		ms := binary.LittleEndian.Uint64(b)
		wait = time.Duration(min(ms, uint64(maxNextWait/time.Millisecond))) * time.Millisecond
	}
	if c.s.down != nil {
		c.s.stopDownstreamReads()
		out := c.s.Finish(nil, 500)
		c.s.releaseDownstream(c.s.down)
		c.s.down = nil
		c.s.reuse.Done(out)
	}
	return c.putU32(a.PromiseOut, c.s.promises.add(wait))
}

// nextRequestWait implements next_request_wait(promise, req_out,
// body_out): it blocks until the next downstream request, or returns
// `none` when none came in time (the guest should end).
func nextRequestWait(c *call, a downstreamNextRequestWaitArgs) error {
	wait, err := c.s.promises.remove(a.Handle)
	if err != nil {
		return err
	}
	id, d, ok := c.s.nextDownstream(c.ctx, wait)
	if !ok {
		return statusErr(abi.None, "no downstream request came within %v", wait)
	}
	c.s.id = id
	c.s.down = newDownstream(c.s, d)
	rh, bh, err := c.s.down.takeRequest()
	if err != nil {
		return err
	}
	if err := c.putU32(a.ReqOut, rh); err != nil {
		return err
	}
	return c.putU32(a.BodyOut, bh)
}

// nextDownstream parks the sandbox in Reuse.Next with its CPU clock
// paused and its goroutine off its thread (cpuClock.pause): the
// goroutine that hands the next request over runs the guest on its own
// thread, with no thread to wake.
func (s *Session) nextDownstream(ctx context.Context, wait time.Duration) (string, *Downstream, bool) {
	s.cpu.pause()
	defer s.cpu.resume()
	return s.reuse.Next(ctx, wait)
}
