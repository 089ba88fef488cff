// Command benchorigin is the load benchmark's helper: an origin that
// counts the TCP connections it accepts (GET /__conns reports the count),
// and a plain net/http server answering what examples/hello answers, as
// the baseline. Both listen on loopback only.
//
// -plain-work and -plain-hop make the plain server a control for the
// response write's cost (host/bench/README.md, "Session 8, response
// write"): a CPU-only loop of that many iterations per request before
// answering, and the answer written by one of that many worker goroutines
// the handler hands the request to and waits for, as edgehost's parked
// sandboxes answer. Both default to 0 (none).
//
// -proxy ADDR -proxy-to ORIGIN runs, instead of the origin and the plain
// server, a native Go reverse proxy (net/http's server and
// httputil.ReverseProxy) to ORIGIN, whose Transport keeps up to
// -proxy-conns (default 64) idle connections to it and opens no more
// than that many at once, its copy buffers pooled: the ceiling a Go host on net/http can reach on
// the proxy path, beside nginx's "keepalive 64" (host/bench/README.md,
// "Session 9, proxy ceiling").
//
// The origin's answers under /cached/ and /miss/ may be cached for an hour
// (Cache-Control: max-age=3600); every other answer is Cache-Control:
// private, so that a proxy with a readthrough cache (edgehost's send path,
// README.md "Caching") passes it to the origin every time.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// hello answers what examples/hello answers, after work iterations of a
// CPU-only loop (its result kept in sink, so that the loop stays).
func hello(w http.ResponseWriter, r *http.Request, work int, sink *atomic.Uint64) {
	if work > 0 {
		x := sink.Load()
		for range work {
			x = x*6364136223846793005 + 1442695040888963407
		}
		sink.Store(x)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "hello from edgehost\nmethod: %s\npath: %s\nuser-agent: %s\n", r.Method, r.URL.Path, r.UserAgent())
}

// handoff is a request handed to a worker goroutine, and the channel the
// worker closes when it answered.
type handoff struct {
	w    http.ResponseWriter
	r    *http.Request
	done chan struct{}
}

func main() {
	originAddr := flag.String("origin", "127.0.0.1:18080", "origin listen address")
	plainAddr := flag.String("plain", "127.0.0.1:18081", "plain hello server listen address")
	work := flag.Int("plain-work", 0, "iterations of a CPU-only loop the plain server runs per request (0: none)")
	hop := flag.Int("plain-hop", 0, "worker goroutines the plain server hands each request to (0: answer on net/http's own)")
	proxyAddr := flag.String("proxy", "", "reverse proxy listen address (with -proxy-to; then only the proxy runs)")
	proxyTo := flag.String("proxy-to", "", "the reverse proxy's origin, host:port")
	proxyConns := flag.Int("proxy-conns", 64, "the reverse proxy's most idle and most open connections to its origin")
	flag.Parse()
	if *work < 0 || *hop < 0 {
		log.Fatal("benchorigin: -plain-work and -plain-hop must be 0 or more")
	}
	if *proxyAddr != "" {
		if *proxyTo == "" || *proxyConns < 1 {
			log.Fatal("benchorigin: -proxy needs -proxy-to host:port and -proxy-conns of 1 or more")
		}
		log.Fatal(http.ListenAndServe(*proxyAddr, reverseProxy(*proxyTo, *proxyConns)))
	}

	var conns atomic.Int64
	origin := &http.Server{
		Addr: *originAddr,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/__conns" {
				fmt.Fprintln(w, conns.Load())
				return
			}
			io.Copy(io.Discard, r.Body)
			if strings.HasPrefix(r.URL.Path, "/cached/") || strings.HasPrefix(r.URL.Path, "/miss/") {
				w.Header().Set("Cache-Control", "max-age=3600")
			} else {
				w.Header().Set("Cache-Control", "private")
			}
			io.WriteString(w, "hello from the origin\n")
		}),
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				conns.Add(1)
			}
		},
	}
	var sink atomic.Uint64
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hello(w, r, *work, &sink) })
	if *hop > 0 {
		jobs := make(chan handoff)
		for range *hop {
			go func() {
				for j := range jobs {
					hello(j.w, j.r, *work, &sink)
					close(j.done)
				}
			}()
		}
		handler = func(w http.ResponseWriter, r *http.Request) {
			j := handoff{w, r, make(chan struct{})}
			jobs <- j
			<-j.done
		}
	}
	plain := &http.Server{Addr: *plainAddr, Handler: handler}
	go func() { log.Fatal(plain.ListenAndServe()) }()
	log.Fatal(origin.ListenAndServe())
}

// reverseProxy is a net/http reverse proxy to the origin at target
// (host:port, plain HTTP/1.1) whose Transport pools up to conns
// keepalive connections to it and opens at most conns at once.
func reverseProxy(target string, conns int) *httputil.ReverseProxy {
	to := &url.URL{Scheme: "http", Host: target}
	return &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(to)
			r.Out.Host = r.In.Host
		},
		// A client that went away (wrk stopping) is no proxy error.
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if r.Context().Err() == nil {
				log.Printf("benchorigin: proxy: %v", err)
			}
			w.WriteHeader(http.StatusBadGateway)
		},
		// Without a pool, ReverseProxy allocates a 32 KiB copy buffer per
		// request, and the collector's work for it is a large part of the
		// proxy's CPU (host/bench/README.md, "Session 9, proxy ceiling").
		BufferPool: &bufferPool{},
		Transport: &http.Transport{
			Proxy:               nil,
			MaxIdleConns:        conns,
			MaxIdleConnsPerHost: conns,
			MaxConnsPerHost:     conns,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		},
	}
}

// bufferPool is an httputil.BufferPool of 32 KiB buffers, reused through
// a sync.Pool.
type bufferPool struct{ p sync.Pool }

// Get returns a 32 KiB buffer, reused when one was put back.
func (b *bufferPool) Get() []byte {
	if v, ok := b.p.Get().(*[]byte); ok {
		return *v
	}
	return make([]byte, 32<<10)
}

// Put gives buf back for a later Get.
func (b *bufferPool) Put(buf []byte) { b.p.Put(&buf) }
