package hostcall

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/edgehost/edgehost/abi"
)

// hdrModules are the two modules that share the header hostcalls.
var hdrModules = []struct {
	module string
	kind   handleKind
}{{abi.ModuleHTTPReq, kindReq}, {abi.ModuleHTTPResp, kindResp}}

// insert calls header_insert or header_append.
func (h *harness) hdrSet(module, fn string, hd uint32, name, value string) abi.Status {
	h.t.Helper()
	np, nl := h.str(name)
	vp, vl := h.str(value)
	return h.call(module, fn, uint64(hd), np, nl, vp, vl)
}

func (h *harness) hdrValue(module string, hd uint32, name string, max uint32) (abi.Status, string, uint32) {
	h.t.Helper()
	np, nl := h.str(name)
	return h.getBuf(module, "header_value_get", max, uint64(hd), np, nl)
}

func (h *harness) hdrValues(module string, hd uint32, name string, bufLen uint32) ([]string, abi.Status) {
	h.t.Helper()
	np, nl := h.str(name)
	return h.multi(module, "header_values_get", bufLen, uint64(hd), np, nl)
}

func TestHeaderSetGet(t *testing.T) {
	for _, m := range hdrModules {
		t.Run(m.module, func(t *testing.T) {
			h := newHarness(t, harnessOpts{})
			hd := h.newHandle(m.kind)
			if st := h.hdrSet(m.module, "header_insert", hd, "X-Mixed-Case", "a"); st != abi.OK {
				t.Fatalf("insert: %v", st)
			}
			// Names are case-insensitive and listed lowercased.
			if st, v, _ := h.hdrValue(m.module, hd, "x-MIXED-case", 16); st != abi.OK || v != "a" {
				t.Fatalf("value_get = %v %q, want ok \"a\"", st, v)
			}
			h.hdrSet(m.module, "header_append", hd, "x-mixed-case", "b")
			h.hdrSet(m.module, "header_append", hd, "x-other", "c")
			if vals, st := h.hdrValues(m.module, hd, "x-mixed-case", 64); st != abi.OK || !slices.Equal(vals, []string{"a", "b"}) {
				t.Fatalf("values_get = %v %q, want a, b", st, vals)
			}
			if names, st := h.multi(m.module, "header_names_get", 64, uint64(hd)); st != abi.OK || !slices.Equal(names, []string{"x-mixed-case", "x-other"}) {
				t.Fatalf("names_get = %v %q", st, names)
			}
			// insert replaces every value.
			h.hdrSet(m.module, "header_insert", hd, "x-mixed-case", "z")
			if vals, _ := h.hdrValues(m.module, hd, "x-mixed-case", 64); !slices.Equal(vals, []string{"z"}) {
				t.Fatalf("after insert values = %q, want [z]", vals)
			}
			// remove, then it is gone; removing again is none.
			np, nl := h.str("X-Other")
			h.want(abi.OK, m.module, "header_remove", uint64(hd), np, nl)
			if st, _, _ := h.hdrValue(m.module, hd, "x-other", 16); st != abi.None {
				t.Fatalf("value_get of a removed header = %v, want none", st)
			}
			h.want(abi.None, m.module, "header_remove", uint64(hd), np, nl)
			// A missing header: value_get none, values_get an empty, finished listing.
			if st, _, _ := h.hdrValue(m.module, hd, "x-missing", 16); st != abi.None {
				t.Fatalf("value_get of a missing header = %v, want none", st)
			}
			if vals, st := h.hdrValues(m.module, hd, "x-missing", 16); st != abi.OK || len(vals) != 0 {
				t.Fatalf("values_get of a missing header = %v %q, want ok and nothing", st, vals)
			}
		})
	}
}

func TestHeaderValuesSet(t *testing.T) {
	for _, m := range hdrModules {
		for _, tc := range []struct {
			name string
			raw  string
			want abi.Status
			vals []string // nil: header absent afterwards
		}{
			{"two-nul-terminated", "one\x00two\x00", abi.OK, []string{"one", "two"}},
			{"last-unterminated", "one\x00two", abi.OK, []string{"one", "two"}},
			{"single", "only\x00", abi.OK, []string{"only"}},
			{"empty-value-kept", "a\x00\x00b\x00", abi.OK, []string{"a", "", "b"}},
			{"empty-list-removes", "", abi.OK, nil},
			{"invalid-value", "ok\x00bad\r\nvalue\x00", abi.Inval, []string{"old"}},
		} {
			t.Run(m.module+"/"+tc.name, func(t *testing.T) {
				h := newHarness(t, harnessOpts{})
				hd := h.newHandle(m.kind)
				h.hdrSet(m.module, "header_insert", hd, "x-v", "old")
				np, nl := h.str("x-v")
				vp, vl := h.str(tc.raw)
				h.want(tc.want, m.module, "header_values_set", uint64(hd), np, nl, vp, vl)
				vals, st := h.hdrValues(m.module, hd, "x-v", 64)
				if st != abi.OK || !slices.Equal(vals, tc.vals) {
					t.Fatalf("values afterwards = %v %q, want %q", st, vals, tc.vals)
				}
			})
		}
	}
}

func TestHeaderInvalidName(t *testing.T) {
	for _, m := range hdrModules {
		for _, name := range []string{"", "bad name", "a:b", "x\x00y", "caf\xc3\xa9", "x\r\ny"} {
			t.Run(fmt.Sprintf("%s/%q", m.module, name), func(t *testing.T) {
				h := newHarness(t, harnessOpts{})
				hd := uint64(h.newHandle(m.kind))
				np, nl := h.str(name)
				vp, vl := h.str("v")
				buf, ec, nw := uint64(h.alloc(64)), h.out(), h.out()
				h.want(abi.Inval, m.module, "header_insert", hd, np, nl, vp, vl)
				h.want(abi.Inval, m.module, "header_append", hd, np, nl, vp, vl)
				h.want(abi.Inval, m.module, "header_values_set", hd, np, nl, vp, vl)
				h.want(abi.Inval, m.module, "header_remove", hd, np, nl)
				h.want(abi.Inval, m.module, "header_value_get", hd, np, nl, buf, 64, nw)
				h.want(abi.Inval, m.module, "header_values_get", hd, np, nl, buf, 64, 0, ec, nw)
				if names, _ := h.multi(m.module, "header_names_get", 64, hd); len(names) != 0 {
					t.Fatalf("an invalid header was stored: %q", names)
				}
			})
		}
	}
}

func TestHeaderInvalidValue(t *testing.T) {
	for _, m := range hdrModules {
		for _, v := range []string{"a\r\nb", "a\nb", "a\x00b", "a\x7fb"} {
			t.Run(fmt.Sprintf("%s/%q", m.module, v), func(t *testing.T) {
				h := newHarness(t, harnessOpts{})
				hd := h.newHandle(m.kind)
				if st := h.hdrSet(m.module, "header_insert", hd, "x-v", v); st != abi.Inval {
					t.Fatalf("insert = %v, want inval", st)
				}
				if st := h.hdrSet(m.module, "header_append", hd, "x-v", v); st != abi.Inval {
					t.Fatalf("append = %v, want inval", st)
				}
				if st, _, _ := h.hdrValue(m.module, hd, "x-v", 16); st != abi.None {
					t.Fatalf("an invalid value was stored (value_get %v)", st)
				}
			})
		}
	}
}

// TestHeaderValueGetBuflen: a value that does not fit is buflen with the
// needed size in nwritten and nothing written; one that fits exactly is ok.
func TestHeaderValueGetBuflen(t *testing.T) {
	for _, m := range hdrModules {
		t.Run(m.module, func(t *testing.T) {
			h := newHarness(t, harnessOpts{})
			hd := h.newHandle(m.kind)
			const val = "0123456789"
			h.hdrSet(m.module, "header_insert", hd, "x-v", val)
			np, nl := h.str("x-v")
			buf, nw := h.alloc(16), h.out()
			h.want(abi.Buflen, m.module, "header_value_get", uint64(hd), np, nl, uint64(buf), uint64(len(val)-1), nw)
			if got := h.u32(nw); got != uint32(len(val)) {
				t.Fatalf("buflen nwritten = %d, want %d", got, len(val))
			}
			if h.mem.b[buf] != 0xEE {
				t.Fatal("buflen wrote into the buffer")
			}
			if st, v, n := h.hdrValue(m.module, hd, "x-v", uint32(len(val))); st != abi.OK || v != val || n != uint32(len(val)) {
				t.Fatalf("exact fit = %v %q %d", st, v, n)
			}
		})
	}
}

// TestHeaderCursorPaging pages header_names_get and header_values_get
// with every buffer size from too small to large.
func TestHeaderCursorPaging(t *testing.T) {
	items := []string{"a", "bb", "ccc", "dddd", "e"}
	const longestName, longestValue = uint32(len("x-dddd") + 1), uint32(len("dddd") + 1)
	for _, m := range hdrModules {
		h := newHarness(t, harnessOpts{})
		names, values := h.newHandle(m.kind), h.newHandle(m.kind)
		for _, it := range items {
			h.hdrSet(m.module, "header_append", names, "x-"+it, "v")
			h.hdrSet(m.module, "header_append", values, "x-v", it)
		}
		wantNames := make([]string, len(items))
		for i, it := range items {
			wantNames[i] = "x-" + it
		}
		for bufLen := uint32(1); bufLen <= 32; bufLen++ {
			t.Run(fmt.Sprintf("%s/buf%d", m.module, bufLen), func(t *testing.T) {
				h.t = t
				got, st := h.multi(m.module, "header_names_get", bufLen, uint64(names))
				if bufLen < longestName {
					if st != abi.Buflen {
						t.Fatalf("names with a %d-byte buffer: %v %q, want buflen", bufLen, st, got)
					}
				} else if st != abi.OK || !slices.Equal(got, wantNames) {
					t.Fatalf("names with a %d-byte buffer: %v %q", bufLen, st, got)
				}
				np, nl := h.str("x-v")
				got, st = h.multi(m.module, "header_values_get", bufLen, uint64(values), np, nl)
				if bufLen < longestValue {
					if st != abi.Buflen {
						t.Fatalf("values with a %d-byte buffer: %v %q, want buflen", bufLen, st, got)
					}
				} else if st != abi.OK || !slices.Equal(got, items) {
					t.Fatalf("values with a %d-byte buffer: %v %q", bufLen, st, got)
				}
			})
		}
	}
}

// TestHeaderCursorSteps checks each step of the cursor protocol.
func TestHeaderCursorSteps(t *testing.T) {
	for _, m := range hdrModules {
		h := newHarness(t, harnessOpts{})
		hd := uint64(h.newHandle(m.kind))
		for _, v := range []string{"aa", "bbb", "cccc"} {
			h.hdrSet(m.module, "header_append", uint32(hd), "x-v", v)
		}
		np, nl := h.str("x-v")
		buf, ec, nw := uint64(h.alloc(64)), h.out(), h.out()
		for _, tc := range []struct {
			name         string
			bufLen       uint32
			cursor       uint32
			want         abi.Status
			out          string
			nwritten     uint32
			endingCursor int64
		}{
			{"two-fit-third-not", 8, 0, abi.OK, "aa\x00bbb\x00", 7, 2},
			{"exact-fit-two", 7, 0, abi.OK, "aa\x00bbb\x00", 7, 2},
			{"rest-from-cursor", 64, 1, abi.OK, "bbb\x00cccc\x00", 9, abi.CursorDone},
			{"last-exact", 5, 2, abi.OK, "cccc\x00", 5, abi.CursorDone},
			{"first-does-not-fit", 4, 2, abi.Buflen, "", 5, 0},
			{"first-does-not-fit-at-0", 2, 0, abi.Buflen, "", 3, 0},
			{"cursor-at-end", 64, 3, abi.OK, "", 0, abi.CursorDone},
			{"cursor-past-end", 64, 4, abi.Inval, "", 0, 0},
		} {
			t.Run(m.module+"/"+tc.name, func(t *testing.T) {
				h.t = t
				for i := range 64 {
					h.mem.b[int(buf)+i] = 0xEE
				}
				h.putU32(uint32(nw), 0xDEAD)
				got := h.call(m.module, "header_values_get", hd, np, nl, buf, uint64(tc.bufLen), uint64(tc.cursor), ec, nw)
				if got != tc.want {
					t.Fatalf("status %v, want %v", got, tc.want)
				}
				if tc.want == abi.Inval {
					return
				}
				if n := h.u32(nw); n != tc.nwritten {
					t.Fatalf("nwritten = %d, want %d", n, tc.nwritten)
				}
				if tc.want == abi.Buflen {
					if h.mem.b[buf] != 0xEE {
						t.Fatal("buflen wrote into the buffer")
					}
					return
				}
				if out := string(h.bytesAt(buf, tc.nwritten)); out != tc.out {
					t.Fatalf("buffer = %q, want %q", out, tc.out)
				}
				if h.mem.b[int(buf)+len(tc.out)] != 0xEE {
					t.Fatal("wrote past nwritten")
				}
				if c := h.i64(ec); c != tc.endingCursor {
					t.Fatalf("ending cursor = %d, want %d", c, tc.endingCursor)
				}
			})
		}
	}
}

// TestHeaderSizeLimit: a header block over Limits.MaxHeaderBytes is
// httpheadtoolarge, and the oversize value must not stay in the block
// (else the limit is not enforced on what is sent).
func TestHeaderSizeLimit(t *testing.T) {
	for _, m := range hdrModules {
		for _, fn := range []string{"header_insert", "header_append", "header_values_set"} {
			t.Run(m.module+"/"+fn, func(t *testing.T) {
				h := newHarness(t, harnessOpts{envCfg: EnvConfig{Limits: Limits{MaxHeaderBytes: 100}}})
				hd := h.newHandle(m.kind)
				if st := h.hdrSet(m.module, fn, hd, "x-small", "ok"); st != abi.OK {
					t.Fatalf("small header: %v", st)
				}
				if st := h.hdrSet(m.module, fn, hd, "x-big", strings.Repeat("v", 200)); st != abi.HTTPHeadTooLarge {
					t.Fatalf("oversize header: %v, want httpheadtoolarge", st)
				}
				if st, _, _ := h.hdrValue(m.module, hd, "x-big", 512); st != abi.None {
					t.Fatalf("the refused header stayed in the block (value_get %v)", st)
				}
			})
		}
	}
}

// TestHeaderValuesGetAnyCase checks that header_values_get finds a header
// by its name in any case, for names short and long (past get's stack
// buffer).
func TestHeaderValuesGetAnyCase(t *testing.T) {
	long := "x-" + strings.Repeat("long-name-", 10)
	tests := []struct{ stored, asked string }{
		{"host", "Host"},
		{"x-forwarded-for", "X-FORWARDED-FOR"},
		{"Content-Type", "content-type"},
		{long, strings.ToUpper(long)},
		{strings.ToUpper(long), long},
	}
	for _, tc := range tests {
		t.Run(tc.asked, func(t *testing.T) {
			h := newHarness(t, harnessOpts{})
			hd := h.newHandle(kindReq)
			if st := h.hdrSet(abi.ModuleHTTPReq, "header_insert", hd, tc.stored, "v"); st != abi.OK {
				t.Fatalf("insert: %v", st)
			}
			if vals, st := h.hdrValues(abi.ModuleHTTPReq, hd, tc.asked, 256); st != abi.OK || !slices.Equal(vals, []string{"v"}) {
				t.Fatalf("values_get(%q) = %v %q, want ok [v]", tc.asked, st, vals)
			}
		})
	}
}
