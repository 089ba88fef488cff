//go:build !wasip1

package guestsdk

import (
	"errors"
	"strings"
	"testing"

	"github.com/edgehost/edgehost/abi"
)

func TestConfigStoreAndDictionary(t *testing.T) {
	type store interface{ Get(string) (string, error) }
	opens := map[string]func(string) (store, error){
		"config store": func(n string) (store, error) { return OpenConfigStore(n) },
		"dictionary":   func(n string) (store, error) { return OpenDictionary(n) },
	}
	long := strings.Repeat("x", 4*initialBufSize+3)
	for kind, open := range opens {
		t.Run(kind, func(t *testing.T) {
			f := installFake(t)
			data := map[string]string{"origin_target": "127.0.0.1:8080", "long": long, "empty": ""}
			f.stores["settings"], f.dicts["settings"] = data, data

			s, err := open("settings")
			if err != nil {
				t.Fatal(err)
			}
			for k, want := range data {
				if got, err := s.Get(k); err != nil || got != want {
					t.Errorf("Get(%q) = %d bytes, %v; want %d bytes", k, len(got), err, len(want))
				}
			}
			_, err = s.Get("missing")
			var se *StatusError
			if !errors.Is(err, ErrKeyNotFound) || !errors.As(err, &se) || se.Status != abi.None {
				t.Errorf("missing key: %v, want ErrKeyNotFound wrapping status none", err)
			}
			if _, err := open("nope"); !errors.Is(err, ErrStoreNotFound) {
				t.Errorf("unknown store: %v, want ErrStoreNotFound", err)
			}
		})
	}
}

func TestLogEndpoint(t *testing.T) {
	f := installFake(t)
	f.maxIO = 4
	l, err := OpenLogEndpoint("access")
	if err != nil {
		t.Fatal(err)
	}
	n, err := l.Write([]byte("hello log"))
	if n != 9 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if got := strings.Join(f.logged["access"], ""); got != "hello log" {
		t.Errorf("logged %q", got)
	}
	if len(f.logged["access"]) != 3 {
		t.Errorf("a 9-byte write to a host taking 4 bytes per call took %d calls", len(f.logged["access"]))
	}
	if _, err := OpenLogEndpoint("stdout"); err == nil {
		t.Error("stdout accepted")
	}
}

func TestHeader(t *testing.T) {
	h := Header{}
	h.Add("content-type", "a")
	h.Add("Content-Type", "b")
	h.Set("x-MIXED-case", "v")
	h.Add("bad name", "kept as is")
	if got := h.Values("CONTENT-TYPE"); len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Errorf("Values = %v", got)
	}
	if h.Get("X-Mixed-Case") != "v" || h["X-Mixed-Case"] == nil {
		t.Errorf("canonical key missing: %v", h)
	}
	if h["bad name"] == nil {
		t.Errorf("non-token name was changed: %v", h)
	}
	c := h.Clone()
	c["Content-Type"][0] = "changed"
	if h.Get("content-type") != "a" {
		t.Error("Clone shares values")
	}
	h.Del("content-type")
	if h.Get("Content-Type") != "" || len(h) != 2 {
		t.Errorf("after Del: %v", h)
	}
	if Header(nil).Clone() != nil {
		t.Error("Clone of nil is not nil")
	}
	for in, want := range map[string]string{"": "", "a": "A", "x-forwarded-for": "X-Forwarded-For", "WWW-AUTHENTICATE": "Www-Authenticate", "x_y": "X_y"} {
		if got := canonicalKey(in); got != want {
			t.Errorf("canonicalKey(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNoFakeIsUnsupported(t *testing.T) {
	_, err := OpenConfigStore("x")
	if !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("without a host: %v", err)
	}
}
