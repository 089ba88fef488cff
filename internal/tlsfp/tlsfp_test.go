package tlsfp

import (
	"bytes"
	"crypto/tls"
	"errors"
	"net"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// clientHelloRecords returns the TLS records a crypto/tls client writes
// first, with cfg.
func clientHelloRecords(t testing.TB, cfg *tls.Config) []byte {
	t.Helper()
	c, s := net.Pipe()
	defer s.Close()
	go func() {
		tls.Client(c, cfg).Handshake()
		c.Close()
	}()
	s.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 64<<10)
	n := 0
	for n < 5 || n < 5+int(buf[3])<<8+int(buf[4]) {
		m, err := s.Read(buf[n:])
		if err != nil {
			t.Fatal(err)
		}
		n += m
	}
	return buf[:n]
}

func TestClientHello(t *testing.T) {
	raw := clientHelloRecords(t, &tls.Config{ServerName: "edge.example", NextProtos: []string{"h2", "http/1.1"}})
	msg, err := ClientHelloMessage(raw)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := ParseClientHello(msg)
	if err != nil {
		t.Fatal(err)
	}
	if ch.ServerName != "edge.example" || len(ch.ALPN) != 2 || ch.ALPN[0] != "h2" || ch.Version != tls.VersionTLS12 {
		t.Errorf("parsed %+v", ch)
	}
	if ja4 := ch.JA4(); len(ja4) != 36 || ja4[:4] != "t13d" || ja4[8:10] != "h2" {
		t.Errorf("JA4 %q", ja4)
	}

	// A ClientHello split over two records is put back together.
	body := raw[5:]
	split := append([]byte{22, 3, 1, 0, 10}, body[:10]...)
	split = append(split, 22, 3, 1, byte((len(body)-10)>>8), byte(len(body)-10))
	split = append(split, body[10:]...)
	if got, err := ClientHelloMessage(split); err != nil || !bytes.Equal(got, msg) {
		t.Errorf("split records: %v, same message %v", err, bytes.Equal(got, msg))
	}
	for _, bad := range [][]byte{nil, raw[:20], {23, 3, 3, 0, 1, 0}, {22, 3, 3, 0, 4, 2, 0, 0, 0}} {
		if _, err := ClientHelloMessage(bad); err == nil {
			t.Errorf("ClientHelloMessage(%x): no error", bad)
		}
	}
}

func TestGREASE(t *testing.T) {
	for v, want := range map[uint16]bool{0x0a0a: true, 0xfafa: true, 0x1a1a: true, 0x0a1a: false, 0x1301: false, 0x0000: false} {
		if isGREASE(v) != want {
			t.Errorf("isGREASE(%#x) = %v", v, !want)
		}
	}
}

// h2Frames writes a client's opening frames with x/net's framer.
func h2Frames(t testing.TB, padded bool) []byte {
	t.Helper()
	var b bytes.Buffer
	b.WriteString(H2Preface)
	fr := http2.NewFramer(&b, nil)
	fr.WriteSettings(http2.Setting{ID: http2.SettingHeaderTableSize, Val: 65536}, http2.Setting{ID: http2.SettingEnablePush, Val: 0})
	fr.WriteWindowUpdate(0, 15663105)
	fr.WritePriority(3, http2.PriorityParam{StreamDep: 0, Weight: 200})
	fr.WritePriority(5, http2.PriorityParam{StreamDep: 3, Exclusive: true, Weight: 0})
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range []hpack.HeaderField{{Name: ":method", Value: "GET"}, {Name: ":authority", Value: "x"}, {Name: ":scheme", Value: "https"}, {Name: ":path", Value: "/"}, {Name: "user-agent", Value: "t"}} {
		enc.WriteField(f)
	}
	block := hb.Bytes()
	p := http2.HeadersFrameParam{StreamID: 1, BlockFragment: block[:3], EndStream: true}
	if padded {
		p.PadLength = 7
		p.Priority = http2.PriorityParam{StreamDep: 0, Weight: 255, Exclusive: true}
	}
	fr.WriteHeaders(p)
	fr.WriteContinuation(1, true, block[3:])
	return b.Bytes()
}

func TestH2(t *testing.T) {
	const want = "1:65536;2:0|15663105|3:0:0:201,5:1:3:1|m,a,s,p"
	for _, padded := range []bool{false, true} {
		b := h2Frames(t, padded)
		fp, complete, err := H2(b)
		if err != nil || !complete || fp != want {
			t.Errorf("padded %v: %q %v %v, want %q", padded, fp, complete, err, want)
		}
		for n := 0; n < len(b); n++ {
			if fp, complete, err := H2(b[:n]); complete || err != nil || fp != "" {
				t.Fatalf("prefix of %d bytes: %q %v %v, want incomplete", n, fp, complete, err)
			}
		}
	}
	if _, _, err := H2([]byte("GET / HTTP/1.1\r\n")); !errors.Is(err, ErrNotH2) {
		t.Errorf("HTTP/1.1: %v", err)
	}
}

func FuzzClientHello(f *testing.F) {
	f.Add(clientHelloRecords(f, &tls.Config{ServerName: "a.example"}))
	f.Add([]byte{22, 3, 1, 0, 4, 1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, raw []byte) {
		if msg, err := ClientHelloMessage(raw); err == nil {
			if ch, err := ParseClientHello(msg); err == nil {
				ch.JA3MD5()
				ch.JA4()
			}
		}
		if ch, err := ParseClientHello(raw); err == nil {
			ch.JA4()
		}
	})
}

func FuzzH2(f *testing.F) {
	f.Add(h2Frames(f, true))
	f.Add([]byte(H2Preface + "\x00\x00\x01\x01\x0c\x00\x00\x00\x01"))
	f.Fuzz(func(t *testing.T, b []byte) { H2(b) })
}
