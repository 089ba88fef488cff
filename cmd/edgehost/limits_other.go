//go:build !unix

package main

// openFileLimit is not known here: the host-wide cap of origin requests
// is max_origin_requests alone.
func openFileLimit() (int64, bool) { return 0, false }
