package config

import (
	"strings"
	"testing"
)

func TestCacheMemoryMiB(t *testing.T) {
	if got := DefaultHost().CacheMemoryMiB; got != 256 {
		t.Errorf("default cache_memory_mib %d, want 256 as fastly.toml.example says", got)
	}
	h := mustParse(t, "[edgehost]\ncache_memory_mib = 64\n", t.TempDir()).Host
	if h.CacheMemoryMiB != 64 || !h.IsSet("cache_memory_mib") {
		t.Errorf("cache_memory_mib = 64 gave %d (set %v)", h.CacheMemoryMiB, h.IsSet("cache_memory_mib"))
	}
	for _, bad := range []string{"0", "1048577", `"big"`} {
		_, err := Parse("fastly.toml", []byte("[edgehost]\n\ncache_memory_mib = "+bad+"\n"), t.TempDir())
		if err == nil || !strings.Contains(err.Error(), "fastly.toml:3:") || !strings.Contains(err.Error(), `"edgehost.cache_memory_mib"`) {
			t.Errorf("cache_memory_mib = %s: error %v, want one naming the key and line 3", bad, err)
		}
	}
}
