// Package secretstore holds the secret stores a manifest declares
// ([local_server.secret_stores], README.md "Secret stores"). A Secret's
// value can only be read with Plaintext: every way of printing or
// encoding one (fmt verbs, slog, JSON) gives "[redacted]", so a value
// never reaches a log line, an error, a metric or the admin API by
// accident.
package secretstore

import (
	"fmt"
	"log/slog"
	"sort"
)

// MaxSecretLen is the largest secret edgehost accepts: 64 KiB, Fastly's
// documented limit for a secret store value (README.md, "Secret stores").
const MaxSecretLen = 64 << 10

// Redacted is what a Secret prints as.
const Redacted = "[redacted]"

// ValidName reports whether name is a valid secret store or secret name:
// 1 to 255 characters of ASCII letters, digits, '_', '-' and '.' (the
// rule Fastly's local server, Viceroy, applies).
func ValidName(name string) bool {
	if name == "" || len(name) > 255 {
		return false
	}
	for _, c := range []byte(name) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.'
		if !ok {
			return false
		}
	}
	return true
}

// Secret is a secret value.
type Secret struct{ b []byte }

// New returns a Secret holding a copy of b.
func New(b []byte) Secret { return Secret{b: append([]byte{}, b...)} }

// Plaintext returns the value. The caller must not change it.
func (s Secret) Plaintext() []byte { return s.b }

// Len is the value's length in bytes.
func (s Secret) Len() int { return len(s.b) }

// String returns Redacted.
func (Secret) String() string { return Redacted }

// GoString returns Redacted.
func (Secret) GoString() string { return Redacted }

// Format prints Redacted for every verb.
func (Secret) Format(f fmt.State, _ rune) { fmt.Fprint(f, Redacted) }

// LogValue makes slog print Redacted.
func (Secret) LogValue() slog.Value { return slog.StringValue(Redacted) }

// MarshalJSON encodes Redacted.
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + Redacted + `"`), nil }

// MarshalText encodes Redacted.
func (Secret) MarshalText() ([]byte, error) { return []byte(Redacted), nil }

// Store is one named secret store. It is immutable once built.
type Store struct {
	name    string
	secrets map[string]Secret
}

// NewStore returns a store holding secrets (not copied; the caller gives
// them up).
func NewStore(name string, secrets map[string]Secret) *Store {
	if secrets == nil {
		secrets = map[string]Secret{}
	}
	return &Store{name: name, secrets: secrets}
}

// Name is the store's name.
func (s *Store) Name() string { return s.name }

// Get returns the secret named key.
func (s *Store) Get(key string) (Secret, bool) {
	v, ok := s.secrets[key]
	return v, ok
}

// Names returns the secrets' names, sorted.
func (s *Store) Names() []string {
	names := make([]string, 0, len(s.secrets))
	for k := range s.secrets {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// Len is the number of secrets.
func (s *Store) Len() int { return len(s.secrets) }
