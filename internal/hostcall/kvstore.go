package hostcall

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"
	"unicode/utf8"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/internal/kvstore"
)

// fastly_kv_store over the host's KV database (internal/kvstore; abi/README.md,
// "fastly_kv_store"). Each operation runs to completion in the call that
// starts it (lookup, insert, delete, list), so its pending handle is ready
// at once for fastly_async_io; the *_wait call delivers the result and
// consumes the handle. Failures of the operation itself (a missing key, a
// precondition, a full disk) are kv_error values with status ok; bad
// arguments are statuses.

const (
	kvReservedBit      = 1 << 0
	kvInsertKnown      = abi.KVInsertBackgroundFetch | abi.KVInsertMetadata | abi.KVInsertTTL | abi.KVInsertIfGenerationMatch
	kvListKnown        = abi.KVListCursor | abi.KVListLimit | abi.KVListPrefix
	kvInsertConfigSize = abi.KVInsertConfigSize
	kvListConfigSize   = abi.KVListConfigSize
)

// kvStore is an open store handle.
type kvStore struct{ name string }

// kvResult is the outcome of one operation, waiting for its *_wait call.
type kvResult struct {
	kvErr abi.KVError
	entry kvstore.Entry
	list  []byte // list: the JSON page
}

// kvHandles are a session's KV handle tables, made on first use.
type kvHandles struct {
	stores  handles[*kvStore]
	lookups handles[*kvResult]
	inserts handles[*kvResult]
	deletes handles[*kvResult]
	lists   handles[*kvResult]
}

func (s *Session) kvh() *kvHandles {
	if s.kv == nil {
		s.kv = &kvHandles{
			stores:  newHandles[*kvStore](&s.next),
			lookups: newHandles[*kvResult](&s.next),
			inserts: newHandles[*kvResult](&s.next),
			deletes: newHandles[*kvResult](&s.next),
			lists:   newHandles[*kvResult](&s.next),
		}
	}
	return s.kv
}

// isKVPending reports whether h is a pending KV operation (an async item
// that is always ready: its work is done when the handle is made).
func (s *Session) isKVPending(h uint32) bool {
	if s.kv == nil {
		return false
	}
	for _, t := range []*handles[*kvResult]{&s.kv.lookups, &s.kv.inserts, &s.kv.deletes, &s.kv.lists} {
		if _, ok := t.lookup(h); ok {
			return true
		}
	}
	return false
}

// kvErrFor maps a kvstore error onto a kv_error (nil is ok).
func kvErrFor(err error) abi.KVError {
	switch {
	case err == nil:
		return abi.KVErrorOK
	case errors.Is(err, kvstore.ErrNotFound):
		return abi.KVErrorNotFound
	case errors.Is(err, kvstore.ErrPreconditionFailed):
		return abi.KVErrorPreconditionFailed
	case errors.Is(err, kvstore.ErrTooLarge):
		return abi.KVErrorPayloadTooLarge
	case errors.Is(err, kvstore.ErrBadCursor), errors.Is(err, kvstore.ErrBadKey):
		return abi.KVErrorBadRequest
	}
	return abi.KVErrorInternal
}

// kvKey checks a key the guest passed. Errors: inval for a key that is
// empty, over 1024 bytes, not UTF-8 or against Fastly's key rules
// (kvstore.ValidKey).
func kvKey(b []byte) (string, error) {
	if err := kvstore.ValidKey(string(b)); err != nil {
		return "", statusErr(abi.Inval, "%v", err)
	}
	return string(b), nil
}

// kvOpenStore returns the store of handle h. Errors: badf.
func (c *call) kvOpenStore(h uint32) (*kvStore, error) {
	return c.s.kvh().stores.get(h)
}

func (c *call) kvDB() (kvstore.Backend, error) {
	if c.s.env.kv == nil {
		return nil, statusErr(abi.Error, "this host has no KV database")
	}
	return c.s.env.kv, nil
}

// kvGuestStr reads a (ptr, len) string out of a config struct. Errors:
// inval for an empty one, one outside memory, or not UTF-8.
func (c *call) kvGuestStr(what string, ptr, n uint32, utf8Only bool) ([]byte, error) {
	if n == 0 {
		return nil, statusErr(abi.Inval, "%s flag set with an empty %s", what, what)
	}
	if n > maxStringLen {
		return nil, statusErr(abi.Inval, "%s of %d bytes", what, n)
	}
	b, ok := c.mem.Read(ptr, n)
	if !ok {
		return nil, statusErr(abi.Inval, "%s [%d, +%d) outside linear memory", what, ptr, n)
	}
	if utf8Only && !utf8.Valid(b) {
		return nil, statusErr(abi.Inval, "%s is not valid UTF-8", what)
	}
	return append([]byte(nil), b...), nil
}

func kvStoreImpls() []impl {
	return []impl{
		bindKVStoreOpen(func(c *call, a kvStoreOpenArgs) error {
			name := string(a.Name)
			if !c.s.env.kvNames[name] {
				// inval, as Viceroy answers: Fastly's SDKs read it as "no
				// such store".
				return statusErr(abi.Inval, "no KV store named %q", name)
			}
			return c.putU32(a.KVStoreOut, c.s.kvh().stores.add(&kvStore{name: name}))
		}),
		bindKVStoreLookup(func(c *call, a kvStoreLookupArgs) error {
			st, key, db, err := c.kvKeyCall("lookup", a.Store, a.Key, a.LookupConfigMask)
			if err != nil {
				return err
			}
			e, err := db.Lookup(st.name, key)
			// The value is held for the sandbox from here, so it counts
			// against its body buffer limit, as bytes it wrote would.
			if n := int64(len(e.Value)); c.s.bufferedLen+n > c.s.env.limits.MaxBufferedBodyBytes {
				return statusErr(abi.LimitExceeded, "sandbox body buffers over %d bytes", c.s.env.limits.MaxBufferedBodyBytes)
			}
			c.s.bufferedLen += int64(len(e.Value))
			r := &kvResult{kvErr: kvErrFor(err), entry: e}
			return c.putU32(a.HandleOut, c.s.kvh().lookups.add(r))
		}),
		bindKVStoreLookupWait(func(c *call, a kvStoreLookupWaitArgs) error {
			return c.kvLookupWait(kvStoreLookupWaitV2Args(a), false)
		}),
		bindKVStoreLookupWaitV2(func(c *call, a kvStoreLookupWaitV2Args) error { return c.kvLookupWait(a, true) }),
		bindKVStoreInsert(kvInsert),
		bindKVStoreInsertWait(func(c *call, a kvStoreInsertWaitArgs) error {
			return c.kvWaitStatus(&c.s.kvh().inserts, a)
		}),
		bindKVStoreDelete(func(c *call, a kvStoreDeleteArgs) error {
			st, key, db, err := c.kvKeyCall("delete", a.Store, a.Key, a.DeleteConfigMask)
			if err != nil {
				return err
			}
			r := &kvResult{kvErr: kvErrFor(db.Delete(st.name, key))}
			return c.putU32(a.HandleOut, c.s.kvh().deletes.add(r))
		}),
		bindKVStoreDeleteWait(func(c *call, a kvStoreDeleteWaitArgs) error {
			return c.kvWaitStatus(&c.s.kvh().deletes, a)
		}),
		bindKVStoreList(kvList),
		bindKVStoreListWait(func(c *call, a kvStoreListWaitArgs) error {
			t := &c.s.kvh().lists
			r, err := t.get(a.Handle)
			if err != nil {
				return err
			}
			t.remove(a.Handle)
			bh := abi.NoHandle
			if r.kvErr == abi.KVErrorOK {
				bh = c.s.bodies.add(newStreamBody(c.s, io.NopCloser(bytes.NewReader(r.list)), int64(len(r.list))))
			}
			if err := c.putU32(a.BodyHandleOut, bh); err != nil {
				return err
			}
			return c.putU32(a.KVErrorOut, uint32(r.kvErr))
		}),
	}
}

// kvLookupWait implements lookup_wait (v2 false: the generation is a u32,
// always 0, as the witx says of this deprecated form) and lookup_wait_v2;
// their bindings have checked every out-pointer (generation_out: 4 or 8
// bytes). When the metadata does not fit, it answers buflen with the
// needed length in nwritten and keeps the handle, so the guest can call
// again with a larger buffer.
func (c *call) kvLookupWait(a kvStoreLookupWaitV2Args, v2 bool) error {
	t := &c.s.kvh().lookups
	r, err := t.get(a.Handle)
	if err != nil {
		return err
	}
	if r.kvErr != abi.KVErrorOK {
		t.remove(a.Handle)
		if err := c.putU32(a.BodyHandleOut, abi.NoHandle); err != nil {
			return err
		}
		if err := c.putU32(a.MetadataBuf.NWritten, 0); err != nil {
			return err
		}
		return c.putU32(a.KVErrorOut, uint32(r.kvErr))
	}
	meta := r.entry.Metadata
	if uint32(len(meta)) > a.MetadataBuf.Cap {
		if err := c.putU32(a.MetadataBuf.NWritten, uint32(len(meta))); err != nil {
			return err
		}
		return statusErr(abi.Buflen, "metadata of %d bytes, buffer of %d", len(meta), a.MetadataBuf.Cap)
	}
	if len(meta) > 0 && !c.mem.Write(a.MetadataBuf.Ptr, meta) {
		return statusErr(abi.Inval, "metadata buffer %d outside linear memory", a.MetadataBuf.Ptr)
	}
	t.remove(a.Handle)
	v := r.entry.Value
	b := newBody(c.s) // the value's bytes are already counted (lookup)
	if len(v) > 0 {
		b.parts, b.knownLen = []bodyPart{{b: v}}, int64(len(v))
	}
	bh := c.s.bodies.add(b)
	if err := c.putU32(a.BodyHandleOut, bh); err != nil {
		return err
	}
	if err := c.putU32(a.MetadataBuf.NWritten, uint32(len(meta))); err != nil {
		return err
	}
	if v2 {
		err = c.putU64(a.GenerationOut, r.entry.Generation)
	} else {
		err = c.putU32(a.GenerationOut, 0)
	}
	if err != nil {
		return err
	}
	return c.putU32(a.KVErrorOut, uint32(abi.KVErrorOK))
}

// kvWaitStatus implements insert_wait and delete_wait over table t.
func (c *call) kvWaitStatus(t *handles[*kvResult], a kvStoreInsertWaitArgs) error {
	r, err := t.get(a.Handle)
	if err != nil {
		return err
	}
	t.remove(a.Handle)
	return c.putU32(a.KVErrorOut, uint32(r.kvErr))
}

// kvInsert implements insert. The body is consumed and read whole (at
// most kvstore.MaxValueLen bytes).
func kvInsert(c *call, a kvStoreInsertArgs) error {
	st, err := c.kvOpenStore(a.Store)
	if err != nil {
		return err
	}
	key, err := kvKey(a.Key)
	if err != nil {
		return err
	}
	b, err := c.s.bodies.get(a.BodyHandle)
	if err != nil {
		return err
	}
	if b.sink != nil {
		return statusErr(abi.Inval, "body %d is a streaming body", a.BodyHandle)
	}
	mask := a.InsertConfigMask
	if mask&kvReservedBit != 0 || mask&abi.KVInsertReserved2 != 0 || mask&^uint32(kvInsertKnown) != 0 {
		return statusErr(abi.Inval, "insert config mask %#x has reserved or unknown bits", mask)
	}
	var opts kvstore.InsertOptions
	cfg, ok := c.mem.Read(a.InsertConfiguration, kvInsertConfigSize)
	if !ok {
		return statusErr(abi.Inval, "insert config %d outside linear memory", a.InsertConfiguration)
	}
	opts.Mode = kvstore.Mode(binary.LittleEndian.Uint32(cfg[0:]))
	if opts.Mode > kvstore.Prepend {
		return statusErr(abi.Inval, "unknown insert mode %d", opts.Mode)
	}
	if mask&abi.KVInsertMetadata != 0 {
		meta, err := c.kvGuestStr("metadata", binary.LittleEndian.Uint32(cfg[8:]), binary.LittleEndian.Uint32(cfg[12:]), false)
		if err != nil {
			return err
		}
		opts.Metadata = meta
	}
	if mask&abi.KVInsertTTL != 0 {
		opts.TTL = time.Duration(binary.LittleEndian.Uint32(cfg[16:])) * time.Second
	}
	if mask&abi.KVInsertIfGenerationMatch != 0 {
		g := binary.LittleEndian.Uint64(cfg[24:])
		opts.IfGeneration = &g
	}
	// background_fetch asks Compute to return before the write has
	// reached every POP; on one host the write is done either way.
	db, err := c.kvDB()
	if err != nil {
		return err
	}
	c.s.bodies.remove(a.BodyHandle)
	r, _ := b.detach()
	value, rerr := io.ReadAll(io.LimitReader(r, kvstore.MaxValueLen+1))
	r.Close()
	res := &kvResult{}
	switch {
	case rerr != nil:
		res.kvErr = abi.KVErrorInternal
		c.s.logger().Debug("kv insert: reading the body failed", "store", st.name, "err", rerr)
	case len(value) > kvstore.MaxValueLen:
		res.kvErr = abi.KVErrorPayloadTooLarge
	default:
		_, err := db.Insert(st.name, key, value, opts)
		res.kvErr = kvErrFor(err)
		if res.kvErr == abi.KVErrorInternal {
			c.s.logger().Warn("kv insert failed", "store", st.name, "err", err)
		}
	}
	return c.putU32(a.HandleOut, c.s.kvh().inserts.add(res))
}

// kvListPage is the JSON body list_wait gives: the keys and the page's
// metadata, shaped as Fastly's KV API answers (and Viceroy).
type kvListPage struct {
	Data []string       `json:"data"`
	Meta kvListPageMeta `json:"meta"`
}

type kvListPageMeta struct {
	Limit      int    `json:"limit"`
	Prefix     string `json:"prefix,omitempty"`
	NextCursor string `json:"next_cursor,omitempty"`
	Mode       string `json:"mode,omitempty"`
}

// kvList implements list.
func kvList(c *call, a kvStoreListArgs) error {
	st, err := c.kvOpenStore(a.Store)
	if err != nil {
		return err
	}
	mask := a.ListConfigMask
	if mask&kvReservedBit != 0 || mask&^uint32(kvListKnown) != 0 {
		return statusErr(abi.Inval, "list config mask %#x has reserved or unknown bits", mask)
	}
	cfg, ok := c.mem.Read(a.ListConfiguration, kvListConfigSize)
	if !ok {
		return statusErr(abi.Inval, "list config %d outside linear memory", a.ListConfiguration)
	}
	mode := binary.LittleEndian.Uint32(cfg[0:])
	if mode > 1 {
		return statusErr(abi.Inval, "unknown list mode %d", mode)
	}
	var cursor, prefix []byte
	if mask&abi.KVListCursor != 0 {
		if cursor, err = c.kvGuestStr("cursor", binary.LittleEndian.Uint32(cfg[4:]), binary.LittleEndian.Uint32(cfg[8:]), true); err != nil {
			return err
		}
	}
	limit := 0
	if mask&abi.KVListLimit != 0 {
		l := binary.LittleEndian.Uint32(cfg[12:])
		if l == 0 || l > kvstore.MaxListLimit {
			return statusErr(abi.Inval, "list limit %d outside 1..%d", l, kvstore.MaxListLimit)
		}
		limit = int(l)
	}
	if mask&abi.KVListPrefix != 0 {
		if prefix, err = c.kvGuestStr("prefix", binary.LittleEndian.Uint32(cfg[16:]), binary.LittleEndian.Uint32(cfg[20:]), true); err != nil {
			return err
		}
	}
	db, err := c.kvDB()
	if err != nil {
		return err
	}
	res := &kvResult{}
	p, err := db.List(st.name, string(prefix), string(cursor), limit)
	if res.kvErr = kvErrFor(err); err == nil {
		page := kvListPage{Data: p.Keys, Meta: kvListPageMeta{Limit: p.Limit, Prefix: string(prefix), NextCursor: p.NextCursor, Mode: [2]string{"strong", "eventual"}[mode]}}
		if res.list, err = json.Marshal(page); err != nil {
			return fmt.Errorf("kv list: %w", err)
		}
	}
	return c.putU32(a.HandleOut, c.s.kvh().lists.add(res))
}

// KVStoreNames returns the names of the KV stores the env's guests may
// open, sorted.
func (e *Env) KVStoreNames() []string {
	names := make([]string, 0, len(e.kvNames))
	for n := range e.kvNames {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// kvKeyCall checks the arguments lookup and delete share (store handle,
// key, config mask): the store, the key and the database, or the status
// for bad input. op names the call in errors.
func (c *call) kvKeyCall(op string, store uint32, rawKey []byte, mask uint32) (*kvStore, string, kvstore.Backend, error) {
	st, err := c.kvOpenStore(store)
	if err != nil {
		return nil, "", nil, err
	}
	key, err := kvKey(rawKey)
	if err != nil {
		return nil, "", nil, err
	}
	if mask != 0 {
		return nil, "", nil, statusErr(abi.Inval, "%s config mask %#x: no options are defined", op, mask)
	}
	db, err := c.kvDB()
	if err != nil {
		return nil, "", nil, err
	}
	return st, key, db, nil
}
