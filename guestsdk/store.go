package guestsdk

import (
	"fmt"
	"unsafe"

	"github.com/edgehost/edgehost/abi"
)

// ConfigStore is a read-only key/value store of the host
// (fastly_config_store; [local_server.config_stores.NAME] in fastly.toml).
type ConfigStore struct {
	name string
	h    uint32
}

// OpenConfigStore opens the config store called name. An unknown store
// (status badf) is ErrStoreNotFound; other failures are a *StatusError.
func OpenConfigStore(name string) (*ConfigStore, error) {
	h, err := openStore("fastly_config_store.open", name, configStoreOpen)
	if err != nil {
		return nil, err
	}
	return &ConfigStore{name: name, h: h}, nil
}

// Get returns the value of key (fastly_config_store.get), retrying with a
// bigger buffer while the host answers buflen. A missing key (status
// none) is ErrKeyNotFound.
func (s *ConfigStore) Get(key string) (string, error) {
	return storeGet("fastly_config_store.get", s.h, key, configStoreGet)
}

// Dictionary is a read-only key/value dictionary of the host
// (fastly_dictionary; [local_server.dictionaries.NAME] in fastly.toml),
// the older form of a config store.
type Dictionary struct {
	name string
	h    uint32
}

// OpenDictionary opens the dictionary called name. An unknown dictionary
// (status badf) is ErrStoreNotFound; other failures are a *StatusError.
func OpenDictionary(name string) (*Dictionary, error) {
	h, err := openStore("fastly_dictionary.open", name, dictionaryOpen)
	if err != nil {
		return nil, err
	}
	return &Dictionary{name: name, h: h}, nil
}

// Get returns the value of key (fastly_dictionary.get), retrying with a
// bigger buffer while the host answers buflen. A missing key (status
// none) is ErrKeyNotFound.
func (d *Dictionary) Get(key string) (string, error) {
	return storeGet("fastly_dictionary.get", d.h, key, dictionaryGet)
}

func openStore(op, name string, open func(name unsafe.Pointer, nameLen uint32, out unsafe.Pointer) uint32) (uint32, error) {
	var h uint32
	err := statusErr(op, open(strPtr(name), uint32(len(name)), unsafe.Pointer(&h)))
	if abi.Status(statusOf(err)) == abi.Badf {
		return 0, fmt.Errorf("%w %q: %w", ErrStoreNotFound, name, err)
	}
	return h, err
}

func storeGet(op string, h uint32, key string, get func(h uint32, key unsafe.Pointer, keyLen uint32, buf unsafe.Pointer, bufLen uint32, nwOut unsafe.Pointer) uint32) (string, error) {
	v, err := getString(op, func(b unsafe.Pointer, n uint32, w unsafe.Pointer) uint32 {
		return get(h, strPtr(key), uint32(len(key)), b, n, w)
	})
	if abi.Status(statusOf(err)) == abi.None {
		return "", fmt.Errorf("%w %q: %w", ErrKeyNotFound, key, err)
	}
	return v, err
}
