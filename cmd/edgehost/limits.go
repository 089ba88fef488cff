package main

import (
	"github.com/edgehost/edgehost/internal/config"
)

// minOriginRequests is the smallest host-wide cap of origin requests in
// flight that originRequests sizes.
const minOriginRequests = 64

// originRequests is the host-wide cap of origin requests in flight:
// max_origin_requests when set, else sized from the open-file limit
// (README.md, "Limits"): (RLIMIT_NOFILE - 2*(max_concurrent_sandboxes +
// max_waiting_sandboxes) - 256) / 2, at least 64. Each request in flight
// holds an origin connection and an idle pooled one may stay behind it,
// hence the halving; each sandbox's client connection (running, or
// waiting on a slow client) and 256 descriptors for listeners, files and
// the engines are kept aside. Go raises the soft limit to the hard limit
// at start (package os, on Unix), so the limit read is the raised one.
func originRequests(h config.Host) int {
	if h.MaxOriginRequests > 0 {
		return h.MaxOriginRequests
	}
	nofile, ok := openFileLimit()
	if !ok {
		return 0 // not known: no cap
	}
	waiting := h.MaxWaitingSandboxes
	if waiting <= 0 {
		waiting = h.MaxConcurrentSandboxes
	}
	return int(max(minOriginRequests, (nofile-2*int64(h.MaxConcurrentSandboxes+waiting)-256)/2))
}
