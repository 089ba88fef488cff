//go:build wasip1

// Command hellomany serves requests with guestsdk.ServeMany: one sandbox
// answers several requests in turn. It answers "served N" with the
// number of requests this instance has served; /trap panics, /loop never
// returns.
package main

import (
	"context"
	"io"
	"strconv"
	"time"

	"github.com/edgehost/edgehost/guestsdk"
)

var served int

func main() {
	guestsdk.ServeMany(guestsdk.HandlerFunc(handle), guestsdk.ServeManyOptions{NextTimeout: 2 * time.Second})
}

func handle(_ context.Context, w guestsdk.ResponseWriter, r *guestsdk.Request) {
	served++
	switch r.URL.Path {
	case "/trap":
		panic("trap on purpose")
	case "/loop":
		for {
		}
	}
	io.WriteString(w, "served "+strconv.Itoa(served))
}
