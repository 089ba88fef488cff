// Command benchorigin is the load benchmark's helper: an origin that
// counts the TCP connections it accepts (GET /__conns reports the count),
// and a plain net/http server answering what examples/hello answers, as
// the baseline. Both listen on loopback only.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
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
