package hostcall

import (
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/edgehost/edgehost/abi"
)

// fuzzMemSize is the fake memory of the fuzz test: small, so that random
// pointers often land inside, at the edge and outside.
const fuzzMemSize = 4096

// fuzzStrings are placed at the start of the fuzz memory so that random
// (ptr, len) pairs can name a header, a store, a key, a backend target.
var fuzzStrings = []struct {
	off uint32
	s   string
}{
	{0, "x-a"}, {16, "settings"}, {32, "greeting"}, {48, "127.0.0.1:80"}, {64, "v1\x00v2\x00"},
	{80, "origin"}, {96, "PUT"}, {112, "http://example.test/p"}, {144, "my-log"},
}

// fuzzCall encodes one call of a fuzz input: a 2-byte table index, then
// per parameter a mode byte and 4 bytes (8 for an i64). Mode (mod 4) 0
// passes the value as is, 1 makes it small (a handle or an enum), 2 a
// pointer in or just past memory, 3 a short length.
func fuzzCall(table []Hostcall, idx int, args ...uint64) []byte {
	b := binary.LittleEndian.AppendUint16(nil, uint16(idx))
	for i, p := range table[idx].Params {
		var a uint64
		if i < len(args) {
			a = args[i]
		}
		b = append(b, 0)
		if p == 'I' {
			b = binary.LittleEndian.AppendUint64(b, a)
		} else {
			b = binary.LittleEndian.AppendUint32(b, uint32(a))
		}
	}
	return b
}

// decodeFuzz turns data into calls of the table, at most 8.
func decodeFuzz(table []Hostcall, data []byte) []struct {
	hc   Hostcall
	args []uint64
} {
	var calls []struct {
		hc   Hostcall
		args []uint64
	}
	take := func(n int) []byte {
		if len(data) < n {
			b := make([]byte, n)
			copy(b, data)
			data = nil
			return b
		}
		b := data[:n]
		data = data[n:]
		return b
	}
	for len(data) >= 2 && len(calls) < 8 {
		hc := table[int(binary.LittleEndian.Uint16(take(2)))%len(table)]
		args := make([]uint64, len(hc.Params))
		for i, p := range hc.Params {
			mode := take(1)[0]
			var v uint64
			if p == 'I' {
				v = binary.LittleEndian.Uint64(take(8))
			} else {
				v = uint64(binary.LittleEndian.Uint32(take(4)))
			}
			switch mode % 4 {
			case 1:
				v %= 16
			case 2:
				v %= fuzzMemSize + 16
			case 3:
				v %= 64
			}
			args[i] = v
		}
		calls = append(calls, struct {
			hc   Hostcall
			args []uint64
		}{hc, args})
	}
	return calls
}

// addSeeds seeds f with a call of every hostcall of table given zero,
// small, all-ones and plausible arguments (handle 1, then (ptr 0, len 3)
// pairs, then out-pointers at 2048+).
func addSeeds(f *testing.F, table []Hostcall) {
	for i, hc := range table {
		n := len(hc.Params)
		zero, small, max, plausible := make([]uint64, n), make([]uint64, n), make([]uint64, n), make([]uint64, n)
		for j := range n {
			small[j] = uint64(j%7 + 1)
			max[j] = 0xFFFFFFFF
			switch {
			case j == 0:
				plausible[j] = 1
			case j%2 == 1:
				plausible[j] = 0
			default:
				plausible[j] = 3
			}
			if j >= n-2 && n > 2 {
				plausible[j] = uint64(2048 + 8*j)
			}
		}
		for _, args := range [][]uint64{zero, small, max, plausible} {
			f.Add(fuzzCall(table, i, args...))
		}
	}
}

// FuzzHostcalls calls hostcalls of the table with arbitrary argument words
// against a small memory and a session holding a handle of every kind: no
// panic may escape or be hidden by bind, nothing may be written outside
// memory, and every status must be a fastly_status (0 to 14). Dynamic
// backends are disabled and there are no static ones, so nothing is sent
// to the network.
func FuzzHostcalls(f *testing.F) {
	table := Table()
	index := map[string]int{}
	for i, hc := range table {
		index[hc.Module+"."+hc.Name] = i
	}
	addSeeds(f, table)
	// A few sequences: write then read a body, set then page headers,
	// register a backend then query it, open a store then get.
	seq := func(parts ...[]byte) []byte {
		var b []byte
		for _, p := range parts {
			b = append(b, p...)
		}
		return b
	}
	f.Add(seq(
		fuzzCall(table, index["fastly_http_body.write"], 3, 64, 6, 0, 2048),
		fuzzCall(table, index["fastly_http_body.write"], 3, 0, 3, 1, 2048),
		fuzzCall(table, index["fastly_http_body.read"], 3, 2100, 5, 2056),
		fuzzCall(table, index["fastly_http_body.known_length"], 3, 2064),
	))
	f.Add(seq(
		fuzzCall(table, index["fastly_http_req.header_values_set"], 1, 0, 3, 64, 6),
		fuzzCall(table, index["fastly_http_req.header_names_get"], 1, 2100, 4, 0, 2048, 2056),
		fuzzCall(table, index["fastly_http_req.header_values_get"], 1, 0, 3, 2100, 3, 1, 2048, 2056),
		fuzzCall(table, index["fastly_http_req.send_async"], 1, 3, 80, 6, 2064),
	))
	f.Add(seq(
		fuzzCall(table, index["fastly_http_req.register_dynamic_backend"], 80, 6, 48, 12, 0x18000, 1024),
		fuzzCall(table, index["fastly_backend.get_host"], 80, 6, 2100, 64, 2048),
		fuzzCall(table, index["fastly_config_store.open"], 16, 8, 2048),
		fuzzCall(table, index["fastly_config_store.get"], 8, 32, 8, 2100, 64, 2056),
	))
	f.Add(seq(
		fuzzCall(table, index["fastly_http_resp.send_downstream"], 2, 3, 1),
		fuzzCall(table, index["fastly_http_body.write"], 3, 112, 21, 0, 2048),
		fuzzCall(table, index["fastly_http_body.append"], 3, 7),
		fuzzCall(table, index["fastly_http_body.abandon"], 3),
	))

	f.Add(seq(
		fuzzCall(table, index["fastly_async_io.is_ready"], 7, 2048),
		fuzzCall(table, index["fastly_async_io.select"], 2052, 1, 0, 2048),
		fuzzCall(table, index["fastly_async_io.select"], 0, 0, 5, 2048),
	))

	f.Fuzz(func(t *testing.T, data []byte) {
		env, _ := newTestEnv(t, EnvConfig{
			Policy:       &Policy{Disabled: true},
			ConfigStores: map[string]map[string]string{"settings": {"greeting": "hello"}},
			Dictionaries: map[string]map[string]string{"settings": {"greeting": "hello"}},
			Limits:       Limits{MaxBufferedBodyBytes: 1 << 16, MaxHeaderBytes: 1 << 12},
		})
		h := newHarness(t, harnessOpts{env: env, memSize: fuzzMemSize})
		// A select may wait up to its timeout (u32 ms): the sandbox ends first.
		ctx, cancel := context.WithTimeout(h.ctx, time.Second)
		defer cancel()
		h.ctx = ctx
		for _, fs := range fuzzStrings {
			copy(h.mem.b[fs.off:], fs.s)
		}
		// Handles 1 to 7: request, response, body, log, store, then the
		// downstream request and its body.
		for _, k := range []handleKind{kindReq, kindResp, kindBody, kindLog, kindStore, kindDownReq} {
			h.newHandle(k)
		}
		h.writeBody(3, "body bytes", abi.BodyWriteBack)
		h.hdrSet(abi.ModuleHTTPResp, "header_insert", 2, "x-a", "v")
		for _, c := range decodeFuzz(table, data) {
			if st := h.call(c.hc.Module, c.hc.Name, c.args...); st > abi.Again {
				t.Fatalf("%s.%s%v returned %d, not a fastly_status", c.hc.Module, c.hc.Name, c.args, st)
			}
		}
	})
}
