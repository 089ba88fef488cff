package config

import (
	"fmt"
	"math"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Defaults of the [edgehost] settings, used when a key is absent.
const (
	// DefaultAddr is where downstream HTTP is served (addr).
	DefaultAddr = "127.0.0.1:7676"
	// DefaultAdminAddr is where the admin API listens (admin_addr).
	DefaultAdminAddr = "127.0.0.1:7677"
	// DefaultEngine is the WebAssembly engine (engine).
	DefaultEngine = "wazero"
	// DefaultMaxConcurrentSandboxes caps sandboxes running at once, host
	// wide (max_concurrent_sandboxes); beyond it clients get 503.
	DefaultMaxConcurrentSandboxes = 1024
	// DefaultSandboxMemoryMiB caps one sandbox's linear memory, in MiB
	// (sandbox_memory_mib).
	DefaultSandboxMemoryMiB = 128
	// DefaultSandboxTimeout is one sandbox's wall-clock limit
	// (sandbox_timeout_ms).
	DefaultSandboxTimeout = 60 * time.Second
	// DefaultMaxPendingRequests caps the backend requests one sandbox has
	// in flight at once (max_pending_requests).
	DefaultMaxPendingRequests = 64
	// DefaultMaxHeaderBytes caps the header block of a downstream request
	// or an origin response, in bytes (max_header_bytes); it is net/http's
	// DefaultMaxHeaderBytes, 1 MiB.
	DefaultMaxHeaderBytes = 1 << 20
	// DefaultMaxBodyBytes caps a body the host has to hold in memory, in
	// bytes (max_body_bytes): 32 MiB. Streamed bodies are not capped.
	DefaultMaxBodyBytes = 32 << 20
	// DefaultCacheMemoryMiB bounds the readthrough cache's objects, in MiB
	// (cache_memory_mib); internal/cache.DefaultMemoryMiB is the same.
	DefaultCacheMemoryMiB = 256
	// DefaultTieredCompileMinKiB is the smallest module, in KiB, that
	// tiered compilation applies to (tiered_compile_min_kib): 8 MiB, so
	// that JS SDK guests (11 MiB, about 12 s of CPU to compile optimized)
	// are tiered and TinyGo and most Go guests (a Go hello is 3 MiB and
	// about 3 s of CPU, but a request on the interpreter costs it about
	// a hundred times one on optimized code) are not (host/bench/README.md).
	DefaultTieredCompileMinKiB = 8192
	// DefaultKeptVersions is how many replaced versions keep their
	// compiled module loaded for an instant re-activation (kept_versions).
	DefaultKeptVersions = 1
	// DefaultClientStall is the downstream read and write stall timeout
	// (client_read_stall_ms, client_write_stall_ms): a client that sends
	// or takes nothing for that long is cut.
	DefaultClientStall = 10 * time.Second
	// DefaultMaxHandles caps the handles one sandbox holds (max_handles).
	DefaultMaxHandles = 4096
	// DefaultMaxSandboxHeaderBytes caps the header and trailer bytes a
	// sandbox's guest built, together (max_sandbox_header_bytes): 16 MiB.
	DefaultMaxSandboxHeaderBytes = 16 << 20
	// DefaultMaxLogRecordBytes caps one guest log record
	// (max_log_record_bytes): 64 KiB.
	DefaultMaxLogRecordBytes = 64 << 10
	// DefaultLogBytesPerSec is what one sandbox may log per second, with
	// a burst of as much (log_bytes_per_sec): 1 MiB.
	DefaultLogBytesPerSec = 1 << 20
	// DefaultMaxOriginPools caps the host's origin pools
	// (max_origin_pools).
	DefaultMaxOriginPools = 10000
	// DefaultPOP is the guest's FASTLY_POP (pop).
	DefaultPOP = "EDGEHOST"
	// DefaultRegion is the guest's FASTLY_REGION (region).
	DefaultRegion = "local"
	// DefaultCustomerID is the guest's FASTLY_CUSTOMER_ID (customer_id):
	// 22 zeros, shaped like a Fastly customer id, as Viceroy gives.
	DefaultCustomerID = "0000000000000000000000"
)

// Engines are the values the engine key accepts.
const (
	EngineWazero   = "wazero"
	EngineWasmtime = "wasmtime"
)

// Host holds the [edgehost] settings. Every field holds the value in force:
// the file's when the key is present, else the default above; IsSet tells
// which, so that command-line flags can take precedence over the file.
type Host struct {
	// Addr is the downstream listen address, host:port (addr).
	Addr string
	// AdminAddr is the admin API's listen address, host:port; "" disables
	// the admin API (admin_addr).
	AdminAddr string
	// DataDir holds deployed module versions and the compile cache
	// (data_dir). A relative path in the file is resolved against the
	// manifest's directory. "" (the default) leaves the choice to the
	// command line.
	DataDir string
	// Engine is EngineWazero or EngineWasmtime (engine).
	Engine string
	// AllowedBackendTargets narrows dynamic backends to these targets:
	// host names, IP addresses, host:port and CIDR prefixes, as written
	// (allowed_backend_targets). nil (key absent) allows public addresses
	// only, or private ones too with AllowPrivateBackends (README.md,
	// "Dynamic backend policy"); an empty non-nil slice (key set to [])
	// allows none.
	AllowedBackendTargets []string
	// AllowPrivateBackends opens loopback, this host's own addresses and
	// the private ranges to dynamic backends, for local development
	// (allow_private_backends, default false). The host's own listener
	// ports stay refused.
	AllowPrivateBackends bool
	// MaxConcurrentSandboxes caps sandboxes running at once
	// (max_concurrent_sandboxes, >= 1).
	MaxConcurrentSandboxes int
	// MaxWaitingSandboxes caps the sandboxes that gave their slot back
	// while blocked on a slow client (max_waiting_sandboxes, >= 1); 0
	// (the default) means as many as MaxConcurrentSandboxes (README.md,
	// "Limits").
	MaxWaitingSandboxes int
	// SandboxMemoryMiB caps a sandbox's linear memory in MiB
	// (sandbox_memory_mib, 1 to 4096).
	SandboxMemoryMiB int
	// SandboxTimeout is a sandbox's wall-clock limit (sandbox_timeout_ms,
	// in milliseconds in the file, >= 1).
	SandboxTimeout time.Duration
	// MaxPendingRequests caps a sandbox's backend requests in flight
	// (max_pending_requests, >= 1).
	MaxPendingRequests int
	// MaxHeaderBytes caps a request or response header block in bytes
	// (max_header_bytes, >= 1).
	MaxHeaderBytes int
	// MaxBodyBytes caps a body held in memory, in bytes (max_body_bytes,
	// >= 1).
	MaxBodyBytes int64
	// CacheMemoryMiB bounds the memory of the readthrough cache's objects,
	// in MiB (cache_memory_mib, 1 to 1048576).
	CacheMemoryMiB int
	// TieredCompile serves a module the engine has not compiled before on
	// a fast tier (wazero's interpreter) while its optimized code is
	// compiled in the background (tiered_compile, default true; README.md,
	// "Engines"). wasmtime has no fast tier it can select and ignores it.
	TieredCompile bool
	// TieredCompileMinKiB is the smallest module, in KiB, TieredCompile
	// applies to (tiered_compile_min_kib, 0 to 1048576; 0: every module).
	TieredCompileMinKiB int
	// KeptVersions is how many of the most recently replaced versions
	// keep their compiled module loaded, so that re-activating one
	// (a rollback) switches to it without compiling or loading
	// (kept_versions, 0 to 64, default DefaultKeptVersions; 0 turns it
	// off; README.md, "Deploying").
	KeptVersions int

	// Downstream HTTPS and HTTP/2 (README.md, "HTTPS and HTTP/2"). Paths
	// in the file are resolved against the manifest's directory.

	// TLSCert and TLSKey are PEM files (tls_cert, tls_key): with them the
	// downstream listener serves HTTPS. One without the other is an error.
	TLSCert, TLSKey string
	// TLSSelfSigned serves HTTPS with a certificate for localhost made at
	// start (tls_self_signed, default false), for development.
	TLSSelfSigned bool
	// TLSClientCA is a PEM file of CAs client certificates are verified
	// against (tls_client_ca); "" asks clients for none.
	TLSClientCA string
	// TLSClientAuth is "require" (the default: a client without a
	// certificate the CA signed is refused) or "request" (any client is
	// served and the guest reads how its certificate verified)
	// (tls_client_auth).
	TLSClientAuth string
	// H2C serves HTTP/2 without TLS to clients that start with its preface
	// (h2c, default false).
	H2C bool
	// ClientReadStall and ClientWriteStall are the downstream stall
	// timeouts (client_read_stall_ms, client_write_stall_ms, in
	// milliseconds in the file, >= 1).
	ClientReadStall, ClientWriteStall time.Duration
	// MaxHandles caps the handles a sandbox holds at once (max_handles,
	// >= 16).
	MaxHandles int
	// MaxSandboxHeaderBytes caps the header and trailer bytes of the
	// blocks a sandbox's guest changed, together (max_sandbox_header_bytes,
	// >= 1).
	MaxSandboxHeaderBytes int64
	// MaxLogRecordBytes caps one fastly_log.write record
	// (max_log_record_bytes, >= 1).
	MaxLogRecordBytes int
	// LogBytesPerSec is what a sandbox may log per second
	// (log_bytes_per_sec, >= 1).
	LogBytesPerSec int
	// MaxOriginPools caps the host's origin pools (max_origin_pools, >= 1).
	MaxOriginPools int
	// MaxOriginRequests caps origin requests in flight host-wide
	// (max_origin_requests, >= 0); 0 (the default) sizes it from the
	// open-file limit at start (README.md, "Limits").
	MaxOriginRequests int

	// The guest environment (README.md, "WASI"): what every sandbox sees
	// in its FASTLY_* variables.

	// Hostname is FASTLY_HOSTNAME (hostname); "" (the default) means the
	// machine's host name.
	Hostname string
	// POP is FASTLY_POP (pop), default DefaultPOP.
	POP string
	// Region is FASTLY_REGION (region), default DefaultRegion.
	Region string
	// ServiceID is FASTLY_SERVICE_ID (service_id); "" (the default) means
	// the manifest's top-level service_id, else its name, else
	// "edgehost-local".
	ServiceID string
	// CustomerID is FASTLY_CUSTOMER_ID (customer_id), default
	// DefaultCustomerID.
	CustomerID string
	// CacheGeneration is FASTLY_CACHE_GENERATION (cache_generation, >= 0),
	// default 0. A guest may use it to version keys; activating a version
	// whose generation differs from the one in force empties its service's
	// objects in the readthrough cache (server.Loader.Cache; README.md,
	// "Caching"). A deployed version's own manifest may set it.
	CacheGeneration int64

	// Cluster holds the fleet settings (README.md, "Fleet").
	Cluster Cluster

	set map[string]bool // keys present in the file
}

// Cluster is the fleet part of [edgehost] (README.md, "Fleet"): how a
// node joins a fleet of edgehost nodes on NATS JetStream. Relative file
// paths are resolved against the manifest's directory.
type Cluster struct {
	// URLs are the NATS servers (cluster_urls), nats://[user:pass@]host:port
	// or tls://…, or the one word "embedded" for an in-process server;
	// none (the default) keeps the host on its data dir alone.
	URLs []string
	// EmbeddedAddr is where the embedded server listens
	// (cluster_embedded_addr), default 127.0.0.1:4222.
	EmbeddedAddr string
	// Creds is a NATS credentials file (cluster_creds), NKey an NKey seed
	// file (cluster_nkey).
	Creds, NKey string
	// TLSCA, TLSCert and TLSKey are PEM files: the CAs to trust and a
	// client certificate with its key (cluster_tls_ca, cluster_tls_cert,
	// cluster_tls_key).
	TLSCA, TLSCert, TLSKey string
	// Replicas is the replica count of what the node creates in JetStream
	// (cluster_replicas, 1 to 5, default 1).
	Replicas int
	// Node names this node (cluster_node); "" is the host name.
	Node string
	// Service names the fleet's service (cluster_service), default
	// "default".
	Service string
}

// DefaultHost returns the settings used when [edgehost] is absent.
func DefaultHost() Host {
	return Host{
		Addr:                   DefaultAddr,
		AdminAddr:              DefaultAdminAddr,
		Engine:                 DefaultEngine,
		MaxConcurrentSandboxes: DefaultMaxConcurrentSandboxes,
		SandboxMemoryMiB:       DefaultSandboxMemoryMiB,
		SandboxTimeout:         DefaultSandboxTimeout,
		MaxPendingRequests:     DefaultMaxPendingRequests,
		MaxHeaderBytes:         DefaultMaxHeaderBytes,
		MaxBodyBytes:           DefaultMaxBodyBytes,
		CacheMemoryMiB:         DefaultCacheMemoryMiB,
		TieredCompile:          true,
		TieredCompileMinKiB:    DefaultTieredCompileMinKiB,
		KeptVersions:           DefaultKeptVersions,
		ClientReadStall:        DefaultClientStall,
		ClientWriteStall:       DefaultClientStall,
		MaxHandles:             DefaultMaxHandles,
		MaxSandboxHeaderBytes:  DefaultMaxSandboxHeaderBytes,
		MaxLogRecordBytes:      DefaultMaxLogRecordBytes,
		LogBytesPerSec:         DefaultLogBytesPerSec,
		MaxOriginPools:         DefaultMaxOriginPools,
		POP:                    DefaultPOP,
		Region:                 DefaultRegion,
		CustomerID:             DefaultCustomerID,
		TLSClientAuth:          "require",
	}
}

// IsSet reports whether the manifest's [edgehost] table sets key, named as
// in the file ("addr", "sandbox_timeout_ms", …).
func (h Host) IsSet(key string) bool { return h.set[key] }

// host reads [edgehost] into h; dir resolves a relative data_dir.
func (p *parser) host(t *table, dir string, h *Host) {
	defer t.finish()
	h.set = map[string]bool{}
	for _, k := range t.names() {
		h.set[k] = true
	}
	if s, ok := t.str("addr"); ok {
		if err := checkListenAddr(s, false); err != nil {
			t.errorf("addr", "%v", err)
		}
		h.Addr = s
	}
	if s, ok := t.str("admin_addr"); ok {
		if err := checkListenAddr(s, true); err != nil {
			t.errorf("admin_addr", "%v", err)
		}
		h.AdminAddr = s
	}
	if s, ok := t.str("data_dir"); ok {
		if s != "" && !filepath.IsAbs(s) && dir != "" {
			s = filepath.Join(dir, s)
		}
		h.DataDir = s
	}
	if s, ok := t.str("engine"); ok {
		if s != EngineWazero && s != EngineWasmtime {
			t.errorf("engine", "unknown engine %q; want %q or %q", s, EngineWazero, EngineWasmtime)
		}
		h.Engine = s
	}
	if list, ok := t.strs("allowed_backend_targets"); ok {
		for i, s := range list {
			if err := checkTarget(s); err != nil {
				t.errorf("allowed_backend_targets", "element %d (%q): %v", i, s, err)
			}
		}
		h.AllowedBackendTargets = list
	}
	if b, ok := t.boolean("allow_private_backends"); ok {
		h.AllowPrivateBackends = b
	}
	if n, ok := t.integer("max_concurrent_sandboxes", 1, math.MaxInt32); ok {
		h.MaxConcurrentSandboxes = int(n)
	}
	if n, ok := t.integer("max_waiting_sandboxes", 1, math.MaxInt32); ok {
		h.MaxWaitingSandboxes = int(n)
	}
	if n, ok := t.integer("sandbox_memory_mib", 1, 4096); ok {
		h.SandboxMemoryMiB = int(n)
	}
	if n, ok := t.integer("sandbox_timeout_ms", 1, maxMillis); ok {
		h.SandboxTimeout = time.Duration(n) * time.Millisecond
	}
	if n, ok := t.integer("max_pending_requests", 1, math.MaxInt32); ok {
		h.MaxPendingRequests = int(n)
	}
	if n, ok := t.integer("max_header_bytes", 1, math.MaxInt32); ok {
		h.MaxHeaderBytes = int(n)
	}
	if n, ok := t.integer("max_body_bytes", 1, math.MaxInt64); ok {
		h.MaxBodyBytes = n
	}
	if n, ok := t.integer("cache_memory_mib", 1, 1<<20); ok {
		h.CacheMemoryMiB = int(n)
	}
	if b, ok := t.boolean("tiered_compile"); ok {
		h.TieredCompile = b
	}
	if n, ok := t.integer("tiered_compile_min_kib", 0, 1<<20); ok {
		h.TieredCompileMinKiB = int(n)
	}
	if n, ok := t.integer("kept_versions", 0, 64); ok {
		h.KeptVersions = int(n)
	}
	if n, ok := t.integer("client_read_stall_ms", 1, maxMillis); ok {
		h.ClientReadStall = time.Duration(n) * time.Millisecond
	}
	if n, ok := t.integer("client_write_stall_ms", 1, maxMillis); ok {
		h.ClientWriteStall = time.Duration(n) * time.Millisecond
	}
	if n, ok := t.integer("max_handles", 16, math.MaxInt32); ok {
		h.MaxHandles = int(n)
	}
	if n, ok := t.integer("max_sandbox_header_bytes", 1, math.MaxInt64); ok {
		h.MaxSandboxHeaderBytes = n
	}
	if n, ok := t.integer("max_log_record_bytes", 1, math.MaxInt32); ok {
		h.MaxLogRecordBytes = int(n)
	}
	if n, ok := t.integer("log_bytes_per_sec", 1, math.MaxInt32); ok {
		h.LogBytesPerSec = int(n)
	}
	if n, ok := t.integer("max_origin_pools", 1, math.MaxInt32); ok {
		h.MaxOriginPools = int(n)
	}
	if n, ok := t.integer("max_origin_requests", 0, math.MaxInt32); ok {
		h.MaxOriginRequests = int(n)
	}
	for _, k := range []struct {
		key string
		v   *string
	}{{"hostname", &h.Hostname}, {"pop", &h.POP}, {"region", &h.Region}, {"service_id", &h.ServiceID}, {"customer_id", &h.CustomerID}} {
		if s, ok := t.str(k.key); ok {
			if s == "" && k.key != "hostname" && k.key != "service_id" {
				t.errorf(k.key, "must not be empty")
				continue
			}
			*k.v = s
		}
	}
	if n, ok := t.integer("cache_generation", 0, math.MaxInt64); ok {
		h.CacheGeneration = n
	}
	p.hostTLS(t, dir, h)
	p.hostCluster(t, dir, h)
}

// hostCluster reads the cluster_* keys of [edgehost].
func (p *parser) hostCluster(t *table, dir string, h *Host) {
	c := &h.Cluster
	if list, ok := t.strs("cluster_urls"); ok {
		for i, u := range list {
			if u != "embedded" && !strings.Contains(u, "://") {
				t.errorf("cluster_urls", "element %d (%q): want nats://host:port, tls://host:port or \"embedded\"", i, u)
			}
		}
		c.URLs = list
	}
	for _, k := range []struct {
		key  string
		v    *string
		file bool
	}{{"cluster_embedded_addr", &c.EmbeddedAddr, false}, {"cluster_creds", &c.Creds, true}, {"cluster_nkey", &c.NKey, true},
		{"cluster_tls_ca", &c.TLSCA, true}, {"cluster_tls_cert", &c.TLSCert, true}, {"cluster_tls_key", &c.TLSKey, true},
		{"cluster_node", &c.Node, false}, {"cluster_service", &c.Service, false}} {
		if s, ok := t.str(k.key); ok {
			if k.file && s != "" && !filepath.IsAbs(s) && dir != "" {
				s = filepath.Join(dir, s)
			}
			*k.v = s
		}
	}
	if n, ok := t.integer("cluster_replicas", 1, 5); ok {
		c.Replicas = int(n)
	}
}

// hostTLS reads the downstream TLS and HTTP/2 keys of [edgehost].
func (p *parser) hostTLS(t *table, dir string, h *Host) {
	for _, k := range []struct {
		key string
		v   *string
	}{{"tls_cert", &h.TLSCert}, {"tls_key", &h.TLSKey}, {"tls_client_ca", &h.TLSClientCA}} {
		if s, ok := t.str(k.key); ok {
			if s != "" && !filepath.IsAbs(s) && dir != "" {
				s = filepath.Join(dir, s)
			}
			*k.v = s
		}
	}
	if (h.TLSCert == "") != (h.TLSKey == "") {
		if h.TLSCert == "" {
			t.errorf("tls_key", "needs tls_cert")
		} else {
			t.errorf("tls_cert", "needs tls_key")
		}
	}
	if s, ok := t.str("tls_client_auth"); ok {
		if s != "require" && s != "request" {
			t.errorf("tls_client_auth", "unknown mode %q; want \"require\" or \"request\"", s)
		}
		h.TLSClientAuth = s
	}
	if b, ok := t.boolean("tls_self_signed"); ok {
		h.TLSSelfSigned = b
	}
	if b, ok := t.boolean("h2c"); ok {
		h.H2C = b
	}
}

// checkListenAddr checks a host:port listen address; the host may be empty
// (all interfaces), the port 0 (any free port). emptyOK allows "".
func checkListenAddr(s string, emptyOK bool) error {
	if s == "" {
		if emptyOK {
			return nil
		}
		return fmt.Errorf("must not be empty")
	}
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("want host:port: %w", err)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("bad port %q", port)
	}
	return nil
}

// checkTarget checks one allowed_backend_targets entry: a CIDR prefix
// (10.0.0.0/8, fd00::/8), host:port ([::1]:8080, api.example.com:443), an
// IP address or a host name.
func checkTarget(s string) error {
	if strings.Contains(s, "/") {
		if _, err := netip.ParsePrefix(s); err != nil {
			return fmt.Errorf("bad CIDR prefix: %w", err)
		}
		return nil
	}
	host := s
	if h, port, err := net.SplitHostPort(s); err == nil {
		if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
			return fmt.Errorf("bad port %q", port)
		}
		host = h
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return nil
	}
	return checkHostname(host)
}

// checkHostname checks a DNS name: dot-separated labels of letters, digits,
// '-' and '_', 1 to 63 bytes each, at most 253 bytes in all.
func checkHostname(h string) error {
	if h == "" {
		return fmt.Errorf("empty host")
	}
	if len(h) > 253 {
		return fmt.Errorf("host name longer than 253 bytes")
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("bad host name %q", h)
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return fmt.Errorf("bad host name %q", h)
			}
		}
	}
	return nil
}
