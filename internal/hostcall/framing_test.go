package hostcall

import (
	"testing"
	"time"

	"github.com/edgehost/edgehost/abi"
)

func TestManualFraming(t *testing.T) {
	tests := []struct {
		name   string
		hdr    [][2]string
		want   framing
		reason string // "" when the headers are kept
	}{
		{"content-length", [][2]string{{"Content-Length", "42"}}, framing{manual: true, length: 42}, ""},
		{"zero length", [][2]string{{"content-length", "0"}}, framing{manual: true, length: 0}, ""},
		{"chunked", [][2]string{{"Transfer-Encoding", "chunked"}}, framing{manual: true, length: -1, chunked: true}, ""},
		{"chunked, any case", [][2]string{{"transfer-encoding", "Chunked"}}, framing{manual: true, length: -1, chunked: true}, ""},
		{"neither", [][2]string{{"x-other", "1"}}, framing{length: -1}, "neither Content-Length nor Transfer-Encoding is set"},
		{"both", [][2]string{{"content-length", "1"}, {"transfer-encoding", "chunked"}}, framing{length: -1}, "both Content-Length and Transfer-Encoding are set"},
		{"two lengths", [][2]string{{"content-length", "1"}, {"content-length", "1"}}, framing{length: -1}, "more than one Content-Length"},
		{"signed", [][2]string{{"content-length", "+1"}}, framing{length: -1}, `Content-Length "+1" is not a decimal number`},
		{"empty", [][2]string{{"content-length", ""}}, framing{length: -1}, `Content-Length "" is not a decimal number`},
		{"list", [][2]string{{"content-length", "1, 1"}}, framing{length: -1}, `Content-Length "1, 1" is not a decimal number`},
		{"huge", [][2]string{{"content-length", "99999999999999999999"}}, framing{length: -1}, `Content-Length "99999999999999999999" is out of range`},
		{"gzip", [][2]string{{"transfer-encoding", "gzip"}}, framing{length: -1}, `Transfer-Encoding "gzip" is not chunked`},
		{"coding list", [][2]string{{"transfer-encoding", "gzip, chunked"}}, framing{length: -1}, `Transfer-Encoding "gzip, chunked" is not chunked`},
		{"two encodings", [][2]string{{"transfer-encoding", "chunked"}, {"transfer-encoding", "chunked"}}, framing{length: -1}, "more than one Transfer-Encoding"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHeader()
			for _, kv := range tc.hdr {
				h.add(kv[0], kv[1])
			}
			got, why := manualFraming(h)
			if got != tc.want || why != tc.reason {
				t.Errorf("manualFraming = %+v, %q; want %+v, %q", got, why, tc.want, tc.reason)
			}
		})
	}
}

// TestVCPU: under RunGuest, get_vcpu_ms counts the CPU the guest's thread
// uses and not the time it sleeps; get_heap_mib is the memory size in MiB
// rounded up, plus buffered body bytes.
func TestVCPU(t *testing.T) {
	h := newHarness(t, harnessOpts{memSize: 3<<20 + 1})
	o := h.out()
	vcpu := func() uint64 {
		h.want(abi.OK, abi.ModuleComputeRuntime, "get_vcpu_ms", o)
		return uint64(h.i64(o))
	}
	err := h.s.RunGuest(func() error {
		start := vcpu()
		deadline := time.Now().Add(10 * time.Second)
		x := 1
		for vcpu() < start+30 && time.Now().Before(deadline) {
			for i := range 100000 {
				x = x*31 + i
			}
		}
		if got := vcpu(); got < start+30 {
			t.Errorf("vCPU went from %d to %d ms in 10 s of spinning", start, got)
		}
		before := vcpu()
		time.Sleep(200 * time.Millisecond)
		if d := vcpu() - before; d > 100 {
			t.Errorf("a 200 ms sleep counted %d ms of vCPU", d)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	h.want(abi.OK, abi.ModuleComputeRuntime, "get_heap_mib", o)
	if got := h.u32(o); got != 4 {
		t.Errorf("heap of 3 MiB + 1 byte = %d MiB, want 4", got)
	}
	b := h.newHandle(kindBody)
	h.writeBody(b, string(make([]byte, 1<<20)), abi.BodyWriteBack)
	h.want(abi.OK, abi.ModuleComputeRuntime, "get_heap_mib", o)
	if got := h.u32(o); got != 5 {
		t.Errorf("heap with a 1 MiB buffered body = %d MiB, want 5", got)
	}
}
