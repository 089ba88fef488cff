//go:build !wasip1

package guestsdk

import (
	"context"
	"fmt"
	"io"
	"reflect"
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

// TestServeManyHostcalls checks the hostcalls each request of a reused
// sandbox makes for a handler that reads nothing and writes a 200 body
// (host/bench/README.md lists them): the next request and its method,
// URI and header block (names, then each name's values), then the
// response (no status_set for a 200: a new response is 200), its body
// and its end. A status other than 200 adds status_set.
func TestServeManyHostcalls(t *testing.T) {
	hdr := []fakeField{{"host", "example.com"}, {"accept", "*/*"}}
	for _, status := range []int{200, 404} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			f := installFake(t)
			f.setDownstream("GET", "http://example.com/a", hdr, "")
			f.queued = []fakeDown{{method: "GET", uri: "http://example.com/b", hdr: hdr}, {method: "GET", uri: "http://example.com/c", hdr: hdr}}
			err := serveMany(context.Background(), HandlerFunc(func(ctx context.Context, w ResponseWriter, r *Request) {
				if status != 200 {
					w.WriteHeader(status)
				}
				io.WriteString(w, "served "+r.URL.Path)
			}), ServeManyOptions{MaxRequests: 3})
			if err != nil {
				t.Fatal(err)
			}
			// Three requests; the third ends the sandbox (MaxRequests).
			want := map[string]int{
				"fastly_abi.init":                          1,
				"fastly_http_req.body_downstream_get":      1,
				"fastly_http_downstream.next_request":      2,
				"fastly_http_downstream.next_request_wait": 2,
				"fastly_http_req.method_get":               3,
				"fastly_http_req.uri_get":                  3,
				"fastly_http_req.header_names_get":         3,
				"fastly_http_req.header_values_get":        6,
				"fastly_http_resp.new":                     3,
				"fastly_http_body.new":                     3,
				"fastly_http_resp.send_downstream":         3,
				"fastly_http_body.write":                   3,
				"fastly_http_body.close":                   3,
			}
			if status != 200 {
				want["fastly_http_resp.status_set"] = 3
			}
			if !reflect.DeepEqual(f.calls, want) {
				t.Errorf("hostcalls %v\nwant %v", f.calls, want)
			}
			if resp, body, closed := downstream(t, f); int(resp.status) != status || body != "served /c" || !closed {
				t.Errorf("last response %d %q closed=%v, want %d \"served /c\" closed", resp.status, body, closed, status)
			}
		})
	}
}

// TestServeManyFreshResponseHeader: each request of a reused sandbox
// starts with an empty w.Header() (the map is reused, emptied), and its
// response carries only the fields set for it.
func TestServeManyFreshResponseHeader(t *testing.T) {
	f := installFake(t)
	f.setDownstream("GET", "http://h/a", nil, "")
	f.queued = []fakeDown{{method: "GET", uri: "http://h/b"}, {method: "GET", uri: "http://h/c"}}
	err := serveMany(context.Background(), HandlerFunc(func(ctx context.Context, w ResponseWriter, r *Request) {
		if len(w.Header()) != 0 {
			t.Errorf("%s: w.Header() starts with %v", r.URL.Path, w.Header())
		}
		w.Header().Set("X-Path", r.URL.Path)
		w.Header().Add("X-"+r.URL.Path[1:], "1")
		io.WriteString(w, "ok")
	}), ServeManyOptions{MaxRequests: 3}) // the third ends the sandbox, its response kept
	if err != nil {
		t.Fatal(err)
	}
	resp, _, _ := downstream(t, f)
	if want := []fakeField{{"X-C", "1"}, {"X-Path", "/c"}}; !reflect.DeepEqual(resp.hdr, want) {
		t.Errorf("last response's fields %v, want %v", resp.hdr, want)
	}
}
