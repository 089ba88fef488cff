//go:build race

package admin_test

// raceEnabled: the race detector slows compiling about tenfold, so tests
// skip cold compiles they can avoid.
const raceEnabled = true
