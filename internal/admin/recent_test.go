package admin

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestTrafficRate(t *testing.T) {
	var tr traffic
	base := time.Unix(1_000_000, 0)
	for i := 0; i < 30; i++ { // 3 per second over seconds 0..9
		tr.observe(base.Add(time.Duration(i/3)*time.Second), 200)
	}
	tr.observe(base.Add(9*time.Second), 503)
	tests := []struct {
		at   time.Duration
		want float64
	}{
		{10 * time.Second, 3.1}, // seconds 0..9: 31 requests
		{15 * time.Second, 1.6}, // seconds 5..9 only: 15 + 1
		{25 * time.Second, 0},   // all older than the window
	}
	for _, tc := range tests {
		rate, mix, total := tr.snapshot(base.Add(tc.at))
		if rate != tc.want || total != 31 || len(mix) != 2 || mix[0] != (StatusCount{200, 30}) || mix[1] != (StatusCount{503, 1}) {
			t.Errorf("at +%v: rate %v (want %v), mix %v, total %d", tc.at, rate, tc.want, mix, total)
		}
	}
}

func TestGuestErrorsFromLog(t *testing.T) {
	g := NewGuestErrors(2)
	var out bytes.Buffer
	log := slog.New(g.Handler(slog.NewTextHandler(&out, nil)))
	log.Warn("sandbox failed", "request_id", "r1", "version", "3", "err", "guest trapped")
	log.Info("served", "request_id", "r2")                               // not an error
	log.With("request_id", "r3").Info("panic: boom", "stream", "stderr") // guest stderr
	log.Warn("admin API off")                                            // no request id
	log.Warn("guest sent no response", "request_id", "r4", "version", "3")
	got := g.Recent()
	if len(got) != 2 || got[0].RequestID != "r4" || got[0].Message != "guest sent no response" ||
		got[1].RequestID != "r3" || got[1].Message != "panic: boom" {
		t.Fatalf("recent (newest first, 2 kept): %+v", got)
	}
	if n := strings.Count(out.String(), "\n"); n != 5 {
		t.Errorf("the wrapped handler got %d lines, want all 5:\n%s", n, &out)
	}
}
