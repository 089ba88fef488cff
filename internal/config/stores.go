package config

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
)

// stores reads [local_server.<section>.NAME] tables into out. Each is
//
//	format = "inline-toml" with a [contents] table of string values, or
//	format = "json" with file = "path" (relative to dir): a JSON object
//	whose values are all strings.
func (p *parser) stores(t *table, section, dir string, out map[string]map[string]string) {
	t.tables(section, func(name string, s *table) {
		defer s.finish()
		format, ok := s.str("format")
		if !ok {
			if !s.has("format") {
				p.errorf(s.path, `the format key is required ("inline-toml" or "json")`)
			}
			s.ignore("contents", "file")
			return
		}
		switch format {
		case "inline-toml":
			if s.has("file") {
				s.errorf("file", `is for format = "json"; inline-toml stores take a contents table`)
				s.ignore("file")
			}
			if !s.has("contents") {
				p.errorf(s.path, `format = "inline-toml" needs a contents table`)
				return
			}
			c, ok := s.table("contents")
			if !ok {
				return
			}
			kv := make(map[string]string, len(c.m))
			for _, k := range c.names() {
				if v, ok := c.str(k); ok {
					kv[k] = v
				}
			}
			out[name] = kv
		case "json":
			if s.has("contents") {
				s.errorf("contents", `is for format = "inline-toml"; json stores take a file`)
				s.ignore("contents")
			}
			file, ok := s.str("file")
			if !ok {
				if !s.has("file") {
					p.errorf(s.path, `format = "json" needs a file key`)
				}
				return
			}
			kv, err := readJSONStore(dir, file)
			if err != nil {
				p.add(s.key("file"), err)
				return
			}
			out[name] = kv
		default:
			s.errorf("format", `unknown format %q; want "inline-toml" or "json"`, format)
			s.ignore("contents", "file")
		}
	})
}

// readJSONStore reads a JSON object of strings from file, relative to dir.
func readJSONStore(dir, file string) (map[string]string, error) {
	if file == "" {
		return nil, fmt.Errorf("empty file name")
	}
	path := file
	if !filepath.IsAbs(path) {
		path = filepath.Join(dir, path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var raw map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("%s: want a JSON object of strings: %w", path, err)
	}
	if raw == nil {
		return nil, fmt.Errorf("%s: want a JSON object of strings, have null", path)
	}
	kv := make(map[string]string, len(raw))
	var bad []string
	for k, v := range raw {
		s, ok := v.(string)
		if !ok {
			bad = append(bad, fmt.Sprintf("%q", k))
			continue
		}
		kv[k] = s
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return nil, fmt.Errorf("%s: values must be strings; not so for %s", path, strings.Join(bad, ", "))
	}
	return kv, nil
}

// logEndpoints reads [local_server.log_endpoints]: a table of NAME = {}
// entries, or an array of names. It returns the names, sorted.
func (p *parser) logEndpoints(t *table) []string {
	v, ok := t.m["log_endpoints"]
	if !ok {
		return nil
	}
	type entry struct {
		name string
		key  toml.Key // where to report a problem with it
	}
	var entries []entry
	switch v.(type) {
	case []any:
		list, _ := t.strs("log_endpoints")
		for _, n := range list {
			entries = append(entries, entry{n, t.key("log_endpoints")})
		}
	default:
		t.tables("log_endpoints", func(name string, e *table) {
			e.finish() // an endpoint has no settings
			entries = append(entries, entry{name, e.path})
		})
	}
	seen := map[string]bool{}
	var names []string
	for _, e := range entries {
		switch {
		case e.name == "":
			p.errorf(e.key, "an endpoint name must not be empty")
		case e.name == "stdout" || e.name == "stderr" || strings.HasPrefix(e.name, "fst_managed_"):
			p.errorf(e.key, "endpoint name %q is reserved: guests cannot open it", e.name)
		case seen[e.name]:
			p.errorf(e.key, "endpoint %q is listed twice", e.name)
		default:
			seen[e.name] = true
			names = append(names, e.name)
		}
	}
	sort.Strings(names)
	return names
}
