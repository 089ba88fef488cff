package server

import (
	"context"
	"log/slog"
	"net/http"
	"runtime"
	"time"
)

// countingWriter counts the body bytes of a downstream response and
// notes when its first byte (the head) was written, for the request log.
type countingWriter struct {
	http.ResponseWriter
	bytes int64
	first time.Time // zero until the head was written
}

func (w *countingWriter) WriteHeader(code int) {
	if w.first.IsZero() {
		w.first = time.Now()
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *countingWriter) Write(p []byte) (int, error) {
	if w.first.IsZero() {
		w.first = time.Now()
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection's writer
// (flushes, full duplex).
func (w *countingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Sandbox kinds in the request log.
const (
	sandboxFresh  = "fresh"  // started for the request
	sandboxReused = "reused" // a parked sandbox took it (next_request)
	sandboxNone   = "none"   // refused before any sandbox ran
)

// logRequest writes the request's line: one per downstream request, at
// info level (README.md, "Request logs"). Times are in milliseconds.
func (s *Server) logRequest(ctx context.Context, r *http.Request, id, version string, status int, w *countingWriter, start time.Time, sandbox string, backends int) {
	if !s.log.Enabled(ctx, slog.LevelInfo) {
		return
	}
	end := time.Now()
	ttfb := -1.0
	if w != nil && !w.first.IsZero() {
		ttfb = ms(w.first.Sub(start))
	}
	var n int64
	if w != nil {
		n = w.bytes
	}
	// The record is built here rather than by Logger.LogAttrs, which
	// reads the clock again and walks the stack for the line's source.
	pc := s.logPC.Load()
	if pc == 0 {
		var pcs [1]uintptr
		runtime.Callers(1, pcs[:])
		pc = pcs[0]
		s.logPC.Store(pc)
	}
	rec := slog.NewRecord(end, slog.LevelInfo, "request", pc)
	rec.AddAttrs(
		slog.String("request_id", id),
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.String("proto", r.Proto),
		slog.Int("status", status),
		slog.Int64("bytes", n),
		slog.Float64("duration_ms", ms(end.Sub(start))),
		slog.Float64("ttfb_ms", ttfb),
		slog.String("sandbox", sandbox),
		slog.Int("backend_requests", backends),
		slog.String("version", version),
	)
	_ = s.log.Handler().Handle(ctx, rec)
}

// ms is d in milliseconds, to the microsecond.
func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
