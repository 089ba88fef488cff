package jssdk_test

import (
	"net/netip"
	"os"
	"strconv"
	"syscall"
	"testing"
)

// tcpOpts are the keepalive socket options of one TCP socket.
type tcpOpts struct{ on, idle, intvl, cnt int }

// checkTCPKeepalive finds this process's TCP socket from local to remote
// (host:port each) and compares its SO_KEEPALIVE, TCP_KEEPIDLE,
// TCP_KEEPINTVL and TCP_KEEPCNT with want.
func checkTCPKeepalive(t *testing.T, local, remote string, want tcpOpts) {
	t.Helper()
	l, err1 := netip.ParseAddrPort(local)
	r, err2 := netip.ParseAddrPort(remote)
	if err1 != nil || err2 != nil {
		t.Fatalf("addresses %q, %q: %v %v", local, remote, err1, err2)
	}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		sa, err := syscall.Getsockname(fd)
		if err != nil || !sockaddrIs(sa, l) {
			continue
		}
		pa, err := syscall.Getpeername(fd)
		if err != nil || !sockaddrIs(pa, r) {
			continue
		}
		var got tcpOpts
		var errs [4]error
		got.on, errs[0] = syscall.GetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_KEEPALIVE)
		got.idle, errs[1] = syscall.GetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE)
		got.intvl, errs[2] = syscall.GetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL)
		got.cnt, errs[3] = syscall.GetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT)
		for _, err := range errs {
			if err != nil {
				t.Fatalf("getsockopt on the socket %s -> %s: %v", local, remote, err)
			}
		}
		if got != want {
			t.Errorf("socket %s -> %s: SO_KEEPALIVE, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT = %+v, want %+v", local, remote, got, want)
		}
		return
	}
	t.Fatalf("no open socket %s -> %s in this process (the pooled connection was closed?)", local, remote)
}

func sockaddrIs(sa syscall.Sockaddr, ap netip.AddrPort) bool {
	switch sa := sa.(type) {
	case *syscall.SockaddrInet4:
		return sa.Port == int(ap.Port()) && netip.AddrFrom4(sa.Addr) == ap.Addr().Unmap()
	case *syscall.SockaddrInet6:
		return sa.Port == int(ap.Port()) && netip.AddrFrom16(sa.Addr).Unmap() == ap.Addr().Unmap()
	}
	return false
}
