package admin

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"
)

// trafficWindow is how many one-second buckets of request counts traffic
// keeps: the status page's request rate is over the last trafficWindow
// seconds.
const trafficWindow = 10

// traffic counts downstream requests: per second over the last
// trafficWindow seconds, and by HTTP status since the host started. Its
// zero value is ready; it is safe for concurrent use.
type traffic struct {
	mu      sync.Mutex
	buckets [trafficWindow]struct {
		sec int64 // Unix second the bucket counts
		n   uint64
	}
	byStatus map[int]uint64
}

func (t *traffic) observe(now time.Time, status int) {
	sec := now.Unix()
	t.mu.Lock()
	b := &t.buckets[sec%trafficWindow]
	if b.sec != sec {
		b.sec, b.n = sec, 0
	}
	b.n++
	if t.byStatus == nil {
		t.byStatus = map[int]uint64{}
	}
	t.byStatus[status]++
	t.mu.Unlock()
}

// StatusCount is the number of requests answered with one HTTP status.
type StatusCount struct {
	Status int
	Count  uint64
}

// snapshot returns the request rate (requests per second over the last
// trafficWindow whole seconds before now) and the counts by status since
// the start, lowest status first.
func (t *traffic) snapshot(now time.Time) (perSecond float64, mix []StatusCount, total uint64) {
	sec := now.Unix()
	t.mu.Lock()
	defer t.mu.Unlock()
	var n uint64
	for _, b := range t.buckets {
		if b.sec < sec && b.sec >= sec-trafficWindow {
			n += b.n
		}
	}
	for s, c := range t.byStatus {
		mix = append(mix, StatusCount{s, c})
		total += c
	}
	sort.Slice(mix, func(i, j int) bool { return mix[i].Status < mix[j].Status })
	return float64(n) / trafficWindow, mix, total
}

// GuestError is one guest failure as the host logged it: a warning or
// error line tagged with a request id (a sandbox that failed, sent no
// response, or ran out of time) or a line the guest wrote to stderr.
type GuestError struct {
	Time      time.Time
	RequestID string
	Version   string
	Message   string
}

// GuestErrors keeps the latest guest errors from the host's log, for the
// status page. Put its Handler in front of the host logger's handler. It
// is safe for concurrent use.
type GuestErrors struct {
	mu   sync.Mutex
	ring []GuestError
	next int
	full bool
}

// NewGuestErrors keeps the last n guest errors (n <= 0 means 50).
func NewGuestErrors(n int) *GuestErrors {
	if n <= 0 {
		n = 50
	}
	return &GuestErrors{ring: make([]GuestError, n)}
}

// Recent returns the kept guest errors, newest first.
func (g *GuestErrors) Recent() []GuestError {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := g.next
	if g.full {
		n = len(g.ring)
	}
	out := make([]GuestError, 0, n)
	for i := 1; i <= n; i++ {
		out = append(out, g.ring[(g.next-i+len(g.ring))%len(g.ring)])
	}
	return out
}

func (g *GuestErrors) add(e GuestError) {
	g.mu.Lock()
	g.ring[g.next] = e
	g.next++
	if g.next == len(g.ring) {
		g.next, g.full = 0, true
	}
	g.mu.Unlock()
}

// Handler returns a slog.Handler that passes every record to next and
// keeps the guest errors among them.
func (g *GuestErrors) Handler(next slog.Handler) slog.Handler {
	return &errorsHandler{g: g, next: next}
}

type errorsHandler struct {
	g     *GuestErrors
	next  slog.Handler
	attrs []slog.Attr // from WithAttrs
}

func (h *errorsHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h *errorsHandler) Handle(ctx context.Context, r slog.Record) error {
	var e GuestError
	var errText, stream string
	look := func(a slog.Attr) bool {
		switch a.Key {
		case "request_id":
			e.RequestID = a.Value.String()
		case "version":
			e.Version = a.Value.String()
		case "err":
			errText = a.Value.String()
		case "stream":
			stream = a.Value.String()
		}
		return true
	}
	for _, a := range h.attrs {
		look(a)
	}
	r.Attrs(look)
	if e.RequestID != "" && (r.Level >= slog.LevelWarn || stream == "stderr") {
		e.Time, e.Message = r.Time, r.Message
		if errText != "" {
			e.Message = fmt.Sprintf("%s: %s", r.Message, errText)
		}
		h.g.add(e)
	}
	return h.next.Handle(ctx, r)
}

func (h *errorsHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &errorsHandler{g: h.g, next: h.next.WithAttrs(attrs), attrs: append(append([]slog.Attr(nil), h.attrs...), attrs...)}
}

func (h *errorsHandler) WithGroup(name string) slog.Handler {
	return &errorsHandler{g: h.g, next: h.next.WithGroup(name), attrs: h.attrs}
}
