//go:build wasip1

// Command cacheproxy is a test guest for the readthrough cache: it sends
// the downstream request (method, path, query, headers) to the static
// backend "origin" and copies the answer back. Request headers steer it:
//
//	x-ov-pass: 1, x-ov-ttl: S, x-ov-swr: S, x-ov-pci: 1, x-ov-sk: "k1 k2"   a cache override
//	x-async: 1                                      send with send_async and wait
//	x-dyn: ADDR                                     send to a dynamic backend "dyn" aimed at ADDR
//
// and GET /purge/KEY (?soft=1) purges surrogate key KEY instead.
package main

import (
	"context"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/edgehost/edgehost/guestsdk"
)

func main() { guestsdk.Serve(guestsdk.HandlerFunc(handle)) }

func handle(ctx context.Context, w guestsdk.ResponseWriter, r *guestsdk.Request) {
	if key, ok := strings.CutPrefix(r.URL.Path, "/purge/"); ok {
		if err := guestsdk.PurgeSurrogateKey(key, r.URL.Query().Get("soft") == "1"); err != nil {
			fail(w, 500, err)
			return
		}
		io.WriteString(w, "purged "+key+"\n")
		return
	}
	u := &url.URL{Scheme: "http", Host: "origin.test", Path: r.URL.Path, RawQuery: r.URL.RawQuery}
	out, _ := guestsdk.NewRequest(r.Method, u.String(), nil)
	var ov guestsdk.CacheOverride
	set := false
	for k, vs := range r.Header {
		lk := strings.ToLower(k)
		switch lk {
		case "x-ov-pass":
			ov.Pass, set = true, true
		case "x-ov-pci":
			ov.PCI, set = true, true
		case "x-ov-ttl":
			n, _ := strconv.Atoi(vs[0])
			ov.TTL, set = time.Duration(n)*time.Second, true
		case "x-ov-swr":
			n, _ := strconv.Atoi(vs[0])
			ov.SWR, set = time.Duration(n)*time.Second, true
		case "x-ov-sk":
			ov.SurrogateKeys, set = strings.Fields(vs[0]), true
		case "x-async", "x-dyn", "host", "content-length":
		default:
			out.Header[k] = vs
		}
	}
	if set {
		out.CacheOverride = &ov
	}
	backend := "origin"
	if addr := r.Header.Get("x-dyn"); addr != "" {
		be, err := guestsdk.RegisterDynamicBackend("dyn", addr, guestsdk.BackendOptions{})
		if err != nil {
			fail(w, 500, err)
			return
		}
		backend = be.Name()
	}
	var resp *guestsdk.Response
	var err error
	if r.Header.Get("x-async") == "1" {
		var p *guestsdk.PendingRequest
		if p, err = out.SendAsync(ctx, backend); err == nil {
			resp, err = p.Wait(ctx)
		}
	} else {
		resp, err = out.Send(ctx, backend)
	}
	if err != nil {
		fail(w, 503, err)
		return
	}
	guestsdk.CopyResponse(w, resp)
}

func fail(w guestsdk.ResponseWriter, status int, err error) {
	w.WriteHeader(status)
	io.WriteString(w, "cacheproxy: "+err.Error()+"\n")
}
