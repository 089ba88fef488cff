package config

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/edgehost/edgehost/internal/pool"
)

// testCA is a throwaway self-signed CA certificate.
const testCA = `-----BEGIN CERTIFICATE-----
MIIBkzCCATmgAwIBAgIUYb0Y8h9elD4VJrPdt3J8BGemji4wCgYIKoZIzj0EAwIw
HjEcMBoGA1UEAwwTZWRnZWhvc3QgZXhhbXBsZSBDQTAgFw0yNjExMjIwMDU3MTBa
GA8yMTI2MTAyOTAwNTcxMFowHjEcMBoGA1UEAwwTZWRnZWhvc3QgZXhhbXBsZSBD
QTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABBNSuTZigNh2EcUR33LNd3TYURFE
W3gk5jO/OztlBlr63TLa8T3doHC5AfQJH2CRaKZTx6kRP3KNrqvkD0yPDTKjUzBR
MB0GA1UdDgQWBBR8cvQghwy2OGXKN2KZb0eyCO4GyjAfBgNVHSMEGDAWgBR8cvQg
hwy2OGXKN2KZb0eyCO4GyjAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0gA
MEUCIQDRy/LjJvpf02AuRuIez6blwiZS1N9Cv9Q4fW+EVmV38QIgI7OGfOhoQd78
5fEJDUDrD4IHDLH13U8dacRfb38/g0w=
-----END CERTIFICATE-----
`

// problems returns the *Error values joined in err.
func problems(t *testing.T, err error) []*Error {
	t.Helper()
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	out := make([]*Error, 0, len(errs))
	for _, e := range errs {
		var ce *Error
		if !errors.As(e, &ce) {
			t.Fatalf("error %q (%T) is not a *config.Error", e, e)
		}
		out = append(out, ce)
	}
	return out
}

// problem is an expected error: the mark of its line and its message.
type problem struct{ mark, msg string }

// markedLine returns the 1-based number of the line of doc that ends with
// the comment "#<-" + mark.
func markedLine(t *testing.T, doc, mark string) int {
	t.Helper()
	for i, l := range strings.Split(doc, "\n") {
		if strings.HasSuffix(l, "#<-"+mark) {
			return i + 1
		}
	}
	t.Fatalf("no line marked %q", mark)
	return 0
}

func mustParse(t *testing.T, doc, dir string) *Manifest {
	t.Helper()
	m, err := Parse("fastly.toml", []byte(doc), dir)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return m
}

func TestBackend(t *testing.T) {
	tests := []struct {
		name string
		body string // the body of [local_server.backends.b]
		doc  string // the whole manifest, instead of body
		want Backend
	}{
		{
			name: "http default port",
			body: `url = "http://example.com"`,
			want: Backend{URL: "http://example.com", Host: "example.com", Port: 80,
				Conn: pool.Settings{Scheme: "http", Addr: "example.com:80"}},
		},
		{
			name: "https default port, trailing slash",
			body: `url = "https://Example.com/"`,
			want: Backend{URL: "https://Example.com/", Host: "Example.com", Port: 443,
				Conn: pool.Settings{Scheme: "https", Addr: "Example.com:443"}},
		},
		{
			name: "ipv6 with port",
			body: `url = "http://[::1]:8080"`,
			want: Backend{URL: "http://[::1]:8080", Host: "::1", Port: 8080,
				Conn: pool.Settings{Scheme: "http", Addr: "[::1]:8080"}},
		},
		{
			name: "every key",
			body: `url = "https://10.1.2.3:8443"
override_host = "www.example.com"
cert_host = "cert.example.com"
use_sni = false
ca_certificate = """` + testCA + `"""
ssl_min_version = "1.1"
ssl_max_version = 1.3
connect_timeout_ms = 250
first_byte_timeout_ms = 2500
between_bytes_timeout_ms = 7000
keepalive_time = 30
tcp_keepalive_enable = true
tcp_keepalive_time = 20
tcp_keepalive_interval = 5
tcp_keepalive_probes = 4
max_connections = 7
max_use = 11
max_lifetime = 1500
dont_pool = true`,
			want: Backend{
				URL: "https://10.1.2.3:8443", Host: "10.1.2.3", Port: 8443,
				Conn: pool.Settings{
					Scheme:       "https",
					Addr:         "10.1.2.3:8443",
					HostOverride: "www.example.com",
					TLS: pool.TLS{
						NoSNI:        true,
						CertHostname: "cert.example.com",
						CACertPEM:    testCA,
						MinVersion:   tls.VersionTLS11,
						MaxVersion:   tls.VersionTLS13,
					},
					Keepalive: pool.Keepalive{
						HTTPKeepaliveTime: 30 * time.Second,
						TCPIdle:           20 * time.Second,
						TCPInterval:       5 * time.Second,
						TCPCount:          4,
					},
					Limits: pool.Limits{
						MaxConnections: 7,
						MaxUse:         11,
						MaxLifetime:    1500 * time.Millisecond,
					},
					DontPool: true,
				},
				Timeouts: pool.Timeouts{
					Connect:      250 * time.Millisecond,
					FirstByte:    2500 * time.Millisecond,
					BetweenBytes: 7 * time.Second,
				},
			},
		},
		{
			name: "tcp keepalive off, sni on",
			body: `url = "https://example.com"
use_sni = true
tcp_keepalive_enable = false
dont_pool = false`,
			want: Backend{URL: "https://example.com", Host: "example.com", Port: 443,
				Conn: pool.Settings{Scheme: "https", Addr: "example.com:443",
					Keepalive: pool.Keepalive{TCPDisabled: true}}},
		},
		{
			name: "inline table",
			doc:  "[local_server.backends]\nb = { url = \"http://h:1\", keepalive_time = 2 }\n",
			want: Backend{URL: "http://h:1", Host: "h", Port: 1,
				Conn: pool.Settings{Scheme: "http", Addr: "h:1",
					Keepalive: pool.Keepalive{HTTPKeepaliveTime: 2 * time.Second}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := tt.doc
			if doc == "" {
				doc = "[local_server.backends.b]\n" + tt.body + "\n"
			}
			m := mustParse(t, doc, "")
			tt.want.Name = "b"
			if got := m.Backends["b"]; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("backend:\n got %+v\nwant %+v", got, tt.want)
			}
			if len(m.Backends) != 1 {
				t.Errorf("got %d backends, want 1", len(m.Backends))
			}
		})
	}
}

func TestErrors(t *testing.T) {
	// Each doc marks the line of each expected problem with "#<-MARK"; want
	// lists the expected problems in order, each as its line's mark ("" for
	// no line) and the message after "fastly.toml:LINE: ".
	tests := []struct {
		name string
		doc  string
		want []problem
	}{
		{
			name: "unknown backend key",
			doc: `name = "x"
[local_server.backends.origin]
url = "http://example.com"
keepalive_tiem = 5 #<-a
`,
			want: []problem{{"a", `unknown key "local_server.backends.origin.keepalive_tiem"`}},
		},
		{
			name: "unknown keys at every level",
			doc: `nam = "typo" #<-a
[local_server]
viceroy = 1 #<-b
[local_server.backends.a]
url = "http://a"
[local_server.config_stores.s]
format = "inline-toml"
contents = { k = "v" }
extra = true #<-c
[local_server.log_endpoints]
ok = {}
bad = { file = "x" } #<-d
[edgehost]
adr = ":1" #<-e
[something.nested] #<-f
x = 1
`,
			want: []problem{
				{"a", `unknown key "nam"`},
				{"b", `unknown key "local_server.viceroy"`},
				{"c", `unknown key "local_server.config_stores.s.extra"`},
				{"d", `unknown key "local_server.log_endpoints.bad.file"`},
				{"e", `unknown key "edgehost.adr"`},
				{"f", `unknown key "something"`},
			},
		},
		{
			name: "quoted unknown key",
			doc: `[edgehost]
"odd key" = 1 #<-a
`,
			want: []problem{{"a", `unknown key "edgehost.\"odd key\""`}},
		},
		{
			name: "wrong types",
			doc: `name = 5 #<-a
authors = "me" #<-b
[local_server.backends.b]
url = "https://b"
use_sni = "yes" #<-c
max_use = 1.5 #<-d
override_host = 3 #<-e
[edgehost]
allowed_backend_targets = ["a", 3] #<-f
`,
			want: []problem{
				{"a", `key "name": want a string, have an integer`},
				{"b", `key "authors": want an array of strings, have a string`},
				{"c", `key "local_server.backends.b.use_sni": want a boolean (true or false), have a string`},
				{"d", `key "local_server.backends.b.max_use": want an integer, have a float`},
				{"e", `key "local_server.backends.b.override_host": want a string, have an integer`},
				{"f", `key "edgehost.allowed_backend_targets": element 1: want a string, have an integer`},
			},
		},
		{
			name: "negative and out of range",
			doc: `[local_server.backends.b]
url = "http://b"
connect_timeout_ms = -1 #<-a
keepalive_time = -5 #<-b
tcp_keepalive_probes = 128 #<-c
tcp_keepalive_time = 40000 #<-d
max_lifetime = 4294967296 #<-e
`,
			want: []problem{
				{"a", `key "local_server.backends.b.connect_timeout_ms": -1 is below the minimum 0`},
				{"b", `key "local_server.backends.b.keepalive_time": -5 is below the minimum 0`},
				{"c", `key "local_server.backends.b.tcp_keepalive_probes": 128 is above the maximum 127`},
				{"d", `key "local_server.backends.b.tcp_keepalive_time": 40000 is above the maximum 32767`},
				{"e", `key "local_server.backends.b.max_lifetime": 4294967296 is above the maximum 4294967295`},
			},
		},
		{
			name: "bad urls",
			doc: `[local_server.backends]
a = { url = "ftp://a" } #<-a
b = { url = "http://b/prefix", health = "sick" } #<-b
c = { url = "http://" } #<-c
d = { url = "http://d:99999" } #<-d
e = { url = "http://u:p@e" } #<-e
f = { url = "http://f?q=1" } #<-f
g = { url = "http://g:0" } #<-g
[local_server.backends.h] #<-h
override_host = "h"
`,
			want: []problem{
				{"a", `key "local_server.backends.a.url": scheme must be http or https, have "ftp"`},
				{"b", `key "local_server.backends.b.health": unknown health "sick"; want "unknown", "healthy" or "unhealthy"`},
				{"c", `key "local_server.backends.c.url": no host; want scheme://host[:port]`},
				{"d", `key "local_server.backends.d.url": bad port "99999"`},
				{"e", `key "local_server.backends.e.url": user information is not supported`},
				{"f", `key "local_server.backends.f.url": a query is not supported`},
				{"g", `key "local_server.backends.g.url": bad port "0"`},
				{"h", `key "local_server.backends.h": the url key is required`},
			},
		},
		{
			name: "tls settings",
			doc: `[local_server.backends.plain]
url = "http://p"
cert_host = "p" #<-a
[local_server.backends.secure]
url = "https://s"
ssl_min_version = "1.3"
ssl_max_version = "1.2" #<-b
ca_certificate = "not pem" #<-c
[local_server.backends.v]
url = "https://v"
ssl_min_version = "1.4" #<-d
`,
			want: []problem{
				{"a", `key "local_server.backends.plain.cert_host": applies only to https backends`},
				{"b", `key "local_server.backends.secure.ssl_max_version": is below ssl_min_version`},
				{"c", `key "local_server.backends.secure.ca_certificate": no PEM certificate found`},
				{"d", `key "local_server.backends.v.ssl_min_version": unknown TLS version "1.4"; want "1.0", "1.1", "1.2" or "1.3"`},
			},
		},
		{
			name: "tcp keepalive settings while disabled",
			doc: `[local_server.backends.b]
url = "http://b"
tcp_keepalive_enable = false
tcp_keepalive_interval = 3 #<-a
`,
			want: []problem{{"a", `key "local_server.backends.b.tcp_keepalive_interval": has no effect with tcp_keepalive_enable = false`}},
		},
		{
			name: "stores",
			doc: `[local_server.config_stores.a]
format = "yaml" #<-a
[local_server.config_stores.b] #<-b
contents = { k = "v" }
[local_server.dictionaries.c]
format = "inline-toml"
contents.k = 1 #<-c
[local_server.dictionaries.d] #<-d
format = "json"
[local_server.dictionaries.e] #<-x
format = "json"
contents = {} #<-e
[local_server.dictionaries.f]
format = "inline-toml"
file = "x.json" #<-f
contents = {}
`,
			want: []problem{
				{"a", `key "local_server.config_stores.a.format": unknown format "yaml"; want "inline-toml" or "json"`},
				{"b", `key "local_server.config_stores.b": the format key is required ("inline-toml" or "json")`},
				{"c", `key "local_server.dictionaries.c.contents.k": want a string, have an integer`},
				{"d", `key "local_server.dictionaries.d": format = "json" needs a file key`},
				{"x", `key "local_server.dictionaries.e": format = "json" needs a file key`},
				{"e", `key "local_server.dictionaries.e.contents": is for format = "inline-toml"; json stores take a file`},
				{"f", `key "local_server.dictionaries.f.file": is for format = "json"; inline-toml stores take a contents table`},
			},
		},
		{
			name: "log endpoints",
			doc: `[local_server]
log_endpoints = ["ok", "stdout", "ok"] #<-a
`,
			want: []problem{
				{"a", `key "local_server.log_endpoints": endpoint name "stdout" is reserved: guests cannot open it`},
				{"a", `key "local_server.log_endpoints": endpoint "ok" is listed twice`},
			},
		},
		{
			name: "host settings",
			doc: `[edgehost]
addr = "7676" #<-a
admin_addr = "localhost:http" #<-b
engine = "v8" #<-c
allowed_backend_targets = [ #<-d
  "10.0.0.0/8",
  "10.0.0.0/33",
  "exa mple.com",
  "host:0",
]
sandbox_memory_mib = 0 #<-e
sandbox_timeout_ms = -1 #<-f
max_concurrent_sandboxes = 0 #<-g
kept_versions = 65 #<-h
`,
			want: []problem{
				{"a", `key "edgehost.addr": want host:port: address 7676: missing port in address`},
				{"b", `key "edgehost.admin_addr": bad port "http"`},
				{"c", `key "edgehost.engine": unknown engine "v8"; want "wazero" or "wasmtime"`},
				{"d", `key "edgehost.allowed_backend_targets": element 1 ("10.0.0.0/33"): bad CIDR prefix: netip.ParsePrefix("10.0.0.0/33"): prefix length out of range`},
				{"d", `key "edgehost.allowed_backend_targets": element 2 ("exa mple.com"): bad host name "exa mple.com"`},
				{"d", `key "edgehost.allowed_backend_targets": element 3 ("host:0"): bad port "0"`},
				{"e", `key "edgehost.sandbox_memory_mib": 0 is below the minimum 1`},
				{"f", `key "edgehost.sandbox_timeout_ms": -1 is below the minimum 1`},
				{"g", `key "edgehost.max_concurrent_sandboxes": 0 is below the minimum 1`},
				{"h", `key "edgehost.kept_versions": 65 is above the maximum 64`},
			},
		},
		{
			name: "downstream TLS",
			doc: `[edgehost]
tls_cert = "cert.pem" #<-a
tls_client_auth = "optional" #<-b
h2c = "yes" #<-c
`,
			want: []problem{
				{"a", `key "edgehost.tls_cert": needs tls_key`},
				{"b", `key "edgehost.tls_client_auth": unknown mode "optional"; want "require" or "request"`},
				{"c", `key "edgehost.h2c": want a boolean (true or false), have a string`},
			},
		},
		{
			name: "structure",
			doc: `[local_server]
dictionaries = "d" #<-a
[[local_server.backends]] #<-b
url = "http://x"
[[local_server.config_stores]] #<-c
[edgehost]
addr = 1979-05-27 #<-d
`,
			want: []problem{
				{"a", `key "local_server.dictionaries": want a table, have a string`},
				{"b", `key "local_server.backends": want a table, have an array of tables`},
				{"c", `key "local_server.config_stores": want a table, have an array of tables`},
				{"d", `key "edgehost.addr": want a string, have a date/time`},
			},
		},
		{
			name: "names",
			doc: `[local_server.backends]
x = 1 #<-a
[local_server.backends.""]
url = "http://x"
`,
			want: []problem{
				{"a", `key "local_server.backends.x": want a table, have an integer`},
				// The decoder cannot address an empty key: no line.
				{"", `key "local_server.backends.\"\"": the name must not be empty`},
			},
		},
		{
			name: "syntax error",
			doc: `name = "x"
[edgehost]
addr = #<-a
`,
			want: []problem{{"a", `invalid TOML: expected value but found '#' instead`}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("fastly.toml", []byte(tt.doc), t.TempDir())
			if err == nil {
				t.Fatal("Parse succeeded, want errors")
			}
			var want []string
			for _, w := range tt.want {
				if w.mark == "" {
					want = append(want, "fastly.toml: "+w.msg)
					continue
				}
				want = append(want, fmt.Sprintf("fastly.toml:%d: %s", markedLine(t, tt.doc, w.mark), w.msg))
			}
			var got []string
			for _, e := range problems(t, err) {
				got = append(got, e.Error())
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("errors:\n got %q\nwant %q", got, want)
			}
			if err.Error() != strings.Join(want, "\n") {
				t.Errorf("err.Error() = %q", err.Error())
			}
		})
	}
}

func TestStores(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "sub", "store.json"), `{"a": "1", "b": "two words", "": "empty key"}`)
	writeFile(t, filepath.Join(dir, "dict.json"), `{"k": "v"}`)
	m := mustParse(t, `
[local_server.config_stores.inline]
format = "inline-toml"
[local_server.config_stores.inline.contents]
x = "1"
"dotted.key" = "y"
[local_server.config_stores.fromjson]
format = "json"
file = "sub/store.json"
[local_server.config_stores.empty]
format = "inline-toml"
contents = {}
[local_server.dictionaries.d]
format = "json"
file = "dict.json"
[local_server.dictionaries.e]
format = "inline-toml"
contents = { k = "inline" }
`, dir)
	wantStores := map[string]map[string]string{
		"inline":   {"x": "1", "dotted.key": "y"},
		"fromjson": {"a": "1", "b": "two words", "": "empty key"},
		"empty":    {},
	}
	if !reflect.DeepEqual(m.ConfigStores, wantStores) {
		t.Errorf("ConfigStores = %v, want %v", m.ConfigStores, wantStores)
	}
	wantDicts := map[string]map[string]string{"d": {"k": "v"}, "e": {"k": "inline"}}
	if !reflect.DeepEqual(m.Dictionaries, wantDicts) {
		t.Errorf("Dictionaries = %v, want %v", m.Dictionaries, wantDicts)
	}
}

func TestJSONStoreErrors(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "nonstring.json"), `{"ok": "v", "n": 1, "o": {}}`)
	writeFile(t, filepath.Join(dir, "array.json"), `["a"]`)
	writeFile(t, filepath.Join(dir, "null.json"), `null`)
	tests := []struct {
		name, file string
		wantMsg    string // what the message must contain
		notExist   bool
	}{
		{name: "missing file", file: "missing.json", wantMsg: "missing.json: no such file or directory", notExist: true},
		{name: "non-string values", file: "nonstring.json", wantMsg: `values must be strings; not so for "n", "o"`},
		{name: "not an object", file: "array.json", wantMsg: "want a JSON object of strings"},
		{name: "null", file: "null.json", wantMsg: "want a JSON object of strings, have null"},
		{name: "empty name", file: "", wantMsg: "empty file name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := "[local_server.config_stores.s]\nformat = \"json\"\nfile = \"" + tt.file + "\" #<-a\n"
			_, err := Parse("fastly.toml", []byte(doc), dir)
			if err == nil {
				t.Fatal("Parse succeeded, want an error")
			}
			ps := problems(t, err)
			if len(ps) != 1 {
				t.Fatalf("got %d problems, want 1: %v", len(ps), err)
			}
			p := ps[0]
			if p.Line != markedLine(t, doc, "a") || p.Key != "local_server.config_stores.s.file" {
				t.Errorf("problem at line %d key %q, want line %d key local_server.config_stores.s.file",
					p.Line, p.Key, markedLine(t, doc, "a"))
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not contain %q", err, tt.wantMsg)
			}
			if got := errors.Is(err, fs.ErrNotExist); got != tt.notExist {
				t.Errorf("errors.Is(err, fs.ErrNotExist) = %v, want %v", got, tt.notExist)
			}
		})
	}
}

func TestLogEndpoints(t *testing.T) {
	tests := []struct {
		name, doc string
		want      []string
	}{
		{"none", ``, nil},
		{"tables", "[local_server.log_endpoints]\nz = {}\na = {}\n[local_server.log_endpoints.m]\n", []string{"a", "m", "z"}},
		{"list", "[local_server]\nlog_endpoints = [\"z\", \"a\"]\n", []string{"a", "z"}},
		{"empty list", "[local_server]\nlog_endpoints = []\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mustParse(t, tt.doc, "")
			if !reflect.DeepEqual(m.LogEndpoints, tt.want) {
				t.Errorf("LogEndpoints = %q, want %q", m.LogEndpoints, tt.want)
			}
		})
	}
}

func TestHost(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		doc     string
		want    func(*Host)
		wantSet []string
	}{
		{name: "absent", doc: ``, want: func(*Host) {}},
		{name: "empty table", doc: "[edgehost]\n", want: func(*Host) {}},
		{
			name: "every key",
			doc: `[edgehost]
addr = "0.0.0.0:8080"
admin_addr = ""
data_dir = "state"
engine = "wasmtime"
allowed_backend_targets = ["api.example.com", "10.0.0.0/8", "[::1]:8080", "::1", "h.example:443"]
allow_private_backends = true
max_concurrent_sandboxes = 10
max_waiting_sandboxes = 7
sandbox_memory_mib = 64
sandbox_timeout_ms = 1500
max_pending_requests = 3
max_header_bytes = 4096
max_body_bytes = 5000000000
kept_versions = 0
`,
			want: func(h *Host) {
				h.Addr = "0.0.0.0:8080"
				h.AdminAddr = ""
				h.DataDir = filepath.Join(dir, "state")
				h.Engine = EngineWasmtime
				h.AllowedBackendTargets = []string{"api.example.com", "10.0.0.0/8", "[::1]:8080", "::1", "h.example:443"}
				h.AllowPrivateBackends = true
				h.MaxConcurrentSandboxes = 10
				h.MaxWaitingSandboxes = 7
				h.SandboxMemoryMiB = 64
				h.SandboxTimeout = 1500 * time.Millisecond
				h.MaxPendingRequests = 3
				h.MaxHeaderBytes = 4096
				h.MaxBodyBytes = 5000000000
				h.KeptVersions = 0
			},
			wantSet: []string{"addr", "admin_addr", "allow_private_backends", "allowed_backend_targets", "data_dir", "engine", "kept_versions",
				"max_body_bytes", "max_concurrent_sandboxes", "max_header_bytes", "max_pending_requests",
				"max_waiting_sandboxes", "sandbox_memory_mib", "sandbox_timeout_ms"},
		},
		{
			name: "absolute data dir, no dynamic backends",
			doc:  "[edgehost]\ndata_dir = \"/var/lib/edgehost\"\nallowed_backend_targets = []\n",
			want: func(h *Host) {
				h.DataDir = "/var/lib/edgehost"
				h.AllowedBackendTargets = []string{}
			},
			wantSet: []string{"allowed_backend_targets", "data_dir"},
		},
	}
	keys := []string{"addr", "admin_addr", "allow_private_backends", "allowed_backend_targets", "data_dir", "engine", "kept_versions",
		"max_body_bytes", "max_concurrent_sandboxes", "max_header_bytes", "max_pending_requests",
		"max_waiting_sandboxes", "sandbox_memory_mib", "sandbox_timeout_ms"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mustParse(t, tt.doc, dir).Host
			want := DefaultHost()
			tt.want(&want)
			got.set, want.set = nil, nil
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Host:\n got %+v\nwant %+v", got, want)
			}
			if (got.AllowedBackendTargets == nil) != (want.AllowedBackendTargets == nil) {
				t.Errorf("AllowedBackendTargets nil = %v, want %v", got.AllowedBackendTargets == nil, want.AllowedBackendTargets == nil)
			}
			h := mustParse(t, tt.doc, dir).Host
			for _, k := range keys {
				wantSet := false
				for _, s := range tt.wantSet {
					wantSet = wantSet || s == k
				}
				if h.IsSet(k) != wantSet {
					t.Errorf("IsSet(%q) = %v, want %v", k, h.IsSet(k), wantSet)
				}
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	h := DefaultHost()
	if h.Addr != "127.0.0.1:7676" || h.AdminAddr != "127.0.0.1:7677" || h.Engine != "wazero" ||
		h.SandboxMemoryMiB != 128 || h.SandboxTimeout != 60*time.Second || h.DataDir != "" ||
		h.AllowedBackendTargets != nil || h.AllowPrivateBackends || h.KeptVersions != 1 {
		t.Errorf("DefaultHost() = %+v, not what README.md and fastly.toml.example document", h)
	}
	m := Default()
	if m.Backends == nil || m.ConfigStores == nil || m.Dictionaries == nil || len(m.Backends) != 0 {
		t.Errorf("Default() maps: %+v", m)
	}
	if !reflect.DeepEqual(m.Host, h) {
		t.Errorf("Default().Host = %+v, want DefaultHost()", m.Host)
	}
	// An empty file is the default manifest.
	e := mustParse(t, "", ".")
	if !reflect.DeepEqual(e, m) {
		t.Errorf("Parse(empty) = %+v, want %+v", e, m)
	}
}

func TestFastlyKeysAccepted(t *testing.T) {
	m := mustParse(t, `manifest_version = 3
name = "svc"
description = "d"
authors = ["a@example.com", "b@example.com"]
language = "rust"
service_id = "SU1Z0isxPaozGVKXdv0eY"
cloned_from = "https://github.com/fastly/compute-starter-kit-rust-default"
profile = "default"

[scripts]
build = "cargo build"
env_vars = ["A=1"]
post_init = "true"

[setup.backends.origin]
address = "example.com"
port = 443
[setup.config_stores.s.items.k]
value = "v"

[local_server.kv_stores]
store = [{ key = "k", data = "v" }]
[[local_server.secret_stores.s]]
key = "k"
env = "PATH"
[local_server.geolocation]
format = "inline-toml"

[local_server]
viceroy_version = "0.12.0"
fake_valid_fastly_keys = ["purge-key"]
[local_server.object_stores]
legacy = [{ key = "k", data = "v" }]
[local_server.shielding_sites]
"pdx-or-us" = "Local"
"bfi-wa-us" = { unencrypted = "http://127.0.0.1:1", encrypted = "https://127.0.0.1:2" }

[local_server.backends.api]
url = "https://api.example.com/v1/"
health = "Healthy"
grpc = false
[local_server.backends.grpc]
url = "http://127.0.0.1:50051"
grpc = true
health = "unhealthy"
[local_server.backends.mtls]
url = "https://mtls.example.com"
client_certificate = { certificate = "PEM", key = "PEM" }
`, "")
	if m.Name != "svc" || m.ServiceID != "SU1Z0isxPaozGVKXdv0eY" {
		t.Errorf("Name, ServiceID = %q, %q, want svc, SU1Z0isxPaozGVKXdv0eY", m.Name, m.ServiceID)
	}
	want := []string{"local_server.backends.grpc.grpc", "local_server.backends.mtls.client_certificate",
		"local_server.object_stores"}
	if !reflect.DeepEqual(m.Ignored, want) {
		t.Errorf("Ignored = %q, want %q", m.Ignored, want)
	}
	if !reflect.DeepEqual(m.FastlyKeys, []string{"purge-key"}) {
		t.Errorf("FastlyKeys = %q", m.FastlyKeys)
	}
	if got := m.Services.Shields.Names(); !reflect.DeepEqual(got, []string{"bfi-wa-us", "pdx-or-us"}) || !m.Services.Shields["pdx-or-us"].Local {
		t.Errorf("shielding sites = %q (pdx-or-us local: %v)", got, m.Services.Shields["pdx-or-us"].Local)
	}
	if m.Services.Geo == nil || m.Services.Geo.Stats().Addresses != 0 {
		t.Errorf("geolocation with format = \"inline-toml\" and no addresses: %+v", m.Services.Geo)
	}
	api, grpc, mtls := m.Backends["api"], m.Backends["grpc"], m.Backends["mtls"]
	if api.PathPrefix != "/v1/" || api.Health != HealthHealthy || api.Host != "api.example.com" || api.Port != 443 {
		t.Errorf("api backend: prefix %q health %d host %q port %d", api.PathPrefix, api.Health, api.Host, api.Port)
	}
	if grpc.PathPrefix != "" || grpc.Health != HealthUnhealthy || mtls.Health != HealthUnknown {
		t.Errorf("grpc backend: prefix %q health %d; mtls health %d", grpc.PathPrefix, grpc.Health, mtls.Health)
	}
}

// TestStoreNamespace: config stores and dictionaries are one namespace,
// so one name in both sections is an error at the dictionary's line.
func TestStoreNamespace(t *testing.T) {
	_, err := Parse("fastly.toml", []byte(`[local_server.config_stores.shared]
format = "inline-toml"
contents = { a = "1" }
[local_server.dictionaries.shared]
format = "inline-toml"
contents = { a = "2" }
[local_server.dictionaries.other]
format = "inline-toml"
contents = { b = "3" }
`), "")
	want := `fastly.toml:4: key "local_server.dictionaries.shared": "shared" is also a config store: config stores and dictionaries share one namespace`
	if err == nil || err.Error() != want {
		t.Fatalf("Parse = %v, want %s", err, want)
	}
}

// TestGuestEnvKeys: the [edgehost] keys of the guest environment, their
// defaults, and their checks.
func TestGuestEnvKeys(t *testing.T) {
	d := DefaultHost()
	if d.POP != "EDGEHOST" || d.Region != "local" || d.CustomerID != "0000000000000000000000" ||
		d.Hostname != "" || d.ServiceID != "" || d.CacheGeneration != 0 {
		t.Errorf("defaults: %+v", d)
	}
	m := mustParse(t, `[edgehost]
hostname = "cache-pdx-1"
pop = "PDX"
region = "US-West"
service_id = "svc123"
customer_id = "cust456"
cache_generation = 7
`, "")
	h := m.Host
	if h.Hostname != "cache-pdx-1" || h.POP != "PDX" || h.Region != "US-West" || h.ServiceID != "svc123" ||
		h.CustomerID != "cust456" || h.CacheGeneration != 7 {
		t.Errorf("parsed: %+v", h)
	}
	_, err := Parse("fastly.toml", []byte("[edgehost]\npop = \"\"\ncache_generation = -1\n"), "")
	want := "fastly.toml:2: key \"edgehost.pop\": must not be empty\nfastly.toml:3: key \"edgehost.cache_generation\": -1 is below the minimum 0"
	if err == nil || err.Error() != want {
		t.Errorf("Parse = %v, want\n%s", err, want)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "fastly.toml")
	writeFile(t, path, "name = \"loaded\"\n[local_server.config_stores.s]\nformat = \"json\"\nfile = \"s.json\"\n")
	writeFile(t, filepath.Join(dir, "s.json"), `{"k": "v"}`)

	// Load from another directory: the json file is found next to the
	// manifest, not in the working directory.
	t.Chdir(t.TempDir())
	m, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if m.Name != "loaded" || m.Dir != dir || m.ConfigStores["s"]["k"] != "v" {
		t.Errorf("Load = Name %q Dir %q stores %v; want loaded, %s, s.k=v", m.Name, m.Dir, m.ConfigStores, dir)
	}

	_, err = Load(filepath.Join(dir, "missing.toml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want fs.ErrNotExist", err)
	}

	bad := filepath.Join(dir, "bad.toml")
	writeFile(t, bad, "\n[edgehost]\nengine = 1\n")
	_, err = Load(bad)
	if want := bad + `:3: key "edgehost.engine": want a string, have an integer`; err == nil || err.Error() != want {
		t.Errorf("Load(bad) = %v, want %s", err, want)
	}
}

// TestExample parses fastly.toml.example at the repository root, so that it
// stays valid, and checks that the defaults it documents are the real ones.
func TestExample(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "fastly.toml.example"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "config-store.json"), `{"from": "json"}`)
	writeFile(t, filepath.Join(dir, "acl-blocklist.json"), `{"entries": [{"op": "create", "prefix": "192.0.2.0/24", "action": "BLOCK"}]}`)
	m, err := Parse("fastly.toml.example", data, dir)
	if err != nil {
		t.Fatalf("the example does not parse:\n%v", err)
	}
	if len(m.Backends) != 2 || len(m.ConfigStores) != 2 || len(m.Dictionaries) != 1 || len(m.LogEndpoints) != 2 {
		t.Errorf("example: %d backends, %d config stores, %d dictionaries, %d log endpoints; want 2, 2, 1, 2",
			len(m.Backends), len(m.ConfigStores), len(m.Dictionaries), len(m.LogEndpoints))
	}
	if len(m.KVStores) != 2 || len(m.KVStores["sessions"].Entries) != 1 || len(m.SecretStores) != 1 || m.SecretStores["credentials"].Len() != 1 {
		t.Errorf("example: KV stores %v, secret stores %v; want sessions (1 entry) and counters, credentials (1 secret)", m.KVStores, m.SecretStores)
	}
	if m.ConfigStores["from_file"]["from"] != "json" {
		t.Errorf("json store = %v", m.ConfigStores["from_file"])
	}

	// The example writes the documented default wherever it can; check them.
	o := m.Backends["origin"]
	if got, want := o.Timeouts, (pool.Timeouts{}).Effective(); got != want {
		t.Errorf("example timeouts %+v, defaults %+v", got, want)
	}
	ka := o.Conn.Keepalive
	if want := (pool.Settings{}).Effective().Keepalive; ka != want {
		t.Errorf("example keepalive %+v, defaults %+v", ka, want)
	}
	if o.Conn.TLS.NoSNI || o.Conn.DontPool {
		t.Errorf("example use_sni/dont_pool are not the defaults")
	}
	h, d := m.Host, DefaultHost()
	h.set, h.DataDir, h.AllowedBackendTargets = nil, "", nil
	if !reflect.DeepEqual(h, d) {
		t.Errorf("example [edgehost] %+v\ndefaults %+v", h, d)
	}
}

func TestKeyLine(t *testing.T) {
	doc := `a = 1 #<-a
[t.implied.deep] #<-b
"q.k" = 2 #<-c
"a,b" = 3
inline = { x = 1, #<-d
  y = 2 } #<-e
`
	tests := []struct {
		key  []string
		mark string // "" for line 0
	}{
		{[]string{"a"}, "a"},
		{[]string{"t"}, "b"},
		{[]string{"t", "implied"}, "b"},
		{[]string{"t", "implied", "deep"}, "b"},
		{[]string{"t", "implied", "deep", "q.k"}, "c"},
		{[]string{"t", "implied", "deep", "a,b"}, ""},
		{[]string{"t", "implied", "deep", "inline", "x"}, "d"},
		{[]string{"t", "implied", "deep", "inline", "y"}, "e"},
		{[]string{"nope"}, ""},
		{[]string{"A"}, ""}, // no case folding
	}
	p := &parser{data: doc}
	var raw map[string]any
	md, err := toml.Decode(doc, &raw)
	if err != nil {
		t.Fatal(err)
	}
	p.keys = md.Keys()
	for _, tt := range tests {
		want := 0
		if tt.mark != "" {
			want = markedLine(t, doc, tt.mark)
		}
		if got := keyLine(p.data, p.keys, tt.key); got != want {
			t.Errorf("keyLine(%q) = %d, want %d", tt.key, got, want)
		}
	}
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}
