package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestKVStoresFormats(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "big.bin"), []byte("file value"), 0o644)
	os.WriteFile(filepath.Join(dir, "kv.json"), []byte(`{"a": "1", "b": {"data": "2", "metadata": "m"}, "c": {"file": "big.bin"}}`), 0o644)
	m := mustParse(t, `
[local_server.kv_stores]
inline = [{ key = "k", data = "v", metadata = "meta" }, { key = "f", file = "big.bin" }]
fromjson = { file = "kv.json", format = "json" }
empty = []

[[local_server.kv_stores.tables]]
key = "t1"
data = "x"
[[local_server.kv_stores.tables]]
key = "t2"
path = "big.bin"
`, dir)
	got := map[string]string{}
	for name, st := range m.KVStores {
		for _, e := range st.Entries {
			got[name+"/"+e.Key] = string(e.Value) + "|" + string(e.Metadata)
		}
	}
	want := map[string]string{
		"inline/k": "v|meta", "inline/f": "file value|",
		"fromjson/a": "1|", "fromjson/b": "2|m", "fromjson/c": "file value|",
		"tables/t1": "x|", "tables/t2": "file value|",
	}
	if len(got) != len(want) {
		t.Errorf("entries = %q, want %q", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if _, ok := m.KVStores["empty"]; !ok || len(m.KVStores) != 4 {
		t.Errorf("stores = %v", m.KVStores)
	}
	if len(m.Ignored) != 0 {
		t.Errorf("Ignored = %q", m.Ignored)
	}
}

func TestSecretStoresFormats(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "key.pem"), []byte("PEM DATA"), 0o644)
	os.WriteFile(filepath.Join(dir, "s.json"), []byte(`{"j1": "json secret"}`), 0o644)
	t.Setenv("EDGEHOST_TEST_SECRET", "from env")
	m := mustParse(t, `
[local_server.secret_stores]
inline = [{ key = "d", data = "data secret" }, { key = "f", file = "key.pem" }, { key = "e", env = "EDGEHOST_TEST_SECRET" }]
json = { file = "s.json", format = "json" }
`, dir)
	want := map[string]string{"inline/d": "data secret", "inline/f": "PEM DATA", "inline/e": "from env", "json/j1": "json secret"}
	for k, v := range want {
		store, name, _ := strings.Cut(k, "/")
		st := m.SecretStores[store]
		if st == nil {
			t.Fatalf("no store %q", store)
		}
		s, ok := st.Get(name)
		if !ok || string(s.Plaintext()) != v {
			t.Errorf("%s = %q, %v; want %q", k, s.Plaintext(), ok, v)
		}
	}
}

func TestKVSecretBadInput(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "bad.json"), []byte(`{"k": 1}`), 0o644)
	for _, tc := range []struct {
		name, doc string
		line      int
		want      string // in the message
	}{
		{"missing data file", "[local_server.kv_stores]\ns = [{ key = \"k\", file = \"nope.bin\" }]\n", 2, filepath.Join(dir, "nope.bin")},
		{"missing json file", "[local_server.kv_stores]\n\ns = { file = \"nope.json\", format = \"json\" }\n", 3, filepath.Join(dir, "nope.json")},
		{"bad json value", "[local_server.kv_stores]\ns = { file = \"bad.json\", format = \"json\" }\n", 2, `key "k"`},
		{"no data or file", "[local_server.kv_stores]\ns = [{ key = \"k\" }]\n", 2, "needs data or file"},
		{"data and file", "[local_server.kv_stores]\ns = [{ key = \"k\", data = \"v\", file = \"f\" }]\n", 2, "not both"},
		{"key too long", "[local_server.kv_stores]\ns = [{ key = \"" + strings.Repeat("k", 1025) + "\", data = \"v\" }]\n", 2, "at most 1024"},
		{"unknown entry key", "[local_server.kv_stores]\ns = [{ key = \"k\", data = \"v\", ttl = 3 }]\n", 2, `unknown key "ttl"`},
		{"bad format", "[local_server.kv_stores]\ns = { file = \"x\", format = \"yaml\" }\n", 2, `unknown format "yaml"`},
		{"duplicate key", "[local_server.kv_stores]\ns = [{ key = \"k\", data = \"v\" }, { key = \"k\", data = \"w\" }]\n", 2, "declared twice"},
		{"secret env unset", "[local_server.secret_stores]\ns = [{ key = \"k\", env = \"EDGEHOST_SURELY_UNSET_VAR\" }]\n", 2, "EDGEHOST_SURELY_UNSET_VAR is not set"},
		{"secret two sources", "[local_server.secret_stores]\ns = [{ key = \"k\", data = \"topsecret\", env = \"X\" }]\n", 2, "exactly one of"},
		{"secret missing file", "[local_server.secret_stores]\n\n\ns = [{ key = \"k\", file = \"none.pem\" }]\n", 4, filepath.Join(dir, "none.pem")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("fastly.toml", []byte(tc.doc), dir)
			if err == nil {
				t.Fatal("no error")
			}
			ps := problems(t, err)
			if len(ps) == 0 || ps[0].Line != tc.line || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "fastly.toml:") {
				t.Errorf("err = %v (line %d), want line %d and %q", err, ps[0].Line, tc.line, tc.want)
			}
			if strings.Contains(err.Error(), "topsecret") {
				t.Errorf("the error quotes a secret value: %v", err)
			}
		})
	}
}
