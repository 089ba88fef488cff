//go:build !wasip1

package guestsdk

import (
	"errors"
	"strings"
	"testing"
)

func TestKVStore(t *testing.T) {
	f := installFake(t)
	f.addKVStore("kvs")
	if _, err := OpenKVStore("nope"); !errors.Is(err, ErrStoreNotFound) {
		t.Fatalf("OpenKVStore(unknown) = %v, want ErrStoreNotFound", err)
	}
	s, err := OpenKVStore("kvs")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Lookup("k"); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("Lookup(absent) = %v, want ErrKeyNotFound", err)
	}
	if err := s.Insert("k", []byte("one"), &KVInsertOptions{Metadata: []byte("m")}); err != nil {
		t.Fatal(err)
	}
	if err := s.Insert("k", []byte("-two"), &KVInsertOptions{Mode: KVAppend, Metadata: []byte("m2")}); err != nil {
		t.Fatal(err)
	}
	e, err := s.Lookup("k")
	if err != nil || string(e.Value) != "one-two" || string(e.Metadata) != "m2" || e.Generation == 0 {
		t.Fatalf("Lookup = %+v, %v", e, err)
	}
	if err := s.Insert("k", []byte("x"), &KVInsertOptions{Mode: KVAdd}); !errors.Is(err, ErrPreconditionFailed) {
		t.Fatalf("add of an existing key: %v", err)
	}
	if err := s.Insert("k", []byte("x"), &KVInsertOptions{IfGenerationMatch: e.Generation + 100}); !errors.Is(err, ErrPreconditionFailed) {
		t.Fatalf("stale generation: %v", err)
	}
	if err := s.Insert("k", []byte("cas"), &KVInsertOptions{IfGenerationMatch: e.Generation}); err != nil {
		t.Fatalf("matching generation: %v", err)
	}
	if _, err := s.Lookup(""); statusOf(err) != 2 {
		t.Fatalf("Lookup(\"\") = %v, want status inval", err)
	}
	for _, k := range []string{"p/1", "p/2", "p/3"} {
		s.Insert(k, []byte(k), nil)
	}
	var keys []string
	cursor, pages := "", 0
	for {
		p, err := s.List("p/", 2, cursor)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		keys = append(keys, p.Keys...)
		if p.Next == "" {
			break
		}
		cursor = p.Next
	}
	if pages != 2 || strings.Join(keys, ",") != "p/1,p/2,p/3" {
		t.Fatalf("List pages %d, keys %q", pages, keys)
	}
	if err := s.Delete("k"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete("k"); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("Delete twice: %v", err)
	}
}

func TestSecretStore(t *testing.T) {
	f := installFake(t)
	f.addSecretStore("secrets", map[string]string{"api": strings.Repeat("s", 3000)})
	if _, err := OpenSecretStore("nope"); !errors.Is(err, ErrStoreNotFound) {
		t.Fatalf("OpenSecretStore(unknown) = %v", err)
	}
	st, err := OpenSecretStore("secrets")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Get("nope"); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("Get(unknown) = %v", err)
	}
	sec, err := st.Get("api")
	if err != nil {
		t.Fatal(err)
	}
	if v, err := sec.Plaintext(); err != nil || len(v) != 3000 {
		t.Fatalf("Plaintext = %d bytes, %v (a value larger than the first buffer)", len(v), err)
	}
	fb, err := SecretFromBytes([]byte("raw"))
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := fb.Plaintext(); string(v) != "raw" {
		t.Fatalf("from bytes = %q", v)
	}
}
