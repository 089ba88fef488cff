package guestsdk

import (
	"errors"
	"unsafe"
)

// LogEndpoint is a named log endpoint of the host (fastly_log). It is an
// io.Writer: each Write is one log record.
type LogEndpoint struct {
	name string
	h    uint32
}

// OpenLogEndpoint opens the log endpoint called name
// (fastly_log.endpoint_get). The host refuses reserved names (stdout,
// stderr, fst_managed_*) with status inval, returned as a *StatusError.
func OpenLogEndpoint(name string) (*LogEndpoint, error) {
	var h uint32
	if err := statusErr("fastly_log.endpoint_get", logEndpointGet(strPtr(name), uint32(len(name)), unsafe.Pointer(&h))); err != nil {
		return nil, err
	}
	return &LogEndpoint{name: name, h: h}, nil
}

// Name returns the endpoint name given to OpenLogEndpoint.
func (l *LogEndpoint) Name() string { return l.name }

// Write sends p to the endpoint (fastly_log.write), retrying while the
// host takes fewer bytes than offered. It returns the bytes written and
// the *StatusError of a failing call.
func (l *LogEndpoint) Write(p []byte) (int, error) {
	written := 0
	for written < len(p) {
		rest := p[written:]
		var n uint32
		if err := statusErr("fastly_log.write", logWrite(l.h, bytesPtr(rest), uint32(len(rest)), unsafe.Pointer(&n))); err != nil {
			return written, err
		}
		if n == 0 || uint64(n) > uint64(len(rest)) {
			return written, errors.New("guestsdk: fastly_log.write: host accepted no bytes")
		}
		written += int(n)
	}
	return written, nil
}
