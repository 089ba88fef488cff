package server

import (
	"fmt"
	"log/slog"
	"sort"
	"strings"

	"github.com/edgehost/edgehost/internal/config"
	"github.com/edgehost/edgehost/internal/hostcall"
	"github.com/edgehost/edgehost/internal/kvstore"
)

// storesConfig makes m's KV stores in the loader's KV database (writing
// the entries the manifest declares that changed since they were last
// written; README.md, "KV stores") and adds them and m's secret stores to
// cfg. Errors: m declares KV stores and the loader has no KV database, or
// the database write fails.
func (l *Loader) storesConfig(m *config.Manifest, cfg *hostcall.EnvConfig) error {
	cfg.SecretStores = m.SecretStores
	if len(m.KVStores) == 0 {
		return nil
	}
	if l.KV == nil {
		return fmt.Errorf("the manifest declares KV stores but this host keeps no KV database (it needs a data dir)")
	}
	names := make([]string, 0, len(m.KVStores))
	for name := range m.KVStores {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		st := m.KVStores[name]
		seeds := make([]kvstore.Seed, len(st.Entries))
		for i, e := range st.Entries {
			seeds[i] = kvstore.Seed{Key: e.Key, Value: e.Value, Metadata: e.Metadata}
		}
		if err := l.KV.Declare(name, seeds); err != nil {
			return fmt.Errorf("KV store %q: %w", name, err)
		}
	}
	cfg.KV, cfg.KVStores = l.KV, names
	return nil
}

// StoresLogAttrs describes v's KV and secret stores for a log line:
// kv_stores "NAME (N keys, B bytes), ..." and secret_stores "NAME (N
// secrets), ..." (names and sizes, never a value); none when v has none.
func StoresLogAttrs(v *Version, db kvstore.Backend) []any {
	var attrs []any
	if names := v.Env.KVStoreNames(); len(names) > 0 {
		sizes := map[string]kvstore.StoreInfo{}
		if db != nil {
			if infos, err := db.Stores(); err == nil {
				for _, i := range infos {
					sizes[i.Name] = i
				}
			}
		}
		parts := make([]string, len(names))
		for i, n := range names {
			parts[i] = fmt.Sprintf("%s (%d keys, %d bytes)", n, sizes[n].Keys, sizes[n].Bytes)
		}
		attrs = append(attrs, slog.String("kv_stores", strings.Join(parts, ", ")))
	}
	if infos := v.Env.SecretStoreInfo(); len(infos) > 0 {
		parts := make([]string, len(infos))
		for i, s := range infos {
			parts[i] = fmt.Sprintf("%s (%d secrets)", s.Name, s.Secrets)
		}
		attrs = append(attrs, slog.String("secret_stores", strings.Join(parts, ", ")))
	}
	return attrs
}
