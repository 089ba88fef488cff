package pool

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
)

// Errors returned by Pool.Do and by reads of a response body it returned.
// They are wrapped (match them with errors.Is); the wrapped chain keeps the
// underlying cause (*net.DNSError, syscall.ECONNREFUSED, x509 and tls
// errors) for errors.As. The hostcall layer maps them onto Fastly's
// send_error_detail tags.
var (
	// ErrConnectTimeout: the TCP connect (DNS included) or the TLS
	// handshake took longer than Timeouts.Connect.
	ErrConnectTimeout = errors.New("pool: connect timeout")
	// ErrConnectionRefused: the origin refused the TCP connection. The
	// chain also matches syscall.ECONNREFUSED.
	ErrConnectionRefused = errors.New("pool: connection refused")
	// ErrDNS: the origin's host name could not be resolved. The chain holds
	// the *net.DNSError (IsTimeout tells a DNS timeout).
	ErrDNS = errors.New("pool: DNS lookup failed")
	// ErrFirstByteTimeout: no response header arrived within
	// Timeouts.FirstByte after the request was written.
	ErrFirstByteTimeout = errors.New("pool: first byte timeout")
	// ErrBetweenBytesTimeout: a read of the response body waited longer
	// than Timeouts.BetweenBytes for data from the origin.
	ErrBetweenBytesTimeout = errors.New("pool: between bytes timeout")
	// ErrPoolExhausted: the pool was at Limits.MaxConnections and no
	// connection became free within Timeouts.Connect.
	ErrPoolExhausted = errors.New("pool: connection limit reached")
	// ErrTLS: the TLS handshake failed (certificate not valid for the
	// certificate host name or not signed by a trusted root, protocol or
	// version mismatch, alert), or the pool's TLS settings are invalid
	// (bad CACertPEM).
	ErrTLS = errors.New("pool: TLS error")
	// ErrConnectionTerminated: the origin closed or reset the connection
	// before the response (headers or body) was complete.
	ErrConnectionTerminated = errors.New("pool: connection terminated by origin")
	// ErrInvalidResponse: the origin sent something that is not a valid
	// HTTP/1.x response (malformed status line or headers, headers larger
	// than the limit).
	ErrInvalidResponse = errors.New("pool: invalid response from origin")
	// ErrClosed: the Manager owning the pool was closed.
	ErrClosed = errors.New("pool: closed")
)

// errPeerGone is what a conn's Write returns, without writing, once the
// origin was seen closing the connection. Nothing was written, so
// http.Transport retries the request on another connection when the
// connection was a reused one.
var errPeerGone = errors.New("pool: origin closed the connection")

// errAbandoned finishes a request whose response body was closed before EOF.
var errAbandoned = errors.New("pool: response body closed before EOF")

// dialError wraps an error of net.Dialer.DialContext in its sentinel.
func dialError(err error) error {
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, ErrDialRefused):
		return err
	case errors.As(err, &dnsErr):
		return fmt.Errorf("%w: %w", ErrDNS, err)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%w: %w", ErrConnectionRefused, err)
	case isTimeout(err):
		return fmt.Errorf("%w: %w", ErrConnectTimeout, err)
	}
	return fmt.Errorf("pool: connect: %w", err)
}

// isTimeout reports whether err is a deadline or timeout error.
func isTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// isSentinel reports whether err already carries one of the package's
// sentinels (errors from the dialer pass through http.Transport unchanged).
func isSentinel(err error) bool {
	for _, s := range []error{ErrConnectTimeout, ErrConnectionRefused, ErrDNS,
		ErrFirstByteTimeout, ErrBetweenBytesTimeout, ErrPoolExhausted, ErrTLS,
		ErrConnectionTerminated, ErrInvalidResponse, ErrClosed, ErrDialRefused} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}
