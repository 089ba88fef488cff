//go:build !wasip1

package guestsdk

import "testing"

// installFake installs a fresh fake host for the duration of the test.
// Tests that use it must not call t.Parallel.
func installFake(t *testing.T) *fakeHost {
	t.Helper()
	f := newFakeHost()
	if !currentFake.CompareAndSwap(nil, f) {
		t.Fatal("a fake host is already installed (tests using it must not run in parallel)")
	}
	t.Cleanup(func() { currentFake.Store(nil) })
	return f
}
