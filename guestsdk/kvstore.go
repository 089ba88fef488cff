package guestsdk

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
	"unsafe"

	"github.com/edgehost/edgehost/abi"
)

// KV store errors; the errors KVStore methods return wrap them (and a
// *KVError), so test with errors.Is.
var (
	// ErrPreconditionFailed: an insert with KVAdd of a key that exists,
	// or with IfGenerationMatch not met (kv_error precondition_failed).
	ErrPreconditionFailed = errors.New("guestsdk: KV precondition failed")
	// ErrTooLarge: a value over 25 MiB or metadata over 2000 bytes
	// (kv_error payload_too_large).
	ErrTooLarge = errors.New("guestsdk: KV value or metadata too large")
)

// KVError is a KV operation that ran and did not succeed: the kv_error the
// host reported (abi/README.md, "fastly_kv_store").
type KVError struct {
	Op   string
	Code abi.KVError
}

// Error returns e.g. "guestsdk: fastly_kv_store.insert: kv_error 4".
func (e *KVError) Error() string {
	return fmt.Sprintf("guestsdk: %s: kv_error %d", e.Op, e.Code)
}

// Is maps the kv_error onto the package's sentinels: not_found is
// ErrKeyNotFound, precondition_failed ErrPreconditionFailed,
// payload_too_large ErrTooLarge.
func (e *KVError) Is(target error) bool {
	switch e.Code {
	case abi.KVErrorNotFound:
		return target == ErrKeyNotFound
	case abi.KVErrorPreconditionFailed:
		return target == ErrPreconditionFailed
	case abi.KVErrorPayloadTooLarge:
		return target == ErrTooLarge
	}
	return false
}

func kvErr(op string, code uint32) error {
	if abi.KVError(code) == abi.KVErrorOK {
		return nil
	}
	return &KVError{Op: op, Code: abi.KVError(code)}
}

// KVStore is a persistent key/value store of the host (fastly_kv_store;
// [local_server.kv_stores.NAME] in fastly.toml).
type KVStore struct {
	name string
	h    uint32
}

// OpenKVStore opens the KV store called name. An unknown store (status
// inval, as Fastly answers) is ErrStoreNotFound.
func OpenKVStore(name string) (*KVStore, error) {
	var h uint32
	st := kvStoreOpen(strPtr(name), uint32(len(name)), unsafe.Pointer(&h))
	if abi.Status(st) == abi.Inval {
		return nil, fmt.Errorf("%w %q: %w", ErrStoreNotFound, name, statusErr("fastly_kv_store.open", st))
	}
	if err := statusErr("fastly_kv_store.open", st); err != nil {
		return nil, err
	}
	return &KVStore{name: name, h: h}, nil
}

// KVEntry is a value read from a KV store.
type KVEntry struct {
	Value    []byte
	Metadata []byte
	// Generation grows with every write of the store; pass it as
	// KVInsertOptions.IfGenerationMatch for a compare-and-swap.
	Generation uint64
}

// kvMetadataBuf is the metadata buffer lookups start with: Fastly's
// metadata limit (2000 bytes), so one call is enough.
const kvMetadataBuf = 2000

// Lookup reads key (lookup, then lookup_wait_v2). A missing or expired
// key is ErrKeyNotFound; a bad key (empty, over 1024 bytes, not UTF-8) a
// *StatusError with status inval.
func (s *KVStore) Lookup(key string) (*KVEntry, error) {
	const op = "fastly_kv_store.lookup"
	var cfg uint32
	var h uint32
	if err := statusErr(op, kvStoreLookup(s.h, strPtr(key), uint32(len(key)), 0, unsafe.Pointer(&cfg), unsafe.Pointer(&h))); err != nil {
		return nil, err
	}
	meta := make([]byte, kvMetadataBuf)
	for {
		var body, nw, code uint32
		var gen uint64
		st := kvStoreLookupWaitV2(h, unsafe.Pointer(&body), bytesPtr(meta), uint32(len(meta)), unsafe.Pointer(&nw), unsafe.Pointer(&gen), unsafe.Pointer(&code))
		if abi.Status(st) == abi.Buflen && int(nw) > len(meta) {
			meta = make([]byte, nw)
			continue
		}
		if err := statusErr("fastly_kv_store.lookup_wait_v2", st); err != nil {
			return nil, err
		}
		if err := kvErr("fastly_kv_store.lookup_wait_v2", code); err != nil {
			return nil, fmt.Errorf("key %q: %w", key, err)
		}
		b := &hostBody{h: body}
		value, err := io.ReadAll(b)
		b.Close()
		if err != nil {
			return nil, err
		}
		e := &KVEntry{Value: value, Generation: gen}
		if nw > 0 {
			e.Metadata = append([]byte(nil), meta[:nw]...)
		}
		return e, nil
	}
}

// KVInsertMode is how an insert combines the value with the stored one.
type KVInsertMode uint32

// The insert modes (abi.KVInsert*).
const (
	KVOverwrite KVInsertMode = KVInsertMode(abi.KVInsertOverwrite)
	KVAdd       KVInsertMode = KVInsertMode(abi.KVInsertAdd)
	KVAppend    KVInsertMode = KVInsertMode(abi.KVInsertAppend)
	KVPrepend   KVInsertMode = KVInsertMode(abi.KVInsertPrepend)
)

// KVInsertOptions are the options of Insert; the zero value overwrites,
// with no metadata and no expiry.
type KVInsertOptions struct {
	Mode KVInsertMode
	// Metadata is stored with the value (at most 2000 bytes); each write
	// sets it, so a write without it leaves none.
	Metadata []byte
	// TTL, when at least a second, makes the entry expire that long after
	// the write (whole seconds).
	TTL time.Duration
	// IfGenerationMatch, when not 0, makes the write fail with
	// ErrPreconditionFailed unless the key has that generation.
	IfGenerationMatch uint64
	// BackgroundFetch is passed on (Compute may return before the write
	// reaches every POP; on one edgehost the write is always complete).
	BackgroundFetch bool
}

// kvInsertConfig is the witx kv_insert_config (abi.KVInsertConfigSize).
type kvInsertConfig struct {
	mode, unused      uint32
	meta, metaLen     uint32
	ttl, pad          uint32
	ifGenerationMatch uint64
}

// Insert stores value under key (insert, then insert_wait). Errors:
// ErrPreconditionFailed, ErrTooLarge, a *KVError for other kv_errors (a
// full disk on the host: internal_error, the earlier value kept), a
// *StatusError (inval for a bad key).
func (s *KVStore) Insert(key string, value []byte, opts *KVInsertOptions) error {
	var o KVInsertOptions
	if opts != nil {
		o = *opts
	}
	var cfg kvInsertConfig
	var mask uint32
	cfg.mode = uint32(o.Mode)
	if len(o.Metadata) > 0 {
		mask |= abi.KVInsertMetadata
		cfg.meta, cfg.metaLen = pin(bytesPtr(o.Metadata)), uint32(len(o.Metadata))
	}
	if secs := o.TTL / time.Second; secs > 0 {
		mask |= abi.KVInsertTTL
		cfg.ttl = uint32(secs)
	}
	if o.IfGenerationMatch != 0 {
		mask |= abi.KVInsertIfGenerationMatch
		cfg.ifGenerationMatch = o.IfGenerationMatch
	}
	if o.BackgroundFetch {
		mask |= abi.KVInsertBackgroundFetch
	}
	body, err := newBody()
	if err != nil {
		return err
	}
	if _, err := writeBody(body, value); err != nil {
		bodyClose(body)
		return err
	}
	var h, code uint32
	if err := statusErr("fastly_kv_store.insert", kvStoreInsert(s.h, strPtr(key), uint32(len(key)), body, mask, unsafe.Pointer(&cfg), unsafe.Pointer(&h))); err != nil {
		bodyClose(body)
		return err
	}
	if err := statusErr("fastly_kv_store.insert_wait", kvStoreInsertWait(h, unsafe.Pointer(&code))); err != nil {
		return err
	}
	if err := kvErr("fastly_kv_store.insert_wait", code); err != nil {
		return fmt.Errorf("key %q: %w", key, err)
	}
	return nil
}

// Delete removes key (delete, then delete_wait). A key that was not there
// is ErrKeyNotFound.
func (s *KVStore) Delete(key string) error {
	var cfg, h, code uint32
	if err := statusErr("fastly_kv_store.delete", kvStoreDelete(s.h, strPtr(key), uint32(len(key)), 0, unsafe.Pointer(&cfg), unsafe.Pointer(&h))); err != nil {
		return err
	}
	if err := statusErr("fastly_kv_store.delete_wait", kvStoreDeleteWait(h, unsafe.Pointer(&code))); err != nil {
		return err
	}
	if err := kvErr("fastly_kv_store.delete_wait", code); err != nil {
		return fmt.Errorf("key %q: %w", key, err)
	}
	return nil
}

// KVPage is one page of List.
type KVPage struct {
	// Keys are in byte order.
	Keys []string
	// Next is the cursor of the next page, "" on the last.
	Next string
}

// kvListConfig is the witx kv_list_config (abi.KVListConfigSize).
type kvListConfig struct {
	mode, cursor, cursorLen, limit, prefix, prefixLen uint32
}

// List returns one page of the keys starting with prefix ("" for all),
// at most limit (0: the host's default, 1000) after cursor ("" for the
// first page; else a KVPage.Next).
func (s *KVStore) List(prefix string, limit int, cursor string) (KVPage, error) {
	var cfg kvListConfig
	var mask uint32
	if prefix != "" {
		mask |= abi.KVListPrefix
		cfg.prefix, cfg.prefixLen = pin(strPtr(prefix)), uint32(len(prefix))
	}
	if cursor != "" {
		mask |= abi.KVListCursor
		cfg.cursor, cfg.cursorLen = pin(strPtr(cursor)), uint32(len(cursor))
	}
	if limit > 0 {
		mask |= abi.KVListLimit
		cfg.limit = uint32(limit)
	}
	var h, body, code uint32
	if err := statusErr("fastly_kv_store.list", kvStoreList(s.h, mask, unsafe.Pointer(&cfg), unsafe.Pointer(&h))); err != nil {
		return KVPage{}, err
	}
	if err := statusErr("fastly_kv_store.list_wait", kvStoreListWait(h, unsafe.Pointer(&body), unsafe.Pointer(&code))); err != nil {
		return KVPage{}, err
	}
	if err := kvErr("fastly_kv_store.list_wait", code); err != nil {
		return KVPage{}, err
	}
	b := &hostBody{h: body}
	data, err := io.ReadAll(b)
	b.Close()
	if err != nil {
		return KVPage{}, err
	}
	var page struct {
		Data []string `json:"data"`
		Meta struct {
			NextCursor string `json:"next_cursor"`
		} `json:"meta"`
	}
	if err := json.Unmarshal(data, &page); err != nil {
		return KVPage{}, fmt.Errorf("guestsdk: fastly_kv_store.list_wait: %w", err)
	}
	return KVPage{Keys: page.Data, Next: page.Meta.NextCursor}, nil
}

// SecretStore is a store of secrets of the host (fastly_secret_store;
// [local_server.secret_stores.NAME] in fastly.toml).
type SecretStore struct {
	name string
	h    uint32
}

// OpenSecretStore opens the secret store called name. An unknown store
// (status none) is ErrStoreNotFound.
func OpenSecretStore(name string) (*SecretStore, error) {
	var h uint32
	st := secretStoreOpen(strPtr(name), uint32(len(name)), unsafe.Pointer(&h))
	if err := statusErr("fastly_secret_store.open", st); err != nil {
		if abi.Status(st) == abi.None {
			return nil, fmt.Errorf("%w %q: %w", ErrStoreNotFound, name, err)
		}
		return nil, err
	}
	return &SecretStore{name: name, h: h}, nil
}

// Secret is a secret handle; its value is read with Plaintext.
type Secret struct{ h uint32 }

// Get returns the secret called name. A missing one (status none) is
// ErrKeyNotFound.
func (s *SecretStore) Get(name string) (*Secret, error) {
	var h uint32
	st := secretStoreGet(s.h, strPtr(name), uint32(len(name)), unsafe.Pointer(&h))
	if err := statusErr("fastly_secret_store.get", st); err != nil {
		return nil, keyErr(name, err)
	}
	return &Secret{h: h}, nil
}

// SecretFromBytes makes a secret handle holding b (at most 64 KiB), for
// APIs that take a secret.
func SecretFromBytes(b []byte) (*Secret, error) {
	var h uint32
	var p unsafe.Pointer
	if len(b) > 0 {
		p = bytesPtr(b)
	}
	if err := statusErr("fastly_secret_store.from_bytes", secretStoreFromBytes(p, uint32(len(b)), unsafe.Pointer(&h))); err != nil {
		return nil, err
	}
	return &Secret{h: h}, nil
}

// Plaintext returns the secret's value.
func (s *Secret) Plaintext() ([]byte, error) {
	v, err := getString("fastly_secret_store.plaintext", func(b unsafe.Pointer, n uint32, w unsafe.Pointer) uint32 {
		return secretStorePlaintext(s.h, b, n, w)
	})
	return []byte(v), err
}
