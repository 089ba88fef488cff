// Command proxy is an edgehost guest that forwards the downstream request
// to the static backend "origin" and streams the answer back, adding
// "x-edgehost-proxy: 1".
package main

import (
	"context"
	"errors"
	"io"

	"github.com/edgehost/edgehost/guestsdk"
)

func main() {
	guestsdk.Serve(guestsdk.HandlerFunc(proxy))
}

func proxy(ctx context.Context, w guestsdk.ResponseWriter, r *guestsdk.Request) {
	// The downstream request (method, URL with path and query, headers)
	// goes out as it came in; its body is handed to the host unread.
	resp, err := r.Send(ctx, "origin")
	if err != nil {
		// The origin did not answer in time, refused, or the pool was
		// full: the backend is unavailable. A missing backend is a
		// configuration error.
		status := 503
		if errors.Is(err, guestsdk.ErrBackendNotFound) {
			status = 500
		}
		w.WriteHeader(status)
		io.WriteString(w, "proxy: "+err.Error()+"\n")
		return
	}
	w.Header().Set("X-Edgehost-Proxy", "1")
	guestsdk.CopyResponse(w, resp)
}
