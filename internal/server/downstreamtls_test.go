package server_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/edgehost/edgehost/internal/config"
	"github.com/edgehost/edgehost/internal/engine"
	"github.com/edgehost/edgehost/internal/guesttest"
	"github.com/edgehost/edgehost/internal/hostcall"
	"github.com/edgehost/edgehost/internal/pool"
	"github.com/edgehost/edgehost/internal/server"
)

// listenHost serves wasm on a real loopback listener set up as
// production does (Server.HTTPServer with lc), logging to h.
func listenHost(t *testing.T, wasm []byte, manifest string, lc server.ListenConfig, h slog.Handler) string {
	t.Helper()
	m, err := config.Parse("fastly.toml", []byte(manifest), t.TempDir())
	if err != nil {
		t.Fatalf("manifest: %v", err)
	}
	log := slog.New(h)
	eng, err := guesttest.Engine(engine.Config{CacheDir: compileCache})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close(context.Background()) })
	pools := pool.NewManager(log)
	t.Cleanup(pools.Close)
	loader := &server.Loader{Engine: eng, Linker: hostcall.NewLinker(log), Pools: pools, Logger: log, Env: server.GuestEnv("test"), Policy: localDev(t)}
	v, err := loader.Load(context.Background(), "1", wasm, m)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	srv := server.New(server.Config{Logger: log})
	srv.Activate(v)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs, sl := srv.HTTPServer(ln, lc)
	go hs.Serve(sl)
	t.Cleanup(func() {
		hs.Close()
		server.Retire(context.Background(), v)
	})
	return ln.Addr().String()
}

// facts parses the tlsmeta guest's key=value lines.
func facts(t *testing.T, body string) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(body), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("guest answered %q", body)
		}
		m[k] = v
	}
	return m
}

// recordConn keeps every byte written through it: what a client sent.
type recordConn struct {
	net.Conn
	mu  sync.Mutex
	out bytes.Buffer
}

func (c *recordConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.out.Write(p)
	c.mu.Unlock()
	return c.Conn.Write(p)
}

func (c *recordConn) sent() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.out.Bytes())
}

// clientHelloSent returns the first handshake message in the TLS records
// a client wrote: its ClientHello (type, length, body).
func clientHelloSent(t *testing.T, raw []byte) []byte {
	t.Helper()
	var hs []byte
	for len(raw) >= 5 && raw[0] == 22 {
		n := int(binary.BigEndian.Uint16(raw[3:5]))
		hs = append(hs, raw[5:5+n]...)
		raw = raw[5+n:]
		if len(hs) >= 4 {
			if total := 4 + int(hs[1])<<16 + int(hs[2])<<8 + int(hs[3]); len(hs) >= total {
				return hs[:total]
			}
		}
	}
	t.Fatal("no ClientHello in what the client sent")
	return nil
}

// helloFields is what the test reads from a ClientHello itself, for the
// expected JA3 and JA4 (written apart from the host's code on purpose).
type helloFields struct {
	version                     int
	ciphers, exts, groups, sigs []int
	formats                     []int
	versions                    []int
	sni                         bool
	alpn                        []string
}

func readHello(t *testing.T, msg []byte) helloFields {
	t.Helper()
	var f helloFields
	p := msg[4:]
	u16 := func() int { v := int(binary.BigEndian.Uint16(p)); p = p[2:]; return v }
	f.version = u16()
	p = p[32:]          // random
	p = p[1+int(p[0]):] // session id
	n := u16()
	for i := 0; i < n; i += 2 {
		f.ciphers = append(f.ciphers, u16())
	}
	p = p[1+int(p[0]):] // compression
	end := len(p) - u16()
	for len(p) > end {
		typ, l := u16(), u16()
		d := p[:l]
		p = p[l:]
		f.exts = append(f.exts, typ)
		list16 := func(d []byte) (out []int) {
			for i := 0; i+1 < len(d); i += 2 {
				out = append(out, int(binary.BigEndian.Uint16(d[i:])))
			}
			return out
		}
		switch typ {
		case 0:
			f.sni = true
		case 10:
			f.groups = list16(d[2:])
		case 11:
			for _, b := range d[1:] {
				f.formats = append(f.formats, int(b))
			}
		case 13:
			f.sigs = list16(d[2:])
		case 16:
			for q := d[2:]; len(q) > 0; q = q[1+int(q[0]):] {
				f.alpn = append(f.alpn, string(q[1:1+int(q[0])]))
			}
		case 43:
			f.versions = list16(d[1:])
		}
	}
	return f
}

func grease(v int) bool { return v&0x0f0f == 0x0a0a && v>>8 == v&0xff }

func keep(vs []int, drop func(int) bool) []int {
	var out []int
	for _, v := range vs {
		if !drop(v) {
			out = append(out, v)
		}
	}
	return out
}

func dashed(vs []int) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = strconv.Itoa(v)
	}
	return strings.Join(s, "-")
}

// wantJA3 is the hex MD5 of the JA3 string of f.
func wantJA3(f helloFields) string {
	s := strconv.Itoa(f.version) + "," + dashed(keep(f.ciphers, grease)) + "," + dashed(keep(f.exts, grease)) + "," +
		dashed(keep(f.groups, grease)) + "," + dashed(f.formats)
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// wantJA4 is the JA4 of f (FoxIO's JA4 specification).
func wantJA4(f helloFields) string {
	ciphers := keep(f.ciphers, grease)
	exts := keep(f.exts, grease)
	top := f.version
	for _, v := range keep(f.versions, grease) {
		top = max(top, v)
	}
	ver := map[int]string{0x0304: "13", 0x0303: "12", 0x0302: "11", 0x0301: "10"}[top]
	sni := "i"
	if f.sni {
		sni = "d"
	}
	alpn := "00"
	if len(f.alpn) > 0 {
		alpn = f.alpn[0][:1] + f.alpn[0][len(f.alpn[0])-1:]
	}
	hexes := func(vs []int, sorted bool) string {
		s := make([]string, len(vs))
		for i, v := range vs {
			s[i] = fmt.Sprintf("%04x", v)
		}
		if sorted {
			sort.Strings(s)
		}
		return strings.Join(s, ",")
	}
	h := func(s string) string { sum := sha256.Sum256([]byte(s)); return hex.EncodeToString(sum[:])[:12] }
	b := h(hexes(ciphers, true))
	c := h(hexes(keep(exts, func(v int) bool { return v == 0 || v == 16 }), true) + "_" + hexes(keep(f.sigs, grease), false))
	return fmt.Sprintf("t%s%s%02d%02d%s_%s_%s", ver, sni, len(ciphers), len(exts), alpn, b, c)
}

// tlsListen returns listener settings with a self-signed certificate and
// a pool trusting it.
func tlsListen(t *testing.T) (server.ListenConfig, *x509.CertPool) {
	t.Helper()
	lc, err := server.TLSOptions{SelfSigned: true}.ListenConfig()
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(lc.TLS.Certificates[0].Leaf)
	return lc, roots
}

// TestDownstreamTLSGetters: real handshakes on loopback with crypto/tls
// clients; what the guest reads back is what the client negotiated and
// sent.
func TestDownstreamTLSGetters(t *testing.T) {
	lc, roots := tlsListen(t)
	addr := listenHost(t, guests["tlsmeta"], "", lc, slog.NewTextHandler(io.Discard, nil))
	tests := []struct {
		name       string
		cfg        *tls.Config
		h2         bool
		wantProto  string
		wantCipher string
	}{
		{"TLS 1.3, HTTP/1.1", &tls.Config{MinVersion: tls.VersionTLS13}, false, "TLSv1.3", "TLS_AES_128_GCM_SHA256"},
		{"TLS 1.2, HTTP/1.1", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384}}, false, "TLSv1.2", "ECDHE-ECDSA-AES256-GCM-SHA384"},
		{"TLS 1.3, HTTP/2", &tls.Config{MinVersion: tls.VersionTLS13}, true, "TLSv1.3", "TLS_AES_128_GCM_SHA256"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg.Clone()
			cfg.RootCAs, cfg.ServerName = roots, "localhost"
			if tc.h2 {
				cfg.NextProtos = []string{"h2"}
			}
			var rec *recordConn
			var plain *recordConn
			dial := func(ctx context.Context, network, a string) (net.Conn, error) {
				c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
				if err != nil {
					return nil, err
				}
				rec = &recordConn{Conn: c}
				tc := tls.Client(rec, cfg)
				if err := tc.HandshakeContext(ctx); err != nil {
					return nil, err
				}
				plain = &recordConn{Conn: tc}
				return plain, nil
			}
			var rt http.RoundTripper = &http.Transport{DialTLSContext: dial}
			if tc.h2 {
				rt = &http2.Transport{DialTLSContext: func(ctx context.Context, n, a string, _ *tls.Config) (net.Conn, error) { return dial(ctx, n, a) }}
			}
			resp, err := (&http.Client{Transport: rt}).Get("https://localhost/some/path")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, b)
			}
			got := facts(t, string(b))
			hello := clientHelloSent(t, rec.sent())
			f := readHello(t, hello)
			version := "2"
			h2fp := "<none>"
			if tc.h2 {
				version = "3"
				h2fp = wantH2(t, plain.sent())
			}
			want := map[string]string{
				"uri":          "https://localhost/some/path",
				"version":      version,
				"protocol":     tc.wantProto,
				"req_protocol": tc.wantProto,
				"cipher":       tc.wantCipher,
				"sni":          "localhost",
				"client_hello": hex.EncodeToString(hello),
				"client_cert":  "<none>",
				"verify":       "5",
				"ja3":          wantJA3(f),
				"req_ja3":      wantJA3(f),
				"ja4":          wantJA4(f),
				"h2":           h2fp,
			}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
			t.Logf("JA4 %s, h2 fingerprint %s", got["ja4"], got["h2"])
		})
	}
}

// wantH2 reads the HTTP/2 frames a client sent (with x/net's framer) up
// to its first header block and returns their Akamai fingerprint.
func wantH2(t *testing.T, sent []byte) string {
	t.Helper()
	if !bytes.HasPrefix(sent, []byte(http2.ClientPreface)) {
		t.Fatalf("client sent no preface: %q", sent[:min(len(sent), 24)])
	}
	fr := http2.NewFramer(nil, bytes.NewReader(sent[len(http2.ClientPreface):]))
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	var settings, prio []string
	window := "0"
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("reading the client's frames: %v", err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() && settings == nil {
				settings = []string{}
				f.ForeachSetting(func(s http2.Setting) error {
					settings = append(settings, fmt.Sprintf("%d:%d", s.ID, s.Val))
					return nil
				})
			}
		case *http2.WindowUpdateFrame:
			if f.StreamID == 0 {
				window = strconv.Itoa(int(f.Increment))
			}
		case *http2.PriorityFrame:
			e := 0
			if f.Exclusive {
				e = 1
			}
			prio = append(prio, fmt.Sprintf("%d:%d:%d:%d", f.StreamID, e, f.StreamDep, int(f.Weight)+1))
		case *http2.MetaHeadersFrame:
			var order []string
			for _, hf := range f.Fields {
				if strings.HasPrefix(hf.Name, ":") {
					order = append(order, hf.Name[1:2])
				}
			}
			p := "0"
			if len(prio) > 0 {
				p = strings.Join(prio, ",")
			}
			return strings.Join(settings, ";") + "|" + window + "|" + p + "|" + strings.Join(order, ",")
		}
	}
}

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key}
}

// client issues a client certificate valid until notAfter.
func (ca *testCA) client(t *testing.T, notAfter time.Time) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "client"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
		NotBefore: time.Now().Add(-2 * time.Hour), NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func (ca *testCA) file(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestDownstreamMTLS: with a client CA, "require" refuses a client
// without a good certificate and "request" lets the guest read how it
// verified; the guest reads the client's certificate as sent.
func TestDownstreamMTLS(t *testing.T) {
	ca, other := newCA(t, "edgehost test CA"), newCA(t, "another CA")
	good := ca.client(t, time.Now().Add(time.Hour))
	expired := ca.client(t, time.Now().Add(-time.Hour))
	foreign := other.client(t, time.Now().Add(time.Hour))
	tests := []struct {
		mode    string
		cert    *tls.Certificate
		refused bool
		verify  string
	}{
		{server.ClientAuthRequire, &good, false, "0"},
		{server.ClientAuthRequire, nil, true, ""},
		{server.ClientAuthRequire, &foreign, true, ""},
		{server.ClientAuthRequest, &good, false, "0"},
		{server.ClientAuthRequest, nil, false, "5"},
		{server.ClientAuthRequest, &foreign, false, "4"},
		{server.ClientAuthRequest, &expired, false, "3"},
	}
	type tlsHost struct {
		addr  string
		roots *x509.CertPool
	}
	hosts := map[string]tlsHost{}
	for _, mode := range []string{server.ClientAuthRequire, server.ClientAuthRequest} {
		lc, err := server.TLSOptions{SelfSigned: true, ClientCAFile: ca.file(t), ClientAuth: mode}.ListenConfig()
		if err != nil {
			t.Fatal(err)
		}
		roots := x509.NewCertPool()
		roots.AddCert(lc.TLS.Certificates[0].Leaf)
		hosts[mode] = tlsHost{listenHost(t, guests["tlsmeta"], "", lc, slog.NewTextHandler(io.Discard, nil)), roots}
	}
	for i, tc := range tests {
		t.Run(fmt.Sprintf("%s/%d", tc.mode, i), func(t *testing.T) {
			h := hosts[tc.mode]
			cfg := &tls.Config{RootCAs: h.roots, ServerName: "localhost"}
			if tc.cert != nil {
				// Sent whatever CAs the host names as acceptable.
				cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return tc.cert, nil }
			}
			c := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
			resp, err := c.Get("https://" + h.addr + "/")
			if tc.refused {
				if err == nil {
					resp.Body.Close()
					t.Fatalf("request succeeded with status %d, want the handshake refused", resp.StatusCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			got := facts(t, string(b))
			if got["verify"] != tc.verify {
				t.Errorf("verify = %s, want %s", got["verify"], tc.verify)
			}
			wantCert := "<none>"
			if tc.cert != nil {
				wantCert = hex.EncodeToString(tc.cert.Certificate[0])
			}
			if got["client_cert"] != wantCert {
				t.Errorf("client_cert = %.40s…, want %.40s…", got["client_cert"], wantCert)
			}
		})
	}
}

// TestDownstreamH2C: with H2C, a client with prior knowledge speaks
// HTTP/2 without TLS and HTTP/1.1 clients are served as before; the TLS
// getters answer none on both.
func TestDownstreamH2C(t *testing.T) {
	addr := listenHost(t, guests["tlsmeta"], "", server.ListenConfig{H2C: true}, slog.NewTextHandler(io.Discard, nil))
	var plain *recordConn
	h2c := &http2.Transport{AllowHTTP: true, DialTLSContext: func(ctx context.Context, n, a string, _ *tls.Config) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		plain = &recordConn{Conn: c}
		return plain, err
	}}
	for _, tc := range []struct {
		name string
		rt   http.RoundTripper
	}{{"h2c", h2c}, {"HTTP/1.1", http.DefaultTransport}} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := (&http.Client{Transport: tc.rt}).Get("http://" + addr + "/x")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			got := facts(t, string(b))
			want := map[string]string{"version": "2", "h2": "<none>", "uri": "http://" + addr + "/x"}
			if tc.rt == h2c {
				want["version"], want["h2"] = "3", wantH2(t, plain.sent())
			}
			for _, k := range []string{"protocol", "req_protocol", "cipher", "sni", "client_hello", "client_cert", "verify", "ja3", "req_ja3", "ja4"} {
				want[k] = "<none>"
			}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
		})
	}
}

// TestDownstreamCurlHTTP2: curl (OpenSSL, nghttp2) over HTTP/2 with
// ALPN; the guest's protocol and cipher are what curl reports it
// negotiated.
func TestDownstreamCurlHTTP2(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("curl not found")
		}
		t.Skip("curl not found")
	}
	lc, _ := tlsListen(t)
	addr := listenHost(t, guests["tlsmeta"], "", lc, slog.NewTextHandler(io.Discard, nil))
	_, port, _ := net.SplitHostPort(addr)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, curl, "-sS", "-v", "-k", "--http2", "--noproxy", "*", "https://localhost:"+port+"/c")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("curl: %v\n%s", err, &stderr)
	}
	got := facts(t, stdout.String())
	m := regexp.MustCompile(`SSL connection using (\S+) / (\S+)`).FindStringSubmatch(stderr.String())
	if m == nil {
		t.Fatalf("curl -v did not say what it negotiated:\n%s", &stderr)
	}
	for k, v := range map[string]string{"version": "3", "protocol": m[1], "cipher": m[2], "sni": "localhost", "uri": "https://localhost:" + port + "/c"} {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if !regexp.MustCompile(`^\d+:\d+(;\d+:\d+)*\|\d+\|[0-9:,]+\|[masp](,[masp]){3}$`).MatchString(got["h2"]) {
		t.Errorf("h2 fingerprint %q is not SETTINGS|WINDOW_UPDATE|PRIORITY|pseudo-headers", got["h2"])
	}
}

func TestTLSOptionsErrors(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "x.pem")
	os.WriteFile(notPEM, []byte("not PEM"), 0o600)
	tests := []struct {
		o    server.TLSOptions
		want string
	}{
		{server.TLSOptions{CertFile: "c.pem"}, "tls_cert needs tls_key"},
		{server.TLSOptions{KeyFile: "k.pem"}, "tls_key needs tls_cert"},
		{server.TLSOptions{ClientCAFile: notPEM}, "tls_client_ca needs tls_cert and tls_key, or tls_self_signed"},
		{server.TLSOptions{CertFile: filepath.Join(dir, "none.pem"), KeyFile: notPEM}, "tls_cert " + filepath.Join(dir, "none.pem")},
		{server.TLSOptions{SelfSigned: true, ClientCAFile: notPEM}, "no PEM certificate"},
		{server.TLSOptions{SelfSigned: true, ClientCAFile: filepath.Join(dir, "none.pem")}, "tls_client_ca: open"},
		{server.TLSOptions{SelfSigned: true, ClientCAFile: newCA(t, "x").file(t), ClientAuth: "maybe"}, `tls_client_auth "maybe"`},
	}
	for _, tc := range tests {
		_, err := tc.o.ListenConfig()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want one containing %q", tc.o, err, tc.want)
		}
	}
}

// TestHTTPToHTTPSListener: plain HTTP to the HTTPS listener gets a 400
// saying so, and the listener goes on serving TLS.
func TestHTTPToHTTPSListener(t *testing.T) {
	lc, roots := tlsListen(t)
	addr := listenHost(t, guests["tlsmeta"], "", lc, slog.NewTextHandler(io.Discard, nil))
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(b), "HTTPS server") {
		t.Errorf("plain HTTP: %d %q", resp.StatusCode, b)
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	_, port, _ := net.SplitHostPort(addr)
	resp, err = c.Get("https://localhost:" + port + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("HTTPS after it: %d", resp.StatusCode)
	}
}
