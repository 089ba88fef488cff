// Command benchorigin is the load benchmark's helper: an origin that
// counts the TCP connections it accepts (GET /__conns reports the count),
// and a plain net/http server answering what examples/hello answers, as
// the baseline. Both listen on loopback only.
//
// -plain-work and -plain-hop make the plain server a control for the
// response write's cost (README.md, Benchmarks, "Session 8, response
// write"): a CPU-only loop of that many iterations per request before
// answering, and the answer written by one of that many worker goroutines
// the handler hands the request to and waits for, as edgehost's parked
// sandboxes answer. Both default to 0 (none).
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
	"strings"
	"sync/atomic"
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
	flag.Parse()
	if *work < 0 || *hop < 0 {
		log.Fatal("benchorigin: -plain-work and -plain-hop must be 0 or more")
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
