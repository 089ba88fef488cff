//go:build wasip1

// Command hellopreinit is a pre-initialized guest (guestsdk/preinit,
// built with -buildmode=c-shared): it answers as examples/hello does,
// then with a line that shows what a sandbox started from the
// deploy-time snapshot sees:
//
//	inits 1 served 1 last "" trace <FASTLY_TRACE_ID> args <len(os.Args)>
//
// inits counts the runs of its init function, served the requests this
// instance served, last is the path of the request before this one in
// this instance ("" in a fresh one). /grow allocates 16 MiB first (the
// linear memory grows), /trap panics, /exit exits with status 3.
package main

import (
	"context"
	"io"
	"os"
	"strconv"

	"github.com/edgehost/edgehost/guestsdk"
	_ "github.com/edgehost/edgehost/guestsdk/preinit"
)

var (
	inits  int
	served int
	last   string
	keep   [][]byte
)

func init() { inits++ }

func main() {
	guestsdk.Serve(guestsdk.HandlerFunc(handle))
}

func handle(_ context.Context, w guestsdk.ResponseWriter, r *guestsdk.Request) {
	served++
	switch r.URL.Path {
	case "/grow":
		keep = append(keep, make([]byte, 16<<20))
	case "/trap":
		panic("trap on purpose")
	case "/exit":
		os.Exit(3)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(200)
	io.WriteString(w, "hello from edgehost\n"+
		"method: "+r.Method+"\n"+
		"path: "+r.URL.Path+"\n"+
		"user-agent: "+r.Header.Get("User-Agent")+"\n"+
		"inits "+strconv.Itoa(inits)+" served "+strconv.Itoa(served)+" last "+strconv.Quote(last)+
		" trace "+os.Getenv("FASTLY_TRACE_ID")+" args "+strconv.Itoa(len(os.Args))+"\n")
	last = r.URL.Path
}
