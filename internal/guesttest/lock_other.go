//go:build !(linux || darwin || freebsd || openbsd || netbsd || dragonfly)

package guesttest

// lockFile takes no lock on this platform: run one JS build at a time.
func lockFile(string) (unlock func(), err error) { return func() {}, nil }
