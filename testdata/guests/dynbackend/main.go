//go:build wasip1

// Command dynbackend is a test guest: it registers a dynamic backend whose
// name, target and every keepalive and pooling option come from the config
// store "dyn", proxies the request to it, and reports the host's effective
// backend values in response headers (x-be-*). With target_header set in
// the store, the target is that request header's value instead.
package main

import (
	"context"
	"io"
	"strconv"
	"time"

	"github.com/edgehost/edgehost/guestsdk"
)

func main() { guestsdk.Serve(guestsdk.HandlerFunc(handle)) }

func handle(ctx context.Context, w guestsdk.ResponseWriter, r *guestsdk.Request) {
	store, err := guestsdk.OpenConfigStore("dyn")
	if err != nil {
		fail(w, 500, err)
		return
	}
	get := func(k string) string { v, _ := store.Get(k); return v }
	num := func(k string) int { n, _ := strconv.Atoi(get(k)); return n }
	opts := guestsdk.BackendOptions{
		HTTPKeepaliveTime:    time.Duration(num("keepalive_ms")) * time.Millisecond,
		TCPKeepaliveTime:     time.Duration(num("tcp_time_s")) * time.Second,
		TCPKeepaliveInterval: time.Duration(num("tcp_interval_s")) * time.Second,
		TCPKeepaliveProbes:   num("tcp_probes"),
		MaxConnections:       num("max_connections"),
		MaxUse:               num("max_use"),
		MaxLifetime:          time.Duration(num("max_lifetime_ms")) * time.Millisecond,
		DontPool:             get("dont_pool") == "1",
		ConnectTimeout:       time.Duration(num("connect_timeout_ms")) * time.Millisecond,
		FirstByteTimeout:     time.Duration(num("first_byte_timeout_ms")) * time.Millisecond,
		BetweenBytesTimeout:  time.Duration(num("between_bytes_timeout_ms")) * time.Millisecond,
	}
	if get("ssl") == "1" {
		opts.UseSSL = true
		opts.CACertificate = get("ca_cert")
		opts.SNIHostname = get("sni")
		opts.CertHostname = get("cert_hostname")
		opts.HostOverride = get("host_override")
		opts.SSLMinVersion = tlsVersion(get("ssl_min"))
		opts.SSLMaxVersion = tlsVersion(get("ssl_max"))
	}
	switch get("tcp") {
	case "on":
		opts.TCPKeepalive = guestsdk.On
	case "off":
		opts.TCPKeepalive = guestsdk.Off
	}
	target := get("target")
	if h := get("target_header"); h != "" {
		target = r.Header.Get(h)
	}
	be, err := guestsdk.RegisterDynamicBackend(get("name"), target, opts)
	if err != nil {
		fail(w, 500, err)
		return
	}
	h := w.Header()
	if d, err := be.HTTPKeepaliveTime(); err == nil {
		h.Set("X-Be-Keepalive-Ms", strconv.FormatInt(d.Milliseconds(), 10))
	}
	if on, err := be.TCPKeepaliveEnabled(); err == nil {
		h.Set("X-Be-Tcp", strconv.FormatBool(on))
	}
	if d, err := be.TCPKeepaliveTime(); err == nil {
		h.Set("X-Be-Tcp-Time-S", strconv.Itoa(int(d/time.Second)))
	}
	if d, err := be.TCPKeepaliveInterval(); err == nil {
		h.Set("X-Be-Tcp-Interval-S", strconv.Itoa(int(d/time.Second)))
	}
	if n, err := be.TCPKeepaliveProbes(); err == nil {
		h.Set("X-Be-Tcp-Probes", strconv.Itoa(n))
	}
	if dyn, err := be.IsDynamic(); err == nil {
		h.Set("X-Be-Dynamic", strconv.FormatBool(dyn))
	}
	resp, err := r.Send(ctx, be.Name())
	if err != nil {
		fail(w, 503, err)
		return
	}
	guestsdk.CopyResponse(w, resp)
}

func tlsVersion(v string) guestsdk.TLSVersion {
	switch v {
	case "1.2":
		return guestsdk.TLS12
	case "1.3":
		return guestsdk.TLS13
	}
	return 0
}

func fail(w guestsdk.ResponseWriter, status int, err error) {
	w.WriteHeader(status)
	io.WriteString(w, "dynbackend: "+err.Error()+"\n")
}
