//go:build go1.26

// Built with Go 1.26 or later, this guest takes Go 1.26's GODEBUG defaults
// rather than those of its module's go line (1.23): with the older line
// the toolchain links in a list of compatibility settings (17 on Go 1.26)
// that package internal/godebug parses at start-up, in every fresh sandbox
// (host/bench/README.md, "Session 9, fresh Go start-up"). The build
// constraint leaves the directive out for older toolchains (TinyGo 0.33
// runs Go 1.23), which refuse a default newer than themselves.

//go:debug default=go1.26

package main
