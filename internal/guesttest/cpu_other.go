//go:build !unix

package guesttest

import (
	"testing"
	"time"
)

// ReportCPU reports nothing where getrusage is missing (see cpu.go).
func ReportCPU(b *testing.B) (stop func()) { return func() {} }

// CPUTime returns 0: the process's CPU time is not known here.
func CPUTime() time.Duration { return 0 }
