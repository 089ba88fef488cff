package config

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/BurntSushi/toml"
)

// parser collects the problems of one manifest.
type parser struct {
	file string
	data string
	keys []toml.Key // every key of the document, in order (MetaData.Keys)
	errs []*Error
	// ignored collects keys accepted but not implemented, outside the
	// [local_server] sections (which the manifest lists itself).
	ignored []string
}

// errorf records a problem with key.
func (p *parser) errorf(key toml.Key, format string, args ...any) {
	p.add(key, fmt.Errorf(format, args...))
}

// add records err for key.
func (p *parser) add(key toml.Key, err error) {
	p.errs = append(p.errs, &Error{
		File: p.file,
		Line: keyLine(p.data, p.keys, key),
		Key:  key.String(),
		Err:  err,
	})
}

// err returns every recorded problem, ordered by line (unplaced ones last),
// joined; nil when there are none.
func (p *parser) err() error {
	sort.SliceStable(p.errs, func(i, j int) bool {
		li, lj := p.errs[i].Line, p.errs[j].Line
		if li == 0 || lj == 0 {
			return lj == 0 && li != 0
		}
		return li < lj
	})
	errs := make([]error, len(p.errs))
	for i, e := range p.errs {
		errs[i] = e
	}
	return errors.Join(errs...)
}

// table reads one TOML table. Each getter marks its key as read; finish
// reports every key that no getter asked for as unknown.
type table struct {
	p    *parser
	path toml.Key
	m    map[string]any
	read map[string]bool
}

func (p *parser) root(m map[string]any) *table {
	return &table{p: p, m: m, read: map[string]bool{}}
}

// key returns the full path of k in t.
func (t *table) key(k string) toml.Key {
	key := make(toml.Key, len(t.path)+1)
	copy(key, t.path)
	key[len(t.path)] = k
	return key
}

func (t *table) errorf(k string, format string, args ...any) {
	t.p.errorf(t.key(k), format, args...)
}

// get returns the raw value of k and marks it read.
func (t *table) get(k string) (any, bool) {
	v, ok := t.m[k]
	if ok {
		t.read[k] = true
	}
	return v, ok
}

// has reports whether k is present, without marking it read.
func (t *table) has(k string) bool {
	_, ok := t.m[k]
	return ok
}

// ignore marks keys as read whatever they hold.
func (t *table) ignore(keys ...string) {
	for _, k := range keys {
		t.get(k)
	}
}

// names returns the keys of t, sorted.
func (t *table) names() []string {
	names := make([]string, 0, len(t.m))
	for k := range t.m {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// finish reports every key of t that was not read as unknown.
func (t *table) finish() {
	for _, k := range t.names() {
		if !t.read[k] {
			t.p.add(t.key(k), ErrUnknownKey)
		}
	}
}

// typeName names the TOML type of a decoded value for error messages.
func typeName(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case []map[string]any:
		return "an array of tables"
	case []any:
		return "an array"
	case map[string]any:
		return "a table"
	case time.Time:
		return "a date/time"
	}
	return fmt.Sprintf("%T", v)
}

// str returns the string at k; ok is false when k is absent or not a string
// (the latter is recorded as a problem).
func (t *table) str(k string) (s string, ok bool) {
	v, present := t.get(k)
	if !present {
		return "", false
	}
	s, ok = v.(string)
	if !ok {
		t.errorf(k, "want a string, have %s", typeName(v))
	}
	return s, ok
}

// boolean returns the boolean at k, like str.
func (t *table) boolean(k string) (b bool, ok bool) {
	v, present := t.get(k)
	if !present {
		return false, false
	}
	b, ok = v.(bool)
	if !ok {
		t.errorf(k, "want a boolean (true or false), have %s", typeName(v))
	}
	return b, ok
}

// integer returns the integer at k when it lies in [min, max], like str.
func (t *table) integer(k string, min, max int64) (n int64, ok bool) {
	v, present := t.get(k)
	if !present {
		return 0, false
	}
	n, ok = v.(int64)
	switch {
	case !ok:
		t.errorf(k, "want an integer, have %s", typeName(v))
	case n < min:
		t.errorf(k, "%d is below the minimum %d", n, min)
		ok = false
	case n > max:
		t.errorf(k, "%d is above the maximum %d", n, max)
		ok = false
	}
	return n, ok
}

// strs returns the array of strings at k, like str. An empty array gives
// a non-nil empty slice.
func (t *table) strs(k string) ([]string, bool) {
	v, present := t.get(k)
	if !present {
		return nil, false
	}
	arr, ok := v.([]any)
	if !ok {
		t.errorf(k, "want an array of strings, have %s", typeName(v))
		return nil, false
	}
	out := make([]string, 0, len(arr))
	for i, e := range arr {
		s, ok := e.(string)
		if !ok {
			t.errorf(k, "element %d: want a string, have %s", i, typeName(e))
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}

// table returns the sub-table at k, like str.
func (t *table) table(k string) (*table, bool) {
	v, present := t.get(k)
	if !present {
		return nil, false
	}
	m, ok := v.(map[string]any)
	if !ok {
		t.errorf(k, "want a table, have %s", typeName(v))
		return nil, false
	}
	return &table{p: t.p, path: t.key(k), m: m, read: map[string]bool{}}, true
}

// tables calls fn for every entry of the table at k, in name order; each
// entry must itself be a table.
func (t *table) tables(k string, fn func(name string, sub *table)) {
	outer, ok := t.table(k)
	if !ok {
		return
	}
	for _, name := range outer.names() {
		sub, ok := outer.table(name)
		if !ok {
			continue
		}
		if name == "" {
			outer.errorf(name, "the name must not be empty")
			continue
		}
		fn(name, sub)
	}
}
