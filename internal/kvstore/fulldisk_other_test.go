//go:build !unix

package kvstore

const fullDiskSupported = false

func fullDiskChild() {}
