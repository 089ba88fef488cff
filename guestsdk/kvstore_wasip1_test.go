//go:build wasip1

package guestsdk

import (
	"errors"
	"testing"
	"unsafe"

	"github.com/edgehost/edgehost/abi"
)

// TestKVBindingsAnswerBadInput calls every KV and secret store binding
// against the real host with input the ABI rejects (the package's
// fastly.toml declares no KV or secret store) and checks the statuses
// abi/README.md gives.
func TestKVBindingsAnswerBadInput(t *testing.T) {
	var out, out2, out3 uint32
	var gen uint64
	o, o2, o3, g := unsafe.Pointer(&out), unsafe.Pointer(&out2), unsafe.Pointer(&out3), unsafe.Pointer(&gen)
	var cfg [32]byte
	c := unsafe.Pointer(&cfg[0])
	name := "no-such-store"
	np, nl := strPtr(name), uint32(len(name))
	buf := make([]byte, 16)
	for _, tc := range []struct {
		op   string
		got  uint32
		want abi.Status
	}{
		{"kv open unknown", kvStoreOpen(np, nl, o), abi.Inval},
		{"kv lookup bad handle", kvStoreLookup(badHandle, np, nl, 0, c, o), abi.Badf},
		{"kv lookup_wait_v2 bad handle", kvStoreLookupWaitV2(badHandle, o, bytesPtr(buf), 16, o2, g, o3), abi.Badf},
		{"kv insert bad handle", kvStoreInsert(badHandle, np, nl, badHandle, 0, c, o), abi.Badf},
		{"kv insert_wait bad handle", kvStoreInsertWait(badHandle, o), abi.Badf},
		{"kv delete bad handle", kvStoreDelete(badHandle, np, nl, 0, c, o), abi.Badf},
		{"kv delete_wait bad handle", kvStoreDeleteWait(badHandle, o), abi.Badf},
		{"kv list bad handle", kvStoreList(badHandle, 0, c, o), abi.Badf},
		{"kv list_wait bad handle", kvStoreListWait(badHandle, o, o2), abi.Badf},
		{"secret open unknown", secretStoreOpen(np, nl, o), abi.None},
		{"secret get bad handle", secretStoreGet(badHandle, np, nl, o), abi.Badf},
		{"secret plaintext bad handle", secretStorePlaintext(badHandle, bytesPtr(buf), 16, o), abi.Badf},
		{"secret from_bytes", secretStoreFromBytes(bytesPtr(buf), 16, o), abi.OK},
	} {
		if abi.Status(tc.got) != tc.want {
			t.Errorf("%s: %v, want %v", tc.op, abi.Status(tc.got), tc.want)
		}
	}
	if _, err := OpenKVStore(name); !errors.Is(err, ErrStoreNotFound) {
		t.Errorf("OpenKVStore(unknown) = %v, want ErrStoreNotFound", err)
	}
	if _, err := OpenSecretStore(name); !errors.Is(err, ErrStoreNotFound) {
		t.Errorf("OpenSecretStore(unknown) = %v, want ErrStoreNotFound", err)
	}
	s, err := SecretFromBytes([]byte("from bytes"))
	if err != nil {
		t.Fatal(err)
	}
	if v, err := s.Plaintext(); err != nil || string(v) != "from bytes" {
		t.Errorf("Plaintext = %q, %v", v, err)
	}
}
