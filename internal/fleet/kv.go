package fleet

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/edgehost/edgehost/internal/kvstore"
)

// KV is the fleet's kvstore.Backend: each guest KV store is the JetStream
// KV bucket edgehost_kv_HEX (HEX: the store name in hex), shared by every
// node, so a value one node writes is read on every other (README.md,
// "Fleet"). A generation is the entry's revision in its bucket (larger
// for every later write of the bucket, as kvstore documents). Keys are
// stored base64url-encoded under k., manifest seed digests under s.; a
// value carries its metadata and expiry in a small header.
//
// Differences from the local store: a value must fit in one NATS message
// (the server's max_payload, 1 MiB by default) with its header, else
// ErrTooLarge; while the node is cut off from NATS every call fails with
// kvstore.ErrUnavailable (reads included: no stale value is served, no
// write is accepted to be lost).
type KV struct {
	f *Fleet

	mu      sync.Mutex
	pending map[string][]kvstore.Seed // declared while cut off, by store
}

var _ kvstore.Backend = (*KV)(nil)

// KV returns the fleet's KV backend (one per Fleet).
func (f *Fleet) KV() *KV { return f.kv }

func kvBucketName(store string) string { return kvPrefix + hex.EncodeToString([]byte(store)) }

func itemKey(key string) string { return "k." + base64.RawURLEncoding.EncodeToString([]byte(key)) }
func seedKey(key string) string { return "s." + base64.RawURLEncoding.EncodeToString([]byte(key)) }

// kvErr maps a fleet failure onto kvstore's errors.
func kvErr(err error) error {
	if errors.Is(err, ErrUnavailable) {
		return fmt.Errorf("%w: %w", kvstore.ErrUnavailable, err)
	}
	return err
}

func (k *KV) op() (context.Context, context.CancelFunc, error) {
	ctx, cancel, err := k.f.op(context.Background())
	return ctx, cancel, kvErr(err)
}

func (k *KV) items(ctx context.Context, store string) (jetstream.KeyValue, error) {
	k.mu.Lock()
	seeds, pending := k.pending[store]
	k.mu.Unlock()
	if pending {
		if err := k.declare(ctx, store, seeds); err != nil {
			return nil, err
		}
		k.mu.Lock()
		delete(k.pending, store)
		k.mu.Unlock()
	}
	kv, err := k.f.existingBucket(ctx, kvBucketName(store))
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, fmt.Errorf("%w: %q", kvstore.ErrNoStore, store)
	}
	return kv, kvErr(err)
}

// Entry header: version byte 1, expiry unix ns i64 (0 none), metadata
// length u32, metadata, value.
const kvHeader = 1 + 8 + 4

func encodeEntry(value, meta []byte, expires time.Time) []byte {
	b := make([]byte, kvHeader, kvHeader+len(meta)+len(value))
	b[0] = 1
	if !expires.IsZero() {
		binary.BigEndian.PutUint64(b[1:], uint64(expires.UnixNano()))
	}
	binary.BigEndian.PutUint32(b[9:], uint32(len(meta)))
	return append(append(b, meta...), value...)
}

// decodeEntry decodes e; live is false for an expired entry.
func decodeEntry(e jetstream.KeyValueEntry, now time.Time) (kvstore.Entry, bool, error) {
	b := e.Value()
	if len(b) < kvHeader || b[0] != 1 {
		return kvstore.Entry{}, false, fmt.Errorf("kvstore: fleet entry of %d bytes unreadable", len(b))
	}
	out := kvstore.Entry{Generation: e.Revision()}
	if ns := int64(binary.BigEndian.Uint64(b[1:])); ns != 0 {
		out.Expires = time.Unix(0, ns)
	}
	ml := int(binary.BigEndian.Uint32(b[9:]))
	if kvHeader+ml > len(b) {
		return kvstore.Entry{}, false, fmt.Errorf("kvstore: fleet entry metadata length %d unreadable", ml)
	}
	if ml > 0 {
		out.Metadata = append([]byte(nil), b[kvHeader:kvHeader+ml]...)
	}
	out.Value = append([]byte{}, b[kvHeader+ml:]...)
	return out, out.Expires.IsZero() || now.Before(out.Expires), nil
}

// get returns key's entry, its revision and whether it is live; found is
// false when the key is absent or deleted.
func get(ctx context.Context, kv jetstream.KeyValue, key string) (e kvstore.Entry, rev uint64, found, live bool, err error) {
	je, err := kv.Get(ctx, itemKey(key))
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return kvstore.Entry{}, 0, false, false, nil
	}
	if err != nil {
		return kvstore.Entry{}, 0, false, false, kvErr(unavailable(err))
	}
	e, live, err = decodeEntry(je, time.Now())
	return e, je.Revision(), true, live, err
}

// Declare makes store's bucket and writes every seed whose contents
// differ from the ones a manifest last wrote (as kvstore.DB.Declare).
// While the node is cut off from NATS it succeeds without writing: the
// store is declared at its first call once the link is back (until then
// its calls fail with kvstore.ErrUnavailable), so a node started while
// NATS is down still loads its last version.
func (k *KV) Declare(store string, seeds []kvstore.Seed) error {
	if store == "" {
		return errors.New("kvstore: empty store name")
	}
	for _, s := range seeds {
		if err := kvstore.ValidKey(s.Key); err != nil {
			return fmt.Errorf("kvstore: store %q: %w", store, err)
		}
	}
	ctx, cancel, err := k.op()
	if err == nil {
		defer cancel()
		err = k.declare(ctx, store, seeds)
	}
	if errors.Is(err, kvstore.ErrUnavailable) {
		k.mu.Lock()
		k.pending[store] = seeds
		k.mu.Unlock()
		return nil
	}
	return err
}

func (k *KV) declare(ctx context.Context, store string, seeds []kvstore.Seed) error {
	kv, err := k.f.bucket(ctx, kvBucketName(store), 1)
	if err != nil {
		return fmt.Errorf("kvstore: store %q: %w", store, kvErr(err))
	}
	for _, s := range seeds {
		digest := seedDigest(s)
		if e, err := kv.Get(ctx, seedKey(s.Key)); err == nil && string(e.Value()) == digest {
			continue
		}
		if _, err := kv.Put(ctx, itemKey(s.Key), encodeEntry(s.Value, s.Metadata, time.Time{})); err != nil {
			return fmt.Errorf("kvstore: store %q: %w", store, kvErr(unavailable(err)))
		}
		if _, err := kv.Put(ctx, seedKey(s.Key), []byte(digest)); err != nil {
			return fmt.Errorf("kvstore: store %q: %w", store, kvErr(unavailable(err)))
		}
	}
	return nil
}

func seedDigest(s kvstore.Seed) string {
	var b []byte
	b = binary.AppendUvarint(b, uint64(len(s.Value)))
	b = append(b, s.Value...)
	b = append(b, s.Metadata...)
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return fmt.Sprintf("%016x", h)
}

// Exists reports whether store's bucket exists (false when NATS cannot
// say).
func (k *KV) Exists(store string) bool {
	ctx, cancel, err := k.op()
	if err != nil {
		return false
	}
	defer cancel()
	_, err = k.items(ctx, store)
	return err == nil
}

// Lookup returns key's live entry. Errors: as kvstore.DB.Lookup, and
// kvstore.ErrUnavailable.
func (k *KV) Lookup(store, key string) (kvstore.Entry, error) {
	if err := kvstore.ValidKey(key); err != nil {
		return kvstore.Entry{}, err
	}
	ctx, cancel, err := k.op()
	if err != nil {
		return kvstore.Entry{}, err
	}
	defer cancel()
	kv, err := k.items(ctx, store)
	if err != nil {
		return kvstore.Entry{}, err
	}
	e, _, found, live, err := get(ctx, kv, key)
	if err != nil {
		return kvstore.Entry{}, err
	}
	if !found || !live {
		return kvstore.Entry{}, kvstore.ErrNotFound
	}
	return e, nil
}

// Insert writes value under key as opts say, with compare-and-set on the
// key's revision for every mode but Overwrite, and returns the new
// generation. Errors: as kvstore.DB.Insert, and kvstore.ErrUnavailable
// (nothing was written, or NATS did not confirm the write).
func (k *KV) Insert(store, key string, value []byte, opts kvstore.InsertOptions) (uint64, error) {
	if err := kvstore.ValidKey(key); err != nil {
		return 0, err
	}
	if opts.Mode > kvstore.Prepend {
		return 0, fmt.Errorf("kvstore: unknown insert mode %d", opts.Mode)
	}
	if len(value) > kvstore.MaxValueLen {
		return 0, fmt.Errorf("%w: value of %d bytes (at most %d)", kvstore.ErrTooLarge, len(value), kvstore.MaxValueLen)
	}
	if len(opts.Metadata) > kvstore.MaxMetadataLen {
		return 0, fmt.Errorf("%w: metadata of %d bytes (at most %d)", kvstore.ErrTooLarge, len(opts.Metadata), kvstore.MaxMetadataLen)
	}
	ctx, cancel, err := k.op()
	if err != nil {
		return 0, err
	}
	defer cancel()
	kv, err := k.items(ctx, store)
	if err != nil {
		return 0, err
	}
	var expires time.Time
	if opts.TTL > 0 {
		expires = time.Now().Add(opts.TTL)
	}
	// The payload limit leaves room for the subject and headers.
	max := int(k.f.nc.MaxPayload()) - 1024
	for attempt := 0; attempt < 16; attempt++ {
		if opts.Mode == kvstore.Overwrite && opts.IfGeneration == nil {
			b := encodeEntry(value, opts.Metadata, expires)
			if len(b) > max {
				return 0, fmt.Errorf("%w: value of %d bytes over this fleet's NATS max_payload", kvstore.ErrTooLarge, len(value))
			}
			rev, err := kv.Put(ctx, itemKey(key), b)
			return rev, kvErr(unavailable(err))
		}
		old, rev, found, live, err := get(ctx, kv, key)
		if err != nil {
			return 0, err
		}
		if opts.IfGeneration != nil && (!live || old.Generation != *opts.IfGeneration) {
			return 0, kvstore.ErrPreconditionFailed
		}
		v := value
		switch opts.Mode {
		case kvstore.Add:
			if live {
				return 0, kvstore.ErrPreconditionFailed
			}
		case kvstore.Append, kvstore.Prepend:
			if live {
				if len(old.Value)+len(value) > kvstore.MaxValueLen {
					return 0, fmt.Errorf("%w: the combined value would be %d bytes (at most %d)", kvstore.ErrTooLarge, len(old.Value)+len(value), kvstore.MaxValueLen)
				}
				if opts.Mode == kvstore.Append {
					v = append(append([]byte{}, old.Value...), value...)
				} else {
					v = append(append([]byte{}, value...), old.Value...)
				}
			}
		}
		b := encodeEntry(v, opts.Metadata, expires)
		if len(b) > max {
			return 0, fmt.Errorf("%w: value of %d bytes over this fleet's NATS max_payload", kvstore.ErrTooLarge, len(v))
		}
		var nrev uint64
		if found {
			nrev, err = kv.Update(ctx, itemKey(key), b, rev)
		} else {
			nrev, err = kv.Create(ctx, itemKey(key), b)
		}
		if err == nil {
			return nrev, nil
		}
		if !isConflict(err) {
			return 0, kvErr(unavailable(err))
		}
		if opts.IfGeneration != nil {
			return 0, kvstore.ErrPreconditionFailed
		}
		// Another node wrote the key in between: read it again.
	}
	return 0, fmt.Errorf("kvstore: key %q: too many concurrent writers", key)
}

// Delete removes key (compare-and-set on its revision). Errors: as
// kvstore.DB.Delete, and kvstore.ErrUnavailable.
func (k *KV) Delete(store, key string) error {
	if err := kvstore.ValidKey(key); err != nil {
		return err
	}
	ctx, cancel, err := k.op()
	if err != nil {
		return err
	}
	defer cancel()
	kv, err := k.items(ctx, store)
	if err != nil {
		return err
	}
	_, rev, found, live, err := get(ctx, kv, key)
	if err != nil {
		return err
	}
	if !found {
		return kvstore.ErrNotFound
	}
	if err := kv.Delete(ctx, itemKey(key), jetstream.LastRevision(rev)); err != nil {
		if isConflict(err) {
			return k.Delete(store, key)
		}
		return kvErr(unavailable(err))
	}
	if !live {
		return kvstore.ErrNotFound
	}
	return nil
}

// keys returns store's keys (decoded, sorted) and its bucket.
func (k *KV) keys(ctx context.Context, store string) ([]string, jetstream.KeyValue, error) {
	kv, err := k.items(ctx, store)
	if err != nil {
		return nil, nil, err
	}
	raw, err := kv.Keys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, kv, nil
	}
	if err != nil {
		return nil, nil, kvErr(unavailable(err))
	}
	var out []string
	for _, r := range raw {
		enc, ok := strings.CutPrefix(r, "k.")
		if !ok {
			continue
		}
		if b, err := base64.RawURLEncoding.DecodeString(enc); err == nil {
			out = append(out, string(b))
		}
	}
	sort.Strings(out)
	return out, kv, nil
}

// List returns up to limit live keys with prefix after cursor, as
// kvstore.DB.List (its cursors are the same). Errors: as kvstore.DB.List,
// and kvstore.ErrUnavailable.
func (k *KV) List(store, prefix, cursor string, limit int) (kvstore.Page, error) {
	if limit == 0 {
		limit = kvstore.DefaultListLimit
	}
	if limit < 0 || limit > kvstore.MaxListLimit {
		return kvstore.Page{}, fmt.Errorf("kvstore: list limit %d outside 1..%d", limit, kvstore.MaxListLimit)
	}
	after := ""
	if cursor != "" {
		b, err := base64.RawURLEncoding.DecodeString(cursor)
		if err != nil || !utf8.Valid(b) {
			return kvstore.Page{}, kvstore.ErrBadCursor
		}
		after = string(b)
	}
	ctx, cancel, err := k.op()
	if err != nil {
		return kvstore.Page{}, err
	}
	defer cancel()
	keys, kv, err := k.keys(ctx, store)
	if err != nil {
		return kvstore.Page{}, err
	}
	p := kvstore.Page{Keys: []string{}, Limit: limit}
	for _, key := range keys {
		if !strings.HasPrefix(key, prefix) || after != "" && key <= after {
			continue
		}
		_, _, found, live, err := get(ctx, kv, key)
		if err != nil {
			return kvstore.Page{}, err
		}
		if !found || !live {
			continue
		}
		if len(p.Keys) == limit {
			p.NextCursor = base64.RawURLEncoding.EncodeToString([]byte(p.Keys[len(p.Keys)-1]))
			break
		}
		p.Keys = append(p.Keys, key)
	}
	return p, nil
}

// Stores describes every guest KV store of the fleet, by name. Errors:
// kvstore.ErrUnavailable.
func (k *KV) Stores() ([]kvstore.StoreInfo, error) {
	ctx, cancel, err := k.op()
	if err != nil {
		return nil, err
	}
	defer cancel()
	names := k.f.js.KeyValueStoreNames(ctx)
	var stores []string
	for n := range names.Name() {
		if h, ok := strings.CutPrefix(n, kvPrefix); ok {
			if b, err := hex.DecodeString(h); err == nil {
				stores = append(stores, string(b))
			}
		}
	}
	if err := names.Error(); err != nil {
		return nil, kvErr(unavailable(err))
	}
	sort.Strings(stores)
	out := []kvstore.StoreInfo{}
	for _, s := range stores {
		info := kvstore.StoreInfo{Name: s}
		keys, kv, err := k.keys(ctx, s)
		if err != nil {
			return nil, err
		}
		for _, key := range keys {
			e, _, found, live, err := get(ctx, kv, key)
			if err != nil {
				return nil, err
			}
			if found && live {
				info.Keys++
				info.Bytes += int64(len(e.Value) + len(e.Metadata))
			}
		}
		out = append(out, info)
	}
	return out, nil
}
