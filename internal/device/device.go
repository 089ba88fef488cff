// Package device answers Compute's device detection lookups
// (fastly_device_detection.lookup, abi/README.md): User-Agent strings
// mapped to a JSON object of Fastly's device fields ({"device": {"name",
// "brand", "model", "hwtype", "is_mobile", ...}, "os": {...},
// "user_agent": {...}}), from fastly.toml (README.md, "Platform
// services"). A DB is immutable and safe for concurrent use.
package device

import (
	"encoding/json"
	"fmt"
)

// DB maps User-Agent strings, matched exactly, to their JSON answer.
type DB struct {
	agents map[string][]byte
}

// New builds a DB from User-Agent strings and their fields. Errors: an
// entry that cannot be written as JSON.
func New(agents map[string]map[string]any) (*DB, error) {
	d := &DB{agents: make(map[string][]byte, len(agents))}
	for ua, fields := range agents {
		b, err := json.Marshal(fields)
		if err != nil {
			return nil, fmt.Errorf("user agent %q: %w", ua, err)
		}
		d.agents[ua] = b
	}
	return d, nil
}

// Len is the number of User-Agent strings known.
func (d *DB) Len() int {
	if d == nil {
		return 0
	}
	return len(d.agents)
}

// Lookup returns the JSON answer for userAgent, false when it is unknown
// (the hostcall then answers none). A nil DB knows none.
func (d *DB) Lookup(userAgent string) ([]byte, bool) {
	if d == nil {
		return nil, false
	}
	b, ok := d.agents[userAgent]
	return b, ok
}
