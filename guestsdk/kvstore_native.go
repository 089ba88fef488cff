//go:build !wasip1

package guestsdk

// The fake host's KV and secret stores, for native tests of kvstore.go.

import (
	"encoding/base64"
	"encoding/json"
	"sort"
	"strings"
	"unsafe"

	"github.com/edgehost/edgehost/abi"
)

type fakeKVEntry struct {
	value, meta []byte
	gen         uint64
}

type fakeKV struct {
	stores  map[string]map[string]*fakeKVEntry
	storeH  map[uint32]string
	pending map[uint32]fakeKVResult
	gen     uint64
	secrets map[string]map[string]string
	secH    map[uint32]string
	secVals map[uint32]string
}

type fakeKVResult struct {
	code  abi.KVError
	entry *fakeKVEntry
	list  []byte
}

func (f *fakeHost) kvState() *fakeKV {
	if f.kv == nil {
		f.kv = &fakeKV{stores: map[string]map[string]*fakeKVEntry{}, storeH: map[uint32]string{}, pending: map[uint32]fakeKVResult{},
			secrets: map[string]map[string]string{}, secH: map[uint32]string{}, secVals: map[uint32]string{}}
	}
	return f.kv
}

// addKVStore and addSecretStore declare stores in the fake host.
func (f *fakeHost) addKVStore(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.kvState().stores[name] = map[string]*fakeKVEntry{}
}

func (f *fakeHost) addSecretStore(name string, secrets map[string]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.kvState().secrets[name] = secrets
}

func (f *fakeHost) kvPending(r fakeKVResult, out unsafe.Pointer) abi.Status {
	h := f.handle()
	f.kvState().pending[h] = r
	putU32(out, h)
	return abi.OK
}

func fakeKVKey(key unsafe.Pointer, n uint32) (string, bool) {
	k := memStr(key, n)
	return k, k != "" && len(k) <= 1024 && !strings.ContainsAny(k, "\r\n")
}

func (f *fakeHost) kvStoreOpen(name unsafe.Pointer, nameLen uint32, out unsafe.Pointer) abi.Status {
	n := memStr(name, nameLen)
	if _, ok := f.kvState().stores[n]; !ok {
		return abi.Inval
	}
	h := f.handle()
	f.kv.storeH[h] = n
	putU32(out, h)
	return abi.OK
}

func (f *fakeHost) kvStoreLookup(store uint32, key unsafe.Pointer, keyLen uint32, mask uint32, _ unsafe.Pointer, out unsafe.Pointer) abi.Status {
	s, ok := f.kvState().storeH[store]
	if !ok {
		return abi.Badf
	}
	k, ok := fakeKVKey(key, keyLen)
	if !ok || mask != 0 {
		return abi.Inval
	}
	e := f.kv.stores[s][k]
	if e == nil {
		return f.kvPending(fakeKVResult{code: abi.KVErrorNotFound}, out)
	}
	return f.kvPending(fakeKVResult{code: abi.KVErrorOK, entry: e}, out)
}

func (f *fakeHost) kvStoreLookupWaitV2(h uint32, bodyOut, meta unsafe.Pointer, metaLen uint32, nw, gen, code unsafe.Pointer) abi.Status {
	r, ok := f.kvState().pending[h]
	if !ok || r.list != nil {
		return abi.Badf
	}
	if r.code != abi.KVErrorOK {
		delete(f.kv.pending, h)
		putU32(bodyOut, abi.NoHandle)
		putU32(nw, 0)
		putU32(code, uint32(r.code))
		return abi.OK
	}
	if uint32(len(r.entry.meta)) > metaLen {
		putU32(nw, uint32(len(r.entry.meta)))
		return abi.Buflen
	}
	delete(f.kv.pending, h)
	copy(mem(meta, metaLen), r.entry.meta)
	b := f.handle()
	f.bodies[b] = &fakeBody{data: append([]byte(nil), r.entry.value...)}
	putU32(bodyOut, b)
	putU32(nw, uint32(len(r.entry.meta)))
	*(*uint64)(gen) = r.entry.gen
	putU32(code, uint32(abi.KVErrorOK))
	return abi.OK
}

func (f *fakeHost) kvStoreInsert(store uint32, key unsafe.Pointer, keyLen uint32, body uint32, mask uint32, config unsafe.Pointer, out unsafe.Pointer) abi.Status {
	s, ok := f.kvState().storeH[store]
	if !ok {
		return abi.Badf
	}
	b := f.bodies[body]
	if b == nil || b.closed {
		return abi.Badf
	}
	k, ok := fakeKVKey(key, keyLen)
	if !ok {
		return abi.Inval
	}
	cfg := mem(config, abi.KVInsertConfigSize)
	mode := le32(cfg, 0)
	b.closed = true
	value := b.data[b.off:]
	old := f.kv.stores[s][k]
	if mask&abi.KVInsertIfGenerationMatch != 0 && (old == nil || old.gen != uint64(le32(cfg, 24))|uint64(le32(cfg, 28))<<32) {
		return f.kvPending(fakeKVResult{code: abi.KVErrorPreconditionFailed}, out)
	}
	e := &fakeKVEntry{value: append([]byte(nil), value...)}
	switch {
	case mode == abi.KVInsertAdd && old != nil:
		return f.kvPending(fakeKVResult{code: abi.KVErrorPreconditionFailed}, out)
	case mode == abi.KVInsertAppend && old != nil:
		e.value = append(append([]byte(nil), old.value...), value...)
	case mode == abi.KVInsertPrepend && old != nil:
		e.value = append(append([]byte(nil), value...), old.value...)
	}
	if mask&abi.KVInsertMetadata != 0 {
		p := f.pins[le32(cfg, 8)]
		e.meta = append([]byte(nil), mem(p, le32(cfg, 12))...)
	}
	f.kv.gen++
	e.gen = f.kv.gen
	f.kv.stores[s][k] = e
	return f.kvPending(fakeKVResult{code: abi.KVErrorOK}, out)
}

// kvWait completes a pending insert or delete.
func (f *fakeHost) kvWait(h uint32, code unsafe.Pointer) abi.Status {
	r, ok := f.kvState().pending[h]
	if !ok {
		return abi.Badf
	}
	delete(f.kv.pending, h)
	putU32(code, uint32(r.code))
	return abi.OK
}

func (f *fakeHost) kvStoreInsertWait(h uint32, code unsafe.Pointer) abi.Status {
	return f.kvWait(h, code)
}

func (f *fakeHost) kvStoreDelete(store uint32, key unsafe.Pointer, keyLen uint32, mask uint32, _ unsafe.Pointer, out unsafe.Pointer) abi.Status {
	s, ok := f.kvState().storeH[store]
	if !ok {
		return abi.Badf
	}
	k, ok := fakeKVKey(key, keyLen)
	if !ok || mask != 0 {
		return abi.Inval
	}
	if f.kv.stores[s][k] == nil {
		return f.kvPending(fakeKVResult{code: abi.KVErrorNotFound}, out)
	}
	delete(f.kv.stores[s], k)
	return f.kvPending(fakeKVResult{code: abi.KVErrorOK}, out)
}

func (f *fakeHost) kvStoreDeleteWait(h uint32, code unsafe.Pointer) abi.Status {
	return f.kvWait(h, code)
}

func (f *fakeHost) kvStoreList(store uint32, mask uint32, config unsafe.Pointer, out unsafe.Pointer) abi.Status {
	s, ok := f.kvState().storeH[store]
	if !ok {
		return abi.Badf
	}
	cfg := mem(config, abi.KVListConfigSize)
	str := func(off int) string { return memStr(f.pins[le32(cfg, off)], le32(cfg, off+4)) }
	var prefix, after string
	limit := 1000
	if mask&abi.KVListPrefix != 0 {
		prefix = str(16)
	}
	if mask&abi.KVListCursor != 0 {
		b, err := base64.RawURLEncoding.DecodeString(str(4))
		if err != nil {
			return f.kvPending(fakeKVResult{code: abi.KVErrorBadRequest, list: []byte{}}, out)
		}
		after = string(b)
	}
	if mask&abi.KVListLimit != 0 {
		limit = int(le32(cfg, 12))
	}
	var keys []string
	for k := range f.kv.stores[s] {
		if strings.HasPrefix(k, prefix) && k > after {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	page := map[string]any{"data": keys, "meta": map[string]any{"limit": limit}}
	if len(keys) > limit {
		keys = keys[:limit]
		page["data"] = keys
		page["meta"] = map[string]any{"limit": limit, "next_cursor": base64.RawURLEncoding.EncodeToString([]byte(keys[limit-1]))}
	}
	data, _ := json.Marshal(page)
	return f.kvPending(fakeKVResult{code: abi.KVErrorOK, list: data}, out)
}

func (f *fakeHost) kvStoreListWait(h uint32, bodyOut, code unsafe.Pointer) abi.Status {
	r, ok := f.kvState().pending[h]
	if !ok || r.list == nil {
		return abi.Badf
	}
	delete(f.kv.pending, h)
	b := f.handle()
	f.bodies[b] = &fakeBody{data: r.list}
	putU32(bodyOut, b)
	putU32(code, uint32(r.code))
	return abi.OK
}

func (f *fakeHost) secretStoreOpen(name unsafe.Pointer, nameLen uint32, out unsafe.Pointer) abi.Status {
	n := memStr(name, nameLen)
	if _, ok := f.kvState().secrets[n]; !ok {
		return abi.None
	}
	h := f.handle()
	f.kv.secH[h] = n
	putU32(out, h)
	return abi.OK
}

func (f *fakeHost) secretStoreGet(store uint32, name unsafe.Pointer, nameLen uint32, out unsafe.Pointer) abi.Status {
	s, ok := f.kvState().secH[store]
	if !ok {
		return abi.Badf
	}
	v, ok := f.kv.secrets[s][memStr(name, nameLen)]
	if !ok {
		return abi.None
	}
	h := f.handle()
	f.kv.secVals[h] = v
	putU32(out, h)
	return abi.OK
}

func (f *fakeHost) secretStorePlaintext(secret uint32, buf unsafe.Pointer, bufLen uint32, nw unsafe.Pointer) abi.Status {
	v, ok := f.kvState().secVals[secret]
	if !ok {
		return abi.Badf
	}
	return writeOut(v, buf, bufLen, nw)
}

func (f *fakeHost) secretStoreFromBytes(buf unsafe.Pointer, bufLen uint32, out unsafe.Pointer) abi.Status {
	h := f.handle()
	f.kvState().secVals[h] = memStr(buf, bufLen)
	putU32(out, h)
	return abi.OK
}
