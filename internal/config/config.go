// Package config reads edgehost's manifest: Fastly's fastly.toml format
// (https://www.fastly.com/documentation/reference/compute/fastly-toml/)
// plus an [edgehost] table of host settings.
//
// edgehost reads these parts of the file (fastly.toml.example at the
// repository root shows every key with its unit and default):
//
//   - name and service_id (the guest's FASTLY_SERVICE_ID unless [edgehost]
//     sets one); manifest_version, description, authors, language,
//     cloned_from, profile, [scripts] and [setup] are accepted and ignored.
//   - [local_server.backends.NAME]: static backends (see [Backend]).
//   - [local_server.config_stores.NAME] and [local_server.dictionaries.NAME]:
//     string maps, inline (format = "inline-toml" with a contents table) or
//     from a JSON file (format = "json" with file). The two sections are
//     one namespace: a name may be declared in only one of them.
//   - [local_server.log_endpoints]: known log endpoint names.
//   - [local_server] fake_valid_fastly_keys: Fastly-Key values for which
//     fastly_key_is_valid answers 1; viceroy_version is accepted.
//   - [local_server.kv_stores] and [local_server.secret_stores]: KV and
//     secret stores, inline or from a JSON file (see [KVStore]).
//   - [local_server.acls], geolocation, device_detection and
//     shielding_sites: the platform services (see [Services]).
//   - [edgehost]: host settings (see [Host]).
//
// Parts of Fastly's format that edgehost does not implement yet
// ([local_server] sections object_stores; a backend's
// client_certificate, or grpc = true) are accepted and listed in
// [Manifest.Ignored]. Any other key is an error naming the key and its
// line, as is a value of the wrong type or out of range; Parse reports
// every such problem, not just the first.
package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/BurntSushi/toml"

	"github.com/edgehost/edgehost/internal/pool"
	"github.com/edgehost/edgehost/internal/secretstore"
)

// Manifest is a parsed fastly.toml. Maps are never nil.
type Manifest struct {
	// Name is the top-level name key ("" when absent).
	Name string
	// ServiceID is the top-level service_id key ("" when absent), which
	// the Fastly CLI writes once the service exists.
	ServiceID string
	// Dir is the directory relative paths in the file are resolved
	// against: the file's directory (absolute) for Load, Parse's dir
	// argument otherwise.
	Dir string
	// Backends are the static backends, by name.
	Backends map[string]Backend
	// ConfigStores are [local_server.config_stores]: store name to
	// key/value pairs.
	ConfigStores map[string]map[string]string
	// Dictionaries are [local_server.dictionaries], shaped as ConfigStores.
	Dictionaries map[string]map[string]string
	// KVStores are [local_server.kv_stores], by name (see KVStore).
	KVStores map[string]KVStore
	// SecretStores are [local_server.secret_stores], by name.
	SecretStores map[string]*secretstore.Store
	// LogEndpoints are the names in [local_server.log_endpoints], sorted.
	// A guest may open other names too; these are the ones the operator
	// declared.
	LogEndpoints []string
	// FastlyKeys are the [local_server] fake_valid_fastly_keys: values of
	// a downstream Fastly-Key header that fastly_key_is_valid accepts.
	FastlyKeys []string
	// Ignored lists the keys of Fastly's format that edgehost accepts but
	// does not implement (such as "local_server.kv_stores" or
	// "local_server.backends.NAME.client_certificate"), sorted, so the
	// caller can warn (server.Loader logs one warning naming them).
	Ignored []string
	// Host holds the [edgehost] settings, defaults filled in.
	Host Host
	// Services are the ACLs, geolocation, device detection and shielding
	// sites of [local_server] (see [Services]).
	Services Services
}

// Backend is one [local_server.backends.NAME] table: a static backend. Its
// keys, with units (0 or absent means pool's default for timeouts and
// keepalive, unlimited for limits):
//
//	url                       required; http:// or https://, host, optional port and path prefix
//	override_host             Host header (and default TLS server name)
//	cert_host                 name the certificate must be valid for (https only)
//	use_sni                   bool, default true (https only)
//	ca_certificate            PEM text, the only trusted roots (https only)
//	ssl_min_version           "1.0", "1.1", "1.2" or "1.3" (https only)
//	ssl_max_version           as ssl_min_version
//	connect_timeout_ms        ms, 0 = default
//	first_byte_timeout_ms     ms, 0 = default
//	between_bytes_timeout_ms  ms, 0 = default
//	keepalive_time            s, HTTP keep-alive idle time, 0 = default
//	tcp_keepalive_enable      bool, default true
//	tcp_keepalive_time        s, TCP_KEEPIDLE, 0 = default
//	tcp_keepalive_interval    s, TCP_KEEPINTVL, 0 = default
//	tcp_keepalive_probes      TCP_KEEPCNT, 0 = default
//	max_connections           0 = unlimited
//	max_use                   requests per connection, 0 = unlimited
//	max_lifetime              ms, connection age limit, 0 = unlimited
//	dont_pool                 bool, one connection per request
//	health                    "unknown" (default), "healthy" or "unhealthy": what is_healthy answers
//
// The keepalive and limit keys are named as in Fastly's backend API and map
// onto pool.Keepalive and pool.Limits; max_lifetime is in milliseconds like
// the ABI's max_lifetime_ms. TLS keys on an http backend, and tcp_keepalive_*
// with tcp_keepalive_enable = false, are errors rather than silently unused.
type Backend struct {
	// Name is the backend's name (NAME).
	Name string
	// URL is the url key as written.
	URL string
	// Host is the host of URL without port and brackets, as written
	// (fastly_backend get_host).
	Host string
	// Port is the port of URL, 80 or 443 when it has none
	// (fastly_backend get_port).
	Port uint16
	// PathPrefix is the escaped path of URL when it has one other than
	// "/" (e.g. "/api"): requests to the backend go to the prefix
	// followed by the guest's request path, as on Fastly.
	PathPrefix string
	// Health is the health key: HealthUnknown, HealthHealthy or
	// HealthUnhealthy (fastly_backend is_healthy; edgehost runs no
	// health checks).
	Health Health
	// Conn are the connection settings: Scheme "http" or "https" (is_ssl),
	// Addr always host:port, HostOverride (override_host), TLS, keepalive
	// and pool limits. Zero fields mean pool's defaults.
	Conn pool.Settings
	// Timeouts are the connect, first-byte and between-bytes timeouts; zero
	// means pool's defaults.
	Timeouts pool.Timeouts
}

// Health is a static backend's health as is_healthy reports it; the
// values are the ABI's backend_health codes.
type Health uint32

// The backend health values (abi.HealthUnknown, abi.HealthHealthy,
// abi.HealthUnhealthy).
const (
	HealthUnknown   Health = 0
	HealthHealthy   Health = 1
	HealthUnhealthy Health = 2
)

// Default returns the manifest edgehost uses when there is no file: no
// backends, stores or endpoints, and DefaultHost settings. Dir is ".".
func Default() *Manifest {
	return &Manifest{
		Dir:          ".",
		Backends:     map[string]Backend{},
		ConfigStores: map[string]map[string]string{},
		Dictionaries: map[string]map[string]string{},
		KVStores:     map[string]KVStore{},
		SecretStores: map[string]*secretstore.Store{},
		Host:         DefaultHost(),
	}
}

// Load reads and parses the manifest at path; errors name the file as path
// was given and Manifest.Dir is the file's absolute directory. A missing
// file is an error that wraps fs.ErrNotExist. Other errors are as Parse's.
func Load(path string) (*Manifest, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, data, dir)
}

// Parse parses a manifest. name is the file name used in errors; dir is the
// directory that relative paths in the file (config store files, data_dir)
// are resolved against ("" means the current directory).
//
// The error, when not nil, joins one *Error per problem (errors.Join), in
// line order: a TOML syntax error (only that one, wrapping the decoder's
// toml.ParseError), unknown keys (Err is ErrUnknownKey), values of the
// wrong type or out of range, unreadable store files (wrapping the
// os error, so errors.Is(err, fs.ErrNotExist) works). No Manifest is
// returned with an error.
func Parse(name string, data []byte, dir string) (*Manifest, error) {
	var raw map[string]any
	md, err := toml.Decode(string(data), &raw)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, &Error{File: name, Line: pe.Position.Line, Err: syntaxError{pe}}
		}
		return nil, &Error{File: name, Err: err}
	}
	p := &parser{file: name, data: string(data), keys: md.Keys()}
	m := Default()
	m.Dir = dir
	p.manifest(p.root(raw), m)
	if err := p.err(); err != nil {
		return nil, err
	}
	m.Ignored = append(m.Ignored, p.ignored...)
	sort.Strings(m.Ignored)
	return m, nil
}

// manifest reads the top-level table.
func (p *parser) manifest(t *table, m *Manifest) {
	t.integer("manifest_version", 0, 1<<31-1)
	if s, ok := t.str("name"); ok {
		m.Name = s
	}
	if s, ok := t.str("service_id"); ok {
		m.ServiceID = s
	}
	for _, k := range []string{"description", "language", "cloned_from", "profile"} {
		t.str(k)
	}
	t.strs("authors")
	// Build and deploy settings of the Fastly CLI, not used here.
	for _, k := range []string{"scripts", "setup"} {
		t.table(k)
	}
	if ls, ok := t.table("local_server"); ok {
		p.localServer(ls, m)
	}
	if eh, ok := t.table("edgehost"); ok {
		p.host(eh, m.Dir, &m.Host)
	}
	t.finish()
}

// localServer reads [local_server].
func (p *parser) localServer(t *table, m *Manifest) {
	t.tables("backends", func(name string, b *table) {
		if be, ok := p.backend(name, b); ok {
			m.Backends[name] = be
		}
	})
	p.stores(t, "config_stores", m.Dir, m.ConfigStores)
	p.stores(t, "dictionaries", m.Dir, m.Dictionaries)
	// One namespace, as in Viceroy: either open call finds either kind.
	if dicts, ok := t.m["dictionaries"].(map[string]any); ok {
		for _, name := range sortedKeys(dicts) {
			if _, dup := m.ConfigStores[name]; dup {
				p.errorf(append(t.key("dictionaries"), name), "%q is also a config store: config stores and dictionaries share one namespace", name)
			}
		}
	}
	p.kvStores(t, m.Dir, m.KVStores)
	p.secretStores(t, m.Dir, m.SecretStores)
	m.LogEndpoints = p.logEndpoints(t)
	if keys, ok := t.strs("fake_valid_fastly_keys"); ok {
		m.FastlyKeys = keys
	}
	t.str("viceroy_version") // which Viceroy the Fastly CLI runs: not used
	p.services(t, m.Dir, &m.Services)
	// Sections of Fastly's format that edgehost does not implement.
	for _, k := range []string{"object_store", "object_stores"} {
		if t.has(k) {
			t.ignore(k)
			m.Ignored = append(m.Ignored, t.key(k).String())
		}
	}
	t.finish()
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
