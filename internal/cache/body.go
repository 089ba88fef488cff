package cache

import (
	"context"
	"errors"
	"io"
	"sync"
)

// stream is the body of an object being filled from the origin: the filler
// appends to it while any number of readers read it from the start, each at
// its own pace. While storing, it keeps every byte (they become the object's
// body). Once the body passes the size cap it stops storing: from then on it
// keeps only the bytes some reader has not read yet, and no new reader may
// attach.
type stream struct {
	mu      sync.Mutex
	data    []byte // bytes from offset base on
	base    int64
	done    bool
	err     error // the fill's error once done; nil for a complete body
	noStore bool
	readers map[*streamReader]struct{}
	signal  chan struct{} // closed and replaced whenever data, done or readers change
}

func newStream() *stream {
	return &stream{readers: map[*streamReader]struct{}{}, signal: make(chan struct{})}
}

// notify wakes every waiting reader; s.mu held.
func (s *stream) notify() {
	close(s.signal)
	s.signal = make(chan struct{})
}

// write appends p. It returns false when no reader is left and nothing is
// being stored: the filler may stop.
func (s *stream) write(p []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.data = append(s.data, p...)
	s.notify()
	return !s.noStore || len(s.readers) > 0
}

// stopStoring switches the stream to pass-through: bytes every reader has
// read are dropped.
func (s *stream) stopStoring() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.noStore = true
	s.trim()
}

// trim drops the bytes every reader has read; s.mu held, noStore set.
func (s *stream) trim() {
	low := s.base + int64(len(s.data))
	for r := range s.readers {
		low = min(low, r.off)
	}
	if n := low - s.base; n > 0 {
		s.data = append(s.data[:0:0], s.data[n:]...)
		s.base = low
	}
}

// finish ends the stream with err (nil: the body is complete).
func (s *stream) finish(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.done, s.err = true, err
	s.notify()
}

// stored returns the body when the stream kept all of it; the filler calls
// it once it has written everything.
func (s *stream) stored() ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.noStore {
		return nil, false
	}
	return s.data, true
}

// reader returns a new reader from the first byte, or nil when the stream
// no longer holds it.
func (s *stream) reader(ctx context.Context) *streamReader {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.base != 0 {
		return nil
	}
	r := &streamReader{s: s, ctx: ctx}
	s.readers[r] = struct{}{}
	return r
}

// streamReader is one reader of a stream, an io.ReadCloser. Read blocks
// until bytes arrive, the fill ends, the reader's context ends or the
// reader is closed.
type streamReader struct {
	s      *stream
	ctx    context.Context
	off    int64
	closed bool
}

func (r *streamReader) Read(p []byte) (int, error) {
	s := r.s
	for {
		s.mu.Lock()
		if r.closed {
			s.mu.Unlock()
			return 0, errors.New("cache: read on closed body")
		}
		if avail := s.base + int64(len(s.data)) - r.off; avail > 0 {
			n := copy(p, s.data[r.off-s.base:])
			r.off += int64(n)
			if s.noStore {
				s.trim()
			}
			s.mu.Unlock()
			return n, nil
		}
		if s.done {
			err := s.err
			s.mu.Unlock()
			if err == nil {
				return 0, io.EOF
			}
			return 0, err
		}
		wait := s.signal
		s.mu.Unlock()
		select {
		case <-wait:
		case <-r.ctx.Done():
			return 0, r.ctx.Err()
		}
	}
}

// Close detaches the reader; a pass-through fill with no reader left stops.
func (r *streamReader) Close() error {
	s := r.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if !r.closed {
		r.closed = true
		delete(s.readers, r)
		if s.noStore {
			s.trim()
		}
		s.notify()
	}
	return nil
}
