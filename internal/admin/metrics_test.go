package admin

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestRequestsByStatus: edgehost_requests_total counts each status the
// server observed, from many goroutines at once, whether or not it is a
// three-digit one (the counters of those are cached), and GET /metrics
// serves the counts.
func TestRequestsByStatus(t *testing.T) {
	m := NewMetrics(nil)
	observed := map[int]int{200: 400, 503: 40, 404: 1, 999: 2, 100: 3, 99: 2, 1000: 1}
	var wg sync.WaitGroup
	for status, n := range observed {
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range n {
					m.ObserveRequest(status, true, time.Millisecond)
				}
			}()
		}
	}
	wg.Wait()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	body := string(b)
	want := []string{
		`edgehost_requests_total{status="200"} 1600`,
		`edgehost_requests_total{status="503"} 160`,
		`edgehost_requests_total{status="404"} 4`,
		`edgehost_requests_total{status="999"} 8`,
		`edgehost_requests_total{status="100"} 12`,
		`edgehost_requests_total{status="99"} 8`,
		`edgehost_requests_total{status="1000"} 4`,
		`edgehost_sandbox_duration_seconds_count 1796`,
	}
	for _, w := range want {
		if !strings.Contains(body, w+"\n") {
			t.Errorf("/metrics lacks %s", w)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", body)
	}
}
