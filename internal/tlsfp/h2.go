package tlsfp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strconv"
	"strings"

	"golang.org/x/net/http2/hpack"
)

// H2Preface is the connection preface every HTTP/2 client sends first
// (RFC 9113, section 3.4).
const H2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// HTTP/2 frame types and flags (RFC 9113, section 6).
const (
	frameHeaders      = 0x1
	framePriority     = 0x2
	frameSettings     = 0x4
	frameWindowUpdate = 0x8
	frameContinuation = 0x9

	flagAck        = 0x1
	flagEndHeaders = 0x4
	flagPadded     = 0x8
	flagPriority   = 0x20
)

// ErrNotH2 means the bytes do not start with the HTTP/2 preface.
var ErrNotH2 = errors.New("not an HTTP/2 connection preface")

// H2 returns the HTTP/2 fingerprint of a client from the first bytes it
// sent on a connection (after TLS, when TLS is used): the preface, then
// its frames up to and with the first request's header block. The
// fingerprint is Akamai's (Black Hat EU 2017, "Passive Fingerprinting of
// HTTP/2 Clients"): four fields joined by '|':
//
//   - the client's first SETTINGS frame, "id:value" pairs in wire order
//     joined by ';';
//   - the increment of its connection WINDOW_UPDATE before the first
//     request, else "0";
//   - its PRIORITY frames before the first request,
//     "stream:exclusive:dependency:weight" (weight 1 to 256) joined by ',',
//     else "0";
//   - the order of the first request's pseudo-headers, m (:method),
//     a (:authority), s (:scheme), p (:path), joined by ','.
//
// complete is false while b ends before the first header block does: call
// again with more bytes. err is ErrNotH2 for bytes that are no HTTP/2
// preface, or says what is malformed.
func H2(b []byte) (fp string, complete bool, err error) {
	n := min(len(b), len(H2Preface))
	if !bytes.Equal(b[:n], []byte(H2Preface)[:n]) {
		return "", false, ErrNotH2
	}
	if len(b) < len(H2Preface) {
		return "", false, nil
	}
	b = b[len(H2Preface):]
	var settings, window, prio []string
	var block []byte
	inHeaders := false
	gotSettings := false
	for len(b) >= 9 {
		length := int(b[0])<<16 | int(b[1])<<8 | int(b[2])
		typ, flags := b[3], b[4]
		stream := binary.BigEndian.Uint32(b[5:9]) &^ (1 << 31)
		if len(b) < 9+length {
			return "", false, nil
		}
		p := b[9 : 9+length]
		b = b[9+length:]
		if inHeaders && typ != frameContinuation {
			return "", false, errors.New("HTTP/2 header block interrupted")
		}
		switch typ {
		case frameSettings:
			if flags&flagAck != 0 || gotSettings {
				continue
			}
			gotSettings = true
			for ; len(p) >= 6; p = p[6:] {
				settings = append(settings, strconv.Itoa(int(binary.BigEndian.Uint16(p)))+":"+strconv.FormatUint(uint64(binary.BigEndian.Uint32(p[2:])), 10))
			}
		case frameWindowUpdate:
			if stream == 0 && len(p) == 4 && window == nil {
				window = []string{strconv.FormatUint(uint64(binary.BigEndian.Uint32(p)&^(1<<31)), 10)}
			}
		case framePriority:
			if len(p) == 5 {
				prio = append(prio, priority(stream, p))
			}
		case frameHeaders:
			if flags&flagPadded != 0 {
				if len(p) < 1 || int(p[0]) > len(p)-1 {
					return "", false, errors.New("bad HTTP/2 HEADERS padding")
				}
				p = p[1 : len(p)-int(p[0])]
			}
			if flags&flagPriority != 0 {
				if len(p) < 5 {
					return "", false, errors.New("short HTTP/2 HEADERS priority")
				}
				p = p[5:]
			}
			block = append(block, p...)
			inHeaders = flags&flagEndHeaders == 0
			if !inHeaders {
				return h2String(settings, window, prio, block)
			}
		case frameContinuation:
			block = append(block, p...)
			if flags&flagEndHeaders != 0 {
				return h2String(settings, window, prio, block)
			}
		}
	}
	return "", false, nil
}

func priority(stream uint32, p []byte) string {
	dep := binary.BigEndian.Uint32(p)
	excl := "0"
	if dep>>31 == 1 {
		excl = "1"
	}
	return strconv.FormatUint(uint64(stream), 10) + ":" + excl + ":" +
		strconv.FormatUint(uint64(dep&^(1<<31)), 10) + ":" + strconv.Itoa(int(p[4])+1)
}

func h2String(settings, window, prio []string, block []byte) (string, bool, error) {
	var order []string
	d := hpack.NewDecoder(4096, func(f hpack.HeaderField) {
		switch f.Name {
		case ":method":
			order = append(order, "m")
		case ":authority":
			order = append(order, "a")
		case ":scheme":
			order = append(order, "s")
		case ":path":
			order = append(order, "p")
		}
	})
	if _, err := d.Write(block); err != nil {
		return "", false, err
	}
	if err := d.Close(); err != nil {
		return "", false, err
	}
	or0 := func(s []string, sep string) string {
		if len(s) == 0 {
			return "0"
		}
		return strings.Join(s, sep)
	}
	return strings.Join(settings, ";") + "|" + or0(window, "") + "|" + or0(prio, ",") + "|" + strings.Join(order, ","), true, nil
}
