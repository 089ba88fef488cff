//go:build !wasip1

package guestsdk

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"
)

func TestServeManyServesQueuedRequests(t *testing.T) {
	tests := []struct {
		name      string
		queued    []fakeDown
		opts      ServeManyOptions
		wantPaths []string
		wantOpts  []uint64
	}{
		{"until none comes", []fakeDown{{method: "GET", uri: "http://h/b"}, {method: "POST", uri: "http://h/c", body: "xyz"}}, ServeManyOptions{NextTimeout: 1500 * time.Microsecond},
			[]string{"GET /a 0", "GET /b 0", "POST /c 3"}, []uint64{2, 2, 2}},
		{"max requests", []fakeDown{{method: "GET", uri: "http://h/b"}, {method: "GET", uri: "http://h/c"}}, ServeManyOptions{MaxRequests: 2},
			[]string{"GET /a 0", "GET /b 0"}, []uint64{0}},
		{"host without reuse", nil, ServeManyOptions{}, []string{"GET /a 0"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := installFake(t)
			f.setDownstream("GET", "http://h/a", nil, "")
			f.queued = tc.queued
			var seen []string
			err := serveMany(context.Background(), HandlerFunc(func(ctx context.Context, w ResponseWriter, r *Request) {
				b, _ := io.ReadAll(r.Body)
				seen = append(seen, fmt.Sprintf("%s %s %d", r.Method, r.URL.Path, len(b)))
				io.WriteString(w, "ok")
			}), tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(seen) != fmt.Sprint(tc.wantPaths) {
				t.Errorf("served %v, want %v", seen, tc.wantPaths)
			}
			if fmt.Sprint(f.nextOpts) != fmt.Sprint(tc.wantOpts) {
				t.Errorf("next_request timeouts %v, want %v", f.nextOpts, tc.wantOpts)
			}
			if n := f.calls["fastly_http_resp.send_downstream"]; n != len(tc.wantPaths) {
				t.Errorf("%d responses sent, want %d", n, len(tc.wantPaths))
			}
		})
	}
}
