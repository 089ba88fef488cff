package server_test

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/edgehost/edgehost/internal/guesttest"
)

// TestTinyGoExamplesServeAsGo serves each example built with TinyGo and
// built with Go's wasip1 target side by side, on the engine
// EDGEHOST_TEST_ENGINE selects, with a real origin behind the proxies, and
// requires the same status, header fields and body for every request.
func TestTinyGoExamplesServeAsGo(t *testing.T) {
	tiny := guesttest.RequireTinyGoFixtures(t, "examples/hello", "examples/proxy", "examples/dynamic-backend")
	origin := guesttest.NewOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Origin", "yes")
		w.Header().Add("X-Multi", "a")
		w.Header().Add("X-Multi", "b")
		w.Header().Set("X-Seen", r.Method+" "+r.URL.RequestURI()+" "+r.Header.Get("X-Client"))
		status := http.StatusOK
		if r.URL.Path == "/missing" {
			status = http.StatusNotFound
		}
		w.WriteHeader(status)
		fmt.Fprintf(w, "origin got %d bytes\n%s", len(b), strings.Repeat("0123456789abcdef", 4096))
	})
	u, _ := url.Parse(origin.URL)
	type request struct {
		method, path, body string
		status             int
	}
	requests := []request{
		{"GET", "/a/b?c=d", "", 200},
		{"POST", "/post", strings.Repeat("x", 100_000), 200},
		{"GET", "/missing", "", 404},
		{"DELETE", "/", "", 200},
	}
	tests := []struct {
		guest, manifest, want string
	}{
		{"hello", "", "hello from edgehost"},
		{"proxy", backendManifest(origin.URL), "origin got"},
		{"dynamic-backend", exampleDynManifest(u.Host), "origin got"},
	}
	for _, tc := range tests {
		t.Run(tc.guest, func(t *testing.T) {
			goHost := startHost(t, guests[tc.guest], tc.manifest, hostOpts{})
			tinyHost := startHost(t, tiny[tc.guest], tc.manifest, hostOpts{})
			for _, rq := range requests {
				status := rq.status
				if tc.guest == "hello" {
					status = 200 // hello answers every request itself
				}
				goResp := do(t, goHost.url, rq.method, rq.path, rq.body)
				tinyResp := do(t, tinyHost.url, rq.method, rq.path, rq.body)
				if goResp.status != status || !strings.Contains(goResp.body, tc.want) {
					t.Fatalf("%s %s, Go build: status %d, body %.80q; want %d and %q\nlogs:\n%s", rq.method, rq.path, goResp.status, goResp.body, status, tc.want, goHost.logs)
				}
				if !reflect.DeepEqual(goResp, tinyResp) {
					t.Errorf("%s %s: TinyGo build answered\n%d %v %.80q\nGo build answered\n%d %v %.80q\nTinyGo logs:\n%s",
						rq.method, rq.path, tinyResp.status, tinyResp.header, tinyResp.body, goResp.status, goResp.header, goResp.body, tinyHost.logs)
				}
			}
		})
	}
}

// answer is what a client sees of a response: status, header fields (but
// Date, which differs by the clock) and body.
type answer struct {
	status int
	header http.Header
	body   string
}

func do(t *testing.T, base, method, path, body string) answer {
	t.Helper()
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("User-Agent", "edgehost-twin/1")
	req.Header.Set("X-Client", "twin")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, path, err)
	}
	resp.Header.Del("Date")
	return answer{resp.StatusCode, resp.Header, string(b)}
}

// TestRawHelloAnswersAsHello serves examples/hello and
// testdata/guests/rawhello (the same handler written on the raw hostcalls,
// no SDK: the floor BenchmarkSandbox and load.sh set the hello's cost
// beside), each built with Go and with TinyGo, on the engine
// EDGEHOST_TEST_ENGINE selects, and requires the same status, header
// fields and body from all four for every request.
func TestRawHelloAnswersAsHello(t *testing.T) {
	tiny := guesttest.RequireTinyGoFixtures(t, "examples/hello", "testdata/guests/rawhello")
	builds := []struct {
		name string
		wasm []byte
	}{
		{"hello (Go)", guests["hello"]},
		{"rawhello (Go)", guests["rawhello"]},
		{"hello (TinyGo)", tiny["hello"]},
		{"rawhello (TinyGo)", tiny["rawhello"]},
	}
	hosts := make([]*host, len(builds))
	for i, b := range builds {
		hosts[i] = startHost(t, b.wasm, "", hostOpts{})
	}
	for _, rq := range []struct{ method, path, body string }{
		{"GET", "/a/b?c=d", ""},
		{"GET", "/", ""},
		{"POST", "/post", "ignored"},
		{"DELETE", "/x/y", ""},
	} {
		want := do(t, hosts[0].url, rq.method, rq.path, rq.body)
		if want.status != 200 || !strings.Contains(want.body, "path: "+strings.SplitN(rq.path, "?", 2)[0]+"\n") {
			t.Fatalf("%s %s: %s answered %d %q\nlogs:\n%s", rq.method, rq.path, builds[0].name, want.status, want.body, hosts[0].logs)
		}
		for i, h := range hosts[1:] {
			if got := do(t, h.url, rq.method, rq.path, rq.body); !reflect.DeepEqual(got, want) {
				t.Errorf("%s %s: %s answered\n%d %v %q\n%s answered\n%d %v %q\nlogs:\n%s", rq.method, rq.path,
					builds[i+1].name, got.status, got.header, got.body, builds[0].name, want.status, want.header, want.body, h.logs)
			}
		}
	}
}
