// Package conformance holds edgehost's engine conformance suite (in its
// tests only): one set of checks of the guest ABI, WASI and the sandbox
// limits, written once and run against every engine edgehost builds in,
// so that a guest sees the same host whichever engine runs it.
package conformance
