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
	var h uint32
	st := configStoreOpen(strPtr(name), uint32(len(name)), unsafe.Pointer(&h))
	if err := openErr("fastly_config_store.open", name, st); err != nil {
		return nil, err
	}
	return &ConfigStore{name: name, h: h}, nil
}

// Get returns the value of key (fastly_config_store.get), retrying with a
// bigger buffer while the host answers buflen. A missing key (status
// none) is ErrKeyNotFound.
func (s *ConfigStore) Get(key string) (string, error) {
	v, err := getString("fastly_config_store.get", func(b unsafe.Pointer, n uint32, w unsafe.Pointer) uint32 {
		return configStoreGet(s.h, strPtr(key), uint32(len(key)), b, n, w)
	})
	return v, keyErr(key, err)
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
	var h uint32
	st := dictionaryOpen(strPtr(name), uint32(len(name)), unsafe.Pointer(&h))
	if err := openErr("fastly_dictionary.open", name, st); err != nil {
		return nil, err
	}
	return &Dictionary{name: name, h: h}, nil
}

// Get returns the value of key (fastly_dictionary.get), retrying with a
// bigger buffer while the host answers buflen. A missing key (status
// none) is ErrKeyNotFound.
func (d *Dictionary) Get(key string) (string, error) {
	v, err := getString("fastly_dictionary.get", func(b unsafe.Pointer, n uint32, w unsafe.Pointer) uint32 {
		return dictionaryGet(d.h, strPtr(key), uint32(len(key)), b, n, w)
	})
	return v, keyErr(key, err)
}

// openErr turns the status of an open call into an error: badf (no
// store of that name) is ErrStoreNotFound.
func openErr(op, name string, st uint32) error {
	err := statusErr(op, st)
	if abi.Status(statusOf(err)) == abi.Badf {
		return fmt.Errorf("%w %q: %w", ErrStoreNotFound, name, err)
	}
	return err
}

// keyErr turns the error of a get call into the SDK's: none (no such key)
// is ErrKeyNotFound.
func keyErr(key string, err error) error {
	if abi.Status(statusOf(err)) == abi.None {
		return fmt.Errorf("%w %q: %w", ErrKeyNotFound, key, err)
	}
	return err
}
