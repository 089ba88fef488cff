package host_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"

	"github.com/edgehost/edgehost/host"
	"github.com/edgehost/edgehost/internal/guesttest"
)

// Start a host on a loopback port with examples/hello, ask it for a page,
// deploy a second version and stop it.
func Example() {
	dir, err := os.MkdirTemp("", "edgehost-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	wasm, err := guesttest.Build("examples/hello", dir) // any Compute guest's .wasm bytes
	if err != nil {
		log.Fatal(err)
	}

	cache, err := guesttest.CompileCacheDir() // compiled code kept across runs
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	h, err := host.Start(context.Background(), ln, host.Config{
		Module:   wasm,
		Manifest: []byte("manifest_version = 3\nname = \"hello\"\n"),
		CacheDir: cache,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer h.Shutdown(context.Background())

	resp, err := http.Get("http://" + h.Addr().String() + "/hi")
	if err != nil {
		log.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Print(resp.Status, "\n", string(body))

	id, err := h.Deploy(context.Background(), wasm, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("version", h.Version(), id)
	// Output:
	// 200 OK
	// hello from edgehost
	// method: GET
	// path: /hi
	// user-agent: Go-http-client/1.1
	// version 2 2
}
