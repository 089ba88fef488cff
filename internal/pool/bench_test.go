package pool

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/edgehost/edgehost/internal/guesttest"
)

// BenchmarkDo is one GET through a pool to a loopback origin answering a
// short body, on a kept-alive connection, from Do to the body read and
// closed, 8×GOMAXPROCS requests at once as under load
// (host/bench/load.sh's dynamic-backend row). "transport" is the same
// request through a bare http.Transport, the floor Do's own work adds to.
// cpu-ns/op counts the origin's CPU too.
//
//	go test -run '^$' -bench BenchmarkDo -benchmem ./internal/pool/
func BenchmarkDo(b *testing.B) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "hello from the origin\n")
	}))
	defer origin.Close()
	addr := strings.TrimPrefix(origin.URL, "http://")
	run := func(b *testing.B, send func(req *http.Request) (*http.Response, error)) {
		b.ReportAllocs()
		b.SetParallelism(8)
		b.ResetTimer()
		defer guesttest.ReportCPU(b)()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				req, _ := http.NewRequest(http.MethodGet, origin.URL+"/bench", nil)
				req.Header.Set("Accept", "*/*")
				resp, err := send(req)
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Errorf("status %d", resp.StatusCode)
					return
				}
			}
		})
	}
	b.Run("pool", func(b *testing.B) {
		m := NewManager(slog.New(slog.NewTextHandler(io.Discard, nil)))
		defer m.Close()
		p := m.Pool(Settings{Scheme: "http", Addr: addr, Limits: Limits{MaxConnections: 32}})
		run(b, func(req *http.Request) (*http.Response, error) { return p.Do(context.Background(), req, Timeouts{}) })
	})
	b.Run("transport", func(b *testing.B) {
		t := &http.Transport{MaxConnsPerHost: 32, MaxIdleConnsPerHost: 32, DisableCompression: true}
		defer t.CloseIdleConnections()
		run(b, t.RoundTrip)
	})
}
