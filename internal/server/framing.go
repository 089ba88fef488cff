package server

import (
	"bytes"
	"context"
	"net"
	"strconv"
	"sync/atomic"
)

// FramingListener wraps ln so that the server closes a connection after
// answering a request that carries both Content-Length and
// Transfer-Encoding (RFC 9112, section 6.1: a server must close the
// connection after responding to such a request). net/http accepts such a
// request by the Transfer-Encoding and removes the Content-Length before
// the handler runs, so each connection's HTTP/1.1 request heads are read as
// they arrive, beside net/http's own parser. Use it with ConnContext as the
// http.Server's ConnContext. A connection the reader cannot follow (not
// HTTP/1.x, a head over 1 MiB + 4 KiB, a malformed chunk) is left to
// net/http unwatched, which rejects such input itself. A connection that
// starts with a TLS handshake record is not watched: Server.HTTPServer's
// TLS and h2c listener watches the plain text of its connections itself
// (HTTP/1.1 over TLS, and HTTP/1.1 beside h2c); HTTP/2 has no
// Transfer-Encoding (net/http refuses a request carrying one).
func FramingListener(ln net.Listener) net.Listener { return framingListener{ln} }

// ConnContext is the http.Server ConnContext that goes with
// FramingListener: it lets ServeHTTP find the connection's watcher.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	if w, ok := c.(watchedConn); ok {
		return context.WithValue(ctx, framingKey{}, w.framing())
	}
	return ctx
}

// watchedConn is a connection whose request framing is followed.
type watchedConn interface{ framing() *framingWatch }

type framingKey struct{}

// connWatch returns the watcher of the connection of ctx, nil if none.
func connWatch(ctx context.Context) *framingWatch {
	fw, _ := ctx.Value(framingKey{}).(*framingWatch)
	return fw
}

// smuggled reports whether fw's connection saw a request with both
// Content-Length and Transfer-Encoding.
func smuggled(fw *framingWatch) bool { return fw != nil && fw.both.Load() }

type framingListener struct{ net.Listener }

func (l framingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &framingConn{Conn: c}, nil
}

// maxWatchedHead is the longest request head followed: net/http's
// default limit (1 MiB) and the 4 KiB it allows beyond.
const maxWatchedHead = 1<<20 + 4096

const (
	stHead      = iota // in a request head (or before one)
	stBody             // Content-Length body: left bytes to go
	stChunkSize        // a chunk-size line
	stChunkData        // chunk data: left bytes to go
	stChunkEnd         // the CRLF after chunk data
	stTrailer          // trailer fields after the last chunk
	stOff              // not followed (any more)
)

// framingConn is a connection whose reads are watched.
type framingConn struct {
	net.Conn
	w framingWatch
}

func (c *framingConn) framing() *framingWatch { return &c.w }

func (c *framingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.w.observe(p[:n])
	return n, err
}

// framingWatch follows HTTP/1.1 request framing on the bytes read from
// one connection. net/http reads a connection from one goroutine at a
// time, so the state is touched by one goroutine at a time; both is read
// by handlers. Its zero value is ready (stHead).
type framingWatch struct {
	both atomic.Bool

	state   int
	seen    bool   // a byte was read
	left    int64  // stBody, stChunkData
	line    []byte // the line being read
	headLen int    // bytes of the current head so far
	started bool   // the current head has its request line
	cl, te  bool   // the current head has Content-Length, Transfer-Encoding
	clLen   int64  // its Content-Length
}

// observe follows the bytes b just read.
func (c *framingWatch) observe(b []byte) {
	if len(b) > 0 && c.state != stOff {
		if !c.seen && b[0] == 0x16 { // a TLS handshake record, not HTTP/1.x
			c.off()
		}
		c.seen = true
		c.scan(b)
	}
}

func (c *framingWatch) scan(b []byte) {
	for len(b) > 0 && c.state != stOff {
		switch c.state {
		case stBody, stChunkData:
			k := int64(len(b))
			if k > c.left {
				k = c.left
			}
			c.left -= k
			b = b[k:]
			if c.left == 0 {
				if c.state == stBody {
					c.state = stHead
				} else {
					c.state = stChunkEnd
				}
			}
			continue
		}
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			c.appendLine(b)
			return
		}
		c.appendLine(b[:i])
		b = b[i+1:]
		if c.state == stOff {
			return
		}
		line := bytes.TrimSuffix(c.line, []byte{'\r'})
		c.endLine(line)
		c.line = c.line[:0]
	}
}

func (c *framingWatch) appendLine(b []byte) {
	c.line = append(c.line, b...)
	if c.state == stHead {
		c.headLen += len(b) + 1
	}
	if len(c.line) > maxWatchedHead || c.headLen > maxWatchedHead {
		c.off()
	}
}

func (c *framingWatch) off() { c.state, c.line = stOff, nil }

func (c *framingWatch) endLine(line []byte) {
	switch c.state {
	case stHead:
		if !c.started {
			if len(line) == 0 {
				return // empty lines before a request line are ignored
			}
			if bytes.HasPrefix(line, []byte("PRI * HTTP/2")) {
				c.off()
				return
			}
			c.started = true
			return
		}
		if len(line) > 0 {
			name, value, ok := bytes.Cut(line, []byte{':'})
			switch {
			case !ok:
			case bytes.EqualFold(name, []byte("Content-Length")):
				c.cl = true
				n, err := strconv.ParseInt(string(bytes.TrimSpace(value)), 10, 64)
				if err != nil || n < 0 {
					c.off() // net/http refuses the request
					return
				}
				c.clLen = n
			case bytes.EqualFold(name, []byte("Transfer-Encoding")):
				c.te = true
			}
			return
		}
		// The end of the head.
		if c.cl && c.te {
			c.both.Store(true)
			c.off() // the connection closes after this request
			return
		}
		c.headLen, c.started = 0, false
		if c.te {
			c.te = false
			c.state = stChunkSize
			return
		}
		if c.cl && c.clLen > 0 {
			c.state, c.left = stBody, c.clLen
		}
		c.cl, c.clLen = false, 0
	case stChunkSize:
		size, _, _ := bytes.Cut(line, []byte{';'})
		n, err := strconv.ParseInt(string(bytes.TrimSpace(size)), 16, 64)
		if err != nil || n < 0 {
			c.off()
			return
		}
		if n == 0 {
			c.state = stTrailer
			return
		}
		c.state, c.left = stChunkData, n
	case stChunkEnd:
		if len(line) != 0 {
			c.off()
			return
		}
		c.state = stChunkSize
	case stTrailer:
		if len(line) == 0 {
			c.state = stHead
		}
	}
}
