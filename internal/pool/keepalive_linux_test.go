//go:build linux

package pool

import (
	"errors"
	"net"
	"syscall"
	"testing"
	"time"
)

// TestTCPKeepalive reads the keepalive socket options back from the
// host-side socket of a pooled connection.
func TestTCPKeepalive(t *testing.T) {
	o := newOrigin(t, okHandler, originConfig{})
	type opts struct{ on, idle, intvl, cnt int }
	tests := []struct {
		name string
		ka   Keepalive
		want opts
	}{
		{"configured", Keepalive{TCPIdle: 7 * time.Second, TCPInterval: 3 * time.Second, TCPCount: 4}, opts{1, 7, 3, 4}},
		{"defaults", Keepalive{}, opts{1, int(DefaultTCPKeepaliveIdle / time.Second),
			int(DefaultTCPKeepaliveInterval / time.Second), DefaultTCPKeepaliveCount}},
		{"disabled", Keepalive{TCPDisabled: true, TCPIdle: 7 * time.Second}, opts{on: 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := testPool(t, Settings{Scheme: "http", Addr: o.addr(), Keepalive: tt.ka})
			mustGet(t, p, o.url("/"))
			p.mu.Lock()
			var tc *net.TCPConn
			for c := range p.conns {
				tc, _ = c.Conn.(*net.TCPConn)
			}
			p.mu.Unlock()
			if tc == nil {
				t.Fatal("no open TCP connection in the pool")
			}
			raw, err := tc.SyscallConn()
			if err != nil {
				t.Fatal(err)
			}
			var got opts
			var errs [4]error
			err = raw.Control(func(fd uintptr) {
				got.on, errs[0] = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE)
				got.idle, errs[1] = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE)
				got.intvl, errs[2] = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL)
				got.cnt, errs[3] = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT)
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range errs {
				if e != nil {
					t.Fatal(e)
				}
			}
			if tt.ka.TCPDisabled {
				got.idle, got.intvl, got.cnt = 0, 0, 0 // kernel defaults, unused when off
			}
			if got != tt.want {
				t.Errorf("SO_KEEPALIVE, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestConnectTimeout dials a listener whose accept queue is full, so that
// the kernel drops the SYN and the connect hangs.
func TestConnectTimeout(t *testing.T) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := (&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: sa.(*syscall.SockaddrInet4).Port}).String()
	// Fill the accept queue until a connect hangs.
	full := false
	for range 8 {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err != nil {
			full = true
			break
		}
		defer c.Close()
	}
	if !full {
		t.Skip("could not fill the listener's accept queue")
	}
	p := testPool(t, Settings{Scheme: "http", Addr: addr})
	const connect = 150 * time.Millisecond
	start := time.Now()
	_, err = do(t, p, "GET", "http://"+addr+"/", "", Timeouts{Connect: connect})
	if !errors.Is(err, ErrConnectTimeout) {
		t.Fatalf("err = %v, want ErrConnectTimeout", err)
	}
	if d := time.Since(start); d < connect || d > connect+time.Second {
		t.Errorf("failed after %v, want about %v", d, connect)
	}
}
