package main

import (
	"io"
	"sync"
	"time"
)

// batchDelay is how long a write waits in a batchWriter before it is
// written out, at most; batchSize is how many bytes a batch holds before
// the write that fills it writes it out itself.
const (
	batchDelay = 10 * time.Millisecond
	batchSize  = 64 << 10
)

// batchWriter gathers the writes to w into batches, written out batchDelay
// after the first of a batch or when batchSize bytes wait, in the order
// they were made: under load one write(2) carries hundreds of request log
// lines instead of one each (README.md, Request logs). Every writer of
// serve's stderr (the logger, compile progress, watch's build failures)
// shares one, so lines keep their order. Close writes out what waits; a
// write after Close goes straight to w.
type batchWriter struct {
	w     io.Writer
	out   sync.Mutex // held while a batch is written to w: batches in order
	mu    sync.Mutex // guards what follows
	buf   []byte     // the batch filling
	spare []byte     // the last batch written, reused
	timer *time.Timer
	armed bool // the timer will write the batch out
	done  bool // closed
}

func newBatchWriter(w io.Writer) *batchWriter {
	b := &batchWriter{w: w}
	b.timer = time.AfterFunc(time.Hour, b.flush)
	b.timer.Stop()
	return b
}

// Write adds p to the batch. It reports no error of w's: those show on
// the flush (and slog ignores a handler's write errors all the same).
func (b *batchWriter) Write(p []byte) (int, error) {
	b.mu.Lock()
	if b.done {
		b.mu.Unlock()
		b.out.Lock()
		defer b.out.Unlock()
		return b.w.Write(p)
	}
	b.buf = append(b.buf, p...)
	full := len(b.buf) >= batchSize
	if !full && !b.armed {
		b.armed = true
		b.timer.Reset(batchDelay)
	}
	b.mu.Unlock()
	if full {
		// The writer that filled the batch writes it: a slow w slows the
		// writers down, as an unbatched one did, instead of growing the
		// batch without bound.
		b.flush()
	}
	return len(p), nil
}

// flush writes out the batch waiting, if any.
func (b *batchWriter) flush() {
	b.out.Lock()
	defer b.out.Unlock()
	b.mu.Lock()
	batch := b.buf
	b.buf, b.spare = b.spare[:0], nil
	b.armed = false
	b.mu.Unlock()
	if len(batch) > 0 {
		b.w.Write(batch)
	}
	b.mu.Lock()
	if b.spare == nil && cap(batch) <= 4*batchSize {
		b.spare = batch
	}
	b.mu.Unlock()
}

// Close writes out what waits; later writes go straight to w. It never
// fails.
func (b *batchWriter) Close() error {
	b.timer.Stop()
	b.out.Lock()
	defer b.out.Unlock()
	b.mu.Lock()
	batch := b.buf
	b.buf, b.done = nil, true
	b.mu.Unlock()
	if len(batch) > 0 {
		b.w.Write(batch)
	}
	return nil
}
