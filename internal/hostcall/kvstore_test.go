package hostcall

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/internal/kvstore"
	"github.com/edgehost/edgehost/internal/secretstore"
)

// Handle kinds made only by the KV and secret helpers below; newHandle
// does not know them.
const (
	kindKVStore handleKind = 200 + iota
	kindKVLookup
	kindKVInsert
	kindKVDelete
	kindKVList
	kindSecretStore
	kindSecret
)

// testKVEnv adds a KV database with store "kvs" (keys "k" and "seeded" =
// "v", metadata "m" and "seeded-meta"; tests write and delete "k", never "seeded") and a secret store "secrets" (k = "s3cr3t") to cfg.
func testKVEnv(t testing.TB, cfg *EnvConfig) *kvstore.DB {
	t.Helper()
	db, err := kvstore.Open(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Declare("kvs", []kvstore.Seed{{Key: "k", Value: []byte("v"), Metadata: []byte("m")}, {Key: "seeded", Value: []byte("v"), Metadata: []byte("seeded-meta")}}); err != nil {
		t.Fatal(err)
	}
	cfg.KV, cfg.KVStores = db, []string{"kvs"}
	cfg.SecretStores = map[string]*secretstore.Store{
		"secrets": secretstore.NewStore("secrets", map[string]secretstore.Secret{"k": secretstore.New([]byte("s3cr3t"))}),
	}
	return db
}

func (h *harness) kvStore() uint32 {
	o := h.out()
	p, n := h.str("kvs")
	h.want(abi.OK, abi.ModuleKVStore, "open", p, n, o)
	return h.u32(o)
}

// kvConfig writes an insert (or list) config struct into guest memory.
func (h *harness) kvInsertConfig(mode uint32, meta string, ttl uint32, gen uint64) uint64 {
	p := h.aZ(abi.KVInsertConfigSize).v
	b := h.mem.b[p:]
	binary.LittleEndian.PutUint32(b[0:], mode)
	if meta != "" {
		mp, ml := h.str(meta)
		binary.LittleEndian.PutUint32(b[8:], uint32(mp))
		binary.LittleEndian.PutUint32(b[12:], uint32(ml))
	}
	binary.LittleEndian.PutUint32(b[16:], ttl)
	binary.LittleEndian.PutUint64(b[24:], gen)
	return p
}

func (h *harness) kvBody(s string) uint32 {
	b := h.newHandle(kindBody)
	p, n := h.str(s)
	h.want(abi.OK, abi.ModuleHTTPBody, "write", uint64(b), p, n, 0, h.out())
	return b
}

func (h *harness) aKV(k handleKind) arg {
	st := uint64(h.kvStore())
	o := h.out()
	kp, kl := h.str("k")
	switch k {
	case kindKVStore:
		return arg{v: st, kind: aHandle, hk: k}
	case kindKVLookup:
		sp, sl := h.str("seeded")
		h.want(abi.OK, abi.ModuleKVStore, "lookup", st, sp, sl, 0, 0, o)
	case kindKVInsert:
		h.want(abi.OK, abi.ModuleKVStore, "insert", st, kp, kl, uint64(h.kvBody("v")), 0, h.kvInsertConfig(0, "", 0, 0), o)
	case kindKVDelete:
		h.want(abi.OK, abi.ModuleKVStore, "delete", st, kp, kl, 0, 0, o)
	case kindKVList:
		h.want(abi.OK, abi.ModuleKVStore, "list", st, 0, h.aZ(abi.KVListConfigSize).v, o)
	}
	return arg{v: uint64(h.u32(o)), kind: aHandle, hk: k}
}

func (h *harness) aSecret(k handleKind) arg {
	o := h.out()
	p, n := h.str("secrets")
	h.want(abi.OK, abi.ModuleSecretStore, "open", p, n, o)
	if k == kindSecret {
		st := uint64(h.u32(o))
		kp, kl := h.str("k")
		h.want(abi.OK, abi.ModuleSecretStore, "get", st, kp, kl, o)
	}
	return arg{v: uint64(h.u32(o)), kind: aHandle, hk: k}
}

// kvConventionSpecs are the convention specs of the KV and secret store
// hostcalls (conventionSpecs adds them).
func kvConventionSpecs(add func(module, name string, want abi.Status, args func(h *harness) []arg)) {
	kv, ok := abi.ModuleKVStore, abi.OK
	add(kv, "open", ok, func(h *harness) []arg { return flat(h.aS("kvs"), h.u32o()) })
	add(kv, "lookup", ok, func(h *harness) []arg {
		return flat(h.aKV(kindKVStore), h.aS("k"), val(0), val(0), h.u32o())
	})
	add(kv, "lookup_wait", ok, func(h *harness) []arg {
		return flat(h.aKV(kindKVLookup), h.u32o(), h.aB(16), h.u32o(), h.u32o(), h.u32o())
	})
	add(kv, "lookup_wait_v2", ok, func(h *harness) []arg {
		return flat(h.aKV(kindKVLookup), h.u32o(), h.aB(16), h.u32o(), h.u64o(), h.u32o())
	})
	add(kv, "insert", ok, func(h *harness) []arg {
		return flat(h.aKV(kindKVStore), h.aS("k2"), h.aH(kindBody), val(0), h.aZ(abi.KVInsertConfigSize), h.u32o())
	})
	add(kv, "insert_wait", ok, func(h *harness) []arg { return flat(h.aKV(kindKVInsert), h.u32o()) })
	add(kv, "delete", ok, func(h *harness) []arg {
		return flat(h.aKV(kindKVStore), h.aS("k"), val(0), val(0), h.u32o())
	})
	add(kv, "delete_wait", ok, func(h *harness) []arg { return flat(h.aKV(kindKVDelete), h.u32o()) })
	add(kv, "list", ok, func(h *harness) []arg {
		return flat(h.aKV(kindKVStore), val(0), h.aZ(abi.KVListConfigSize), h.u32o())
	})
	add(kv, "list_wait", ok, func(h *harness) []arg { return flat(h.aKV(kindKVList), h.u32o(), h.u32o()) })

	ss := abi.ModuleSecretStore
	add(ss, "open", ok, func(h *harness) []arg { return flat(h.aS("secrets"), h.u32o()) })
	add(ss, "get", ok, func(h *harness) []arg { return flat(h.aSecret(kindSecretStore), h.aS("k"), h.u32o()) })
	add(ss, "plaintext", ok, func(h *harness) []arg { return flat(h.aSecret(kindSecret), h.aB(16), h.u32o()) })
	add(ss, "from_bytes", ok, func(h *harness) []arg { return flat(h.aS("bytes"), h.u32o()) })
}

func newKVHarness(t *testing.T) (*harness, *kvstore.DB) {
	var cfg EnvConfig
	db := testKVEnv(t, &cfg)
	return newHarness(t, harnessOpts{envCfg: cfg}), db
}

// kvWait runs lookup_wait_v2 on handle l and returns the value, metadata,
// generation and kv_error.
func (h *harness) kvLookupWait(l uint32) (string, string, uint64, abi.KVError) {
	h.t.Helper()
	bo, nw, gen, ke := h.out(), h.out(), h.out(), h.out()
	buf := h.alloc(64)
	h.want(abi.OK, abi.ModuleKVStore, "lookup_wait_v2", uint64(l), bo, uint64(buf), 64, nw, gen, ke)
	kerr := abi.KVError(h.u32(ke))
	if kerr != abi.KVErrorOK {
		return "", "", 0, kerr
	}
	return h.readBody(h.u32(bo), 7), string(h.mem.b[buf : buf+h.u32(nw)]), binary.LittleEndian.Uint64(h.mem.b[gen:]), kerr
}

func (h *harness) kvLookup(st uint32, key string) (string, string, uint64, abi.KVError) {
	h.t.Helper()
	o := h.out()
	kp, kl := h.str(key)
	h.want(abi.OK, abi.ModuleKVStore, "lookup", uint64(st), kp, kl, 0, 0, o)
	return h.kvLookupWait(h.u32(o))
}

func (h *harness) kvInsert(st uint32, key, value string, mask uint32, cfg uint64) abi.KVError {
	h.t.Helper()
	o, ke := h.out(), h.out()
	kp, kl := h.str(key)
	h.want(abi.OK, abi.ModuleKVStore, "insert", uint64(st), kp, kl, uint64(h.kvBody(value)), uint64(mask), cfg, o)
	h.want(abi.OK, abi.ModuleKVStore, "insert_wait", uint64(h.u32(o)), ke)
	return abi.KVError(h.u32(ke))
}

func TestKVHostcalls(t *testing.T) {
	h, _ := newKVHarness(t)
	st := h.kvStore()
	if v, m, g, e := h.kvLookup(st, "k"); v != "v" || m != "m" || g == 0 || e != abi.KVErrorOK {
		t.Fatalf("seeded k = %q %q %d %d", v, m, g, e)
	}
	if _, _, _, e := h.kvLookup(st, "absent"); e != abi.KVErrorNotFound {
		t.Fatalf("absent key: kv_error %d", e)
	}
	if e := h.kvInsert(st, "k", "-more", 0, h.kvInsertConfig(abi.KVInsertAppend, "", 0, 0)); e != abi.KVErrorOK {
		t.Fatalf("append: %d", e)
	}
	v, m, g, _ := h.kvLookup(st, "k")
	if v != "v-more" || m != "" {
		t.Fatalf("after append: %q %q (metadata is replaced by each write, as in Viceroy)", v, m)
	}
	if e := h.kvInsert(st, "k", "pre-", abi.KVInsertMetadata, h.kvInsertConfig(abi.KVInsertPrepend, "meta2", 0, 0)); e != abi.KVErrorOK {
		t.Fatalf("prepend: %d", e)
	}
	if e := h.kvInsert(st, "k", "x", 0, h.kvInsertConfig(abi.KVInsertAdd, "", 0, 0)); e != abi.KVErrorPreconditionFailed {
		t.Fatalf("add of an existing key: %d", e)
	}
	if e := h.kvInsert(st, "k", "x", abi.KVInsertIfGenerationMatch, h.kvInsertConfig(0, "", 0, g)); e != abi.KVErrorPreconditionFailed {
		t.Fatalf("stale generation: %d", e)
	}
	v, m, g2, _ := h.kvLookup(st, "k")
	if v != "pre-v-more" || m != "meta2" || g2 <= g {
		t.Fatalf("after prepend: %q %q gen %d (before %d)", v, m, g2, g)
	}
	if e := h.kvInsert(st, "k", "cas", abi.KVInsertIfGenerationMatch|abi.KVInsertBackgroundFetch, h.kvInsertConfig(0, "", 0, g2)); e != abi.KVErrorOK {
		t.Fatalf("matching generation: %d", e)
	}

	// delete, then delete again: not found.
	for i, want := range []abi.KVError{abi.KVErrorOK, abi.KVErrorNotFound} {
		o, ke := h.out(), h.out()
		kp, kl := h.str("k")
		h.want(abi.OK, abi.ModuleKVStore, "delete", uint64(st), kp, kl, 0, 0, o)
		h.want(abi.OK, abi.ModuleKVStore, "delete_wait", uint64(h.u32(o)), ke)
		if got := abi.KVError(h.u32(ke)); got != want {
			t.Fatalf("delete %d: kv_error %d, want %d", i, got, want)
		}
	}
}

func TestKVList(t *testing.T) {
	h, _ := newKVHarness(t)
	st := h.kvStore()
	for _, k := range []string{"p/1", "p/2", "p/3", "q/1"} {
		h.kvInsert(st, k, k, 0, h.kvInsertConfig(0, "", 0, 0))
	}
	list := func(prefix, cursor string, limit uint32) kvListPage {
		cfg := h.aZ(abi.KVListConfigSize).v
		b := h.mem.b[cfg:]
		var mask uint32
		if prefix != "" {
			p, n := h.str(prefix)
			binary.LittleEndian.PutUint32(b[16:], uint32(p))
			binary.LittleEndian.PutUint32(b[20:], uint32(n))
			mask |= abi.KVListPrefix
		}
		if cursor != "" {
			p, n := h.str(cursor)
			binary.LittleEndian.PutUint32(b[4:], uint32(p))
			binary.LittleEndian.PutUint32(b[8:], uint32(n))
			mask |= abi.KVListCursor
		}
		if limit != 0 {
			binary.LittleEndian.PutUint32(b[12:], limit)
			mask |= abi.KVListLimit
		}
		o, bo, ke := h.out(), h.out(), h.out()
		h.want(abi.OK, abi.ModuleKVStore, "list", uint64(st), uint64(mask), uint64(cfg), o)
		h.want(abi.OK, abi.ModuleKVStore, "list_wait", uint64(h.u32(o)), bo, ke)
		if e := abi.KVError(h.u32(ke)); e != abi.KVErrorOK {
			t.Fatalf("list: kv_error %d", e)
		}
		var page kvListPage
		if err := json.Unmarshal([]byte(h.readBody(h.u32(bo), 64)), &page); err != nil {
			t.Fatal(err)
		}
		return page
	}
	all := list("", "", 0)
	if strings.Join(all.Data, ",") != "k,p/1,p/2,p/3,q/1,seeded" || all.Meta.Limit != kvstore.DefaultListLimit || all.Meta.NextCursor != "" {
		t.Fatalf("all = %+v", all)
	}
	p1 := list("p/", "", 2)
	p2 := list("p/", p1.Meta.NextCursor, 2)
	if strings.Join(p1.Data, ",") != "p/1,p/2" || p1.Meta.NextCursor == "" || strings.Join(p2.Data, ",") != "p/3" || p2.Meta.NextCursor != "" || p2.Meta.Prefix != "p/" {
		t.Fatalf("pages = %+v, %+v", p1, p2)
	}
}

func TestKVBadInput(t *testing.T) {
	h, _ := newKVHarness(t)
	st := uint64(h.kvStore())
	o := h.out()
	for _, tc := range []struct {
		name string
		key  string
		want abi.Status
	}{
		{"empty", "", abi.Inval},
		{"over 1024 bytes", strings.Repeat("a", 1025), abi.Inval},
		{"exactly 1024 bytes", strings.Repeat("a", 1024), abi.OK},
		{"bad UTF-8", "a\xff\xfeb", abi.Inval},
		{"newline", "a\nb", abi.Inval},
		{"acme challenge", ".well-known/acme-challenge/x", abi.Inval},
	} {
		kp, kl := h.str(tc.key)
		for _, fn := range []string{"lookup", "delete"} {
			if got := h.call(abi.ModuleKVStore, fn, st, kp, kl, 0, 0, o); got != tc.want {
				t.Errorf("%s with a key %s: %v, want %v", fn, tc.name, got, tc.want)
			}
		}
		if got := h.call(abi.ModuleKVStore, "insert", st, kp, kl, uint64(h.kvBody("v")), 0, h.kvInsertConfig(0, "", 0, 0), o); got != tc.want {
			t.Errorf("insert with a key %s: %v, want %v", tc.name, got, tc.want)
		}
	}
	kp, kl := h.str("k")
	np, nl := h.str("no-such-store")
	for _, tc := range []struct {
		name string
		want abi.Status
		fn   string
		args []uint64
	}{
		{"unknown store", abi.Inval, "open", []uint64{np, nl, o}},
		{"bad store handle", abi.Badf, "lookup", []uint64{999, kp, kl, 0, 0, o}},
		{"body handle as store", abi.Badf, "lookup", []uint64{uint64(h.kvBody("x")), kp, kl, 0, 0, o}},
		{"lookup mask", abi.Inval, "lookup", []uint64{st, kp, kl, 1, 0, o}},
		{"reserved insert bit", abi.Inval, "insert", []uint64{st, kp, kl, uint64(h.kvBody("v")), 1, h.kvInsertConfig(0, "", 0, 0), o}},
		{"reserved_2 insert bit", abi.Inval, "insert", []uint64{st, kp, kl, uint64(h.kvBody("v")), uint64(abi.KVInsertReserved2), h.kvInsertConfig(0, "", 0, 0), o}},
		{"unknown insert bit", abi.Inval, "insert", []uint64{st, kp, kl, uint64(h.kvBody("v")), 1 << 9, h.kvInsertConfig(0, "", 0, 0), o}},
		{"bad mode", abi.Inval, "insert", []uint64{st, kp, kl, uint64(h.kvBody("v")), 0, h.kvInsertConfig(7, "", 0, 0), o}},
		{"empty metadata", abi.Inval, "insert", []uint64{st, kp, kl, uint64(h.kvBody("v")), uint64(abi.KVInsertMetadata), h.kvInsertConfig(0, "", 0, 0), o}},
		{"bad body", abi.Badf, "insert", []uint64{st, kp, kl, 999, 0, h.kvInsertConfig(0, "", 0, 0), o}},
		{"lookup handle to insert_wait", abi.Badf, "insert_wait", []uint64{h.aKV(kindKVLookup).v, o}},
		{"insert handle to lookup_wait", abi.Badf, "lookup_wait_v2", []uint64{h.aKV(kindKVInsert).v, o, o, 0, o, o, o}},
		{"list limit over 1000", abi.Inval, "list", []uint64{st, uint64(abi.KVListLimit), h.listConfig(1001), o}},
	} {
		if got := h.call(abi.ModuleKVStore, tc.fn, tc.args...); got != tc.want {
			t.Errorf("%s: %s = %v, want %v", tc.name, tc.fn, got, tc.want)
		}
	}

	// Metadata over the buffer: buflen with the size, and the handle stays.
	l := h.aKV(kindKVLookup).v
	nw := h.out()
	if got := h.call(abi.ModuleKVStore, "lookup_wait_v2", l, h.out(), uint64(h.alloc(1)), 1, nw, h.out(), h.out()); got != abi.Buflen || h.u32(nw) != 11 {
		t.Errorf("metadata buffer too small: %v, nwritten %d; want buflen, 11", got, h.u32(nw))
	}
	if v, m, _, _ := h.kvLookupWait(uint32(l)); v != "v" || m != "seeded-meta" {
		t.Errorf("retry after buflen: %q %q", v, m)
	}
}

// aZ is a zeroed input struct of n bytes.
func (h *harness) aZ(n uint32) arg {
	a := h.aP(n)
	clear(h.mem.b[a.v : a.v+uint64(n)])
	return a
}

func (h *harness) listConfig(limit uint32) uint64 {
	p := h.aZ(abi.KVListConfigSize).v
	binary.LittleEndian.PutUint32(h.mem.b[p+12:], limit)
	return p
}

func TestKVPendingIsAsyncItem(t *testing.T) {
	h, _ := newKVHarness(t)
	for _, k := range []handleKind{kindKVLookup, kindKVInsert, kindKVDelete, kindKVList} {
		a := h.aKV(k)
		o := h.out()
		h.want(abi.OK, abi.ModuleAsyncIO, "is_ready", a.v, o)
		if h.u32(o) != 1 {
			t.Errorf("%d: is_ready = %d", k, h.u32(o))
		}
		list := h.aHandleList(uint32(a.v))
		h.want(abi.OK, abi.ModuleAsyncIO, "select", list[0].v, list[1].v, 0, o)
		if h.u32(o) != 0 {
			t.Errorf("%d: select index %d", k, h.u32(o))
		}
	}
	o := h.out()
	if got := h.call(abi.ModuleAsyncIO, "is_ready", h.aKV(kindKVStore).v, o); got != abi.Badf {
		t.Errorf("a store handle is not an async item: %v", got)
	}
}

// TestKVConcurrentSessions appends from many sessions at once: every
// append lands.
func TestKVConcurrentSessions(t *testing.T) {
	var cfg EnvConfig
	db := testKVEnv(t, &cfg)
	env, _ := newTestEnv(t, cfg)
	const n = 32
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			h := newHarness(t, harnessOpts{env: env})
			st := h.kvStore()
			if e := h.kvInsert(st, "counter", "<"+string(rune('A'+i))+">", 0, h.kvInsertConfig(abi.KVInsertAppend, "", 0, 0)); e != abi.KVErrorOK {
				t.Errorf("append %d: %d", i, e)
			}
		})
	}
	wg.Wait()
	e, err := db.Lookup("kvs", "counter")
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if c := strings.Count(string(e.Value), "<"+string(rune('A'+i))+">"); c != 1 {
			t.Errorf("append %d is there %d times", i, c)
		}
	}
}

func TestSecretHostcalls(t *testing.T) {
	h, _ := newKVHarness(t)
	o := h.out()
	sec := h.aSecret(kindSecret).v
	buf, nw := h.alloc(64), h.out()
	h.want(abi.OK, abi.ModuleSecretStore, "plaintext", sec, uint64(buf), 64, nw)
	if got := string(h.mem.b[buf : buf+h.u32(nw)]); got != "s3cr3t" {
		t.Errorf("plaintext = %q", got)
	}
	if got := h.call(abi.ModuleSecretStore, "plaintext", sec, uint64(buf), 2, nw); got != abi.Buflen || h.u32(nw) != 6 {
		t.Errorf("small buffer: %v, %d", got, h.u32(nw))
	}
	np, nl := h.str("nope")
	if got := h.call(abi.ModuleSecretStore, "open", np, nl, o); got != abi.None {
		t.Errorf("unknown store: %v, want none", got)
	}
	st := h.aSecret(kindSecretStore).v
	if got := h.call(abi.ModuleSecretStore, "get", st, np, nl, o); got != abi.None {
		t.Errorf("unknown secret: %v, want none", got)
	}
	if got := h.call(abi.ModuleSecretStore, "get", sec, np, nl, o); got != abi.Badf {
		t.Errorf("secret handle as store: %v, want badf", got)
	}
	bp, bl := h.str("made from bytes")
	h.want(abi.OK, abi.ModuleSecretStore, "from_bytes", bp, bl, o)
	h.want(abi.OK, abi.ModuleSecretStore, "plaintext", uint64(h.u32(o)), uint64(buf), 64, nw)
	if got := string(h.mem.b[buf : buf+h.u32(nw)]); got != "made from bytes" {
		t.Errorf("from_bytes plaintext = %q", got)
	}
	h.logs.mu.Lock()
	defer h.logs.mu.Unlock()
	for _, r := range h.logs.recs {
		if strings.Contains(fmt.Sprint(r.msg, r.attrs), "s3cr3t") {
			t.Errorf("a secret value reached the log: %v", r)
		}
	}
}

// TestKVLookupCountsAgainstBodyLimit: a value found is held for the
// sandbox, so lookups cannot take it past its body buffer cap.
func TestKVLookupCountsAgainstBodyLimit(t *testing.T) {
	cfg := EnvConfig{Limits: Limits{MaxBufferedBodyBytes: 100}}
	db := testKVEnv(t, &cfg)
	db.Insert("kvs", "big", []byte(strings.Repeat("x", 60)), kvstore.InsertOptions{})
	h := newHarness(t, harnessOpts{envCfg: cfg})
	st := uint64(h.kvStore())
	kp, kl := h.str("big")
	o1, o2 := h.out(), h.out()
	h.want(abi.OK, abi.ModuleKVStore, "lookup", st, kp, kl, 0, 0, o1)
	if got := h.call(abi.ModuleKVStore, "lookup", st, kp, kl, 0, 0, o2); got != abi.LimitExceeded {
		t.Fatalf("second 60-byte lookup under a 100-byte cap: %v, want limitexceeded", got)
	}
	if v, _, _, _ := h.kvLookupWait(h.u32(o1)); len(v) != 60 {
		t.Fatalf("value = %d bytes", len(v))
	}
	// Read to its end, the first value no longer counts.
	h.want(abi.OK, abi.ModuleKVStore, "lookup", st, kp, kl, 0, 0, o2)
}
