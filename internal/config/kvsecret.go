package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"unicode/utf8"

	"github.com/BurntSushi/toml"

	"github.com/edgehost/edgehost/internal/secretstore"
)

// KVStore is one [local_server.kv_stores] entry: a store name and the
// entries it starts with. Entries are written into the host's KV database
// the first time the store is seen and again whenever an entry changes
// here; values guests write since are kept (README.md, "KV stores").
type KVStore struct {
	Name    string
	Entries []KVEntry
}

// KVEntry is one declared key: its value (from data, or read from file)
// and its metadata (nil when none).
type KVEntry struct {
	Key      string
	Value    []byte
	Metadata []byte
}

// maxKVKeyLen is Fastly's KV key limit (README.md, "KV stores").
const maxKVKeyLen = 1024

// kvStores reads [local_server.kv_stores], in the two shapes Fastly's
// tools accept:
//
//	NAME = [{ key = "k", data = "v", metadata = "m" }, { key = "k2", file = "path" }]
//	NAME = { file = "store.json", format = "json" }
//
// (the array may be written as [[local_server.kv_stores.NAME]] tables; the
// old name path for file is accepted). The JSON file is an object of key
// to a string value or to {"data": ..., "file": ..., "metadata": ...}.
// Relative paths are resolved against dir.
func (p *parser) kvStores(t *table, dir string, out map[string]KVStore) {
	outer, ok := t.table("kv_stores")
	if !ok {
		return
	}
	for _, name := range outer.names() {
		key := outer.key(name)
		v, _ := outer.get(name)
		if name == "" {
			p.errorf(key, "the store name must not be empty")
			continue
		}
		st := KVStore{Name: name}
		switch v := v.(type) {
		case []map[string]any:
			for i, item := range v {
				if e, ok := p.kvItem(key, i, item, dir); ok {
					st.Entries = append(st.Entries, e)
				}
			}
		case []any:
			for i, raw := range v {
				item, ok := raw.(map[string]any)
				if !ok {
					p.errorf(key, "entry %d: want a table { key = ..., data = ... }, have %s", i, typeName(raw))
					continue
				}
				if e, ok := p.kvItem(key, i, item, dir); ok {
					st.Entries = append(st.Entries, e)
				}
			}
		case map[string]any:
			s := &table{p: p, path: key, m: v, read: map[string]bool{}}
			format, _ := s.str("format")
			file, hasFile := s.str("file")
			s.finish()
			switch {
			case format == "" && !s.has("format"):
				p.errorf(key, `a store read from a file needs format = "json" and file`)
				continue
			case format != "json":
				if format != "" {
					s.errorf("format", `unknown format %q; want "json"`, format)
				}
				continue
			case !hasFile:
				if !s.has("file") {
					p.errorf(key, `format = "json" needs a file key`)
				}
				continue
			}
			entries, err := readKVJSON(dir, file)
			if err != nil {
				p.add(s.key("file"), err)
				continue
			}
			st.Entries = entries
		default:
			p.errorf(key, `want an array of entries or { file = "...", format = "json" }, have %s`, typeName(v))
			continue
		}
		seen := map[string]bool{}
		for _, e := range st.Entries {
			if seen[e.Key] {
				p.errorf(key, "key %q is declared twice", e.Key)
			}
			seen[e.Key] = true
		}
		out[name] = st
	}
}

// kvItem reads one inline entry of store key (entry i).
func (p *parser) kvItem(key toml.Key, i int, item map[string]any, dir string) (KVEntry, bool) {
	s := &table{p: p, path: append(append(toml.Key(nil), key...), fmt.Sprint(i)), m: item, read: map[string]bool{}}
	// Errors about an entry are reported at the store's key, where keyLine
	// finds a line; the message names the entry.
	bad := func(format string, args ...any) (KVEntry, bool) {
		p.errorf(key, "entry %d: "+format, append([]any{i}, args...)...)
		return KVEntry{}, false
	}
	for _, k := range s.names() {
		switch k {
		case "key", "data", "file", "path", "metadata":
		default:
			return bad("unknown key %q (want key, data or file, metadata)", k)
		}
	}
	k, ok := item["key"].(string)
	if !ok {
		return bad("needs key, a string")
	}
	if err := checkKVKey(k); err != nil {
		return bad("%v", err)
	}
	e := KVEntry{Key: k}
	file, hasFile := item["file"]
	if !hasFile {
		file, hasFile = item["path"]
	}
	data, hasData := item["data"]
	switch {
	case hasFile && hasData:
		return bad("key %q: give data or file, not both", k)
	case hasData:
		d, ok := data.(string)
		if !ok {
			return bad("key %q: data must be a string", k)
		}
		e.Value = []byte(d)
	case hasFile:
		f, ok := file.(string)
		if !ok || f == "" {
			return bad("key %q: file must be a non-empty string", k)
		}
		b, err := os.ReadFile(resolve(dir, f))
		if err != nil {
			return bad("key %q: %w", k, err)
		}
		e.Value = b
	default:
		return bad("key %q needs data or file", k)
	}
	if m, ok := item["metadata"]; ok {
		ms, ok := m.(string)
		if !ok {
			return bad("key %q: metadata must be a string", k)
		}
		e.Metadata = []byte(ms)
	}
	return e, true
}

func checkKVKey(k string) error {
	switch {
	case k == "":
		return fmt.Errorf("a key must not be empty")
	case len(k) > maxKVKeyLen:
		return fmt.Errorf("key of %d bytes: at most %d", len(k), maxKVKeyLen)
	case !utf8.ValidString(k):
		return fmt.Errorf("key %q is not valid UTF-8", k)
	}
	return nil
}

func resolve(dir, file string) string {
	if filepath.IsAbs(file) {
		return file
	}
	return filepath.Join(dir, file)
}

// readKVJSON reads a KV store's JSON file.
func readKVJSON(dir, file string) ([]KVEntry, error) {
	if file == "" {
		return nil, fmt.Errorf("empty file name")
	}
	path := resolve(dir, file)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil || raw == nil {
		return nil, fmt.Errorf("%s: want a JSON object of key to a string or to {\"data\" or \"file\", \"metadata\"}: %v", path, err)
	}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []KVEntry
	for _, k := range keys {
		if err := checkKVKey(k); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		var s string
		if json.Unmarshal(raw[k], &s) == nil {
			out = append(out, KVEntry{Key: k, Value: []byte(s)})
			continue
		}
		var obj struct {
			Data     *string `json:"data"`
			File     *string `json:"file"`
			Metadata *string `json:"metadata"`
		}
		dec := json.NewDecoder(bytes.NewReader(raw[k]))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&obj); err != nil {
			return nil, fmt.Errorf("%s: key %q: want a string or {\"data\" or \"file\", \"metadata\"}: %v", path, k, err)
		}
		e := KVEntry{Key: k}
		switch {
		case obj.Data != nil && obj.File != nil:
			return nil, fmt.Errorf("%s: key %q: give data or file, not both", path, k)
		case obj.Data != nil:
			e.Value = []byte(*obj.Data)
		case obj.File != nil:
			b, err := os.ReadFile(resolve(filepath.Dir(path), *obj.File))
			if err != nil {
				return nil, fmt.Errorf("%s: key %q: %w", path, k, err)
			}
			e.Value = b
		default:
			return nil, fmt.Errorf("%s: key %q needs data or file", path, k)
		}
		if obj.Metadata != nil {
			e.Metadata = []byte(*obj.Metadata)
		}
		out = append(out, e)
	}
	return out, nil
}

// secretStores reads [local_server.secret_stores] in the shapes Fastly's
// tools accept:
//
//	NAME = [{ key = "k", data = "v" }, { key = "k2", file = "path" }, { key = "k3", env = "VAR" }]
//	NAME = { file = "secrets.json", format = "json" }
//
// (the array may be written as [[local_server.secret_stores.NAME]]); the
// JSON file is an object of name to string. Problems never quote a value.
func (p *parser) secretStores(t *table, dir string, out map[string]*secretstore.Store) {
	outer, ok := t.table("secret_stores")
	if !ok {
		return
	}
	for _, name := range outer.names() {
		key := outer.key(name)
		v, _ := outer.get(name)
		if !secretstore.ValidName(name) {
			p.errorf(key, "secret store name %q: want 1 to 255 of A-Z, a-z, 0-9, '_', '-', '.'", name)
			continue
		}
		secrets := map[string]secretstore.Secret{}
		add := func(i int, item map[string]any) {
			bad := func(format string, args ...any) {
				p.errorf(key, "entry %d: "+format, append([]any{i}, args...)...)
			}
			for k := range item {
				switch k {
				case "key", "data", "file", "env":
				default:
					bad("unknown key %q (want key and one of data, file, env)", k)
					return
				}
			}
			k, ok := item["key"].(string)
			if !ok || !secretstore.ValidName(k) {
				bad("needs key, a secret name of 1 to 255 of A-Z, a-z, 0-9, '_', '-', '.'")
				return
			}
			n := 0
			for _, src := range []string{"data", "file", "env"} {
				if _, ok := item[src]; ok {
					n++
				}
			}
			if n != 1 {
				bad("secret %q needs exactly one of data, file, env", k)
				return
			}
			var value []byte
			switch {
			case item["data"] != nil:
				d, ok := item["data"].(string)
				if !ok {
					bad("secret %q: data must be a string", k)
					return
				}
				value = []byte(d)
			case item["file"] != nil:
				f, ok := item["file"].(string)
				if !ok || f == "" {
					bad("secret %q: file must be a non-empty string", k)
					return
				}
				b, err := os.ReadFile(resolve(dir, f))
				if err != nil {
					bad("secret %q: %w", k, err)
					return
				}
				value = b
			default:
				e, ok := item["env"].(string)
				if !ok || e == "" {
					bad("secret %q: env must name an environment variable", k)
					return
				}
				val, set := os.LookupEnv(e)
				if !set {
					bad("secret %q: environment variable %s is not set", k, e)
					return
				}
				value = []byte(val)
			}
			if len(value) > secretstore.MaxSecretLen {
				bad("secret %q is %d bytes: at most %d", k, len(value), secretstore.MaxSecretLen)
				return
			}
			if _, dup := secrets[k]; dup {
				bad("secret %q is declared twice", k)
				return
			}
			secrets[k] = secretstore.New(value)
		}
		switch v := v.(type) {
		case []map[string]any:
			for i, item := range v {
				add(i, item)
			}
		case []any:
			for i, raw := range v {
				item, ok := raw.(map[string]any)
				if !ok {
					p.errorf(key, "entry %d: want a table { key = ..., data = ... }, have %s", i, typeName(raw))
					continue
				}
				add(i, item)
			}
		case map[string]any:
			s := &table{p: p, path: key, m: v, read: map[string]bool{}}
			format, _ := s.str("format")
			file, hasFile := s.str("file")
			s.finish()
			if format != "json" || !hasFile {
				p.errorf(key, `a store read from a file needs format = "json" and file`)
				continue
			}
			path := resolve(dir, file)
			data, err := os.ReadFile(path)
			if err != nil {
				p.add(s.key("file"), err)
				continue
			}
			var raw map[string]any
			if err := json.Unmarshal(data, &raw); err != nil || raw == nil {
				p.add(s.key("file"), fmt.Errorf("%s: want a JSON object of secret name to string", path))
				continue
			}
			names := make([]string, 0, len(raw))
			for k := range raw {
				names = append(names, k)
			}
			sort.Strings(names)
			for i, k := range names {
				s, ok := raw[k].(string)
				if !ok {
					p.add(s2key(key, "file"), fmt.Errorf("%s: secret %q: want a string", path, k))
					continue
				}
				add(i, map[string]any{"key": k, "data": s})
			}
		default:
			p.errorf(key, `want an array of secrets or { file = "...", format = "json" }, have %s`, typeName(v))
			continue
		}
		out[name] = secretstore.NewStore(name, secrets)
	}
}

func s2key(k toml.Key, sub string) toml.Key { return append(append(toml.Key(nil), k...), sub) }
