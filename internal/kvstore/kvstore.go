// Package kvstore is edgehost's KV store backing: named stores of keys to
// values (with metadata, a generation and an optional expiry), kept in one
// bbolt database file under the host's data dir, so that what a guest
// writes survives a restart and a redeploy (README.md, "KV stores").
//
// Every write is one bbolt transaction: it is atomic per key, and
// concurrent writers (sandboxes, the admin API) are serialised by bbolt.
// A failed commit (a full disk) leaves the earlier value in place: bbolt
// writes new pages and switches the meta page last. Generations come from
// a per-store sequence, so each write of a key gets a larger one than the
// last. Expired entries are invisible at once and removed by the next
// write of their key or by Sweep.
package kvstore

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"
)

// Limits, as Fastly documents them for its KV stores (README.md, "KV
// stores"): keys of 1 to 1024 bytes of UTF-8, values of at most 25 MiB,
// metadata of at most 2000 bytes (the buffer Fastly's Go SDK passes to
// lookup_wait_v2).
const (
	MaxKeyLen      = 1024
	MaxValueLen    = 25 << 20
	MaxMetadataLen = 2000
	// DefaultListLimit is the page size of List when none is given, and
	// MaxListLimit the largest one allowed (as Fastly's KV API).
	DefaultListLimit = 1000
	MaxListLimit     = 1000
)

// Errors of the store operations. The hostcalls map them onto kv_error
// values (abi/README.md, "fastly_kv_store").
var (
	ErrNoStore            = errors.New("kvstore: no such store")
	ErrNotFound           = errors.New("kvstore: key not found")
	ErrPreconditionFailed = errors.New("kvstore: precondition failed")
	ErrTooLarge           = errors.New("kvstore: payload too large")
	ErrBadKey             = errors.New("kvstore: invalid key")
	ErrBadCursor          = errors.New("kvstore: invalid list cursor")
	// ErrUnavailable: the backend's storage cannot be reached (a fleet
	// node cut off from NATS); nothing was read or written.
	ErrUnavailable = errors.New("kvstore: storage unavailable")
)

// Mode is how Insert combines a value with the one stored (the ABI's
// kv_insert_mode).
type Mode uint32

// The insert modes.
const (
	Overwrite Mode = 0 // replace any value
	Add       Mode = 1 // write only when the key is absent (else ErrPreconditionFailed)
	Append    Mode = 2 // add the value after the stored one
	Prepend   Mode = 3 // add the value before the stored one
)

// Entry is one stored value.
type Entry struct {
	Value    []byte
	Metadata []byte
	// Generation is the store's write counter at this entry's last
	// write: larger for every later write of any key of the store.
	Generation uint64
	// Expires is when the entry stops being visible; zero means never.
	Expires time.Time
}

// InsertOptions are the options of one Insert.
type InsertOptions struct {
	Mode Mode
	// Metadata replaces the entry's metadata; nil writes none.
	Metadata []byte
	// TTL, when positive, makes the entry expire that long after the
	// write; zero means it never expires.
	TTL time.Duration
	// IfGeneration, when set, makes the write fail with
	// ErrPreconditionFailed unless the key exists with that generation.
	IfGeneration *uint64
}

// StoreInfo describes one store: its name, live keys and their bytes
// (values plus metadata).
type StoreInfo struct {
	Name  string `json:"name"`
	Keys  int    `json:"keys"`
	Bytes int64  `json:"bytes"`
}

// Seed is a key a manifest declares with its contents.
type Seed struct {
	Key      string
	Value    []byte
	Metadata []byte
}

// Backend is what keeps a host's KV stores: a DB (one bbolt file in the
// data dir, the default) or, in fleet mode, JetStream KV buckets shared
// by every node (internal/fleet; README.md, "Fleet"). The methods are
// those of DB, with DB's errors; a backend that cannot reach its storage
// returns an error wrapping ErrUnavailable, which the hostcalls report as
// an internal kv_error (abi/README.md, "fastly_kv_store"). Implementations
// are safe for concurrent use.
type Backend interface {
	Declare(store string, seeds []Seed) error
	Exists(store string) bool
	Lookup(store, key string) (Entry, error)
	Insert(store, key string, value []byte, opts InsertOptions) (uint64, error)
	Delete(store, key string) error
	List(store, prefix, cursor string, limit int) (Page, error)
	Stores() ([]StoreInfo, error)
}

var _ Backend = (*DB)(nil)

// DB is the KV database of one host. It is safe for concurrent use.
type DB struct {
	db  *bolt.DB
	now func() time.Time
}

// Bucket layout: stores/<name>/{items, seeds}. items maps a key to its
// encoded entry; seeds maps a key to the digest of the manifest entry last
// written for it, so a manifest entry is written again only when it
// changes.
var (
	bucketStores = []byte("stores")
	bucketItems  = []byte("items")
	bucketSeeds  = []byte("seeds")
)

// FileName is the database's file name inside the data dir.
const FileName = "kv.db"

// Open opens (creating it) the database in dir. A database another
// process holds open is an error after timeout (0 waits 1 s). Errors: the
// directory or file cannot be made or read.
func Open(dir string, timeout time.Duration) (*DB, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("kvstore: %w", err)
	}
	if timeout <= 0 {
		timeout = time.Second
	}
	path := filepath.Join(dir, FileName)
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("kvstore: %s is in use by another edgehost process (set --data-dir)", path)
	}
	if err != nil {
		return nil, fmt.Errorf("kvstore: open %s: %w", path, err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketStores)
		return err
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("kvstore: %w", err)
	}
	// Concurrent inserts share a commit when they arrive within this
	// long of each other; a lone insert waits no more than that.
	db.MaxBatchDelay = 200 * time.Microsecond
	return &DB{db: db, now: time.Now}, nil
}

// Close closes the database file.
func (d *DB) Close() error { return d.db.Close() }

// Path is the database file's path.
func (d *DB) Path() string { return d.db.Path() }

// ValidKey checks a key against Fastly's key rules (README.md, "KV
// stores"): 1 to 1024 bytes of valid UTF-8, no CR or LF, not "." or "..",
// not starting with ".well-known/acme-challenge/", and a key of one
// character not a control character, space, U+FFFE or U+FFFF. Errors wrap ErrBadKey
// (or ErrTooLarge for a key over 1024 bytes).
func ValidKey(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("%w: empty key", ErrBadKey)
	case len(key) > MaxKeyLen:
		return fmt.Errorf("%w: key of %d bytes (at most %d): %w", ErrBadKey, len(key), MaxKeyLen, ErrTooLarge)
	case !utf8.ValidString(key):
		return fmt.Errorf("%w: key is not valid UTF-8", ErrBadKey)
	case strings.ContainsAny(key, "\r\n"):
		return fmt.Errorf("%w: key holds a CR or LF", ErrBadKey)
	case key == "." || key == "..":
		return fmt.Errorf("%w: key %q", ErrBadKey, key)
	case strings.HasPrefix(key, ".well-known/acme-challenge/"):
		return fmt.Errorf("%w: key starts with .well-known/acme-challenge/", ErrBadKey)
	}
	if r, n := utf8.DecodeRuneInString(key); n == len(key) && (r <= 0x20 || r == 0xFFFE || r == 0xFFFF) {
		return fmt.Errorf("%w: a one-character key must not be U+%04X", ErrBadKey, r)
	}
	return nil
}

// Declare makes sure store exists and writes every seed whose contents
// differ from the ones last written from a manifest (a first start writes
// them all; a value a guest or the admin API wrote since stays unless the
// manifest's entry for it changes). Errors: a seed's key is invalid, or
// the write fails.
func (d *DB) Declare(store string, seeds []Seed) error {
	if store == "" {
		return fmt.Errorf("kvstore: empty store name")
	}
	for _, s := range seeds {
		if err := ValidKey(s.Key); err != nil {
			return fmt.Errorf("kvstore: store %q: %w", store, err)
		}
	}
	err := d.db.Update(func(tx *bolt.Tx) error {
		sb, err := tx.Bucket(bucketStores).CreateBucketIfNotExists([]byte(store))
		if err != nil {
			return err
		}
		items, err := sb.CreateBucketIfNotExists(bucketItems)
		if err != nil {
			return err
		}
		seedsB, err := sb.CreateBucketIfNotExists(bucketSeeds)
		if err != nil {
			return err
		}
		for _, s := range seeds {
			digest := seedDigest(s)
			if bytes.Equal(seedsB.Get([]byte(s.Key)), digest) {
				continue
			}
			gen, err := items.NextSequence()
			if err != nil {
				return err
			}
			if err := items.Put([]byte(s.Key), encode(Entry{Value: s.Value, Metadata: s.Metadata, Generation: gen})); err != nil {
				return err
			}
			if err := seedsB.Put([]byte(s.Key), digest); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("kvstore: store %q: %w", store, err)
	}
	return nil
}

func seedDigest(s Seed) []byte {
	var b []byte
	b = binary.AppendUvarint(b, uint64(len(s.Value)))
	b = append(b, s.Value...)
	b = append(b, s.Metadata...)
	if len(b) > 64 {
		// Keep digests short; collisions only cost a missed re-seed.
		h := fnv64(b)
		return binary.BigEndian.AppendUint64(nil, h)
	}
	return b
}

func fnv64(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
}

// Exists reports whether store exists.
func (d *DB) Exists(store string) bool {
	found := false
	_ = d.db.View(func(tx *bolt.Tx) error {
		found = tx.Bucket(bucketStores).Bucket([]byte(store)) != nil
		return nil
	})
	return found
}

func itemsOf(tx *bolt.Tx, store string) (*bolt.Bucket, error) {
	sb := tx.Bucket(bucketStores).Bucket([]byte(store))
	if sb == nil {
		return nil, fmt.Errorf("%w: %q", ErrNoStore, store)
	}
	return sb.Bucket(bucketItems), nil
}

// Lookup returns the live entry of key. Errors: ErrNoStore, ErrNotFound
// (also for an expired entry), ErrBadKey.
func (d *DB) Lookup(store, key string) (Entry, error) {
	if err := ValidKey(key); err != nil {
		return Entry{}, err
	}
	var e Entry
	now := d.now()
	err := d.db.View(func(tx *bolt.Tx) error {
		items, err := itemsOf(tx, store)
		if err != nil {
			return err
		}
		raw := items.Get([]byte(key))
		if raw == nil {
			return ErrNotFound
		}
		dec, live, err := decode(raw, now, true)
		if err != nil {
			return err
		}
		if !live {
			return ErrNotFound
		}
		e = dec.Entry
		return nil
	})
	return e, err
}

// Insert writes value under key as opts say and returns the entry's new
// generation. Errors: ErrNoStore, ErrBadKey, ErrTooLarge (a value, the
// combined value of an append or prepend, or metadata over the limits),
// ErrPreconditionFailed (Add of a live key; IfGeneration not matching or
// the key absent), or the database's error (a full disk), in which case
// nothing changed.
func (d *DB) Insert(store, key string, value []byte, opts InsertOptions) (uint64, error) {
	if err := ValidKey(key); err != nil {
		return 0, err
	}
	if opts.Mode > Prepend {
		return 0, fmt.Errorf("kvstore: unknown insert mode %d", opts.Mode)
	}
	if len(value) > MaxValueLen {
		return 0, fmt.Errorf("%w: value of %d bytes (at most %d)", ErrTooLarge, len(value), MaxValueLen)
	}
	if len(opts.Metadata) > MaxMetadataLen {
		return 0, fmt.Errorf("%w: metadata of %d bytes (at most %d)", ErrTooLarge, len(opts.Metadata), MaxMetadataLen)
	}
	var gen uint64
	// Batch lets concurrent inserts share a commit (and its fsync); fn
	// may run more than once, so it derives everything from the tx.
	err := d.db.Batch(func(tx *bolt.Tx) error {
		items, err := itemsOf(tx, store)
		if err != nil {
			return err
		}
		now := d.now()
		var old decoded
		live := false
		if raw := items.Get([]byte(key)); raw != nil {
			if old, live, err = decode(raw, now, true); err != nil {
				return err
			}
		}
		if opts.IfGeneration != nil && (!live || old.Generation != *opts.IfGeneration) {
			return ErrPreconditionFailed
		}
		v := value
		switch opts.Mode {
		case Add:
			if live {
				return ErrPreconditionFailed
			}
		case Append, Prepend:
			if live {
				if len(old.Value)+len(value) > MaxValueLen {
					return fmt.Errorf("%w: the combined value would be %d bytes (at most %d)", ErrTooLarge, len(old.Value)+len(value), MaxValueLen)
				}
				v = make([]byte, 0, len(old.Value)+len(value))
				if opts.Mode == Append {
					v = append(append(v, old.Value...), value...)
				} else {
					v = append(append(v, value...), old.Value...)
				}
			}
		}
		g, err := items.NextSequence()
		if err != nil {
			return err
		}
		e := Entry{Value: v, Metadata: opts.Metadata, Generation: g}
		if opts.TTL > 0 {
			e.Expires = now.Add(opts.TTL)
		}
		if err := items.Put([]byte(key), encode(e)); err != nil {
			return err
		}
		gen = g
		return nil
	})
	if err != nil {
		return 0, err
	}
	return gen, nil
}

// Delete removes key. Errors: ErrNoStore, ErrBadKey, ErrNotFound when
// there was no live entry, or the database's error.
func (d *DB) Delete(store, key string) error {
	if err := ValidKey(key); err != nil {
		return err
	}
	return d.db.Batch(func(tx *bolt.Tx) error {
		items, err := itemsOf(tx, store)
		if err != nil {
			return err
		}
		raw := items.Get([]byte(key))
		if raw == nil {
			return ErrNotFound
		}
		_, live, err := decode(raw, d.now(), false)
		if err != nil {
			return err
		}
		if err := items.Delete([]byte(key)); err != nil {
			return err
		}
		if !live {
			return ErrNotFound
		}
		return nil
	})
}

// Page is one page of List: keys in byte order and the cursor of the
// next page ("" on the last).
type Page struct {
	Keys       []string
	NextCursor string
	Limit      int
}

// List returns up to limit live keys with prefix, after cursor (a
// NextCursor of an earlier page, "" to start). limit 0 means
// DefaultListLimit. Errors: ErrNoStore, ErrBadCursor, a limit over
// MaxListLimit.
func (d *DB) List(store, prefix, cursor string, limit int) (Page, error) {
	if limit == 0 {
		limit = DefaultListLimit
	}
	if limit < 0 || limit > MaxListLimit {
		return Page{}, fmt.Errorf("kvstore: list limit %d outside 1..%d", limit, MaxListLimit)
	}
	after := ""
	if cursor != "" {
		b, err := base64.RawURLEncoding.DecodeString(cursor)
		if err != nil || !utf8.Valid(b) {
			return Page{}, ErrBadCursor
		}
		after = string(b)
	}
	p := Page{Keys: []string{}, Limit: limit}
	now := d.now()
	err := d.db.View(func(tx *bolt.Tx) error {
		items, err := itemsOf(tx, store)
		if err != nil {
			return err
		}
		c := items.Cursor()
		var k, v []byte
		switch {
		case after != "" && after >= prefix:
			k, v = c.Seek([]byte(after))
			if k != nil && string(k) == after {
				k, v = c.Next()
			}
		default:
			k, v = c.Seek([]byte(prefix))
		}
		for ; k != nil && bytes.HasPrefix(k, []byte(prefix)); k, v = c.Next() {
			_, live, err := decode(v, now, false)
			if err != nil {
				return err
			}
			if !live {
				continue
			}
			if len(p.Keys) == limit {
				p.NextCursor = base64.RawURLEncoding.EncodeToString([]byte(p.Keys[len(p.Keys)-1]))
				return nil
			}
			p.Keys = append(p.Keys, string(k))
		}
		return nil
	})
	return p, err
}

// Stores describes every store in the database, by name.
func (d *DB) Stores() ([]StoreInfo, error) {
	var out []StoreInfo
	now := d.now()
	err := d.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketStores).ForEachBucket(func(name []byte) error {
			info := StoreInfo{Name: string(name)}
			items := tx.Bucket(bucketStores).Bucket(name).Bucket(bucketItems)
			err := items.ForEach(func(k, v []byte) error {
				e, live, err := decode(v, now, false)
				if err != nil || !live {
					return err
				}
				info.Keys++
				info.Bytes += int64(e.valueLen + len(e.Metadata))
				return nil
			})
			out = append(out, info)
			return err
		})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, err
}

// Sweep removes expired entries of every store and reports how many.
func (d *DB) Sweep() (int, error) {
	n := 0
	now := d.now()
	err := d.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketStores).ForEachBucket(func(name []byte) error {
			items := tx.Bucket(bucketStores).Bucket(name).Bucket(bucketItems)
			var dead [][]byte
			if err := items.ForEach(func(k, v []byte) error {
				if _, live, err := decode(v, now, false); err == nil && !live {
					dead = append(dead, append([]byte(nil), k...))
				}
				return nil
			}); err != nil {
				return err
			}
			for _, k := range dead {
				if err := items.Delete(k); err != nil {
					return err
				}
				n++
			}
			return nil
		})
	})
	return n, err
}

// Entry encoding: version byte 1, generation u64, expiry unix ns i64 (0
// none), metadata length u32, metadata, value.
const headerLen = 1 + 8 + 8 + 4

func encode(e Entry) []byte {
	b := make([]byte, headerLen, headerLen+len(e.Metadata)+len(e.Value))
	b[0] = 1
	binary.BigEndian.PutUint64(b[1:], e.Generation)
	var exp int64
	if !e.Expires.IsZero() {
		exp = e.Expires.UnixNano()
	}
	binary.BigEndian.PutUint64(b[9:], uint64(exp))
	binary.BigEndian.PutUint32(b[17:], uint32(len(e.Metadata)))
	b = append(b, e.Metadata...)
	return append(b, e.Value...)
}

// decoded is an entry with its value's length known even when the value
// was not copied.
type decoded struct {
	Entry
	valueLen int
}

// decode reads an entry; copyValue copies the value and metadata out of
// the transaction's memory (bbolt's slices are valid only inside it).
func decode(raw []byte, now time.Time, copyValue bool) (decoded, bool, error) {
	if len(raw) < headerLen || raw[0] != 1 {
		return decoded{}, false, errors.New("kvstore: corrupt entry")
	}
	var e decoded
	e.Generation = binary.BigEndian.Uint64(raw[1:])
	if exp := int64(binary.BigEndian.Uint64(raw[9:])); exp != 0 {
		e.Expires = time.Unix(0, exp)
	}
	ml := int(binary.BigEndian.Uint32(raw[17:]))
	if headerLen+ml > len(raw) {
		return decoded{}, false, errors.New("kvstore: corrupt entry")
	}
	meta, val := raw[headerLen:headerLen+ml], raw[headerLen+ml:]
	e.valueLen = len(val)
	if copyValue {
		e.Value = append([]byte{}, val...)
		if ml > 0 {
			e.Metadata = append([]byte(nil), meta...)
		}
	} else {
		e.Metadata = meta
	}
	live := e.Expires.IsZero() || now.Before(e.Expires)
	return e, live, nil
}
