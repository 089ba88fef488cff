package hostcall

import (
	"testing"

	"github.com/edgehost/edgehost/abi"
)

// TestHandles adds and removes handles past the table's inline slots
// (fewHandles) and checks after each step that every live handle gives
// its value, every removed one badf, and len and all agree.
func TestHandles(t *testing.T) {
	for _, tc := range []struct {
		name string
		ops  []int // n > 0: add n handles; n < 0: remove the -n-th handle added (1-based)
	}{
		{"inline only", []int{2, -1, 1, -2}},
		{"past the inline slots", []int{5, -1, -4, 3, -2, -8}},
		{"remove all then add", []int{4, -1, -2, -3, -4, 2}},
		{"inline slot reused after the map", []int{3, -1, 1, -3, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var next uint32
			tab := newHandles[int](&next)
			var added []uint32
			live := map[uint32]int{}
			for _, op := range tc.ops {
				if op > 0 {
					for range op {
						v := len(added) * 10
						h := tab.add(v)
						if _, dup := live[h]; dup {
							t.Fatalf("handle %d given twice", h)
						}
						added = append(added, h)
						live[h] = v
					}
				} else {
					h := added[-op-1]
					v, err := tab.remove(h)
					if err != nil || v != live[h] {
						t.Fatalf("remove %d = %d, %v; want %d", h, v, err, live[h])
					}
					delete(live, h)
				}
				if got := tab.len(); got != len(live) {
					t.Fatalf("len %d, want %d", got, len(live))
				}
				seen := map[uint32]bool{}
				for h, v := range tab.all {
					if want, ok := live[h]; !ok || v != want || seen[h] {
						t.Fatalf("all yields %d=%d; live %v", h, v, live)
					}
					seen[h] = true
				}
				if len(seen) != len(live) {
					t.Fatalf("all yields %d handles, want %d", len(seen), len(live))
				}
				for _, h := range added {
					v, err := tab.get(h)
					if want, ok := live[h]; ok {
						if err != nil || v != want {
							t.Fatalf("get %d = %d, %v; want %d", h, v, err, want)
						}
					} else if statusFor(err) != abi.Badf {
						t.Fatalf("get of removed %d: %v, want badf", h, err)
					}
				}
			}
		})
	}
}
