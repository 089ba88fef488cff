//go:build !unix

package guesttest

import "testing"

// ReportCPU reports nothing where getrusage is missing (see cpu.go).
func ReportCPU(b *testing.B) (stop func()) { return func() {} }
