//go:build wasip1

package guestsdk

import "unsafe"

// Raw bindings of fastly_kv_store and fastly_secret_store (abi/README.md).

//go:wasmimport fastly_kv_store open
//go:noescape
func kvOpen(name unsafe.Pointer, nameLen uint32, storeOut unsafe.Pointer) uint32

//go:wasmimport fastly_kv_store lookup
//go:noescape
func kvLookup(store uint32, key unsafe.Pointer, keyLen uint32, mask uint32, config unsafe.Pointer, handleOut unsafe.Pointer) uint32

//go:wasmimport fastly_kv_store lookup_wait_v2
//go:noescape
func kvLookupWaitV2(h uint32, bodyOut unsafe.Pointer, meta unsafe.Pointer, metaLen uint32, nwrittenOut, generationOut, kvErrorOut unsafe.Pointer) uint32

//go:wasmimport fastly_kv_store insert
//go:noescape
func kvInsert(store uint32, key unsafe.Pointer, keyLen uint32, body uint32, mask uint32, config unsafe.Pointer, handleOut unsafe.Pointer) uint32

//go:wasmimport fastly_kv_store insert_wait
//go:noescape
func kvInsertWait(h uint32, kvErrorOut unsafe.Pointer) uint32

//go:wasmimport fastly_kv_store delete
//go:noescape
func kvDelete(store uint32, key unsafe.Pointer, keyLen uint32, mask uint32, config unsafe.Pointer, handleOut unsafe.Pointer) uint32

//go:wasmimport fastly_kv_store delete_wait
//go:noescape
func kvDeleteWait(h uint32, kvErrorOut unsafe.Pointer) uint32

//go:wasmimport fastly_kv_store list
//go:noescape
func kvList(store uint32, mask uint32, config unsafe.Pointer, handleOut unsafe.Pointer) uint32

//go:wasmimport fastly_kv_store list_wait
//go:noescape
func kvListWait(h uint32, bodyOut, kvErrorOut unsafe.Pointer) uint32

//go:wasmimport fastly_secret_store open
//go:noescape
func secretStoreOpen(name unsafe.Pointer, nameLen uint32, storeOut unsafe.Pointer) uint32

//go:wasmimport fastly_secret_store get
//go:noescape
func secretStoreGet(store uint32, name unsafe.Pointer, nameLen uint32, secretOut unsafe.Pointer) uint32

//go:wasmimport fastly_secret_store plaintext
//go:noescape
func secretPlaintext(secret uint32, buf unsafe.Pointer, bufLen uint32, nwrittenOut unsafe.Pointer) uint32

//go:wasmimport fastly_secret_store from_bytes
//go:noescape
func secretFromBytes(buf unsafe.Pointer, bufLen uint32, secretOut unsafe.Pointer) uint32
