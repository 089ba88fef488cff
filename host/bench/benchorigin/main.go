// Command benchorigin is the load benchmark's helper: an origin that
// counts the TCP connections it accepts (GET /__conns reports the count),
// and a plain net/http server answering what examples/hello answers, as
// the baseline. Both listen on loopback only.
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

func main() {
	originAddr := flag.String("origin", "127.0.0.1:18080", "origin listen address")
	plainAddr := flag.String("plain", "127.0.0.1:18081", "plain hello server listen address")
	flag.Parse()

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
	plain := &http.Server{
		Addr: *plainAddr,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			fmt.Fprintf(w, "hello from edgehost\nmethod: %s\npath: %s\nuser-agent: %s\n", r.Method, r.URL.Path, r.UserAgent())
		}),
	}
	go func() { log.Fatal(plain.ListenAndServe()) }()
	log.Fatal(origin.ListenAndServe())
}
