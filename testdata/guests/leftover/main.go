// Command leftover is a test guest for fresh sandboxes: it answers with
// what an earlier sandbox of the module could have left behind in its
// memory, then leaves some there. A package variable counts the requests
// this sandbox served, another keeps the last path, a heap-allocated
// block carries the path, and a large array (zero in a new instance) gets
// a mark. Every answer of a fresh sandbox is "served=0 last= heap=0
// mark=0".
package main

import (
	"context"
	"io"
	"strconv"

	"github.com/edgehost/edgehost/guestsdk"
)

var (
	served int
	last   string
	heap   [][]byte
	big    [40000]byte
)

func main() {
	guestsdk.Serve(guestsdk.HandlerFunc(handle))
}

func handle(_ context.Context, w guestsdk.ResponseWriter, r *guestsdk.Request) {
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(200)
	io.WriteString(w, "served="+strconv.Itoa(served)+" last="+last+
		" heap="+strconv.Itoa(len(heap))+" mark="+strconv.Itoa(int(big[12345]))+"\n")
	served++
	last = r.URL.Path
	heap = append(heap, []byte(r.URL.Path))
	big[12345] = 7
}
