// Command dynamic-backend is an edgehost guest that reads its origin from
// the config store "settings" (key "origin_target", e.g.
// "127.0.0.1:8080"), registers it as the dynamic backend "dyn-origin" with
// keepalive and pooling options, proxies the request to it and adds
// "x-edgehost-backend: dynamic". It serves requests in turn in one sandbox
// (guestsdk.ServeMany) and registers the backend once, when the sandbox
// starts: it stays registered for the sandbox's life, and every request
// the sandbox serves uses it. When registration failed, every request is
// answered 500 with the error.
package main

import (
	"context"
	"io"
	"time"

	"github.com/edgehost/edgehost/guestsdk"
)

func main() {
	backend, err := register()
	guestsdk.ServeMany(guestsdk.HandlerFunc(func(ctx context.Context, w guestsdk.ResponseWriter, r *guestsdk.Request) {
		handle(ctx, w, r, backend, err)
	}), guestsdk.ServeManyOptions{})
}

// options are the backend's connection settings.
var options = guestsdk.BackendOptions{
	HTTPKeepaliveTime:    30 * time.Second,
	TCPKeepalive:         guestsdk.On,
	TCPKeepaliveTime:     60 * time.Second,
	TCPKeepaliveInterval: 10 * time.Second,
	TCPKeepaliveProbes:   5,
	MaxConnections:       32,
}

// handle proxies r to backend, or answers 500 with regErr, the error of
// registering it.
func handle(ctx context.Context, w guestsdk.ResponseWriter, r *guestsdk.Request, backend *guestsdk.Backend, regErr error) {
	if err := regErr; err != nil {
		fail(w, 500, err)
		return
	}
	resp, err := r.Send(ctx, backend.Name())
	if err != nil {
		// The origin did not answer in time, refused, or the pool
		// was full: the backend is unavailable.
		fail(w, 503, err)
		return
	}
	w.Header().Set("X-Edgehost-Backend", "dynamic")
	guestsdk.CopyResponse(w, resp)
}

func register() (*guestsdk.Backend, error) {
	store, err := guestsdk.OpenConfigStore("settings")
	if err != nil {
		return nil, err
	}
	target, err := store.Get("origin_target")
	if err != nil {
		return nil, err
	}
	return guestsdk.RegisterDynamicBackend("dyn-origin", target, options)
}

func fail(w guestsdk.ResponseWriter, status int, err error) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	io.WriteString(w, "dynamic-backend: "+err.Error()+"\n")
}
