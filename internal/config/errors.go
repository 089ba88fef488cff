package config

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// ErrUnknownKey is the Err of an [Error] for a key edgehost does not read.
var ErrUnknownKey = errors.New("unknown key")

// Error is one problem found in a manifest. [Parse] and [Load] return every
// problem they find, each an *Error, joined with errors.Join; use errors.As
// to inspect them.
//
// Its text is "FILE:LINE: unknown key "KEY"" for unknown keys and
// "FILE:LINE: key "KEY": REASON" otherwise; ":LINE" is left out when the
// TOML decoder cannot place the key (see [Error.Line]).
type Error struct {
	// File is the name the manifest was parsed under (Parse's name).
	File string
	// Line is the 1-based line of the key, 0 when it is unknown (for
	// instance a key containing a comma, which the decoder cannot address).
	Line int
	// Key is the full dotted key path as TOML prints it, such as
	// local_server.backends.origin.url; empty for a syntax error.
	Key string
	// Err is what is wrong: ErrUnknownKey, a syntax error wrapping a
	// toml.ParseError, or a description of the bad value.
	Err error
}

// Error implements error.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	switch {
	case errors.Is(e.Err, ErrUnknownKey):
		fmt.Fprintf(&b, "unknown key %q", e.Key)
	case e.Key != "":
		fmt.Fprintf(&b, "key %q: %v", e.Key, e.Err)
	default:
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns e.Err.
func (e *Error) Unwrap() error { return e.Err }

// syntaxError is a TOML syntax error; it wraps the decoder's ParseError.
type syntaxError struct{ pe toml.ParseError }

func (e syntaxError) Error() string { return "invalid TOML: " + e.pe.Message }
func (e syntaxError) Unwrap() error { return e.pe }

// keyLine returns the 1-based line on which key is defined in data, or 0.
//
// BurntSushi/toml v1.6.0 records every key's position but does not export
// it (upstream issue #462). It does put that position into the ParseError it
// returns when an Unmarshaler fails. So keyLine decodes data once more into
// a struct type built for this key alone, whose only leaf is a
// [lineProbe] that always fails, and reads the line from the error. It runs
// only when an error is reported, so the extra decode costs nothing on the
// happy path.
//
// A table that is only implied by deeper keys ([a.b] implies a) has no
// position of its own; it gets the line of the first key below it.
func keyLine(data string, keys []toml.Key, key toml.Key) int {
	if l := probeLine(data, key); l > 0 {
		return l
	}
	want := key.String() + "."
	for _, k := range keys {
		if strings.HasPrefix(k.String(), want) {
			if l := probeLine(data, k); l > 0 {
				return l
			}
		}
	}
	return 0
}

// errProbe is what lineProbe returns to stop the decoder at its key.
var errProbe = errors.New("edgehost config: position probe")

// lineProbe is the leaf of the probe struct built by probeLine.
type lineProbe struct{}

// UnmarshalTOML implements toml.Unmarshaler by always failing.
func (*lineProbe) UnmarshalTOML(any) error { return errProbe }

func probeLine(data string, key toml.Key) int {
	t := reflect.TypeFor[lineProbe]()
	for i := len(key) - 1; i >= 0; i-- {
		k := key[i]
		// The decoder's tag syntax cannot name these keys.
		if k == "" || k == "-" || strings.Contains(k, ",") {
			return 0
		}
		t = reflect.StructOf([]reflect.StructField{{
			Name: "F",
			Type: t,
			Tag:  reflect.StructTag("toml:" + strconv.Quote(k)),
		}})
	}
	_, err := toml.Decode(data, reflect.New(t).Interface())
	var pe toml.ParseError
	// The decoder also matches field names case-insensitively; make sure it
	// stopped at this very key.
	if errors.As(err, &pe) && pe.Message == errProbe.Error() && pe.LastKey == key.String() {
		return pe.Position.Line
	}
	return 0
}
