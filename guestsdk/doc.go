// Package guestsdk is the guest-side Go SDK of edgehost: it lets a Go
// program compiled to WebAssembly (TinyGo, or Go's GOOS=wasip1
// GOARCH=wasm) handle one downstream HTTP request on an edgehost (or any
// Fastly-Compute-compatible) host.
//
// The package has three layers:
//
//   - raw bindings, one unexported function per hostcall the SDK calls,
//     declared with //go:wasmimport and generated from the abi package's
//     description (abi.Hostcalls) into hostcalls_gen_wasip1.go;
//   - under any other GOOS, the same functions (hostcalls_gen_native.go)
//     backed by an in-memory fake host, so that the SDK's logic is
//     unit-tested with plain `go test`;
//   - a small net/http-shaped API: Serve, Handler, Request, Response,
//     ResponseWriter, Header, plus log endpoints, config stores,
//     dictionaries, dynamic backends with keepalive options, cache
//     overrides (Request.CacheOverride) and purges (PurgeSurrogateKey).
//
// The package does not import net/http, encoding/json or anything that
// needs cgo, so it builds with TinyGo. Durations are time.Duration in the
// API and converted exactly to the ABI's units (milliseconds or whole
// seconds, see BackendOptions); ../abi/README.md documents every hostcall.
//
// A minimal guest:
//
//	func main() {
//		guestsdk.Serve(guestsdk.HandlerFunc(func(ctx context.Context, w guestsdk.ResponseWriter, r *guestsdk.Request) {
//			w.Header().Set("Content-Type", "text/plain")
//			io.WriteString(w, "hello\n")
//		}))
//	}
package guestsdk
