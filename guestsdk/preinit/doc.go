// Package preinit makes a Go (GOOS=wasip1) guest pre-initialized: the
// host runs the Go runtime's start-up and the package initializers once,
// when the module is deployed, and starts every sandbox from a snapshot
// of the state they leave, so a fresh sandbox pays for neither
// (README.md, "Pre-initialized Go guests"; the contract is in
// abi/README.md, "Pre-initialized modules").
//
// Import it for its effect in the main package and build the module as a
// WASI reactor:
//
//	import _ "github.com/edgehost/edgehost/guestsdk/preinit"
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o app.wasm .
//
// The module then exports _initialize (the runtime's start-up and every
// init function) and edgehost_serve, which runs main.main once. Before it
// calls main.main, edgehost_serve replaces the process environment and
// os.Args with the sandbox's own (FASTLY_TRACE_ID differs in every
// sandbox), read again through WASI's environ_get and args_get.
//
// What differs from a guest built as a command (its _start runs the
// runtime's start-up in every sandbox):
//
//   - package initializers run at deploy time, with an empty environment
//     and no hostcall other than WASI's: an init function that calls a
//     fastly_* hostcall makes the deploy fail with an error naming it;
//     read FASTLY_* variables in main or in the handler, not in a
//     package-level var;
//   - the seeds the Go runtime draws at start-up (map hash seeds, the
//     generator behind math/rand and math/rand/v2's top-level functions)
//     are drawn once, at deploy time, so every sandbox of one module
//     draws the same sequence from math/rand and math/rand/v2: use
//     crypto/rand (read from the host in every call) for anything that
//     must differ from one request to the next;
//   - a sandbox still never sees another's memory: each starts from the
//     snapshot, taken before any request.
//
// A module built without -buildmode=c-shared still runs, as a command:
// the package then has no effect. TinyGo builds ignore the package.
package preinit
