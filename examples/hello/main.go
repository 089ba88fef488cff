// Command hello is an edgehost guest that answers every request with a
// short text naming the method, the path and the User-Agent.
package main

import (
	"context"
	"io"

	"github.com/edgehost/edgehost/guestsdk"
)

func main() {
	guestsdk.Serve(guestsdk.HandlerFunc(hello))
}

func hello(_ context.Context, w guestsdk.ResponseWriter, r *guestsdk.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(200)
	io.WriteString(w, "hello from edgehost\n"+
		"method: "+r.Method+"\n"+
		"path: "+r.URL.Path+"\n"+
		"user-agent: "+r.Header.Get("User-Agent")+"\n")
}
