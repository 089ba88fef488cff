package server

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkRequestLogLine is the request log's cost per request: the
// writer wrapper's counting and one line, text and JSON, to io.Discard.
func BenchmarkRequestLogLine(b *testing.B) {
	for _, tc := range []struct {
		name string
		h    slog.Handler
	}{{"text", slog.NewTextHandler(io.Discard, nil)}, {"json", slog.NewJSONHandler(io.Discard, nil)}} {
		b.Run(tc.name, func(b *testing.B) {
			s := New(Config{Logger: slog.New(tc.h)})
			r := httptest.NewRequest("GET", "/some/path", nil)
			rec := httptest.NewRecorder()
			body := []byte("hello, world\n")
			b.ReportAllocs()
			for b.Loop() {
				start := time.Now()
				cw := &countingWriter{ResponseWriter: rec}
				cw.WriteHeader(200)
				cw.Write(body)
				s.logRequest(context.Background(), r, "0123456789abcdef", "1", 200, cw, start, sandboxReused, 1)
			}
		})
	}
}
