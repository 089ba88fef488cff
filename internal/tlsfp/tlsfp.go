// Package tlsfp computes the client fingerprints edgehost reports to
// guests (README.md, "HTTPS and HTTP/2"): JA3 and JA4 from a TLS
// ClientHello, and the HTTP/2 fingerprint from the frames a client sends
// first on an HTTP/2 connection.
package tlsfp

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/crypto/cryptobyte"
)

// Extension numbers the fingerprints treat specially (RFC 8446, RFC 7301,
// RFC 8422).
const (
	extServerName          = 0x0000
	extSupportedGroups     = 0x000a
	extECPointFormats      = 0x000b
	extSignatureAlgorithms = 0x000d
	extALPN                = 0x0010
	extSupportedVersions   = 0x002b
)

// ClientHello is what the fingerprints read from a TLS ClientHello, in
// the order the client sent it.
type ClientHello struct {
	// Version is the legacy_version field (0x0303 for TLS 1.2 and 1.3).
	Version uint16
	// Ciphers are the cipher suites offered.
	Ciphers []uint16
	// Extensions are the extension types, in wire order.
	Extensions []uint16
	// Groups are the supported_groups (elliptic curves).
	Groups []uint16
	// PointFormats are the ec_point_formats.
	PointFormats []uint8
	// SignatureAlgorithms are the signature_algorithms, in wire order.
	SignatureAlgorithms []uint16
	// Versions are the supported_versions, in wire order.
	Versions []uint16
	// ServerName is the SNI host name, "" when absent.
	ServerName string
	// ALPN are the application protocols offered.
	ALPN []string
}

var errMalformed = errors.New("malformed ClientHello")

// ClientHelloMessage returns the first handshake message in the TLS
// records at the start of raw (the bytes a client sent first on a
// connection), which is the ClientHello: handshake type 1, its 3-byte
// length and body. It fails when raw does not start with handshake
// records holding a whole ClientHello.
func ClientHelloMessage(raw []byte) ([]byte, error) {
	var msg []byte
	for len(raw) >= 5 {
		if raw[0] != 22 { // handshake
			break
		}
		n := int(raw[3])<<8 | int(raw[4])
		if len(raw) < 5+n {
			break
		}
		msg = append(msg, raw[5:5+n]...)
		raw = raw[5+n:]
		if len(msg) >= 4 {
			total := 4 + (int(msg[1])<<16 | int(msg[2])<<8 | int(msg[3]))
			if len(msg) >= total {
				if msg[0] != 1 {
					return nil, fmt.Errorf("%w: first handshake message has type %d", errMalformed, msg[0])
				}
				return msg[:total:total], nil
			}
		}
	}
	return nil, fmt.Errorf("%w: no complete ClientHello in %d bytes of records", errMalformed, len(raw))
}

// ParseClientHello parses a ClientHello handshake message (as
// ClientHelloMessage returns it).
func ParseClientHello(msg []byte) (*ClientHello, error) {
	s := cryptobyte.String(msg)
	var typ uint8
	var body cryptobyte.String
	if !s.ReadUint8(&typ) || typ != 1 || !s.ReadUint24LengthPrefixed(&body) {
		return nil, errMalformed
	}
	ch := &ClientHello{}
	var random, session, ciphers, compression cryptobyte.String
	if !body.ReadUint16(&ch.Version) || !body.ReadBytes((*[]byte)(&random), 32) ||
		!body.ReadUint8LengthPrefixed(&session) || !body.ReadUint16LengthPrefixed(&ciphers) ||
		!body.ReadUint8LengthPrefixed(&compression) {
		return nil, errMalformed
	}
	for !ciphers.Empty() {
		var c uint16
		if !ciphers.ReadUint16(&c) {
			return nil, errMalformed
		}
		ch.Ciphers = append(ch.Ciphers, c)
	}
	if body.Empty() {
		return ch, nil
	}
	var exts cryptobyte.String
	if !body.ReadUint16LengthPrefixed(&exts) {
		return nil, errMalformed
	}
	for !exts.Empty() {
		var typ uint16
		var data cryptobyte.String
		if !exts.ReadUint16(&typ) || !exts.ReadUint16LengthPrefixed(&data) {
			return nil, errMalformed
		}
		ch.Extensions = append(ch.Extensions, typ)
		var ok bool
		switch typ {
		case extServerName:
			ok = parseSNI(data, ch)
		case extSupportedGroups:
			ch.Groups, ok = u16List(data, true)
		case extSignatureAlgorithms:
			ch.SignatureAlgorithms, ok = u16List(data, true)
		case extSupportedVersions:
			var l cryptobyte.String
			ok = data.ReadUint8LengthPrefixed(&l)
			if ok {
				ch.Versions, ok = u16List(l, false)
			}
		case extECPointFormats:
			var l cryptobyte.String
			ok = data.ReadUint8LengthPrefixed(&l)
			ch.PointFormats = append([]uint8(nil), l...)
		case extALPN:
			ok = parseALPN(data, ch)
		default:
			ok = true
		}
		if !ok {
			return nil, fmt.Errorf("%w: extension %d", errMalformed, typ)
		}
	}
	return ch, nil
}

func u16List(s cryptobyte.String, prefixed bool) ([]uint16, bool) {
	if prefixed {
		var l cryptobyte.String
		if !s.ReadUint16LengthPrefixed(&l) {
			return nil, false
		}
		s = l
	}
	var out []uint16
	for !s.Empty() {
		var v uint16
		if !s.ReadUint16(&v) {
			return nil, false
		}
		out = append(out, v)
	}
	return out, true
}

func parseSNI(s cryptobyte.String, ch *ClientHello) bool {
	var list cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&list) {
		return false
	}
	for !list.Empty() {
		var typ uint8
		var name cryptobyte.String
		if !list.ReadUint8(&typ) || !list.ReadUint16LengthPrefixed(&name) {
			return false
		}
		if typ == 0 && ch.ServerName == "" {
			ch.ServerName = string(name)
		}
	}
	return true
}

func parseALPN(s cryptobyte.String, ch *ClientHello) bool {
	var list cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&list) {
		return false
	}
	for !list.Empty() {
		var p cryptobyte.String
		if !list.ReadUint8LengthPrefixed(&p) {
			return false
		}
		ch.ALPN = append(ch.ALPN, string(p))
	}
	return true
}

// isGREASE reports whether v is one of the reserved GREASE values (RFC
// 8701: 0x0a0a, 0x1a1a, ... 0xfafa), which both fingerprints leave out.
func isGREASE(v uint16) bool { return v&0x0f0f == 0x0a0a && v>>8 == v&0xff }

func noGREASE(vs []uint16) []uint16 {
	out := make([]uint16, 0, len(vs))
	for _, v := range vs {
		if !isGREASE(v) {
			out = append(out, v)
		}
	}
	return out
}

func joinDec[T uint8 | uint16](vs []T) string {
	var b strings.Builder
	for i, v := range vs {
		if i > 0 {
			b.WriteByte('-')
		}
		b.WriteString(strconv.Itoa(int(v)))
	}
	return b.String()
}

// JA3 returns the JA3 string: the legacy version, ciphers, extensions,
// supported groups and point formats in decimal, each list joined by '-'
// and the five fields by ',', GREASE values left out.
func (ch *ClientHello) JA3() string {
	return strings.Join([]string{
		strconv.Itoa(int(ch.Version)),
		joinDec(noGREASE(ch.Ciphers)),
		joinDec(noGREASE(ch.Extensions)),
		joinDec(noGREASE(ch.Groups)),
		joinDec(ch.PointFormats),
	}, ",")
}

// JA3MD5 returns the MD5 digest of the JA3 string (16 bytes), what
// downstream_tls_ja3_md5 writes.
func (ch *ClientHello) JA3MD5() [16]byte { return md5.Sum([]byte(ch.JA3())) }

// JA4 returns the JA4 fingerprint of a ClientHello received over TCP:
// "t", the highest TLS version offered, "d" with SNI or "i" without, the
// counts of ciphers and extensions (two digits each), the first and last
// characters of the first ALPN value, then the truncated SHA-256 of the
// sorted cipher list and of the sorted extensions (without SNI and ALPN)
// followed by the signature algorithms, GREASE values left out.
func (ch *ClientHello) JA4() string {
	ciphers := noGREASE(ch.Ciphers)
	exts := noGREASE(ch.Extensions)
	var b strings.Builder
	b.WriteByte('t')
	b.WriteString(ja4Version(ch))
	if ch.ServerName != "" {
		b.WriteByte('d')
	} else {
		b.WriteByte('i')
	}
	fmt.Fprintf(&b, "%02d%02d", min(len(ciphers), 99), min(len(exts), 99))
	b.WriteString(ja4ALPN(ch.ALPN))
	b.WriteByte('_')

	sorted := slices.Clone(ciphers)
	slices.Sort(sorted)
	b.WriteString(hash12(joinHex(sorted)))
	b.WriteByte('_')

	var rest []uint16
	for _, e := range exts {
		if e != extServerName && e != extALPN {
			rest = append(rest, e)
		}
	}
	slices.Sort(rest)
	s := joinHex(rest)
	if sig := noGREASE(ch.SignatureAlgorithms); len(sig) > 0 {
		s += "_" + joinHex(sig)
	}
	if len(rest) == 0 {
		b.WriteString("000000000000")
	} else {
		b.WriteString(hash12(s))
	}
	return b.String()
}

func ja4Version(ch *ClientHello) string {
	v := ch.Version
	if vs := noGREASE(ch.Versions); len(vs) > 0 {
		v = slices.Max(vs)
	}
	switch v {
	case 0x0304:
		return "13"
	case 0x0303:
		return "12"
	case 0x0302:
		return "11"
	case 0x0301:
		return "10"
	case 0x0300:
		return "s3"
	}
	return "00"
}

func ja4ALPN(alpn []string) string {
	if len(alpn) == 0 || alpn[0] == "" {
		return "00"
	}
	p := alpn[0]
	first, last := p[0], p[len(p)-1]
	if isAlnum(first) && isAlnum(last) {
		return string([]byte{first, last})
	}
	h := hex.EncodeToString([]byte(p))
	return string([]byte{h[0], h[len(h)-1]})
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func joinHex(vs []uint16) string {
	var b strings.Builder
	for i, v := range vs {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%04x", v)
	}
	return b.String()
}

func hash12(s string) string {
	if s == "" {
		return "000000000000"
	}
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:6])
}
