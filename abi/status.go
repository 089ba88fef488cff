package abi

// Status is a fastly_status code: every hostcall returns one as an i32.
type Status uint32

// The fastly_status codes, numbered as in the Compute ABI.
const (
	OK                Status = 0  // success
	Error             Status = 1  // generic error (e.g. backend name already in use)
	Inval             Status = 2  // invalid argument: bad pointer, unknown mask bit, unknown backend on send
	Badf              Status = 3  // invalid handle
	Buflen            Status = 4  // buffer too small; the needed size is written to nwritten
	Unsupported       Status = 5  // not supported by this host, or not allowed by policy
	Badalign          Status = 6  // misaligned pointer
	HTTPInvalid       Status = 7  // invalid HTTP message
	HTTPUser          Status = 8  // HTTP user error
	HTTPIncomplete    Status = 9  // incomplete HTTP message
	None              Status = 10 // no value: missing header, missing key
	HTTPHeadTooLarge  Status = 11 // header block too large
	HTTPInvalidStatus Status = 12 // invalid status code
	LimitExceeded     Status = 13 // a host limit was hit
	Again             Status = 14 // try again: a non-blocking poll is not ready
)

// String returns the status's ABI name, e.g. "inval".
func (s Status) String() string {
	switch s {
	case OK:
		return "ok"
	case Error:
		return "error"
	case Inval:
		return "inval"
	case Badf:
		return "badf"
	case Buflen:
		return "buflen"
	case Unsupported:
		return "unsupported"
	case Badalign:
		return "badalign"
	case HTTPInvalid:
		return "httpinvalid"
	case HTTPUser:
		return "httpuser"
	case HTTPIncomplete:
		return "httpincomplete"
	case None:
		return "none"
	case HTTPHeadTooLarge:
		return "httpheadtoolarge"
	case HTTPInvalidStatus:
		return "httpinvalidstatus"
	case LimitExceeded:
		return "limitexceeded"
	case Again:
		return "again"
	}
	return "status(" + itoa(uint32(s)) + ")"
}

func itoa(v uint32) string {
	if v == 0 {
		return "0"
	}
	var b [10]byte
	i := len(b)
	for v > 0 {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
	}
	return string(b[i:])
}
